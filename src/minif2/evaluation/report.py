"""Results of an evaluation as the paper reports them: a tidy table, category averages, a plot.

MTEB summarises a model two ways (docs/recipe.md §1a): the mean over all tasks, and the mean
over task TYPES (first average the tasks of each type, then average the types), so
that a type with many tasks (retrieval) does not dominate. Scores are shown x100,
as on the leaderboard and in the paper.

The released models' MTEB(eng, v2) numbers (``PAPER_MTEB_ENG_V2``) are shown beside the
user's for context only. They were RECOMPUTED from the public MTEB results repository
(``embeddings-benchmark/results``, docs/recipe.md §1a), not quoted from the paper, and are
labelled so. The kit's offline suite is a different, much smaller set of tasks, so the two
are not comparable number for number.

This module does not run models (``evaluation/evaluate.py``). Taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from minif2.config import MTEB_ENG_V2, MTEB_F2LLM_4B_BY_TYPE
from minif2.schema import MTEB_TASK_TYPES

__all__ = [
    "plot_depth_and_width",
    "PAPER_MTEB_ENG_V2",
    "GAIN_COLUMNS",
    "RESULT_COLUMNS",
    "category_averages",
    "describe_gains",
    "paper_comparison",
    "plot_scores",
    "plot_scores_by_dimension",
]

RESULT_COLUMNS = ["task", "type", "main_score", "ci_low", "ci_high", "rows", "metric", "model", "revision"]
GAIN_COLUMNS = ["task", "type", "model", "base", "gain", "gain_low", "gain_high", "verdict"]

# MTEB(eng, v2) recomputed from the public MTEB results (minif2.config, docs/recipe.md §1a), x100, with mteb's
# task-type names. mean_task = mean over the 41 tasks; mean_type = mean over the 7 task types.
RECOMPUTED = "public MTEB results"  # the label: not the paper's own table
PAPER_MTEB_ENG_V2: dict[str, dict[str, float]] = {
    f"{model} ({RECOMPUTED})": {"mean_task": mean_task, "mean_type": mean_type}
    for model, (mean_task, mean_type) in MTEB_ENG_V2.items()
}
PAPER_MTEB_ENG_V2[f"F2LLM-4B ({RECOMPUTED})"].update({MTEB_TASK_TYPES[t]: v for t, v in MTEB_F2LLM_4B_BY_TYPE.items()})


def category_averages(results: pd.DataFrame) -> pd.DataFrame:
    """Tidy results -> one row per model: ``mean_task``, ``mean_type`` and the mean of each type, x100.

    >>> df = pd.DataFrame({"task": ["a", "b", "c"], "type": ["STS", "STS", "Retrieval"],
    ...                    "main_score": [0.8, 0.6, 0.4], "model": "m"})
    >>> category_averages(df).round(2).to_dict("records")
    [{'model': 'm', 'mean_task': 60.0, 'mean_type': 55.0, 'Retrieval': 40.0, 'STS': 70.0}]
    """
    rows = []
    for model, group in results.groupby("model", sort=False):
        per_type = group.groupby("type")["main_score"].mean() * 100
        rows.append(
            {
                "model": model,
                "mean_task": group["main_score"].mean() * 100,
                "mean_type": per_type.mean(),
                **per_type.to_dict(),
            }
        )
    return pd.DataFrame(rows)


def paper_comparison(averages: pd.DataFrame) -> pd.DataFrame:
    """The user's category averages with the released models' rows under them (``suite`` says which is which)."""
    ours = averages.assign(suite="this run")
    paper = pd.DataFrame([{"model": name, **scores} for name, scores in PAPER_MTEB_ENG_V2.items()]).assign(
        suite="MTEB(eng, v2), recomputed from the public MTEB results"
    )
    columns = ["model", "suite", "mean_task", "mean_type"]
    columns += [c for c in dict.fromkeys([*averages.columns, *paper.columns]) if c not in columns]
    return pd.concat([ours, paper], ignore_index=True)[columns]


def plot_scores(results: pd.DataFrame, path: str | Path | None = None, title: str | None = None) -> Any:
    """Grouped bars: one group per task, one bar per model (base vs fine-tuned), main score x100, with the
    95 % interval as an error bar where the table has one (``ci_low``/``ci_high``, evaluation/intervals.py)."""

    models = list(dict.fromkeys(results["model"]))
    tasks = list(dict.fromkeys(results["task"]))
    table = (
        results.pivot_table(index="task", columns="model", values="main_score").reindex(index=tasks, columns=models)
        * 100
    )
    bounds = {
        side: results.pivot_table(index="task", columns="model", values=f"ci_{side}", dropna=False).reindex(
            index=tasks, columns=models
        )
        * 100
        if f"ci_{side}" in results
        else None
        for side in ("low", "high")
    }
    info = results.drop_duplicates("task").set_index("task")
    fig, ax = plt.subplots(figsize=(max(7.0, 1.7 * len(tasks) + 2.5), 4.6))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(tasks))
    for i, model in enumerate(models):
        score = table[model].to_numpy()
        errors = None
        if bounds["low"] is not None:
            errors = np.nan_to_num(np.vstack([score - bounds["low"][model], bounds["high"][model] - score]))
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, score, width, label=model, yerr=errors, capsize=2)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(
        x, [f"{t}\n{info.loc[t, 'type']}: {info.loc[t, 'metric']}" for t in tasks], fontsize=8, rotation=20, ha="right"
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("main score (x100)")
    ax.set_xlabel("task (type: mteb's main metric)")
    ax.set_ylim(min(0.0, float(np.nanmin(table.to_numpy())) - 5), 105)
    ax.set_title(title or "MTEB main score per task: base vs fine-tuned")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _width_ticks(ax: Any, dims: list[int]) -> None:
    """A log2 width axis with a tick at every width, labelled where labels do not collide: the full width (the
    last) always, a smaller one only half an octave or more below the last labelled (512 beside 576 is not)."""
    ax.set_xscale("log", base=2)
    labelled, keep = [], float("inf")
    for d in sorted(dims, reverse=True):
        labelled.append(str(d) if np.log2(keep) - np.log2(d) >= 0.5 else "")
        keep = d if labelled[-1] else keep
    ax.set_xticks(sorted(dims), labelled[::-1])
    ax.minorticks_off()


def plot_scores_by_dimension(results: pd.DataFrame, path: str | Path | None = None, title: str | None = None) -> Any:
    """Mean main score (x100) against the embedding dimension, one line per model (Matryoshka, docs/recipe.md §1b).

    ``results`` is :func:`minif2.evaluation.evaluate.scores_by_dimension`'s table (a ``dim`` column).
    A model trained with F2LLM-v2's Matryoshka losses should lose little as the dimension shrinks;
    one trained without them loses more.
    """
    table = results.groupby(["model", "dim"], sort=False)["main_score"].mean().unstack("model") * 100
    table = table.sort_index()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for model in dict.fromkeys(results["model"]):
        ax.plot(table.index, table[model], marker="o", label=model)
    _width_ticks(ax, list(table.index))
    ax.set_xlabel("dimensions kept (first d, re-normalised)")
    ax.set_ylabel(f"mean main score over {results['task'].nunique()} task(s) (x100)")
    ax.set_title(title or "Score against embedding dimension")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_depth_and_width(results: pd.DataFrame, title: str | None = None) -> Any:
    """ML-Embed's 2-D trade-off: main score (x100) against the dimensions kept, one line per depth (``layers``),
    one panel per ``recipe`` (e.g. MRL-trained and cut after training vs trained with ``use_mll``).

    ``results``: :func:`~minif2.evaluation.evaluate.scores_by_dimension`'s table with ``recipe`` and ``layers``
    columns added; an ``encode_s`` column, if present, goes into the legend (the cost of each depth).
    """
    recipes = list(dict.fromkeys(results["recipe"]))
    fig, axes = plt.subplots(1, len(recipes), figsize=(5.2 * len(recipes), 4.2), sharey=True, squeeze=False)
    for ax, recipe in zip(axes[0], recipes, strict=True):
        own = results[results["recipe"] == recipe]
        for layers, rows in own.groupby("layers", sort=False):
            line = rows.groupby("dim")["main_score"].mean().sort_index() * 100
            cost = f", encode {rows['encode_s'].iloc[0]:.1f} s" if "encode_s" in rows else ""
            ax.plot(line.index, line.values, marker="o", label=f"{layers} layers{cost}")
        _width_ticks(ax, sorted(own["dim"].unique()))
        ax.set_xlabel("dimensions kept (first d, re-normalised)")
        ax.set_title(recipe, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(f"mean main score over {results['task'].nunique()} task(s) (x100)")
    fig.suptitle(title or "Score against depth and width")
    fig.tight_layout()
    return fig


def describe_gains(gains: pd.DataFrame) -> str:
    """One sentence per model, generated from :func:`~minif2.evaluation.evaluate.paired_gains`'s table, so the
    prose beside a plot always says what that run's numbers say.

    >>> g = pd.DataFrame({"task": ["a", "b", "c"], "model": "m", "base": "b0", "gain": [0.1, 0.01, -0.2],
    ...                   "gain_low": [0.05, -0.02, -0.3], "gain_high": [0.15, 0.04, -0.1],
    ...                   "verdict": ["gain", "tie", "loss"]})
    >>> print(describe_gains(g))
    m beats b0 on 1 of 3 tasks (a +0.100); ties on 1 (interval includes zero: b +0.010); loses on 1 (c -0.200).
    """
    lines = []
    for model, group in gains.groupby("model", sort=False):
        by = {v: group[group["verdict"] == v] for v in ("gain", "tie", "loss")}
        named = {v: ", ".join(f"{r.task} {r.gain:+.3f}" for r in rows.itertuples()) for v, rows in by.items()}
        text = f"{model} beats {group['base'].iloc[0]} on {len(by['gain'])} of {len(group)} tasks"
        text += f" ({named['gain']})" if named["gain"] else ""
        if len(by["tie"]):
            text += f"; ties on {len(by['tie'])} (interval includes zero: {named['tie']})"
        if len(by["loss"]):
            text += f"; loses on {len(by['loss'])} ({named['loss']})"
        lines.append(text + ".")
    return "\n".join(lines)
