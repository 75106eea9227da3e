"""Step 03: contrastive fine-tuning, F2LLM's two losses and one-source micro-batches.

Modules, in the order the step runs:

- ``losses``: F2LLM's two contrastive losses, as pure functions of embeddings (docs/recipe.md §1, §1a; notebook 03).
- ``sampler``: F2LLM's multi-task batch sampler: every micro-batch from ONE source (docs/recipe.md §1a).
- ``checkpoint``: Atomic, resumable training checkpoints and the metrics log.
- ``backends``: Where a training step runs: one process (CPU/GPU; full FT, LoRA, QLoRA) or DeepSpeed ZeRO-2.
- ``grad_cache``: Gradient caching: a large contrastive batch on small memory, with the SAME loss and gradients.
- ``options``: The trainer's options beyond F2LLM v1 (issue 15): loss form, Matryoshka, v2's negatives, their CLI flags.
- ``stages``: Multi-stage training (QZhou's schedule, docs/recipe.md §2) and source selection for one run.
- ``trainer``: F2LLM's one-stage contrastive fine-tuning: the training loop (docs/recipe.md §1, §1a; notebook 03).
- ``shapes``: The real Qwen3 architectures, offline: random models of the exact shapes (issue 16).
- ``memory``: How much memory a training profile needs per GPU, from the model's config (``minif2 plan``; issue 16).
- ``measure``: Measure the peak memory of a few training steps in a fresh process (checks ``training/memory.py``).
- ``dryrun``: Dry-run a training profile on the CPU with the real model shape, and plan its GPU memory (issue 16).
- ``distill``: Knowledge distillation from a frozen teacher embedder (F2LLM-v2, docs/recipe.md §1b; notebook 03).
- ``merge``: Checkpoint merging: average, slerp, or a mix with the base (``minif2 merge``; F2LLM-v2, LM-Cocktail).
- ``prune``: Depth pruning: keep a chosen subset of a decoder's layers, saved as an ordinary model folder (notebook 03).

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
from minif2.training.distill import Teacher, distillation_loss, kd_loss, similarity_distillation_loss
from minif2.training.dryrun import dry_run, plan_cli, train_cli
from minif2.training.grad_cache import SavedTensorMeter, cached_embed
from minif2.training.losses import (
    GatherMode,
    LossForm,
    f2llm_loss,
    gather,
    hard_negative_loss,
    in_batch_loss,
    matryoshka_dims,
    single_softmax_loss,
    training_loss,
)
from minif2.training.measure import measure_peak, peak_rss_bytes, reset_peak_rss, rss_bytes
from minif2.training.memory import (
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
from minif2.training.merge import MergeConfig
from minif2.training.options import OPTION_FLAGS, add_options_arguments, check_options, config_loss
from minif2.training.prune import PruneConfig, decoder_layers, prune_layers, train_top_layers
from minif2.training.sampler import (
    NEGATIVES_PER_STEP,
    NEGATIVES_PER_STEP_V2,
    SAMPLER_RULES,
    MicroBatch,
    SourceBatchSampler,
    TrainingData,
    load_training_data,
    negatives_for_step,
    negatives_per_step,
)
from minif2.training.shapes import SHAPES, build_shape, shape_config, shape_for_model
from minif2.training.stages import FAMILIES, plan_stages, select_sources
from minif2.training.trainer import TrainConfig, cli, main, micro_step, parse_config, train, validation_losses

__all__ = [
    "DeepSpeedBackend",
    "FAMILIES",
    "GIB",
    "GatherMode",
    "LossForm",
    "MemoryPlan",
    "MergeConfig",
    "MetricsLog",
    "MicroBatch",
    "ModelShape",
    "NEGATIVES_PER_STEP",
    "NEGATIVES_PER_STEP_V2",
    "OPTION_FLAGS",
    "PlanInputs",
    "PruneConfig",
    "SAMPLER_RULES",
    "SHAPES",
    "SavedTensorMeter",
    "SingleBackend",
    "SourceBatchSampler",
    "Teacher",
    "TrainConfig",
    "TrainingData",
    "add_options_arguments",
    "build_embedder",
    "build_optimizer",
    "build_shape",
    "cached_embed",
    "capture_rng",
    "check_options",
    "checkpoint_dir",
    "cli",
    "config_loss",
    "decoder_layers",
    "distillation_loss",
    "dry_run",
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
    "measure_peak",
    "micro_step",
    "negatives_for_step",
    "negatives_per_step",
    "parse_config",
    "peak_rss_bytes",
    "plan",
    "plan_cli",
    "plan_for_config",
    "plan_stages",
    "plan_table",
    "plot_loss_curve",
    "print_table",
    "prune_layers",
    "read_metrics",
    "reset_peak_rss",
    "restore_rng",
    "rss_bytes",
    "select_sources",
    "shape_config",
    "shape_for_model",
    "similarity_distillation_loss",
    "single_softmax_loss",
    "step_flops",
    "train",
    "train_cli",
    "train_top_layers",
    "training_loss",
    "validation_losses",
    "write_checkpoint",
]
