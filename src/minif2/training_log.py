"""The trainer's JSONL metrics log and its loss-curve plot (notebook 03).

One JSON object per line: a ``"split": "train"`` row per optimiser step (loss, hard,
in_batch, lr, grad_norm, samples, tokens, time_s) and a ``"split": "validation"`` row per
source at each evaluation (SPEC §1a: both losses per source). Appending line by line means
a killed run keeps everything logged so far; a resumed run first drops the rows after its
checkpoint's step, so the log never holds a step twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MetricsLog", "plot_loss_curve", "read_metrics"]


class MetricsLog:
    """Append-only JSONL writer (only the main rank writes)."""

    def __init__(self, path: str | Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.path, self.enabled = Path(path), enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.is_file():  # keep rows up to the checkpoint, drop the killed tail
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, row: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def read_metrics(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of a metrics log, optionally only one split (``train`` / ``validation``)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def plot_loss_curve(path: str | Path, ax: Any = None, smooth: int = 10, title: str = "Contrastive training loss") -> Any:
    """Plot training loss per step (raw and a ``smooth``-step moving average) and validation loss.

    Returns the matplotlib Axes. The loss is the F2LLM total (hard + in-batch, SPEC §1a),
    in nats; the x axis counts optimiser steps.
    """
    import matplotlib.pyplot as plt
    import numpy as np

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
    ax.legend(fontsize=8)
    return ax
