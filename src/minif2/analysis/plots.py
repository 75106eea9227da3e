"""Figures of the instruction-shift study (docs/recipe.md §3) and of notebook 05's 2-D Procrustes toy.

Each function returns a matplotlib Figure (the notebook shows it inline; ``save_figures``
writes PNGs for ``minif2 analyze``). Nothing here computes results; see ``analysis/shift.py``.
Taught in ``notebooks/05_instruction_shift.ipynb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from minif2.analysis.shift import AnalysisResult

__all__ = ["plot_displacement", "plot_distance_heatmap", "plot_mds", "plot_procrustes_toy", "save_figures"]


def _plt():

    return plt


def plot_mds(result: AnalysisResult) -> Figure:
    """MDS map of all (model, condition) points; each model's Base point joined to its instructed points.

    Colour is the model and marker shape the condition, with one legend for each: text labels beside the points
    overlapped wherever two conditions landed close together.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")  # room for the legends
    colours = plt.cm.tab10(np.arange(len(result.labels)) % 10)
    markers = dict(zip(result.conditions[1:], "osD^vPXph<>"))
    index = {p: i for i, p in enumerate(result.points)}
    for colour, model in zip(colours, result.labels):
        base = result.mds[index[(model, result.conditions[0])]]
        for cond in result.conditions[1:]:
            x, y = result.mds[index[(model, cond)]]
            ax.plot([base[0], x], [base[1], y], color=colour, lw=1, alpha=0.5)
            ax.scatter(x, y, color=colour, s=40, marker=markers[cond], edgecolor="black", linewidth=0.4)
        ax.scatter(*base, color=colour, s=160, marker="*", edgecolor="black", zorder=3)
    by_model = [plt.Line2D([], [], color=c, marker="*", ms=11, ls="", mec="black") for c in colours]
    by_cond = [plt.Line2D([], [], color="grey", marker=m, ls="", mec="black") for m in markers.values()]
    labels = [f"{m} (star: Base)" for m in result.labels] + [f"instruction: {c}" for c in markers]
    ax.legend(by_model + by_cond, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Instruction shift: MDS of cosine distances\nin the reference space ({result.reference})")
    ax.set_xlabel("MDS dimension 1 (cosine-distance units)")
    ax.set_ylabel("MDS dimension 2 (cosine-distance units)")
    ax.set_aspect("equal", adjustable="datalim")
    return fig


def plot_distance_heatmap(result: AnalysisResult) -> Figure:
    """Heat map of the normalised Procrustes distance D(row -> column) between models' Base spaces."""
    plt = _plt()
    m = len(result.labels)
    fig, ax = plt.subplots(figsize=(1.2 * m + 3, 1.0 * m + 2.5))
    image = ax.imshow(result.distances, cmap="viridis", vmin=0)
    middle = result.distances.max() / 2
    for i in range(m):
        for j in range(m):
            value = result.distances[i, j]
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", color="black" if value > middle else "white", fontsize=9
            )
    ax.set_xticks(range(m), result.labels, rotation=30, ha="right")
    ax.set_yticks(range(m), result.labels)
    ax.set_xlabel("reference of the pair (fixed)")
    ax.set_ylabel("model rotated onto it")
    ax.set_title(f"Procrustes distance D, Base condition\n(k = {result.k}, reference: {result.reference})")
    fig.colorbar(image, ax=ax, label="D = ||S_i Q - S_j||² / ||S_j||² (unitless)")
    fig.tight_layout()
    return fig


def plot_displacement(result: AnalysisResult, column: str = "displacement") -> Figure:
    """Grouped bars: displacement Base -> instructed, per task (groups) and model (bars)."""
    plt = _plt()
    pivot = result.displacement.pivot(index="condition", columns="model", values=column)
    pivot = pivot.loc[[c for c in result.conditions[1:] if c in pivot.index], [m for m in result.labels if m in pivot]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, pivot.shape[1])
    x = np.arange(pivot.shape[0])
    for i, model in enumerate(pivot.columns):
        ax.bar(x + (i - (pivot.shape[1] - 1) / 2) * width, pivot[model].to_numpy(), width, label=model)
    ax.set_xticks(x, pivot.index)
    ax.set_xlabel("task instruction")
    ax.set_ylabel("cosine distance Base -> instructed (1 - cos)")
    ax.set_title("How far each instruction moves the queries, per model")
    ax.set_ylim(0, 1.25 * float(np.nanmax(pivot.to_numpy())))
    ax.legend(fontsize=8, ncol=min(4, pivot.shape[1]), loc="upper center")
    fig.tight_layout()
    return fig


def plot_procrustes_toy(reference: np.ndarray, target: np.ndarray, aligned: np.ndarray, angle_deg: float) -> Figure:
    """Notebook 05's toy: 2-D reference points, a rotated copy, and the copy rotated back by Procrustes."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
    for ax, other, title in (
        (axes[0], target, f"target = reference rotated by {angle_deg:.0f}° (+ noise)"),
        (axes[1], aligned, "target @ Q*: rotated back by Procrustes"),
    ):
        ax.scatter(*reference.T, s=40, label="reference", color="tab:blue")
        ax.scatter(*other.T, s=40, marker="x", label=title.split(" =")[0].split(":")[0], color="tab:red")
        for p, q in zip(reference, other):
            ax.plot([p[0], q[0]], [p[1], q[1]], color="grey", lw=0.6)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("dimension 1 (arbitrary units)")
        ax.set_aspect("equal", adjustable="box")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("dimension 2 (arbitrary units)")
    fig.tight_layout()
    return fig


def save_figures(result: AnalysisResult, out_dir: str | Path) -> list[Path]:
    """mds.png, procrustes_heatmap.png, displacement.png in ``out_dir`` (figures closed after)."""
    plt = _plt()
    out_dir = Path(out_dir)
    paths = []
    for name, make in (
        ("mds.png", plot_mds),
        ("procrustes_heatmap.png", plot_distance_heatmap),
        ("displacement.png", plot_displacement),
    ):
        fig = make(result)
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths
