"""F2LLM's one-stage contrastive fine-tuning: the training loop (docs/recipe.md §1, §1a; notebook 03).

Reads in the order the loop runs: load the mined data and split it 99/1 per source;
build the Embedder (full, LoRA or QLoRA) and the backend (one process or DeepSpeed
ZeRO-2); then, per micro-batch, the sampler picks ONE source and its rows, the step's
k negatives are drawn, queries and documents are embedded, ``losses.f2llm_loss`` gives
hard + in-batch (retrieval only), and the backend accumulates, clips and steps AdamW with
warm-up + cosine decay. Every ``eval_every_steps`` it logs both validation losses per
source; every ``save_every_steps`` it writes an atomic checkpoint; ``resume=True``
continues from the newest one with nothing lost or repeated. The result is
``<out_dir>/final``: a minif2 Embedder folder that transformers and sentence-transformers load.

Defaults are F2LLM's released 4B run (docs/recipe.md §1a); ``configs/<profile>/train*.yaml`` change
what differs. Options beyond v1 (one softmax, Matryoshka, gradient caching, v2's negatives and
schedule: ``training/options.py``; QZhou's two stages: ``training/stages.py``) are off by default.
This module does not mine negatives or score MTEB (``mining/mine.py``,
``evaluation/evaluate.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from minif2.config import PROFILES, config_to_dict, load_config, profile_path, save_config
from minif2.config import TRAINING_4B as PAPER
from minif2.model import Embedder
from minif2.training import checkpoint as ckpt
from minif2.training.backends import build_embedder, launcher_world, make_backend, seed_everything
from minif2.training.checkpoint import MetricsLog
from minif2.training.distill import Teacher, kd_loss
from minif2.training.grad_cache import cached_embed
from minif2.training.losses import hard_negative_loss, in_batch_loss
from minif2.training.options import OPTION_FLAGS, add_options_arguments, check_options, config_loss, negatives_per_step
from minif2.training.sampler import (
    NEGATIVES_PER_STEP,
    MicroBatch,
    SourceBatchSampler,
    TrainingData,
    load_training_data,
    negatives_for_step,
)
from minif2.training.stages import plan_stages, select_sources

__all__ = ["TrainConfig", "cli", "main", "micro_step", "parse_config", "train", "validation_losses"]

Callback = Callable[[int, Embedder, dict[str, Any]], None]


@dataclass
class TrainConfig:
    """Every training knob, with F2LLM's values (docs/recipe.md §1a, the released 4B run) as defaults."""

    data_dir: str = "runs/latest/data/mined"  # unified folder with mined negatives (02's output)
    out_dir: str = "runs/latest/checkpoints"  # checkpoints, metrics.jsonl and final/ go here
    model: str = "Qwen/Qwen3-4B"  # F2LLM: Qwen3 base models 0.6B / 1.7B / 4B
    mode: str = "full"  # full | lora | qlora (4-bit nf4 base + LoRA: the small-GPU path)
    lora_r: int = 16  # LoRA rank (not in F2LLM, which fine-tunes fully)
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    backend: str = "single"  # single | deepspeed (ZeRO-2, launched by scripts/train_deepspeed.sh)
    deepspeed_config: str | None = None  # None: configs/deepspeed/zero2.json
    device: str = "auto"  # auto | cpu | cuda (single backend)
    precision: str = "auto"  # auto = bf16 on GPUs that support it, else fp32 (F2LLM: bf16)
    attn_implementation: str | None = "auto"  # auto: flash_attention_2 (F2LLM) when usable, else sdpa | sdpa | eager
    gradient_checkpointing: bool = True  # F2LLM: on
    max_length_tokens: int = PAPER["max_length_tokens"]  # F2LLM: 1023 tokens + EOS
    pool_instruction: bool | None = None  # None: the model's own; False: mean pooling skips instructions (pooling.py)
    instruction_tasks: list[str] | None = None  # None: the model's own; e.g. [retrieval]: only those get instructions
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
    # negatives per micro-batch: one int for every family, or per family; F2LLM: 7 of the 24 mined for
    # retrieval and clustering, the 1 of classification (F2LLM-v2: clustering 9, sampler.NEGATIVES_PER_STEP_V2)
    num_negatives: int | dict[str, int] = field(default_factory=lambda: dict(NEGATIVES_PER_STEP))
    sampler_rule: str = "f2llm"  # f2llm: fixed weights (F2LLM/run.py MultiLoader) | batches_left (kit option)
    drop_last: bool = False  # F2LLM keeps each source's last, partial batch; True drops it (kit option)
    gather_mode: str = "autograd"  # autograd (kit) | no_grad | detached (F2LLM code), see losses.gather
    validation_fraction: float = 0.01  # F2LLM: 1 % per source, seed 0
    eval_every_steps: int = PAPER["eval_every_steps"]  # validation every N steps and at the end (0: end only)
    save_every_steps: int = PAPER["save_every_steps"]  # checkpoint every N steps (0 = never)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    log_every_steps: int = 1  # metrics.jsonl rows
    resume: bool = False  # continue from the newest checkpoint in out_dir
    resume_with_changes: bool = False  # resume despite changed settings (checkpoint.resume_point)
    seed: int = 0
    progress: bool = True  # tqdm bar
    # -- beyond F2LLM v1 (issue 15; training/options.py, docs/recipe.md §1b, §2, §3, §4); defaults = v1 --
    loss: str = "f2llm"  # f2llm: 2 softmaxes (§1a) | single: 1 softmax, sentence-transformers' MNRL (§3)
    use_mrl: bool = False  # F2LLM-v2 use_mrl (§1b; true in v2's config.json): losses also on dims 8, 16, 32, ...
    mrl_min_dim: int = 8  # F2LLM-v2: smallest Matryoshka dimension (2**3, utils.py v2)
    num_negatives_clustering: int | None = None  # None: num_negatives (v1); F2LLM-v2: 9 (num_hard_neg_clustering)
    lr_schedule: str = "cosine"  # cosine (F2LLM) | constant_with_warmup (F2LLM-v2 scheduler_type option, §1b)
    grad_cache_chunk_size: int = 0  # 0: off | n: GradCache, n texts per forward, same loss and gradients (kit, §3)
    sources: list[str] | None = None  # only these sources / families (None: all); QZhou's stage 1 (§2)
    stages: list[dict[str, Any]] | None = None  # QZhou's two stages (§2): per-stage overrides, training/stages.py
    # Options beyond F2LLM v1 (off by default): the CPU course uses them (docs/recipe.md §1b, §4; notebook 03)
    train_layers: int | None = None  # train only the top N decoder layers, the rest frozen (kit); None = all
    teacher_model_path: str | None = None  # F2LLM-v2 KD: a frozen teacher embedder; None = no distillation
    kd_weight: float = 1.0  # F2LLM-v2: 1.0; the KD term's weight
    kd_mode: str = "auto"  # embeddings (v2: teacher cut to the student's width) | similarity (kit) | auto


def _formatting(embedder: Embedder) -> tuple[str, list[str] | None]:
    return embedder.config.query_template, embedder.config.instruction_tasks


def _embed_batch(
    backend: Any, embedder: Embedder, batch: MicroBatch, chunk_size: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Embed queries and [positives; negatives] of one micro-batch -> q (b,d), p (b,d), n (b,k,d), tokens.

    ``chunk_size > 0``: gradient caching (``training/grad_cache.py``), same values and gradients.
    """
    q_tok = embedder.tokenize(batch.queries)
    d_tok = embedder.tokenize(batch.positives + batch.negatives)
    q = cached_embed(backend.forward, q_tok["input_ids"], q_tok["attention_mask"], chunk_size)  # (b, d)
    docs = cached_embed(backend.forward, d_tok["input_ids"], d_tok["attention_mask"], chunk_size)  # (b + b*k, d)
    b = len(batch.queries)
    tokens = int((q_tok["attention_mask"] > 0).sum() + (d_tok["attention_mask"] > 0).sum())
    return q, docs[:b], docs[b:].reshape(b, batch.k, docs.shape[-1]), tokens  # k may be 0 (unmined data)


def micro_step(
    backend: Any,
    embedder: Embedder,
    data: TrainingData,
    cfg: TrainConfig,
    source: str,
    indices: list[int],
    micro: int,
    boundary: bool,
    teacher: Teacher | None = None,
) -> tuple[dict[str, float], int, float | None]:
    """One micro-batch: draw the step's negatives, embed, F2LLM loss, backward (and step at a boundary).

    The negatives are drawn from the seed ``f"{seed}-{micro}"``: the same on every rank, and
    the same after a resume. With a ``teacher``, ``kd_weight`` times the distillation term
    (``distill.kd_loss``) joins the loss as ``"kd"``. Returns the loss parts, the tokens processed and the grad norm.
    """
    k = min(negatives_per_step(cfg, data.family[source]), data.negatives_available[source])
    negative_ids = negatives_for_step(f"{cfg.seed}-{micro}", data.negatives_available[source], k)
    batch = data.batch(source, indices, negative_ids, "train", *_formatting(embedder))
    q, p, n, tokens = _embed_batch(backend, embedder, batch, cfg.grad_cache_chunk_size)
    losses = config_loss(cfg, q, p, n, batch.family)
    if teacher is not None:
        negatives = teacher.embed(batch.negatives).reshape(n.shape[0], n.shape[1], teacher.dim)
        targets = (teacher.embed(batch.queries), teacher.embed(batch.positives), negatives)
        losses["kd"] = kd_loss((q, p, n), targets, cfg.kd_mode)
        losses["loss"] = losses["loss"] + cfg.kd_weight * losses["kd"]
    grad_norm = backend.backward(losses["loss"], boundary)
    return {name: float(value.detach()) for name, value in losses.items()}, tokens, grad_norm


# -- beyond F2LLM v1 (issue 15): two stages (training/stages.py); the other options are in training/options.py --


def _train_stages(cfg: TrainConfig, callbacks: Sequence[Callback]) -> Path:
    """Run ``cfg.stages`` in order (``training/stages.py``); a finished stage is skipped on resume."""
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "train.yaml")
    final = out_dir / "final"
    for folder, stage_cfg in plan_stages(cfg):
        if not (cfg.resume and (folder / "final").is_dir()):
            final = train(stage_cfg, callbacks)
        else:
            final = folder / "final"
    if launcher_world()[0] == 0:
        tmp = out_dir / ".tmp-final"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(final, tmp)
        shutil.rmtree(out_dir / "final", ignore_errors=True)
        os.replace(tmp, out_dir / "final")
    return out_dir / "final"


@torch.no_grad()
def validation_losses(embedder: Embedder, data: TrainingData, cfg: TrainConfig) -> dict[str, dict[str, float]]:
    """Both losses per source on the validation split (docs/recipe.md §1a), on this process only.

    Batches of ``cfg.batch_size`` in split order; every row uses its first k negatives, so the
    figure is comparable across evaluations. The in-batch loss sees this batch only.
    """
    was_training = embedder.training
    embedder.eval()
    out: dict[str, dict[str, float]] = {}
    for source, rows in data.validation.items():
        k = min(negatives_per_step(cfg, data.family[source]), data.negatives_available[source])
        sums: dict[str, float] = {}
        for start in range(0, len(rows), cfg.batch_size):
            idx = list(range(start, min(start + cfg.batch_size, len(rows))))
            batch = data.batch(source, idx, list(range(k)), "validation", *_formatting(embedder))
            q = embedder.embed(batch.queries)
            docs = embedder.embed(batch.positives + batch.negatives)
            p, n = docs[: len(idx)], docs[len(idx) :].reshape(len(idx), k, docs.shape[-1])
            parts = {"hard": hard_negative_loss(q, p, n, cfg.temperature)}
            if batch.family == "retrieval":
                parts["in_batch"] = in_batch_loss(q, p, cfg.temperature)
            parts["loss"] = sum(parts.values())  # type: ignore[assignment]
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(idx)
        out[source] = {name: total / len(rows) for name, total in sums.items()}
    embedder.train(was_training)
    return out


def train(cfg: TrainConfig, callbacks: Sequence[Callback] = ()) -> Path:
    """Run (or resume) training; returns ``<out_dir>/final``. See the module docstring for the order."""
    check_options(cfg)
    if cfg.stages:
        return _train_stages(cfg, callbacks)
    out_dir = Path(cfg.out_dir)
    seed_everything(cfg.seed)
    data = select_sources(load_training_data(cfg.data_dir, cfg.validation_fraction, seed=0), cfg.sources)
    rank, world = launcher_world() if cfg.backend == "deepspeed" else (0, 1)
    sampler = SourceBatchSampler(
        data.sizes, cfg.batch_size, cfg.seed, rank, world, drop_last=cfg.drop_last, rule=cfg.sampler_rule
    )
    if len(sampler) == 0:
        raise ValueError(
            f"{cfg.data_dir}: no source has a full global batch of {sampler.global_batch_size}; lower batch_size"
        )
    total_steps = cfg.max_steps or (cfg.num_epochs * len(sampler)) // cfg.grad_accum

    resume_from = ckpt.resume_point(cfg, out_dir) if cfg.resume else None
    lora = cfg.mode in ("lora", "qlora")
    source = (
        str(resume_from / "embedder") if resume_from is not None and not lora and cfg.backend != "deepspeed" else None
    )
    embedder = build_embedder(cfg, source)
    backend = make_backend(embedder, cfg, total_steps)
    use_kd = cfg.teacher_model_path is not None and cfg.kd_weight > 0
    template = embedder.config.query_template
    teacher = Teacher(cfg.teacher_model_path, cfg.max_length_tokens, query_template=template) if use_kd else None
    step, micro, epoch = 0, 0, 0
    if resume_from is not None:
        state = ckpt.load_state(resume_from)
        if lora:
            ckpt.load_trainable(embedder, resume_from)
        backend.load_state_dict(state.get("backend", {}), resume_from)
        sampler.load_state_dict(state["sampler"])
        ckpt.restore_rng(state["rng"])
        step, micro, epoch = int(state["step"]), int(state["micro"]), int(state["sampler"]["epoch"])
    if backend.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "train.yaml")
        attention = getattr(embedder.backbone.config, "_attn_implementation", None)  # what "auto" chose
        summary = {"data": data.report, "sampler": sampler.summary(), "total_steps": total_steps, "world_size": world}
        summary["attention"] = attention
        (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=2))
    log = MetricsLog(out_dir / "metrics.jsonl", enabled=backend.is_main, resume_step=step if resume_from else None)
    embedder.train()

    def save(at_step: int) -> None:
        state = {
            "step": at_step,
            "micro": micro,
            "sampler": sampler.state_dict(),
            "rng": ckpt.capture_rng(),
            "backend": backend.state_dict(),
        }
        ckpt.write_checkpoint(
            ckpt.checkpoint_dir(out_dir, at_step),
            embedder=embedder,
            state=state,
            lora=lora,
            config_yaml=yaml.safe_dump(config_to_dict(cfg), sort_keys=False),
            is_main=backend.is_main,
            engine=backend.engine,
            barrier=backend.barrier,
        )
        if backend.is_main:
            ckpt.prune_checkpoints(out_dir, cfg.keep_checkpoints)

    def evaluate(at_step: int) -> None:
        if backend.is_main and data.validation:
            for src, values in validation_losses(embedder, data, cfg).items():
                log.write({"split": "validation", "step": at_step, "source": src, **values})
        backend.barrier()

    bar = tqdm(
        total=total_steps, initial=step, desc="train", unit="step", disable=not (cfg.progress and backend.is_main)
    )
    acc: dict[str, list[float]] = {}
    sources: list[str] = []
    tokens, t0 = 0, time.perf_counter()
    while step < total_steps:
        sampler.set_epoch(epoch)
        for src, indices in sampler:
            boundary = (micro + 1) % cfg.grad_accum == 0
            losses, batch_tokens, grad_norm = micro_step(
                backend, embedder, data, cfg, src, indices, micro, boundary, teacher
            )
            micro += 1
            for name, value in losses.items():
                acc.setdefault(name, []).append(value)
            sources.append(src)
            tokens += batch_tokens
            if not boundary:
                continue
            step += 1
            row = {
                "split": "train",
                "step": step,
                "epoch": epoch,
                "source": sources[0] if len(set(sources)) == 1 else "mixed",
                **{name: backend.all_mean(float(np.mean(v))) for name, v in acc.items()},
                "lr": backend.lr(),
                "grad_norm": grad_norm,
                "samples": len(sources) * sampler.global_batch_size,
                "tokens": int(backend.all_mean(tokens) * world),
                "time_s": time.perf_counter() - t0,
            }
            if step % cfg.log_every_steps == 0 or step == total_steps:
                log.write(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", source=row["source"])
            acc, sources, tokens, t0 = {}, [], 0, time.perf_counter()
            if cfg.eval_every_steps and step % cfg.eval_every_steps == 0 and step < total_steps:
                evaluate(step)
            if cfg.save_every_steps and step % cfg.save_every_steps == 0 and step < total_steps:
                save(step)
            if backend.is_main:
                for callback in callbacks:
                    callback(step, embedder, row)
            if step >= total_steps:
                break
        epoch += 1
    bar.close()
    evaluate(step)
    final = out_dir / "final"
    if backend.is_main:
        tmp = out_dir / ".tmp-final"
        shutil.rmtree(tmp, ignore_errors=True)
        embedder.save(tmp)
        save_config(cfg, tmp / "train.yaml")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    backend.barrier()
    return final


def main(cfg: TrainConfig) -> Path:
    """The ``train`` stage: train and return the final Embedder folder (``<out_dir>/final``)."""
    return train(cfg)


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """The TrainConfig that ``minif2 train`` arguments describe (profile or file, then overrides)."""
    parser = argparse.ArgumentParser(prog="minif2 train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="YAML file of TrainConfig fields")
    parser.add_argument("--profile", choices=PROFILES, help="use configs/<profile>/train.yaml")
    parser.add_argument("--data-dir", help="mined unified folder (default: the config's data_dir)")
    parser.add_argument("--out-dir", help="where checkpoints, metrics.jsonl and final/ go")
    parser.add_argument("--model", help="base model: asset name, folder or hub id")
    parser.add_argument("--mode", choices=["full", "lora", "qlora"])
    parser.add_argument("--backend", choices=["single", "deepspeed"])
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", action="store_true", default=None, help="continue from the newest checkpoint")
    parser.add_argument(
        "--resume-with-changes", action="store_true", default=None, help="resume even if settings differ"
    )
    parser.add_argument(
        "--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS
    )  # set by the deepspeed launcher
    add_options_arguments(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="check the profile on a random model of the real shape (dryrun.py)"
    )  # handled by minif2.training.dryrun.train_cli, which `minif2 train` runs
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


def cli(argv: list[str] | None = None) -> int:
    """``minif2 train --profile tiny`` / ``--config configs/paper/train_4b.yaml --backend deepspeed``."""
    if "--dry-run" in (sys.argv[1:] if argv is None else argv):
        raise SystemExit("--dry-run: run `minif2 train --dry-run ...` (minif2.training.dryrun.train_cli)")
    final = main(parse_config(argv))
    if launcher_world()[0] == 0:
        print(f"final embedder: {final}")
    return 0
