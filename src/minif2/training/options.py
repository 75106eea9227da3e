"""The trainer's options beyond F2LLM v1 (issue 15): loss form, Matryoshka, v2's negatives, their CLI flags.

Every default is F2LLM v1's behaviour (docs/recipe.md §1a); each option names its source:

- ``loss: single``: one softmax over positive, hard negatives and in-batch documents
  (sentence-transformers' ``MultipleNegativesRankingLoss``; the study of docs/recipe.md §3);
- ``use_mrl``: F2LLM-v2's Matryoshka losses on the first 8, 16, 32, ... dimensions (§1b);
- ``num_negatives_clustering``: F2LLM-v2 draws 9 negatives for clustering sources (§1b);
- ``lr_schedule: constant_with_warmup``: F2LLM-v2's other ``scheduler_type`` (§1b; ``training/backends.py``);
- ``grad_cache_chunk_size``: gradient caching (``training/grad_cache.py``);
- ``sources`` and ``stages``: QZhou's two-stage schedule (§2; ``training/stages.py``).

The fields themselves live in ``TrainConfig`` (``training/trainer.py``). Taught in
``notebooks/06_beyond_f2llm.ipynb``.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from minif2.training.losses import matryoshka_dims, training_loss
from minif2.training.sampler import negatives_per_step as sampler_negatives_per_step

__all__ = ["OPTION_FLAGS", "add_options_arguments", "check_options", "config_loss", "negatives_per_step"]


def negatives_per_step(cfg: Any, family: str) -> int:
    """Negatives drawn per step: ``num_negatives`` (one number, or per family: ``sampler.negatives_per_step``),
    with F2LLM-v2's ``num_negatives_clustering`` (its ``num_hard_neg_clustering``, docs/recipe.md §1b) on top."""
    if family == "clustering" and cfg.num_negatives_clustering is not None:
        return cfg.num_negatives_clustering
    return sampler_negatives_per_step(cfg.num_negatives, family)


def config_loss(cfg: Any, q: torch.Tensor, p: torch.Tensor, n: torch.Tensor, family: str) -> dict[str, torch.Tensor]:
    """``losses.training_loss`` with the config's form, temperature, gather and Matryoshka dimensions."""
    dims = matryoshka_dims(q.shape[-1], cfg.mrl_min_dim) if cfg.use_mrl else None
    return training_loss(q, p, n, family, cfg.temperature, cfg.gather_mode, cfg.loss, dims)  # type: ignore[arg-type]


def check_options(cfg: Any) -> None:
    """Fail early on option values the loop would only meet later."""
    if cfg.loss not in ("f2llm", "single"):
        raise ValueError(f"train config field 'loss' must be 'f2llm' or 'single', got {cfg.loss!r}")
    if cfg.lr_schedule not in ("cosine", "constant_with_warmup"):
        raise ValueError(
            f"train config field 'lr_schedule' must be 'cosine' or 'constant_with_warmup', got {cfg.lr_schedule!r}"
        )
    if cfg.grad_cache_chunk_size and cfg.backend != "single":
        raise ValueError("train config field 'grad_cache_chunk_size' is tested with backend 'single' only")


OPTION_FLAGS = ("loss", "use_mrl", "num_negatives_clustering", "lr_schedule", "grad_cache_chunk_size", "sources")


def add_options_arguments(parser: argparse.ArgumentParser) -> None:
    """The options beyond F2LLM v1, each with its source (docs/recipe.md §1b, §2, §3); defaults = v1."""
    group = parser.add_argument_group(
        "beyond F2LLM v1 (defaults: v1; two-stage training is the config field 'stages', docs/recipe.md §2)"
    )
    group.add_argument(
        "--loss",
        choices=["f2llm", "single"],
        help="f2llm: two separate softmaxes (F2LLM utils.py, §1a); single: one softmax over positive, hard "
        "negatives and in-batch documents (sentence-transformers MultipleNegativesRankingLoss, §3)",
    )
    group.add_argument(
        "--use-mrl",
        action="store_true",
        default=None,
        help="Matryoshka: losses also on the first 8, 16, 32, ... dims, weighted 1/(n*sqrt(d/dim)) "
        "(F2LLM-v2 use_mrl, utils.py, §1b)",
    )
    group.add_argument(
        "--num-negatives-clustering",
        type=int,
        help="negatives per step for clustering sources (F2LLM-v2 num_hard_neg_clustering = 9, §1b)",
    )
    group.add_argument(
        "--lr-schedule",
        choices=["cosine", "constant_with_warmup"],
        help="after the warm-up: cosine decay (F2LLM) or constant (F2LLM-v2 scheduler_type option, §1b)",
    )
    group.add_argument(
        "--grad-cache-chunk-size",
        type=int,
        help="gradient caching: embed N texts at a time, same loss and gradients, less memory "
        "(GradCache, arXiv 2101.06983; sentence-transformers CachedMultipleNegativesRankingLoss, §3)",
    )
    group.add_argument(
        "--sources",
        nargs="+",
        help="train on these sources or families (retrieval, classification, clustering) only (QZhou stage 1, §2)",
    )
