"""The kit's training step on a GPU with the real Qwen3 shapes: seconds per step and peak memory vs the plan.

For each case it builds a random model of a real architecture from ``configs/models`` (no Hub),
wraps it in the kit's Embedder (+ LoRA adapters as ``Embedder.add_lora`` adds them), enables
gradient checkpointing as ``training/backends.build_embedder`` does, and runs the kit's
``SingleBackend`` (bf16 autocast, AdamW, clipping, schedule) on random full-length token ids
shaped like a micro-batch of the profile (batch x (1 query + 1 positive + 7 negatives) x length).
The loss is F2LLM's hard-negative + in-batch InfoNCE, written out here so that the script needs
neither ``datasets`` nor ``bitsandbytes`` (QLoRA is therefore not timed; LoRA is its upper bound).
It records seconds per step (after one warm-up step), ``torch.cuda.max_memory_allocated``,
``planning/memory.py``'s plan of the same case and its FLOPs estimate, and writes JSON to the
path given as the first argument, else ``$OUT/gpu_check.json``, else benchmarks/results/.
Without a GPU it runs one tiny case on the CPU (a smoke test of the script itself).

    PYTHONPATH=src python benchmarks/gpu_check.py [out.json]
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import platform
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# Import minif2.training's and minif2.planning's modules without their __init__, which pull in datasets
# and sentence-transformers (absent on the GPU machine).
for _name in ("training", "planning"):
    _pkg = types.ModuleType(f"minif2.{_name}")
    _pkg.__path__ = [str(ROOT / "src" / "minif2" / _name)]
    sys.modules.setdefault(f"minif2.{_name}", _pkg)

from transformers import AutoModel  # noqa: E402

from minif2.model import Embedder, EmbedderConfig  # noqa: E402
from minif2.planning.memory import CUDA_CONTEXT_GIB, GIB, ModelShape, PlanInputs, plan, step_flops  # noqa: E402
from minif2.planning.shapes import shape_config  # noqa: E402
from minif2.training.backends import SingleBackend  # noqa: E402

BF16_DENSE_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "4090": 165.0}


def _cfg(mode: str, batch: int, length: int, precision: str, **kw: Any) -> types.SimpleNamespace:
    """The TrainConfig fields SingleBackend reads; small-gpu's LoRA values (configs/small-gpu/train.yaml)."""
    base = dict(
        mode=mode, batch_size=batch, max_length_tokens=length, num_negatives=7, precision=precision,
        device="auto", lr=1e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01, warmup_steps=1, min_lr=1e-7,
        max_grad_norm=1.0, grad_accum=1, lora_r=32, lora_alpha=64, lora_dropout=0.05, gradient_checkpointing=True,
        temperature=0.05, backend="single", deepspeed_config=None,
    )  # fmt: skip
    return types.SimpleNamespace(**{**base, **kw})


def _embedder(shape: str, cfg: Any, attn: str, device: str, **overrides: Any) -> Embedder:
    config = shape_config(shape, **overrides)
    config._attn_implementation = attn
    with torch.device(device):
        backbone = AutoModel.from_config(config, attn_implementation=attn)  # float32, as the kit loads full/LoRA
    if cfg.gradient_checkpointing:  # as training/backends.build_embedder
        enable = getattr(backbone, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        backbone.config.use_cache = False
    emb = Embedder(
        backbone, None, EmbedderConfig(model=shape, pooling="last", max_length_tokens=cfg.max_length_tokens), shape
    )
    if cfg.mode == "lora":
        emb.add_lora(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    return emb


def _loss(q: torch.Tensor, d: torch.Tensor, b: int, k: int, tau: float) -> torch.Tensor:
    """F2LLM: hard-negative InfoNCE (positive vs its k negatives) + in-batch InfoNCE (docs/recipe.md §1a)."""
    p, n = d[:b], d[b:].reshape(b, k, -1)
    hard = torch.cat([(q * p).sum(-1, keepdim=True), torch.einsum("bd,bkd->bk", q, n)], dim=1) / tau
    target = torch.zeros(b, dtype=torch.long, device=q.device)
    return F.cross_entropy(hard, target) + F.cross_entropy(q @ p.T / tau, torch.arange(b, device=q.device))


def _padding_mask(rows: int, length: int) -> torch.Tensor:
    """Right padding as in a real micro-batch: one row at full length, the others 50-100 % of it.

    A mask with padding keeps SDPA on the masked path (grouped k/v repeated), as in training.
    """
    lengths = torch.randint(length // 2, length + 1, (rows,))
    lengths[0] = length
    return (torch.arange(length)[None, :] < lengths[:, None]).long()


def run_case(name: str, shape: str, cfg: Any, attn: str, steps: int, **overrides: Any) -> dict[str, Any]:
    """Build, warm up one step, time ``steps`` steps; memory and the plan of the same case."""
    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    emb = _embedder(shape, cfg, attn, device, **overrides)
    backend = SingleBackend(emb, cfg, total_steps=steps + 1)
    emb.train()
    b, k, s = cfg.batch_size, cfg.num_negatives, cfg.max_length_tokens
    vocab = emb.backbone.config.vocab_size
    times, losses = [], []
    for i in range(steps + 1):
        if on_gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        ids_q, ids_d = torch.randint(0, vocab, (b, s)), torch.randint(0, vocab, (b * (1 + k), s))
        q = backend.forward(ids_q, _padding_mask(b, s))
        d = backend.forward(ids_d, _padding_mask(b * (1 + k), s))
        loss = _loss(q, d, b, k, cfg.temperature)
        backend.backward(loss, True)
        if on_gpu:
            torch.cuda.synchronize()
        losses.append(float(loss.detach()))
        if i > 0:  # step 0 is the warm-up (kernels, allocator)
            times.append(time.perf_counter() - t0)
    model_shape = ModelShape.from_config(emb.backbone.config)
    inputs = PlanInputs(
        mode=cfg.mode, precision=cfg.precision, batch_size=b, max_length_tokens=s, num_negatives=k,
        gradient_checkpointing=cfg.gradient_checkpointing, lora_r=cfg.lora_r, lora_dropout=cfg.lora_dropout,
        device=device,
    )  # fmt: skip
    planned = plan(model_shape, inputs)
    flops = step_flops(model_shape, inputs)
    sec = sorted(times)[len(times) // 2]
    out = {
        "case": name, "shape": shape, "mode": cfg.mode, "attn": attn, "batch": b, "length": s, "negatives": k,
        "tokens_per_step": planned.tokens, "s_per_step": times, "median_s": sec, "loss": losses,
        "tflops_estimated_per_step": flops / 1e12, "achieved_tflops": flops / sec / 1e12,
        "plan_gib": planned.gib(), "plan_with_context_gib": round(planned.total / GIB + CUDA_CONTEXT_GIB, 2),
    }  # fmt: skip
    if on_gpu:
        out["max_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
        out["max_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
        out["plan_over_measured"] = planned.total / torch.cuda.max_memory_allocated()
    del emb, backend, q, d, loss
    gc.collect()
    return out


def cases() -> list[tuple[str, str, Any, str, int, dict[str, Any]]]:
    """(name, shape, cfg, attention, timed steps, config overrides): the GPU list, or the CPU smoke test."""
    if not torch.cuda.is_available():
        tiny = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                    num_hidden_layers=2, vocab_size=1000)  # fmt: skip
        return [("cpu-smoke-lora", "qwen3-0.6b", _cfg("lora", 2, 16, "fp32", num_negatives=1), "sdpa", 1, tiny)]
    small_gpu = _cfg("lora", 16, 512, "bf16")  # configs/small-gpu/train.yaml without the 4-bit base
    paper = _cfg("full", 16, 1024, "bf16")  # configs/paper/train*.yaml per GPU (single process here)
    out = [
        ("0.6b-small-gpu-lora", "qwen3-0.6b", small_gpu, "sdpa", 3, {}),
        ("0.6b-small-gpu-full", "qwen3-0.6b", replace_ns(small_gpu, mode="full"), "sdpa", 3, {}),
        ("0.6b-paper-full", "qwen3-0.6b", paper, "sdpa", 3, {}),
        ("1.7b-paper-full", "qwen3-1.7b", paper, "sdpa", 2, {}),
        ("4b-paper-lora", "qwen3-4b", replace_ns(paper, mode="lora"), "sdpa", 2, {}),
    ]
    if importlib.util.find_spec("flash_attn") is not None:
        out.insert(1, ("0.6b-small-gpu-lora-fa2", "qwen3-0.6b", small_gpu, "flash_attention_2", 3, {}))
    return out


def replace_ns(ns: types.SimpleNamespace, **kw: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{**vars(ns), **kw})


def main(argv: list[str]) -> int:
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "results"
    out_path = Path(argv[0]) if argv else out_dir / "gpu_check.json"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    result: dict[str, Any] = {
        "gpu": gpu, "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "bf16_dense_peak_tflops": next((v for key, v in BF16_DENSE_TFLOPS.items() if gpu and key in gpu), None),
        "cases": [],
    }  # fmt: skip
    t_start = time.perf_counter()
    budget = float(os.environ.get("GPU_CHECK_BUDGET_S", "270"))  # stop starting cases after this (the lead's limit)
    for name, shape, cfg, attn, steps, overrides in cases():
        if time.perf_counter() - t_start > budget:
            result["cases"].append({"case": name, "error": f"skipped: past the {budget:.0f} s budget"})
            continue
        try:
            row = run_case(name, shape, cfg, attn, steps, **overrides)
        except torch.OutOfMemoryError as err:  # a finding, not a crash: keep going
            row = {"case": name, "error": f"out of memory: {str(err)[:300]}"}
        except Exception as err:  # noqa: BLE001 - report every case, whatever fails
            row = {"case": name, "error": f"{type(err).__name__}: {str(err)[:500]}"}
        print(json.dumps(row), flush=True)
        result["cases"].append(row)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2))  # after every case: a timeout keeps what was done
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    result["wall_s"] = time.perf_counter() - t_start
    result["imported"] = {
        m: m in sys.modules for m in ("datasets", "mteb", "faiss", "gguf", "bitsandbytes", "deepspeed")
    }
    out_path.write_text(json.dumps(result, indent=2))
    print(f"saved {out_path}")
    return 0 if all("error" not in r for r in result["cases"]) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
