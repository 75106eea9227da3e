"""Dry-run a training profile on the CPU with the real model shape, and plan its GPU memory (issue 16).

``minif2 train --profile small-gpu --dry-run`` builds a random model of the profile's exact
architecture (``planning/shapes.py``: Qwen3-0.6B from ``configs/models``), then runs the
profile's own path (QLoRA 4-bit base, LoRA adapters, gradient checkpointing, the loss) for
two optimiser steps at batch 2 and 32 tokens on a few synthetic rows, and checks what a
rented GPU would otherwise find first: the checkpoint is written, a resume from it ends
with the same weights as the uninterrupted run, and the final folder loads in transformers
and sentence-transformers with the same embeddings. It prints a JSON report with the
measured peak memory (process peak RSS above the baseline, ``planning/measure.py``).

Differences from a GPU run, on purpose: fp32 compute (the CPU has no bf16 autocast worth the
name), SDPA attention (FlashAttention 2 needs CUDA), one process (DeepSpeed profiles run the
single backend; ``tests/test_trainer.py`` checks ZeRO-2 with 2 CPU processes). A profile
whose CPU plan exceeds half the free memory keeps every layer's shape but fewer layers.

``minif2 plan`` prints ``planning/memory.py``'s plan for the profiles on 1, 8 and 32 GPUs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import AutoConfig, AutoModel, AutoTokenizer

from minif2.config import PROFILES, load_config, profile_path
from minif2.model import Embedder
from minif2.planning.measure import peak_rss_bytes, reset_peak_rss, rss_bytes
from minif2.planning.memory import GIB, ModelShape, plan_for_config, plan_table, print_table
from minif2.planning.shapes import build_shape, shape_config, shape_for_model
from minif2.schema import Sample, write_unified
from minif2.training import trainer
from minif2.training.checkpoint import read_metrics

__all__ = ["dry_run", "plan_cli", "train_cli"]

WORDS = "alpha beta gamma delta river mountain city engine paper music garden window".split()
TEXTS = ["what is a tensor", "A tensor is a multi-dimensional array of numbers."]


def _synthetic_data(folder: Path, rows: int = 24, negatives: int = 2) -> Path:
    """A mined unified folder of ``rows`` short retrieval samples (one source)."""
    rng = random.Random(0)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    samples = [
        Sample(text(4), text(8), [text(8) for _ in range(negatives)], "retrieval", "dry", "Retrieve the passage")
        for _ in range(rows)
    ]
    return write_unified({"dry": samples}, folder)


def _free_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 8 * GIB  # not Linux: assume 8 GiB


def _dry_config(cfg: trainer.TrainConfig, data: Path, out: Path, steps: int, batch: int, length: int) -> Any:
    on_gpu = torch.cuda.is_available()
    attn = cfg.attn_implementation
    if attn == "flash_attention_2" and not on_gpu:
        attn = "sdpa"
    return replace(
        cfg,
        data_dir=str(data),
        out_dir=str(out),
        backend="single",
        precision=cfg.precision if on_gpu else "fp32",
        attn_implementation=attn,
        batch_size=batch,
        grad_accum=1,
        max_length_tokens=length,
        num_negatives=1,
        max_steps=steps,
        warmup_steps=1,
        save_every_steps=1,
        eval_every_steps=0,
        keep_checkpoints=steps,
        validation_fraction=0.0,  # no validation pass: each forward dequantises every 4-bit weight on the CPU
        resume=False,
        progress=False,
    )


def _layers_that_fit(cfg: Any, config: Any, budget: float) -> int:
    """The most layers (<= the real count) whose CPU plan fits ``budget`` bytes."""
    layers = config.num_hidden_layers
    while layers > 1:
        config.num_hidden_layers = layers
        if plan_for_config(cfg, 1, model_config=config, precision="fp32").total <= budget:
            break
        layers = max(1, layers // 2)
    return layers


def _embeddings_agree(final: Path) -> dict[str, float]:
    """Max |difference| between the kit's, transformers' and sentence-transformers' embeddings of ``final``."""
    embedder = Embedder.from_pretrained(final)
    ours = embedder.encode(TEXTS)
    enc = embedder.tokenizer(TEXTS, padding=True, return_tensors="pt")
    del embedder
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(final).eval()(**enc).last_hidden_state
    last = enc["attention_mask"].sum(1) - 1
    hf = torch.nn.functional.normalize(hidden[torch.arange(len(TEXTS)), last], dim=-1).numpy()
    st = SentenceTransformer(str(final), device="cpu").encode(TEXTS)
    return {"transformers": float(np.abs(hf - ours).max()), "sentence_transformers": float(np.abs(st - ours).max())}


def _inspect(embedder: Embedder) -> dict[str, Any]:
    """What the trained model really is: 4-bit linears, LoRA adapters, checkpointing, trainable values."""
    modules = list(embedder.backbone.modules())
    return {
        "linear_4bit_modules": sum(type(m).__module__.startswith("bitsandbytes") for m in modules),  # not peft's
        "lora_modules": sum(hasattr(m, "lora_A") for m in modules),
        "trainable_params": sum(p.numel() for p in embedder.parameters() if p.requires_grad),
        "checkpointing_active": any(getattr(m, "gradient_checkpointing", False) for m in modules),
    }


def dry_run(
    cfg: trainer.TrainConfig,
    steps: int = 2,
    batch_size: int = 2,
    max_length_tokens: int = 32,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run ``cfg``'s path on a random model of its real shape for ``steps`` steps; returns the report."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    work = Path(workdir or tempfile.mkdtemp(prefix="minif2-dry-run-"))
    data = _synthetic_data(work / "data")
    run = _dry_config(cfg, data, work / "run", steps, batch_size, max_length_tokens)
    shape = shape_for_model(cfg.model)
    planned = None
    if shape is not None:  # a known hub id: its real architecture, random weights
        config = shape_config(shape)
        fit = _layers_that_fit(run, config, 0.5 * _free_bytes())
        layers = fit if fit < shape_config(shape).num_hidden_layers else None
        run = replace(run, model=str(build_shape(shape, num_hidden_layers=layers)))
        planned = plan_for_config(run, 1, model_config=AutoConfig.from_pretrained(run.model), precision="fp32")
    seen: dict[str, Any] = {}

    def inspect(step: int, embedder: Embedder, row: dict[str, Any]) -> None:
        if step == 1:
            seen.update(_inspect(embedder))
        seen["peak_rss_steps_gib"] = round((peak_rss_bytes() - baseline) / GIB, 3)  # loading + steps, not saving

    baseline = rss_bytes()
    reset_peak_rss()
    final = trainer.train(run, callbacks=[inspect])
    peak = peak_rss_bytes() - baseline
    resumed_dir = work / "resumed"
    shutil.copytree(work / "run", resumed_dir, ignore=shutil.ignore_patterns("final", f"step-{steps:07d}"))
    resumed = trainer.train(replace(run, out_dir=str(resumed_dir), resume=True))
    a, b = load_file(str(final / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    resume_diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a) if a.keys() == b.keys() else None
    rows = read_metrics(work / "run" / "metrics.jsonl", "train")
    config, tokenizer = AutoConfig.from_pretrained(run.model), AutoTokenizer.from_pretrained(run.model)
    report = {
        "profile_model": cfg.model,
        "shape": shape,
        "layers": config.num_hidden_layers,
        "layers_real": shape_config(shape).num_hidden_layers if shape else None,
        "vocab_rows": config.vocab_size,
        "eos_is_not_pad": tokenizer.eos_token_id != tokenizer.pad_token_id,
        "mode": run.mode,
        "precision": run.precision,
        "attn_implementation": run.attn_implementation,
        "gradient_checkpointing": run.gradient_checkpointing,
        **seen,
        "steps": [{"step": r["step"], "loss": r["loss"], "grad_norm": r["grad_norm"]} for r in rows],
        "checkpoints": sorted(p.name for p in (work / "run").glob("step-*")),
        "resume_max_abs_diff": resume_diff,
        "reload_max_abs_diff": _embeddings_agree(final),
        "peak_rss_gib": round(peak / GIB, 3),  # includes saving: merging LoRA and de-quantising to fp32
        "plan_cpu_gib": round(planned.total / GIB, 3) if planned else None,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
    }
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return report


def train_cli(argv: list[str] | None = None) -> int:
    """``minif2 train ... [--dry-run]``: the trainer's CLI; ``--dry-run`` runs :func:`dry_run` instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--dry-run" not in args:
        return trainer.cli(args)
    args.remove("--dry-run")
    report = dry_run(trainer.parse_config(args))
    print(json.dumps(report, indent=2))
    ok = report["resume_max_abs_diff"] is not None and report["resume_max_abs_diff"] < 1e-4
    return 0 if ok and max(report["reload_max_abs_diff"].values()) < 1e-4 else 1


def plan_cli(argv: list[str] | None = None) -> int:
    """``minif2 plan [--profile small-gpu] [--gpus 1 8 32] [--json]``: memory per GPU for the Qwen3 sizes."""
    parser = argparse.ArgumentParser(prog="minif2 plan", description=plan_cli.__doc__)
    parser.add_argument("--profile", choices=PROFILES, help="default: small-gpu and paper")
    parser.add_argument("--model", action="append", help="hub id (repeatable; default Qwen3 0.6B, 1.7B, 4B)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-length", type=int, help="plan at this padded length instead of the profile's")
    parser.add_argument("--batch-size", type=int, help="plan at this micro-batch instead of the profile's")
    parser.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    args = parser.parse_args(argv)
    models = tuple(args.model or ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "Qwen/Qwen3-4B"))
    runs = []
    for profile in (args.profile,) if args.profile else ("small-gpu", "paper"):
        base = load_config(trainer.TrainConfig, profile_path(profile, "train"))
        configs = {}
        for model in models:
            size = (shape_for_model(model) or "").removeprefix("qwen3-")
            paper = profile_path(profile, "train").with_name(f"train_{size}.yaml")
            run = load_config(trainer.TrainConfig, paper) if paper.is_file() else replace(base, model=model)
            configs[model] = replace(
                run,
                max_length_tokens=args.max_length or run.max_length_tokens,
                batch_size=args.batch_size or run.batch_size,
            )
        runs.append((profile, configs))
    rows = plan_table(runs, models, tuple(args.gpus))
    print(json.dumps(rows, indent=2)) if args.json else print_table(rows)
    return 0


def model_shape(model: str) -> ModelShape:
    """The :class:`ModelShape` of a hub id from ``configs/models``."""
    return ModelShape.from_config(shape_config(model))
