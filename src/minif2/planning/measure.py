"""Measure the peak memory of a few training steps in a fresh process (checks ``planning/memory.py``).

On the CPU torch allocates with ``malloc``, so the process's peak resident memory (Linux
``VmHWM``) is what training used, provided that (1) glibc hands every large block back to the
system when it is freed (``MALLOC_MMAP_THRESHOLD_=65536``, set for the child), (2) the baseline is
taken after the imports and after a warm-up op (thread pools, oneDNN scratch), and (3) the
high-water mark is reset after the model is loaded (``echo 5 > /proc/self/clear_refs``), so a
loading transient does not count: ``peak - baseline`` is weights + gradients + optimiser +
activations of the steps. ``tracemalloc`` would not see torch's allocations.

Each step runs the trainer's own path: ``build_embedder`` (full / LoRA / QLoRA), the single
backend, two forwards (queries; positives + negatives) of random full-length token ids,
``f2llm_loss`` and ``backend.backward``. This module is a measuring instrument, not a stage.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from minif2.config import from_dict
from minif2.training.backends import build_embedder, make_backend
from minif2.training.losses import f2llm_loss
from minif2.training.sampler import negatives_per_step
from minif2.training.train_config import TrainConfig

__all__ = ["measure_peak", "peak_rss_bytes", "reset_peak_rss", "rss_bytes"]

CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "OMP_NUM_THREADS": "1"}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_bytes() -> int:
    """Resident memory now."""
    return _status_kb("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident memory since the start or the last :func:`reset_peak_rss`."""
    try:
        return _status_kb("VmHWM") * 1024
    except (OSError, KeyError):  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the peak to the current resident memory (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# what a measurement fixes (one CPU process, fp32, small steps); the rest is TrainConfig's defaults or the caller's
STEP_OVERRIDES = dict(
    device="cpu", precision="fp32", attn_implementation="sdpa", gradient_checkpointing=False,
    max_length_tokens=64, batch_size=2, num_negatives=1, progress=False,
)  # fmt: skip


def _step_cfg(spec: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of the measured steps: its defaults, :data:`STEP_OVERRIDES`, then ``spec`` (checked)."""
    return from_dict(TrainConfig, {**STEP_OVERRIDES, **spec}, "measure_peak(cfg=...)")


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in the fresh process: baseline, load, reset the peak, ``steps`` optimiser steps, peak."""
    torch.manual_seed(0)
    cfg = _step_cfg(spec["cfg"])
    warm = torch.randn(64, 64, requires_grad=True)
    (warm @ warm).sum().backward()  # thread pools and scratch buffers belong to the baseline
    baseline = rss_bytes()
    embedder = build_embedder(cfg)
    backend = make_backend(embedder, cfg, total_steps=10)
    embedder.train()  # gradient checkpointing and dropout act in training mode only
    loaded = rss_bytes() - baseline
    reset = reset_peak_rss()
    b, length = cfg.batch_size, cfg.max_length_tokens
    k = negatives_per_step(cfg.num_negatives, "retrieval")  # the measured steps are retrieval steps
    vocab = min(len(embedder.tokenizer), embedder.backbone.config.vocab_size)
    eos = embedder.tokenizer.eos_token_id
    times = []
    for _ in range(spec.get("steps", 2)):
        t0 = time.process_time()
        ids_q = torch.randint(0, vocab, (b, length))
        ids_d = torch.randint(0, vocab, (b * (1 + k), length))
        ids_q[:, -1] = ids_d[:, -1] = eos
        q = backend.forward(ids_q, torch.ones_like(ids_q))
        docs = backend.forward(ids_d, torch.ones_like(ids_d))
        n = docs[b:].reshape(b, k, -1)
        losses = f2llm_loss(q, docs[:b], n, "retrieval", cfg.temperature)
        backend.backward(losses["loss"], True)
        times.append(time.process_time() - t0)
    peak = peak_rss_bytes() - baseline
    params = sum(p.numel() for p in embedder.parameters())
    trainable = sum(p.numel() for p in embedder.parameters() if p.requires_grad)
    return {
        "peak_bytes": peak,
        "loaded_bytes": loaded,
        "peak_reset": reset,
        "params": params,
        "trainable": trainable,
        "cpu_s_per_step": times,
    }


def measure_peak(model: str, cfg: dict[str, Any], steps: int = 2, timeout: float = 900) -> dict[str, Any]:
    """Peak memory above the baseline of ``steps`` training steps of ``model`` (a folder) under ``cfg``.

    ``cfg`` holds TrainConfig fields (mode, batch_size, max_length_tokens, num_negatives,
    gradient_checkpointing, lora_r, ...). Runs ``python -m minif2.planning.measure`` in a fresh process.
    """
    spec = {"cfg": {**cfg, "model": str(model)}, "steps": steps}
    env = {**os.environ, **CHILD_ENV, "DS_ACCELERATOR": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "minif2.planning.measure", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {model} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
