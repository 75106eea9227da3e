#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv (idempotent) from requirements.lock.
#
# Every package is installed at the lock's exact version with --no-deps, so two machines with the same Python get
# the same environment (and the same harvested data: the offline sources are read from installed packages).
# torch is locked by version: CPU machines get the CPU wheel of that version (a local file here); machines with an
# NVIDIA driver get PyPI's CUDA build of the same version, with the CUDA libraries it depends on (the one part of
# the GPU path that is not in the lock). DeepSpeed builds against the installed torch and stays optional.
# Re-runs are cheap: nothing is reinstalled unless the lock, pyproject.toml or this script changed.
# Refresh the lock after changing a dependency: scripts/lock.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${MINIF2_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
lock="$root/requirements.lock"

stamp_src="$(cat requirements.lock pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
stamp_file="$venv/.minif2-stamp"
if [ -x "$venv/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_src" ]; then
  exit 0
fi

echo "[bootstrap] setting up $venv from requirements.lock" >&2
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
pinned() { grep -i -E "^$1==" "$lock"; }  # the lock's line for one package
"${pip[@]}" install "$(pinned pip)" "$(pinned setuptools)" "$(pinned wheel)"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "${pip[@]}" install "$(pinned torch)"             # PyPI's CUDA build of the locked version, with its CUDA libraries
else
  "${pip[@]}" install --no-deps "$(pinned torch)"   # the CPU wheel of the locked version
fi
# Everything else at the lock's versions; --no-build-isolation lets source packages build against the torch above.
grep -v -i -E '^(torch|deepspeed)==' "$lock" > "$venv/.minif2-lock-rest.txt"
"${pip[@]}" install --no-deps --no-build-isolation -r "$venv/.minif2-lock-rest.txt"
"${pip[@]}" install --no-deps --no-build-isolation -e .
# DeepSpeed (ZeRO-2 backend) builds against the installed torch; optional: the kit works without it.
"${pip[@]}" install --no-deps --no-build-isolation "$(pinned deepspeed)" \
  || echo "[bootstrap] deepspeed not installed: the ZeRO-2 backend will be unavailable" >&2
"$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "$stamp_src" > "$stamp_file"
echo "[bootstrap] done: $(grep -c '==' "$lock") locked packages" >&2
