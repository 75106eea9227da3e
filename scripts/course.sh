#!/usr/bin/env bash
# The README's main-job command: sets up .venv if needed, then runs the whole course
# (notebooks 00 -> 05, headless, offline tiny profile) into runs/<timestamp>/.
# Extra arguments go to scripts/run_course.py (e.g. `--profile small-gpu`, `--smoke`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
exec "$root/.venv/bin/python" scripts/run_course.py "$@"
