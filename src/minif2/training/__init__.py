"""Step 03: contrastive fine-tuning, F2LLM's two losses and one-source micro-batches.

Modules, in the order the step runs:

- ``losses``: F2LLM's two contrastive losses, as pure functions of embeddings and as loss objects
  (``F2LLMLoss``, ``SingleSoftmaxLoss``, ``Matryoshka``; docs/recipe.md §1, §1a, §1b; notebook 03).
- ``sampler``: F2LLM's multi-task batch sampler (every micro-batch from ONE source), the negatives
  drawn per step, and the mined data split 99/1 (docs/recipe.md §1a).
- ``train_config``: ``TrainConfig``, every knob with F2LLM's value, and the ``minif2 train`` flags.
- ``trainer``: the training loop, readable top to bottom (docs/recipe.md §1, §1a; notebook 03).
- ``checkpoint``: Atomic, verified, resumable checkpoints; the metrics log and its plot.
- ``backends``: Where a step runs: one process (CPU/GPU; full FT, LoRA, QLoRA) or DeepSpeed ZeRO-2; seeding.
- ``grad_cache``: Gradient caching: a large contrastive batch on small memory, with the SAME loss and gradients.
- ``stages``: Multi-stage training (QZhou's schedule, docs/recipe.md §2) and source selection for one run.
- ``distill``: Knowledge distillation from a frozen teacher embedder (F2LLM-v2, docs/recipe.md §1b; notebook 03).
- ``merge``: Checkpoint merging: average, slerp, or a mix with the base (``minif2 merge``; F2LLM-v2, LM-Cocktail).
- ``prune``: Depth pruning: keep a chosen subset of a decoder's layers, saved as an ordinary model folder.

Planning a run (model shapes, memory per GPU, ``--dry-run``) is ``minif2.planning``. The recipe's
names are importable from here (``from minif2.training import ...``); the rest from their modules.
Taught in ``notebooks/03_contrastive_training.ipynb`` and ``notebooks/06_beyond_f2llm.ipynb``.
"""

from __future__ import annotations

from minif2.training.checkpoint import plot_loss_curve, read_metrics
from minif2.training.distill import Distillation, Teacher
from minif2.training.grad_cache import SavedTensorMeter, cached_embed
from minif2.training.losses import (
    F2LLMLoss,
    LayerMatryoshka,
    Matryoshka,
    SingleSoftmaxLoss,
    f2llm_loss,
    hard_negative_loss,
    in_batch_loss,
    matryoshka_dims,
    mll_exit_layers,
    single_softmax_loss,
)
from minif2.training.merge import MergeConfig
from minif2.training.prune import PruneConfig
from minif2.training.prune import main as prune_model
from minif2.training.sampler import SourceBatchSampler, load_training_data, negatives_for_step
from minif2.training.trainer import TrainConfig, build_loss, cli, train, validation_losses

main = train  # every stage package's `main(cfg)` (the house rules); the function is `train`

__all__ = [
    "Distillation",
    "F2LLMLoss",
    "LayerMatryoshka",
    "Matryoshka",
    "MergeConfig",
    "PruneConfig",
    "SavedTensorMeter",
    "SingleSoftmaxLoss",
    "SourceBatchSampler",
    "Teacher",
    "TrainConfig",
    "build_loss",
    "cached_embed",
    "cli",
    "f2llm_loss",
    "hard_negative_loss",
    "in_batch_loss",
    "load_training_data",
    "main",
    "matryoshka_dims",
    "mll_exit_layers",
    "negatives_for_step",
    "plot_loss_curve",
    "prune_model",
    "read_metrics",
    "single_softmax_loss",
    "train",
    "validation_losses",
]
