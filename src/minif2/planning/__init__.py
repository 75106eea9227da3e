"""Planning a training run before renting a GPU: model shapes, memory per GPU, a CPU dry run (notebook 03).

``minif2 plan`` and ``minif2 train --dry-run`` are this package's commands; it reads the training
stage (``minif2.training``) and the training stage never reads it. Modules:

- ``shapes``: The real Qwen3 architectures, offline: random models of the exact shapes (issue 16).
- ``memory``: How much memory a training profile needs per GPU, from the model's config.
- ``measure``: Measure the peak memory of a few training steps in a fresh process (checks ``memory``).
- ``dryrun``: Dry-run a training profile on the CPU with the real model shape; the ``plan`` command.

It does not train (``training/trainer.py``); taught in ``notebooks/03_contrastive_training.ipynb``.
"""

from __future__ import annotations

from minif2.planning.dryrun import dry_run, plan_cli, train_cli
from minif2.planning.measure import measure_peak, peak_rss_bytes, reset_peak_rss, rss_bytes
from minif2.planning.memory import (
    GIB,
    MemoryPlan,
    ModelShape,
    PlanInputs,
    plan,
    plan_for_config,
    plan_table,
    print_table,
    step_flops,
)
from minif2.planning.shapes import MODEL_SHAPES, build_shape, shape_config, shape_for_model

__all__ = [
    "GIB",
    "MODEL_SHAPES",
    "MemoryPlan",
    "ModelShape",
    "PlanInputs",
    "build_shape",
    "dry_run",
    "measure_peak",
    "peak_rss_bytes",
    "plan",
    "plan_cli",
    "plan_for_config",
    "plan_table",
    "print_table",
    "reset_peak_rss",
    "rss_bytes",
    "shape_config",
    "shape_for_model",
    "step_flops",
    "train_cli",
]
