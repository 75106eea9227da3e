"""F2LLM's one-stage contrastive fine-tuning: the training loop (docs/recipe.md §1, §1a; notebook 03).

:func:`train` reads in the order the loop runs, as nanoGPT's ``train.py`` does: load the mined
data and split it 99/1 per source; build the Embedder (full, LoRA or QLoRA), the backend (one
process or DeepSpeed ZeRO-2, holding AdamW and the warm-up + cosine schedule) and the loss
object (:func:`build_loss`); then, per micro-batch, the sampler picks ONE source and its rows,
the step's k negatives are drawn, queries and documents are embedded, the loss gives its parts
(hard + in-batch for F2LLM, and ``kd`` / ``mrl`` when those options are on), and the backend
accumulates, clips and steps. Every ``eval_every_steps`` it logs the SAME loss on the validation
split per source; every ``save_every_steps`` it writes a checkpoint; ``resume=True`` continues
from the newest intact one with nothing lost or repeated. The result is ``<out_dir>/final``: a
minif2 Embedder folder that transformers and sentence-transformers load.

The knobs are ``TrainConfig`` (``training/train_config.py``); QZhou's two stages are
``training/stages.py``. This module does not mine negatives or score MTEB (``mining/mine.py``,
``evaluation/evaluate.py``).
"""

from __future__ import annotations

import json
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

from minif2.config import config_to_dict, save_config, staged_folder
from minif2.data.pretokenize import ids_fit
from minif2.model import Embedder
from minif2.provenance import environment_record
from minif2.training import checkpoint as ckpt
from minif2.training.backends import build_embedder, launcher_world, make_backend, seed_everything
from minif2.training.checkpoint import MetricsLog
from minif2.training.distill import Distillation, Teacher
from minif2.training.grad_cache import cached_embed
from minif2.training.head import head_texts, train_head
from minif2.training.losses import LayerMatryoshka, make_loss
from minif2.training.sampler import (
    MicroBatch,
    SourceBatchSampler,
    TrainingData,
    load_training_data,
    negatives_for_step,
    negatives_per_step,
)
from minif2.training.stages import plan_stages, select_sources
from minif2.training.train_config import TrainConfig, check_config, parse_config

__all__ = ["TrainConfig", "build_loss", "cli", "draw_batch", "embed_batch", "train", "validation_losses"]

Callback = Callable[[int, Embedder, dict[str, Any]], None]


def train(cfg: TrainConfig, callbacks: Sequence[Callback] = ()) -> Path:
    """Run (or resume) training; returns ``<out_dir>/final``. See the module docstring for the order."""
    check_config(cfg)
    if cfg.stages:
        return _train_stages(cfg, callbacks)
    seed_everything(cfg.seed)
    # data: each source split 99/1; every micro-batch comes from ONE source (docs/recipe.md §1a)
    data = select_sources(load_training_data(cfg.data_dir, cfg.validation_fraction, seed=0), cfg.sources)
    sampler, world = _make_sampler(cfg, data)
    total_steps = cfg.max_steps or (cfg.num_epochs * len(sampler)) // cfg.grad_accum
    # model, optimiser + schedule (inside the backend) and loss, from the newest checkpoint when resuming
    resume_from = ckpt.resume_point(cfg, Path(cfg.out_dir)) if cfg.resume else None
    embedder = build_embedder(cfg, _weights_to_load(cfg, resume_from))
    backend = make_backend(embedder, cfg, total_steps)
    run = Run(cfg, data, sampler, embedder, backend, build_loss(cfg, embedder), total_steps, world)
    if resume_from is not None:
        _resume(run, resume_from)
    log = _start_log(run, resumed=resume_from is not None)
    window = Window()
    embedder.train()
    bar = tqdm(total=total_steps, initial=run.step, desc="train", unit="step", disable=not _shows_progress(run))
    while run.step < total_steps:
        sampler.set_epoch(run.epoch)
        for source, indices in sampler:
            boundary = (run.micro + 1) % cfg.grad_accum == 0
            batch = draw_batch(data, cfg, source, indices, run.micro, embedder)  # rows + the step's negatives
            q, p, n, tokens = embed_batch(backend.forward, embedder, batch, cfg.grad_cache_chunk_size)
            parts = run.loss(q, p, n, batch.family, batch)  # {"loss", "hard", "in_batch", "kd", "mrl"}
            grad_norm = backend.backward(parts["loss"], boundary)  # AdamW steps at a boundary
            run.micro += 1
            window.add(parts, source, tokens)
            if not boundary:
                continue
            run.step += 1
            row, window = window.row(run, grad_norm), Window()
            if run.step % cfg.log_every_steps == 0 or run.step == total_steps:
                log.write(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", source=row["source"])
            if _due(cfg.eval_every_steps, run):
                _evaluate(run, log)
            if _due(cfg.save_every_steps, run):
                _save_checkpoint(run)
            for callback in callbacks if backend.is_main else ():
                callback(run.step, embedder, row)
            if run.step >= total_steps:
                break
        run.epoch += 1
    bar.close()
    _evaluate(run, log)
    if cfg.head_steps and run.backend.is_main:  # kit (issue 23): the teacher's geometry into a Dense head
        _train_head(run, log)
    return _save_final(run)


@dataclass
class Run:
    """What the loop carries: what it was built from, and where it stands (step, micro-batch, epoch)."""

    cfg: TrainConfig
    data: TrainingData
    sampler: SourceBatchSampler
    embedder: Embedder
    backend: Any
    loss: Any
    total_steps: int
    world: int
    step: int = 0
    micro: int = 0
    epoch: int = 0

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out_dir)

    @property
    def lora(self) -> bool:
        return self.cfg.mode in ("lora", "qlora")


@dataclass
class Window:
    """The micro-batches of one optimiser step: their loss parts, sources and tokens, and when it began."""

    parts: dict[str, list[float]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    tokens: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def add(self, parts: dict[str, torch.Tensor], source: str, tokens: int) -> None:
        for name, value in parts.items():
            self.parts.setdefault(name, []).append(float(value.detach()))
        self.sources.append(source)
        self.tokens += tokens

    def row(self, run: Run, grad_norm: float | None) -> dict[str, Any]:
        """The step's ``metrics.jsonl`` row: each part averaged over the micro-batches and the ranks."""
        backend = run.backend
        row = {
            "split": "train",
            "step": run.step,
            "epoch": run.epoch,
            "source": self.sources[0] if len(set(self.sources)) == 1 else "mixed",
            **{name: backend.all_mean(float(np.mean(v))) for name, v in self.parts.items()},
            "lr": backend.lr(),
            "grad_norm": grad_norm,
            "samples": len(self.sources) * run.sampler.global_batch_size,
            "tokens": int(backend.all_mean(self.tokens) * run.world),
            "time_s": time.perf_counter() - self.t0,
        }
        return row


def build_loss(cfg: TrainConfig, embedder: Embedder | None = None) -> Any:
    """The run's loss object, built once from the config (``training/losses.py``, ``training/distill.py``).

    F2LLM's two softmaxes or one softmax (``loss``), wrapped in ``Matryoshka`` (``use_mrl``), in
    ``Distillation`` from a frozen teacher (``teacher_model_path`` with ``kd_weight > 0``) and in
    ``LayerMatryoshka`` at ML-Embed's exit layers (``use_mll``). Training and
    validation call this same object, so they report the same loss for the same batch.
    """
    loss = make_loss(
        cfg.loss, cfg.temperature, cfg.gather_mode, None, cfg.use_mrl, cfg.mrl_min_dim, cfg.false_negative_margin
    )
    if cfg.teacher_model_path is not None and cfg.kd_weight > 0:
        template = embedder.config.query_template if embedder is not None else None
        extra = {"query_template": template} if template is not None else {}
        teacher = Teacher(cfg.teacher_model_path, cfg.max_length_tokens, **extra)
        loss = Distillation(loss, teacher, cfg.kd_weight, cfg.kd_mode)
    return LayerMatryoshka(loss) if cfg.use_mll else loss  # every part (KD too) at every exit, then averaged


def _formatting(embedder: Embedder, data: TrainingData) -> tuple[str, list[str] | None, bool]:
    """Query template, instruction tasks, and whether the corpus's stored token ids fit this embedder."""
    fit = data.corpus is not None and ids_fit(data.corpus.tokenized, embedder)
    return embedder.config.query_template, embedder.config.instruction_tasks, fit


def _negatives(cfg: TrainConfig, data: TrainingData, source: str) -> int:
    """k, the negatives per row this source trains on: the configured number, at most what every row has."""
    wanted = negatives_per_step(cfg.num_negatives, data.family[source])
    return min(wanted, data.negatives_available[source])


def draw_batch(
    data: TrainingData, cfg: TrainConfig, source: str, indices: list[int], micro: int, embedder: Embedder
) -> MicroBatch:
    """Rows ``indices`` of ``source`` with this micro-batch's k negatives (docs/recipe.md §1a).

    The negatives are drawn from the seed ``f"{seed}-{micro}"``: the same on every rank, and the
    same after a resume.
    """
    available = data.negatives_available[source]
    negative_ids = negatives_for_step(f"{cfg.seed}-{micro}", available, _negatives(cfg, data, source))
    return data.batch(source, indices, negative_ids, "train", *_formatting(embedder, data))


def embed_batch(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], embedder: Embedder, batch: MicroBatch, chunk_size=0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Embed queries and [positives; negatives] of one micro-batch -> q (b,d), p (b,d), n (b,k,d), tokens.

    ``chunk_size > 0``: gradient caching (``training/grad_cache.py``), same values and gradients.
    """
    q_tok = embedder.tokenize(batch.queries)
    documents = batch.positives + batch.negatives
    d_tok = embedder.tokenize(documents) if batch.document_ids is None else embedder.pad(batch.document_ids)
    q = cached_embed(forward, q_tok["input_ids"], q_tok["attention_mask"], chunk_size)  # (b, d)
    docs = cached_embed(forward, d_tok["input_ids"], d_tok["attention_mask"], chunk_size)  # (b + b*k, d)
    b = len(batch.queries)
    tokens = int((q_tok["attention_mask"] > 0).sum() + (d_tok["attention_mask"] > 0).sum())
    negatives = docs[b:].reshape(b, batch.k, *docs.shape[1:])  # (b, k, d), or (b, k, exits, d) with use_mll
    return q, docs[:b], negatives, tokens  # k may be 0 (unmined data)


@torch.no_grad()
def validation_losses(
    embedder: Embedder, data: TrainingData, cfg: TrainConfig, loss: Any = None
) -> dict[str, dict[str, float]]:
    """The training loss, part by part, per source on the validation split (docs/recipe.md §1a).

    ``loss`` is the run's loss object (:func:`build_loss` when None), on this process only
    (``loss.local()``: no all-gather). Batches of ``cfg.batch_size`` in split order; every row
    uses its first k negatives, so the figure is comparable across evaluations. The in-batch
    loss sees this batch only.
    """
    loss = (loss if loss is not None else build_loss(cfg, embedder)).local()

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return embedder(ids.to(embedder.device), mask.to(embedder.device))

    was_training = embedder.training
    embedder.eval()
    out: dict[str, dict[str, float]] = {}
    for source, rows in data.validation.items():
        k, sums = _negatives(cfg, data, source), {}
        for start in range(0, len(rows), cfg.batch_size):
            idx = list(range(start, min(start + cfg.batch_size, len(rows))))
            batch = data.batch(source, idx, list(range(k)), "validation", *_formatting(embedder, data))
            q, p, n, _ = embed_batch(forward, embedder, batch)
            for name, value in loss(q, p, n, batch.family, batch).items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(idx)
        out[source] = {name: total / len(rows) for name, total in sums.items()}
    embedder.train(was_training)
    return out


# -- the loop's named helpers, in the order train() meets them --


def _make_sampler(cfg: TrainConfig, data: TrainingData) -> tuple[SourceBatchSampler, int]:
    """F2LLM's one-source sampler for this rank, and the world size."""
    rank, world = launcher_world() if cfg.backend == "deepspeed" else (0, 1)
    sampler = SourceBatchSampler(
        data.sizes, cfg.batch_size, cfg.seed, rank, world, drop_last=cfg.drop_last, rule=cfg.sampler_rule
    )
    if len(sampler) == 0:
        raise ValueError(
            f"{cfg.data_dir}: no source has a full global batch of {sampler.global_batch_size}; lower batch_size"
        )
    return sampler, world


def _weights_to_load(cfg: TrainConfig, resume_from: Path | None) -> str | None:
    """A full fine-tune resumes from the checkpoint's Embedder folder; LoRA and DeepSpeed load theirs later."""
    if resume_from is None or cfg.mode in ("lora", "qlora") or cfg.backend == "deepspeed":
        return None
    return str(resume_from / "embedder")


def _resume(run: Run, folder: Path) -> None:
    """Restore the optimiser, schedule, sampler, RNG and position saved in checkpoint ``folder``."""
    state = ckpt.load_state(folder)
    if run.lora:
        ckpt.load_trainable(run.embedder, folder)
    run.backend.load_state_dict(state.get("backend", {}), folder)
    run.sampler.load_state_dict(state["sampler"])
    ckpt.restore_rng(state["rng"])
    run.step, run.micro, run.epoch = int(state["step"]), int(state["micro"]), int(state["sampler"]["epoch"])


def _data_fingerprints(data_dir: str) -> dict[str, str]:
    """The sha256 of each training source, as its manifest recorded it (empty for older data folders)."""
    manifest = Path(data_dir) / "manifest.json"
    return json.loads(manifest.read_text()).get("fingerprints", {}) if manifest.is_file() else {}


def _start_log(run: Run, resumed: bool) -> MetricsLog:
    """Save the resolved config and the run summary beside the run; open ``metrics.jsonl``."""
    is_main = run.backend.is_main
    if is_main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        save_config(run.cfg, run.out_dir / "train.yaml")
        attention = getattr(run.embedder.backbone.config, "_attn_implementation", None)  # what "auto" chose
        summary = {
            "data": run.data.report,
            "sampler": run.sampler.summary(),
            "total_steps": run.total_steps,
            "world_size": run.world,
            "attention": attention,
            "environment": environment_record(),  # Python, the lock's hash, key versions (provenance.py)
            "data_fingerprints": _data_fingerprints(run.cfg.data_dir),
        }
        (run.out_dir / "run_summary.json").write_text(json.dumps(summary, indent=2))
    return MetricsLog(run.out_dir / "metrics.jsonl", enabled=is_main, resume_step=run.step if resumed else None)


def _shows_progress(run: Run) -> bool:
    return run.cfg.progress and run.backend.is_main


def _due(every: int, run: Run) -> bool:
    """An interval event (validation, checkpoint) at this step; the last step has its own, after the loop."""
    return bool(every) and run.step % every == 0 and run.step < run.total_steps


def _evaluate(run: Run, log: MetricsLog) -> None:
    if run.backend.is_main and run.data.validation:
        for source, values in validation_losses(run.embedder, run.data, run.cfg, run.loss).items():
            log.write({"split": "validation", "step": run.step, "source": source, **values})
    run.backend.barrier()


def _save_checkpoint(run: Run) -> None:
    state = {
        "step": run.step,
        "micro": run.micro,
        "sampler": run.sampler.state_dict(),
        "rng": ckpt.capture_rng(),
        "backend": run.backend.state_dict(),
    }
    ckpt.write_checkpoint(
        ckpt.checkpoint_dir(run.out_dir, run.step),
        embedder=run.embedder,
        state=state,
        lora=run.lora,
        config_yaml=yaml.safe_dump(config_to_dict(run.cfg), sort_keys=False),
        is_main=run.backend.is_main,
        engine=run.backend.engine,
        barrier=run.backend.barrier,
    )
    if run.backend.is_main:
        ckpt.prune_checkpoints(run.out_dir, run.cfg.keep_checkpoints)


def _train_head(run: Run, log: MetricsLog) -> None:
    """``training/head.py`` on the training texts' sentences; logged as one ``head`` row of metrics.jsonl."""
    cfg = run.cfg
    wanted = [s for s in run.data.train if cfg.head_sources is None or s in cfg.head_sources]
    if not wanted:  # your own data has none of the profile's head sources: distil its texts instead
        print(f"head: no training source is one of head_sources {cfg.head_sources}; using every source's texts")
        wanted = list(run.data.train)
    texts = (text for s in wanted for column in ("query", "positive") for text in run.data.texts(s, column))
    sentences = head_texts(texts, cfg.head_texts, cfg.seed)
    if not sentences:
        print("head: the training texts have no sentence of 3-60 words; the model is saved without a head")
        return
    teacher = Teacher(cfg.teacher_model_path, max_length_tokens=cfg.max_length_tokens)
    report = train_head(run.embedder, teacher, sentences, cfg.head_steps, cfg.head_batch_size, cfg.head_lr, cfg.seed)
    log.write({"split": "head", "step": run.step, **report.to_dict()})
    print(
        f"head: {report.steps} steps on {report.texts} sentences, distillation loss {report.loss_first:.4f} -> "
        f"{report.loss_last:.4f}"
    )


def _save_final(run: Run) -> Path:
    """``<out_dir>/final``, written aside and swapped in: a crash never leaves the run without a final model."""
    final = run.out_dir / "final"
    if run.backend.is_main:
        with staged_folder(final) as tmp:
            run.embedder.save(tmp)
            save_config(run.cfg, tmp / "train.yaml")
    run.backend.barrier()
    return final


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
        with staged_folder(out_dir / "final") as tmp:
            shutil.copytree(final, tmp, dirs_exist_ok=True)
    return out_dir / "final"


def cli(argv: list[str] | None = None) -> int:
    """``minif2 train --profile tiny`` / ``--config configs/paper/train_4b.yaml --backend deepspeed``."""
    if "--dry-run" in (sys.argv[1:] if argv is None else argv):
        raise SystemExit("--dry-run: run `minif2 train --dry-run ...` (minif2.planning.dryrun.train_cli)")
    final = train(parse_config(argv))
    if launcher_world()[0] == 0:
        print(f"final embedder: {final}")
    return 0
