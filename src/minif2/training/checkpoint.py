"""Atomic, resumable training checkpoints (issue 5; taught in ``notebooks/03_contrastive_training.ipynb``).

A checkpoint is a folder ``<out_dir>/step-<N>/`` (N zero-padded to 7 digits) holding:

- ``embedder/``: a minif2 Embedder folder (full fine-tuning), or ``adapter/``: the peft
  LoRA adapter (LoRA / QLoRA: merging would alter the model being trained);
- ``trainable.safetensors``: the trainable parameters exactly as they are (LoRA / QLoRA);
- ``state.pt``: optimiser, scheduler, sampler and RNG states, the step and the epoch, all
  as tensors, ints, floats and strings, so ``torch.load(weights_only=True)`` reads it;
- ``train.yaml``: the resolved TrainConfig (the run can be repeated from it);
- ``manifest.json``: the size and SHA-256 of every other file, recorded as it was written.

It is written into ``.tmp-step-<N>`` and swapped in (``config.swap_in``), so a run killed
mid-write leaves the previous checkpoint intact and never a half one. A checkpoint damaged
later (a disk filled, a copy cut short) fails its manifest: ``--resume`` says which file, and
resumes from the newest intact checkpoint (:func:`resume_point`). Under DeepSpeed the engine
writes its own (partitioned) optimiser state into ``deepspeed/`` in the same folder.
This module also keeps the metrics log (:class:`MetricsLog`) and plots it. It does not decide
WHEN to checkpoint (``training/trainer.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from minif2.config import ConfigError, InputError, config_to_dict, swap_in

__all__ = [
    "CheckpointError",
    "MetricsLog",
    "capture_rng",
    "checkpoint_dir",
    "latest_checkpoint",
    "load_state",
    "plot_loss_curve",
    "read_metrics",
    "restore_rng",
    "resume_point",
    "verify_checkpoint",
    "write_checkpoint",
]


STATE_FILE = "state.pt"
TRAINABLE_FILE = "trainable.safetensors"
MANIFEST_FILE = "manifest.json"
_STEP = re.compile(r"^step-(\d+)$")


class CheckpointError(InputError):
    """A checkpoint on disk is damaged (a file missing, cut short or changed since it was written)."""


def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch (CPU + CUDA) generator states as weights_only-safe values."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, torch.tensor(words, dtype=torch.int64), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(int(w) for w in words.tolist()), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / f"step-{step:07d}"


def checkpoints(out_dir: str | Path) -> list[Path]:
    """The checkpoint folders under ``out_dir`` (``step-<N>``), newest first."""
    found = [(int(m.group(1)), p) for p in Path(out_dir).glob("step-*") if (m := _STEP.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under ``out_dir`` (None if none)."""
    return next((p for p in checkpoints(out_dir) if (p / STATE_FILE).is_file()), None)


def _digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"bytes": size, "sha256": digest}}`` of every file under ``folder``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    return {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _digest(p)} for p in files}


def verify_checkpoint(folder: str | Path) -> str | None:
    """None if the checkpoint's files match its manifest, else what is wrong, naming the file.

    A checkpoint written before manifests existed passes if its ``state.pt`` is there.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     folder = Path(d) / "step-0000001"
        ...     folder.mkdir()
        ...     _ = (folder / STATE_FILE).write_bytes(b"state")
        ...     _ = (folder / MANIFEST_FILE).write_text(json.dumps(_manifest(folder)))
        ...     _ = (folder / STATE_FILE).write_bytes(b"sta")  # cut short
        ...     verify_checkpoint(folder).endswith("state.pt: 3 bytes, 5 when it was written")
        True
    """
    folder = Path(folder)
    if not (folder / STATE_FILE).is_file():
        return f"{folder / STATE_FILE} is missing"
    if not (folder / MANIFEST_FILE).is_file():
        return None
    try:
        recorded = json.loads((folder / MANIFEST_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{folder / MANIFEST_FILE} is not valid JSON"
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{path}: {path.stat().st_size} bytes, {expected['bytes']} when it was written"
        if _digest(path) != expected["sha256"]:
            return f"{path}: its contents changed since it was written (SHA-256 differs)"
    return None


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that receive gradients, by name (LoRA adapters, or everything in full FT)."""
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def write_checkpoint(
    folder: Path,
    *,
    embedder: Any,
    state: dict[str, Any],
    config_yaml: str,
    lora: bool,
    is_main: bool = True,
    engine: Any = None,
    barrier: Any = None,
) -> Path:
    """Write one checkpoint atomically into ``folder`` (see the module docstring for its contents).

    With several processes (DeepSpeed), every rank calls this; rank 0 writes the model and
    the state, the engine writes its partitioned optimiser, and rank 0 renames at the end.
    """

    sync = barrier or (lambda: None)
    tmp = folder.parent / f".tmp-{folder.name}"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    sync()
    if engine is not None:
        engine.save_checkpoint(str(tmp / "deepspeed"), tag="engine")
    if is_main:
        if lora:
            embedder.backbone.save_pretrained(tmp / "adapter")
            save_file(trainable_state(embedder), str(tmp / TRAINABLE_FILE))
        else:
            embedder.save(tmp / "embedder")
        torch.save(state, tmp / STATE_FILE)
        (tmp / "train.yaml").write_text(config_yaml)
    sync()  # every rank's engine files are in place before rank 0 records them
    if is_main:
        (tmp / MANIFEST_FILE).write_text(json.dumps(_manifest(tmp), indent=1))
        swap_in(tmp, folder)
    sync()
    return folder


def load_state(folder: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint (weights_only: no code is unpickled)."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: {folder} is not a complete minif2 checkpoint")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # torch's error for a cut or corrupt archive
        raise CheckpointError(f"{path} cannot be read ({type(err).__name__}): the checkpoint is damaged") from err


def load_trainable(embedder: torch.nn.Module, folder: Path) -> int:
    """Copy a checkpoint's ``trainable.safetensors`` into ``embedder``; returns how many tensors were set."""

    saved = load_file(str(Path(folder) / TRAINABLE_FILE))
    params = dict(embedder.named_parameters())
    missing = sorted(set(saved) - set(params))
    if missing:
        raise KeyError(
            f"{folder / TRAINABLE_FILE}: {len(missing)} tensors have no parameter in the model, e.g. {missing[:3]}"
        )
    with torch.no_grad():
        for name, value in saved.items():
            params[name].copy_(value)
    return len(saved)


def prune_checkpoints(out_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints; returns the deleted folders."""
    root = Path(out_dir)
    found = sorted((int(m.group(1)), p) for p in root.glob("step-*") if (m := _STEP.match(p.name)))
    doomed = [p for _, p in found[:-keep]] if keep > 0 else []
    for p in doomed:
        shutil.rmtree(p, ignore_errors=True)
    return doomed


class MetricsLog:
    """Append-only JSONL writer (only the main rank writes). It never empties a log: a fresh run
    moves an earlier non-empty log aside (``metrics.jsonl`` -> ``metrics.jsonl.1``, ...) and says so;
    a resumed run keeps the rows up to its checkpoint (a half-written last line is dropped)."""

    def __init__(self, path: str | Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.path, self.enabled = Path(path), enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            if self.path.is_file() and self.path.stat().st_size:
                kept = _free_name(self.path)
                os.replace(self.path, kept)
                warnings.warn(f"{self.path}: a new run starts a new log; the earlier one is now {kept}", stacklevel=2)
            self.path.write_text("")
        elif self.path.is_file():  # keep rows up to the checkpoint, drop the killed tail
            kept_rows = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept_rows))
            os.replace(tmp, self.path)

    def write(self, row: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def _free_name(path: Path) -> Path:
    """``path.1``, ``path.2``, ...: the first that does not exist."""
    n = 1
    while path.with_name(f"{path.name}.{n}").exists():
        n += 1
    return path.with_name(f"{path.name}.{n}")


def read_metrics(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of a metrics log, optionally only one split (``train`` / ``validation``).

    A last line cut short (a run killed mid-write) is dropped with a warning; a bad line
    elsewhere is a ValueError naming the file and line.
    """
    path = Path(path)
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    rows = []
    for i, (number, line) in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i == len(lines) - 1:
                warnings.warn(f"{path}, line {number}: dropping a partial last line (killed mid-write)", stacklevel=2)
                break
            raise ValueError(f"{path}, line {number}: not valid JSON ({err.msg}); the metrics log is damaged") from None
    return [r for r in rows if split is None or r.get("split") == split]


def plot_loss_curve(
    path: str | Path, ax: Any = None, smooth: int = 10, title: str = "Contrastive training loss"
) -> Any:
    """Plot training loss per step (raw and a ``smooth``-step moving average) and validation loss.

    Returns the matplotlib Axes. The loss is the F2LLM total (hard + in-batch, docs/recipe.md §1a),
    in nats; the x axis counts optimiser steps.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only plotting needs it: `import minif2.training` stays light

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    train = read_metrics(path, "train")
    steps = np.array([r["step"] for r in train])
    loss = np.array([r["loss"] for r in train])
    ax.plot(steps, loss, alpha=0.35, label="train loss (per step)")
    if len(loss) >= smooth > 1:
        kernel = np.ones(smooth) / smooth
        ax.plot(steps[smooth - 1 :], np.convolve(loss, kernel, mode="valid"), label=f"train loss ({smooth}-step mean)")
    valid = read_metrics(path, "validation")
    for source in sorted({r["source"] for r in valid}):
        rows = [r for r in valid if r["source"] == source]
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], "o--", label=f"validation: {source}")
    ax.set_title(title)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over a curve
    return ax


# settings a resumed run may change: how long it runs, where it writes, how often it logs, evaluates, saves
RESUME_MAY_CHANGE = frozenset(
    {
        "max_steps",
        "out_dir",
        "progress",
        "eval_every_steps",
        "save_every_steps",
        "keep_checkpoints",
        "log_every_steps",
        "resume",
        "resume_with_changes",
    }
)


def resume_point(cfg: Any, out_dir: Path) -> Path | None:
    """The checkpoint to resume from: the newest INTACT one, after checking that the run's settings match it.

    No checkpoint: a warning says training starts from step 0. A newer checkpoint that fails its
    manifest (:func:`verify_checkpoint`) is skipped with a warning naming the damaged file; when
    every checkpoint is damaged, a one-line :class:`CheckpointError` names the newest one's file.
    Any setting other than ``RESUME_MAY_CHANGE`` (max_steps, out_dir, progress, eval/save/log
    intervals, keep_checkpoints) that differs from the checkpoint's ``train.yaml`` is refused with
    a ConfigError naming the fields, since the checkpoint's state would be mixed with new settings,
    unless ``resume_with_changes`` (``--resume-with-changes``) asks for it; then a warning lists them.
    """
    found, damaged = None, []
    for folder in checkpoints(out_dir):
        problem = verify_checkpoint(folder)
        if problem is None:
            found = folder
            break
        damaged.append(problem)
    if found is None and damaged:
        raise CheckpointError(f"resume: no intact checkpoint in {out_dir}; {damaged[0]}")
    if found is None:
        warnings.warn(f"resume: no checkpoint in {out_dir}; training starts from step 0", stacklevel=3)
        return None
    if damaged:
        warnings.warn(
            f"resume: skipping damaged checkpoints ({'; '.join(damaged)}); resuming from {found}", stacklevel=3
        )
    _check_settings(cfg, found)
    return found


def _check_settings(cfg: Any, found: Path) -> None:
    saved = yaml.safe_load((found / "train.yaml").read_text()) if (found / "train.yaml").is_file() else {}
    now = config_to_dict(cfg)
    changed = sorted(k for k in set(saved) & set(now) if saved[k] != now[k] and k not in RESUME_MAY_CHANGE)
    if changed and not cfg.resume_with_changes:
        diffs = "; ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
        raise ConfigError(
            f"{found / 'train.yaml'}: cannot resume with changed settings ({diffs}). Restore them, "
            "or pass --resume-with-changes (resume_with_changes: true) to resume anyway"
        )
    if changed:
        warnings.warn(f"resume: continuing {found} with changed settings {changed}", stacklevel=4)
