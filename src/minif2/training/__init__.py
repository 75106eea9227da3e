"""Step 03: contrastive fine-tuning, F2LLM's two losses and one-source micro-batches.

Modules, in the order the step runs:

- ``losses``: F2LLM's two contrastive losses, as pure functions of embeddings (docs/recipe.md §1, §1a; notebook 03).
- ``sampler``: F2LLM's multi-task batch sampler: every micro-batch from ONE source (docs/recipe.md §1a).
- ``checkpoint``: Atomic, resumable training checkpoints.
- ``backends``: Where a training step runs: one process (CPU/GPU; full FT, LoRA, QLoRA) or DeepSpeed ZeRO-2.
- ``prune``: Depth pruning: keep a chosen subset of a decoder's layers, saved as an ordinary model folder (notebook 03).
- ``distill``: Knowledge distillation from a frozen teacher embedder (F2LLM-v2, docs/recipe.md §1b; notebook 03).
- ``trainer``: F2LLM's one-stage contrastive fine-tuning: the training loop (docs/recipe.md §1, §1a; notebook 03).

Everything a notebook needs is importable from here (``from minif2.training import ...``);
taught in ``notebooks/03_contrastive_training.ipynb``.
"""

from __future__ import annotations

from minif2.training.backends import DeepSpeedBackend, SingleBackend, build_embedder, build_optimizer, make_backend
from minif2.training.checkpoint import (
    MetricsLog,
    capture_rng,
    checkpoint_dir,
    latest_checkpoint,
    load_state,
    plot_loss_curve,
    read_metrics,
    restore_rng,
    write_checkpoint,
)
from minif2.training.distill import Teacher, kd_loss
from minif2.training.losses import (
    GatherMode,
    distillation_loss,
    f2llm_loss,
    gather,
    hard_negative_loss,
    in_batch_loss,
    matryoshka_dims,
    similarity_distillation_loss,
)
from minif2.training.prune import PruneConfig, decoder_layers, prune_layers, train_top_layers
from minif2.training.sampler import MicroBatch, SourceBatchSampler, TrainingData, load_training_data, negatives_for_step
from minif2.training.trainer import TrainConfig, cli, main, micro_step, train, validation_losses

__all__ = [
    "DeepSpeedBackend",
    "GatherMode",
    "MetricsLog",
    "MicroBatch",
    "PruneConfig",
    "SingleBackend",
    "SourceBatchSampler",
    "Teacher",
    "TrainConfig",
    "TrainingData",
    "build_embedder",
    "build_optimizer",
    "capture_rng",
    "checkpoint_dir",
    "cli",
    "decoder_layers",
    "distillation_loss",
    "f2llm_loss",
    "gather",
    "hard_negative_loss",
    "in_batch_loss",
    "kd_loss",
    "latest_checkpoint",
    "load_state",
    "load_training_data",
    "main",
    "make_backend",
    "matryoshka_dims",
    "micro_step",
    "negatives_for_step",
    "plot_loss_curve",
    "prune_layers",
    "read_metrics",
    "restore_rng",
    "similarity_distillation_loss",
    "train",
    "train_top_layers",
    "validation_losses",
    "write_checkpoint",
]
