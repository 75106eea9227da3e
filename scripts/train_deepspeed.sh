#!/usr/bin/env bash
# Launch `minif2 train --backend deepspeed` (ZeRO-2, configs/deepspeed/zero2.json) on N processes.
#
#   NPROC=8 scripts/train_deepspeed.sh --config configs/paper/train_4b.yaml     # 8 GPUs, bf16
#   NPROC=2 scripts/train_deepspeed.sh --profile tiny                           # 2 CPU processes, fp32, gloo
#
# Without a GPU it sets DS_ACCELERATOR=cpu (DeepSpeed's CPU accelerator; the trainer then uses gloo).
# Multi-node: use `deepspeed --hostfile ...  -m minif2 train --backend deepspeed ...` instead.
# Extra arguments go to `minif2 train`; PYTHON picks the interpreter (default: the repo's .venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="python"
if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  export DS_ACCELERATOR=cpu
  nproc="${NPROC:-2}"
else
  nproc="${NPROC:-$("$python" -c 'import torch; print(torch.cuda.device_count())')}"
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$python" -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m minif2 train --backend deepspeed "$@"
