#!/usr/bin/env bash
# The README's test command: sets up .venv if needed, then runs the test suite offline.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`, `-k mining`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$root/.venv/bin/python" -m pytest "$@"
