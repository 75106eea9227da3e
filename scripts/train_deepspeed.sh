#!/usr/bin/env bash
# Launch `minif2 train --backend deepspeed` (ZeRO-2, configs/deepspeed/zero2.json) on N processes.
#
#   NPROC=8 scripts/train_deepspeed.sh --config configs/paper/train_4b.yaml     # 8 GPUs, bf16
#   NPROC=2 scripts/train_deepspeed.sh --profile tiny                           # 2 CPU processes, fp32, gloo
#
# Without a GPU it sets DS_ACCELERATOR=cpu (DeepSpeed's CPU accelerator; the trainer then uses gloo).
# Extra arguments go to `minif2 train`; PYTHON picks the interpreter (default: the repo's .venv).
# Before renting GPUs: `minif2 plan --profile paper` (memory per GPU) and `minif2 train --config ... --dry-run`.
#
# Multi-node (F2LLM: 4 nodes x 8 GPUs = 32), with DeepSpeed's launcher and a host file, one line per node:
#     node1 slots=8
#     node2 slots=8          (... node3, node4)
#   HOSTFILE=hostfile scripts/train_deepspeed.sh --config configs/paper/train_4b.yaml     # run once, on node1
# The launcher reaches the other nodes by passwordless ssh (pdsh) and runs the same command there: every node
# needs the same checkout path, environment and data_dir; variables it should forward (HF_HUB_OFFLINE,
# HF_HOME, NCCL_*) go in ~/.deepspeed_env as NAME=value lines. MASTER_ADDR / MASTER_PORT pick the rendezvous
# (default: the first host, 29500). Without ssh between nodes, start torchrun on each node instead:
#   NNODES=4 NODE_RANK=<0..3> MASTER_ADDR=node1 scripts/train_deepspeed.sh --config configs/paper/train_4b.yaml
# (Multi-node has not been run by the kit's developers: no cluster was available; the 2-process CPU path is
# tested, including resume from a ZeRO-2 checkpoint, in tests/test_trainer.py.)
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
if [ -n "${HOSTFILE:-}" ]; then  # DeepSpeed's multi-node launcher; it passes --local_rank to `minif2 train`
  launcher="$(dirname "$python")/deepspeed"
  [ -x "$launcher" ] || launcher="deepspeed"
  exec "$launcher" --hostfile "$HOSTFILE" --master_addr "${MASTER_ADDR:-$(awk 'NF{print $1; exit}' "$HOSTFILE")}" \
    --master_port "${MASTER_PORT:-29500}" --module minif2 train --backend deepspeed "$@"
fi
if [ "${NNODES:-1}" -gt 1 ]; then  # one torchrun per node
  exec "$python" -m torch.distributed.run --nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK}" \
    --master_addr "${MASTER_ADDR:?set MASTER_ADDR}" --master_port "${MASTER_PORT:-29500}" \
    --nproc_per_node "$nproc" -m minif2 train --backend deepspeed "$@"
fi
exec "$python" -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m minif2 train --backend deepspeed "$@"
