"""Depth pruning: keep a chosen subset of a decoder's layers, saved as an ordinary model folder (notebook 03).

F2LLM-v2 (arXiv 2603.19223, docs/recipe.md §1b) builds its smallest embedders (80M-330M) by
PRUNING a larger LLM and then training it with distillation. This module does the simplest
form, depth pruning: the decoder keeps the layers you name (by default the first N), in
their order, with their weights untouched; the embeddings and the final norm stay. Why the
FIRST layers: lower layers of an LLM carry general lexical and syntactic features; the top
ones specialise in next-token prediction, which an embedder does not need, and every layer
dropped makes a CPU step proportionally cheaper (the tiny course keeps 4 of SmolLM2's 30).

The layer surgery (:func:`~minif2.assets.prune_layers`) lives with the offline assets, which ship
the course's pruned base as ``smollm2-4l``; this module is the command. The result is written
by :meth:`minif2.model.Embedder.save`: a folder that ``transformers.AutoModel``,
``sentence_transformers.SentenceTransformer`` and :class:`~minif2.model.Embedder` all load, with
the pooling you choose recorded in it.
This module does not train; ``training/trainer.py`` does.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from minif2.assets import decoder_layers, prune_layers
from minif2.config import load_config
from minif2.model import Embedder
from minif2.pooling import Pooling
from minif2.training.losses import mll_exit_layers

__all__ = ["PruneConfig", "decoder_layers", "prune_layers", "train_top_layers"]  # + cli, main (`minif2 prune`)


@dataclass
class PruneConfig:
    """What to keep and where to write it (``minif2 prune``)."""

    model: str = "smollm2-135m"  # asset name, folder or hub id of the decoder to prune
    out_dir: str = "runs/latest/models/pruned"  # the pruned model folder
    keep_layers: list[int] | None = None  # layer indices to keep, in order; None = the first num_layers
    num_layers: int = 4  # used when keep_layers is None (the tiny course: 4 of SmolLM2's 30)
    pooling: Pooling | None = "mean"  # recorded in the folder; mean pooling suits a shallow decoder (QZhou, §2)
    max_length_tokens: int | None = None  # recorded in the folder; None = the Embedder's default


def train_top_layers(backbone: nn.Module, n: int) -> nn.Module:
    """Freeze everything but the top ``n`` decoder blocks and the final norm (``TrainConfig.train_layers``).

    The CPU course's lever: the frozen embeddings and lower blocks need no gradients and no AdamW
    state, so a step costs a forward through them and a backward through the top ``n`` only.

    Example:
        >>> from transformers import LlamaConfig, LlamaModel
        >>> m = LlamaModel(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=4,
        ...                            num_attention_heads=2, num_key_value_heads=2, vocab_size=50))
        >>> _ = train_top_layers(m, 1)
        >>> [any(p.requires_grad for p in block.parameters()) for block in m.layers]
        [False, False, False, True]
    """
    layers = decoder_layers(backbone)
    if not 0 <= n <= len(layers):
        raise ValueError(f"train_layers must be in 0..{len(layers)}, got {n}")
    backbone.requires_grad_(False)
    for block in list(layers)[len(layers) - n :]:
        block.requires_grad_(True)
    base = getattr(backbone, "model", backbone)
    norm = getattr(base, "norm", None)
    if isinstance(norm, nn.Module):
        norm.requires_grad_(True)
    return backbone


def main(cfg: PruneConfig) -> Path:
    """Load ``cfg.model`` as an Embedder, keep the chosen layers, save it to ``cfg.out_dir``.

    A model trained with ``use_mll`` (ML-Embed) is cut at one of its exit layers without retraining: its
    first k layers and the final norm are the exit it trained at k (``tests/test_prune_distill.py``).
    """
    overrides: dict[str, Any] = {"pooling": cfg.pooling, "max_length_tokens": cfg.max_length_tokens}
    embedder = Embedder.from_pretrained(cfg.model, **overrides)
    keep = cfg.keep_layers if cfg.keep_layers is not None else list(range(cfg.num_layers))
    _warn_off_exit(Path(cfg.model), len(decoder_layers(embedder.backbone)), keep)
    prune_layers(embedder.backbone, keep)
    return embedder.save(cfg.out_dir)


def _warn_off_exit(folder: Path, total: int, keep: list[int]) -> None:
    """For a ``use_mll`` model (its ``train.yaml`` says so): warn when the cut is not one of its exits."""
    record = folder / "train.yaml"
    if not record.is_file() or not (yaml.safe_load(record.read_text()) or {}).get("use_mll"):
        return
    exits = mll_exit_layers(total)
    if keep != list(range(len(keep))) or len(keep) not in exits:
        warnings.warn(
            f"{folder} was trained with use_mll at exit layers {sorted(exits)}; keeping layers {keep} is not one "
            "of them (keep the first k for an exit k), so the cut model was never trained as it is",
            stacklevel=3,
        )


def cli(argv: list[str] | None = None) -> int:
    """``minif2 prune --model smollm2-135m --num-layers 4 --out-dir runs/latest/models/smollm2-4l``."""
    parser = argparse.ArgumentParser(prog="minif2 prune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML file of PruneConfig fields")
    parser.add_argument("--model", help="decoder to prune: asset name, folder or hub id")
    parser.add_argument("--out-dir", help="where the pruned model folder goes")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--keep-layers", help="comma-separated layer indices to keep, e.g. 0,1,2,3")
    group.add_argument("--num-layers", type=int, help="keep the first N layers")
    parser.add_argument("--pooling", choices=["mean", "last"], help="pooling recorded in the folder (default mean)")
    parser.add_argument("--max-length-tokens", type=int)
    args = parser.parse_args(argv)
    keep = [int(i) for i in args.keep_layers.split(",")] if args.keep_layers else None
    cfg = load_config(
        PruneConfig,
        args.config,
        model=args.model,
        out_dir=args.out_dir,
        keep_layers=keep,
        num_layers=args.num_layers,
        pooling=args.pooling,
        max_length_tokens=args.max_length_tokens,
    )
    print(f"pruned model: {main(cfg)}")
    return 0
