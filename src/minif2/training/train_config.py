"""The training knobs: ``TrainConfig``, its checks, and the ``minif2 train`` command-line flags (notebook 03).

Defaults are F2LLM's released 4B run (docs/recipe.md §1a); ``configs/<profile>/train*.yaml`` change
what differs. Every choice field is a ``Literal``, so a wrong value (``kd_mode: simlarity``) fails when
the YAML is read, naming the file and the field (``minif2.config.from_dict``), not after the model loads.
Options beyond F2LLM v1 are off by default, each naming its source:

- ``loss: single``: one softmax over positive, hard negatives and in-batch documents
  (sentence-transformers' ``MultipleNegativesRankingLoss``; the study of docs/recipe.md §3);
- ``use_mrl``: F2LLM-v2's Matryoshka losses on the first 8, 16, 32, ... dimensions (§1b);
- ``use_mll``: ML-Embed's layer Matryoshka, the losses at exit layers 1, 2, 4, 8, ... and the last (§1b);
- ``num_negatives: {clustering: 9}``: F2LLM-v2 draws 9 negatives for clustering sources (§1b);
- ``lr_schedule: constant_with_warmup``: F2LLM-v2's other ``scheduler_type`` (§1b; ``training/backends.py``);
- ``grad_cache_chunk_size``: gradient caching (``training/grad_cache.py``);
- ``sources`` and ``stages``: QZhou's two-stage schedule (§2; ``training/stages.py``);
- ``teacher_model_path``: F2LLM-v2's distillation (``training/distill.py``); ``train_layers`` (``training/prune.py``).

This module does not train (``training/trainer.py``). Taught in ``notebooks/03_contrastive_training.ipynb``
and ``notebooks/06_beyond_f2llm.ipynb``.
"""

from __future__ import annotations

import argparse
import typing
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from minif2.attention import Attention
from minif2.config import PROFILES, load_config, profile_path
from minif2.config import TRAINING_4B as PAPER
from minif2.training.losses import GatherMode, LossForm
from minif2.training.sampler import NEGATIVES_PER_STEP

__all__ = ["OPTION_FLAGS", "TrainConfig", "check_config", "parse_config"]

Mode = Literal["full", "lora", "qlora"]
Backend = Literal["single", "deepspeed"]
SamplerRule = Literal["f2llm", "batches_left", "even"]
Schedule = Literal["cosine", "constant_with_warmup"]
KDMode = Literal["auto", "embeddings", "similarity"]


@dataclass
class TrainConfig:
    """Every training knob, with F2LLM's values (docs/recipe.md §1a, the released 4B run) as defaults."""

    data_dir: str = "runs/latest/data/mined"  # unified folder with mined negatives (02's output)
    out_dir: str = "runs/latest/checkpoints"  # checkpoints, metrics.jsonl and final/ go here
    model: str = "Qwen/Qwen3-4B"  # F2LLM: Qwen3 base models 0.6B / 1.7B / 4B
    mode: Mode = "full"  # full | lora | qlora (4-bit nf4 base + LoRA: the small-GPU path)
    lora_r: int = 16  # LoRA rank (not in F2LLM, which fine-tunes fully)
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    backend: Backend = "single"  # single | deepspeed (ZeRO-2, launched by scripts/train_deepspeed.sh)
    deepspeed_config: str | None = None  # None: configs/deepspeed/zero2.json
    device: str = "auto"  # auto | cpu | cuda | cuda:N (single backend; a torch device string)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto = bf16 on GPUs that support it, else fp32 (F2LLM: bf16)
    attn_implementation: Attention | None = "auto"  # auto: flash_attention_2 (F2LLM) if usable, else sdpa
    gradient_checkpointing: bool = True  # F2LLM: on
    max_length_tokens: int = PAPER["max_length_tokens"]  # F2LLM: 1023 tokens + EOS
    pool_instruction: bool | None = None  # None: the model's own; False: mean pooling skips instructions (pooling.py)
    instruction_tasks: list[str] | None = None  # None: the model's own; e.g. [retrieval]: only those get instructions
    bidirectional: bool | None = None  # None: the model's own; True: QZhou's bidirectional attention (recipe §2)
    batch_size: int = PAPER["batch_per_gpu"]  # micro-batch per process (F2LLM: 16 x 32 GPUs = 512 global)
    grad_accum: int = 1  # micro-batches per optimiser step (F2LLM: none)
    num_epochs: int = PAPER["epochs"]  # F2LLM: 2
    max_steps: int | None = None  # cap on optimiser steps (None: num_epochs of data)
    lr: float = PAPER["lr"]  # F2LLM 4B: 8e-6
    min_lr: float = PAPER["min_lr"]  # F2LLM: the cosine schedule is floored at 1e-7
    betas: tuple[float, float] = PAPER["betas"]  # F2LLM: (0.9, 0.98)
    eps: float = 1e-8
    weight_decay: float = PAPER["weight_decay"]  # F2LLM: 0.01
    warmup_steps: int = PAPER["warmup_steps"]  # F2LLM: 500, then cosine decay
    max_grad_norm: float = PAPER["grad_clip"]  # F2LLM: clip at 1.0 (0 = no clipping)
    temperature: float = PAPER["temperature"]  # F2LLM: tau = 0.05 (sentence-transformers scale 20)
    false_negative_margin: float | None = None  # Qwen3-Embedding: mask a negative scoring > positive + margin (0.1)
    # or equal to the positive, in every softmax; None = F2LLM (no mask). metrics.jsonl logs "masked" per micro-batch
    # negatives per micro-batch, the one way to set them: one int for every family, or per family (a family
    # left out keeps F2LLM's); F2LLM: 7 of the 24 mined for retrieval and clustering, the 1 of classification;
    # F2LLM-v2: {clustering: 9} (sampler.NEGATIVES_PER_STEP_V2)
    num_negatives: int | dict[str, int] = field(default_factory=lambda: dict(NEGATIVES_PER_STEP))
    sampler_rule: SamplerRule = (
        "f2llm"  # f2llm: fixed weights (F2LLM/run.py MultiLoader) | batches_left (kit) | even (QZhou)
    )
    drop_last: bool = False  # F2LLM keeps each source's last, partial batch; True drops it (kit option)
    gather_mode: GatherMode = "autograd"  # autograd (kit) | no_grad | detached (F2LLM code), see losses.gather
    validation_fraction: float = 0.01  # F2LLM: 1 % per source, seed 0
    eval_every_steps: int = PAPER["eval_every_steps"]  # validation every N steps and at the end (0: end only)
    save_every_steps: int = PAPER["save_every_steps"]  # checkpoint every N steps (0 = never)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    log_every_steps: int = 1  # metrics.jsonl rows
    resume: bool = False  # continue from the newest checkpoint in out_dir
    resume_with_changes: bool = False  # resume despite changed settings (checkpoint.resume_point)
    seed: int = 0
    progress: bool = True  # tqdm bar
    # -- beyond F2LLM v1 (issue 15; training/train_config.py, docs/recipe.md §1b, §2, §3, §4); defaults = v1 --
    loss: LossForm = "f2llm"  # f2llm: 2 softmaxes (§1a) | single: 1 softmax, sentence-transformers' MNRL (§3)
    use_mrl: bool = False  # F2LLM-v2 use_mrl (§1b; true in v2's config.json): losses also on dims 8, 16, 32, ...
    mrl_min_dim: int = 8  # F2LLM-v2: smallest Matryoshka dimension (2**3, utils.py v2)
    use_mll: bool = False  # ML-Embed use_mll (§1b): every loss part also at exit layers 1, 2, 4, 8, ..., averaged
    lr_schedule: Schedule = "cosine"  # cosine (F2LLM) | constant_with_warmup (F2LLM-v2 scheduler_type, §1b)
    grad_cache_chunk_size: int = 0  # 0: off | n: GradCache, n texts per forward, same loss and gradients (kit, §3)
    sources: list[str] | None = None  # only these sources / families (None: all); QZhou's stage 1 (§2)
    stages: list[dict[str, Any]] | None = None  # QZhou's two stages (§2): per-stage overrides, training/stages.py
    # Options beyond F2LLM v1 (off by default): the CPU course uses them (docs/recipe.md §1b, §4; notebook 03)
    train_layers: int | None = None  # train only the top N decoder layers, the rest frozen (kit); None = all
    teacher_model_path: str | None = None  # F2LLM-v2 KD: a frozen teacher embedder; None = no distillation
    kd_weight: float = 1.0  # F2LLM-v2: 1.0; the KD term's weight
    kd_mode: KDMode = "auto"  # embeddings (v2: teacher cut to the student's width) | similarity (kit) | auto
    head_steps: int = 0  # kit (issue 23, training/head.py): after the last step, distil the teacher's cosines into a
    # Dense head on cached pooled vectors of the training texts' sentences, for this many steps; 0 = no head
    head_texts: int = 6000  # sentences the head distils (a seeded sample of the training texts' sentences)
    head_sources: list[str] | None = None  # whose texts the head distils (None: every source's)
    head_batch_size: int = 256  # sentences per head step (the cosine matrix is head_batch_size^2)
    head_lr: float = 1.0e-3  # AdamW on the head only

    def __post_init__(self) -> None:
        """Refuse settings that would do nothing: LoRA's with ``mode: full``."""
        if self.mode == "full":
            for f in fields(self):
                if f.name.startswith("lora_") and getattr(self, f.name) != f.default:
                    raise ValueError(
                        f"train config field '{f.name}' is set but mode is 'full', which trains no LoRA adapter: "
                        "remove it, or set mode: lora (or qlora)"
                    )

    @classmethod
    def upgrade_old_keys(cls, data: dict[str, Any], where: str) -> dict[str, Any]:
        """Old keys, kept for one release with a warning naming the file and the key to write instead
        (``minif2.config.from_dict`` calls this first): ``num_negatives_clustering: 9`` becomes
        ``num_negatives: {clustering: 9}`` (an int ``num_negatives`` becomes a per-family mapping).
        """
        if "num_negatives_clustering" not in data:
            return data
        data = dict(data)
        clustering = data.pop("num_negatives_clustering")
        if clustering is None:
            return data
        per_family = data.get("num_negatives", dict(NEGATIVES_PER_STEP))
        if isinstance(per_family, int) and not isinstance(per_family, bool):
            per_family = dict.fromkeys(NEGATIVES_PER_STEP, per_family)
        if isinstance(per_family, dict):
            data["num_negatives"] = {**per_family, "clustering": clustering}
        warnings.warn(
            f"{where}: 'num_negatives_clustering' is deprecated and goes in the next release; "
            f"write num_negatives: {{clustering: {clustering}}} (the one way to set negatives per family)",
            FutureWarning,
            stacklevel=3,
        )
        return data


def check_config(cfg: TrainConfig) -> None:
    """Fail early, naming the field, on values the loop would only meet later.

    A config read from YAML was checked already (``minif2.config.from_dict``); this also covers a
    ``TrainConfig(...)`` built in Python, whose Literal fields nothing else checks.
    """
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        choices = _choices(hints[f.name])
        value = getattr(cfg, f.name)
        if choices is not None and value not in choices:
            raise ValueError(f"train config field '{f.name}' must be one of {list(choices)}, got {value!r}")
    if cfg.head_steps and not cfg.teacher_model_path:
        raise ValueError("train config field 'head_steps' needs 'teacher_model_path': the head distils a teacher")
    if cfg.use_mll and cfg.grad_cache_chunk_size:
        raise ValueError("train config fields 'use_mll' and 'grad_cache_chunk_size': gradient caching embeds one width")
    if cfg.grad_cache_chunk_size and cfg.backend != "single":
        raise ValueError("train config field 'grad_cache_chunk_size' is tested with backend 'single' only")


def _choices(tp: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal`` (or ``Literal | None``) field takes, else None."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    literals = [a for a in typing.get_args(tp) if typing.get_origin(a) is Literal]
    if literals and type(None) in typing.get_args(tp):
        return (*typing.get_args(literals[0]), None)
    return None


OPTION_FLAGS = (
    "loss",
    "use_mrl",
    "use_mll",
    "bidirectional",
    "num_negatives_clustering",
    "lr_schedule",
    "grad_cache_chunk_size",
    "sources",
)


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """The TrainConfig that ``minif2 train`` arguments describe (profile or file, then overrides)."""
    parser = argparse.ArgumentParser(prog="minif2 train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML file of TrainConfig fields")
    parser.add_argument("--profile", choices=PROFILES, help="use configs/<profile>/train.yaml")
    parser.add_argument("--data-dir", help="mined unified folder (default: the config's data_dir)")
    parser.add_argument("--out-dir", help="where checkpoints, metrics.jsonl and final/ go")
    parser.add_argument("--model", help="base model: asset name, folder or hub id")
    parser.add_argument("--mode", choices=typing.get_args(Mode))
    parser.add_argument("--backend", choices=typing.get_args(Backend))
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", action="store_true", default=None, help="continue from the newest checkpoint")
    parser.add_argument(
        "--resume-with-changes", action="store_true", default=None, help="resume even if settings differ"
    )
    parser.add_argument(
        "--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS
    )  # set by the deepspeed launcher
    _add_option_arguments(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="check the profile on a random model of the real shape"
    )  # handled by minif2.planning.dryrun.train_cli, which `minif2 train` runs
    args = parser.parse_args(argv)
    path = args.config or (profile_path(args.profile, "train") if args.profile else None)
    return load_config(
        TrainConfig,
        path,
        data_dir=args.data_dir,
        out_dir=args.out_dir,
        model=args.model,
        mode=args.mode,
        backend=args.backend,
        max_steps=args.max_steps,
        seed=args.seed,
        resume=args.resume,
        resume_with_changes=args.resume_with_changes,
        **{name: getattr(args, name) for name in OPTION_FLAGS},
    )


def _add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """The options beyond F2LLM v1, each with its source (docs/recipe.md §1b, §2, §3); defaults = v1."""
    group = parser.add_argument_group(
        "beyond F2LLM v1 (defaults: v1; two-stage training is the config field 'stages', docs/recipe.md §2)"
    )
    group.add_argument(
        "--loss",
        choices=typing.get_args(LossForm),
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
        "--use-mll",
        action="store_true",
        default=None,
        help="layer Matryoshka: every loss part also at exit layers 1, 2, 4, 8, ... (and the last), averaged; "
        "cut the model later with `minif2 prune --num-layers k` (ML-Embed use_mll, model.py, §1b)",
    )
    group.add_argument(
        "--bidirectional",
        action="store_true",
        default=None,
        help="bidirectional attention: every token attends to every real token, as in an encoder (QZhou, §2); "
        "the saved folder loads bidirectional through minif2.Embedder only",
    )
    group.add_argument(
        "--num-negatives-clustering",
        type=int,
        help="negatives per step for clustering sources (F2LLM-v2 num_hard_neg_clustering = 9, §1b); "
        "deprecated: write num_negatives: {clustering: 9} in the config",
    )
    group.add_argument(
        "--lr-schedule",
        choices=typing.get_args(Schedule),
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
