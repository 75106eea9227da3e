"""Every score with a 95 % interval, and "better than the base" as a paired comparison on the same rows.

A main score measured on a few hundred rows is itself an estimate: for an accuracy near 0.6 on 50
rows the standard error is about 0.07, so a gain of 0.01 is noise (notebook 04 teaches this). The
interval here is a percentile bootstrap over the task's rows (Efron & Tibshirani 1993, ch. 13):
resample the rows with replacement, recompute the main score, take the 2.5 and 97.5 percentiles.
A comparison of two models resamples the SAME rows for both and bootstraps the difference, so row
difficulty, shared by both, cancels (a paired bootstrap).

The per-row material comes from mteb's own saved predictions (``mteb.evaluate(...,
prediction_folder=...)``), so the point estimate is mteb's main score and only the resampling is ours:

- retrieval: each query's nDCG@10 (reranking: its average precision) from mteb's scores; the mean;
- STS: cosine and gold score per pair; Spearman's rho on the resample;
- classification: each test row's accuracy averaged over mteb's 10 few-shot experiments; the mean;
- pair classification: cosine and label per pair; average precision on the resample;
- clustering: mteb's v-measure is already a mean over 10 bootstrap samples of the texts (k-means on
  each); the interval is the percentiles of those 10 samples (paired: of their differences; the same
  seed gives both models the same samples). Ten samples make a coarse interval: read it as such.

Summarisation tasks get no interval yet (``nan``). This module computes no embeddings; it reads what
``evaluation/evaluate.py`` saved. Taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import average_precision_score

from minif2.evaluation.retrieval import ndcg_at_k

__all__ = ["BOOTSTRAP_SAMPLES", "RowScores", "bootstrap_interval", "paired_interval", "row_scores", "verdict"]

BOOTSTRAP_SAMPLES = 1000  # resamples per interval: the percentiles move by < 0.005 between seeds at this size


@dataclass(eq=False)  # compared by identity: pandas compares tables' attrs when it concatenates them
class RowScores:
    """Enough of one model's outputs on one task to recompute its main score on any resample of rows.

    ``kind`` says how: ``mean`` of ``values`` (one score per row), ``spearman`` or ``ap`` of
    (``values``, ``gold``) pairs, or ``experiments`` (``values`` = mteb's per-bootstrap scores).
    """

    task: str
    kind: Literal["mean", "spearman", "ap", "experiments"]
    values: np.ndarray
    gold: np.ndarray | None = None
    texts: int | None = None  # clustering: the texts scored (``values`` then holds mteb's bootstrap samples)

    @property
    def rows(self) -> int:
        """How many values a resample draws from (queries, pairs, test rows; clustering: mteb's samples)."""
        return len(self.values)

    @property
    def scored(self) -> int:
        """How many rows of the task were scored (the ``rows`` column of results.csv)."""
        return self.texts if self.texts is not None else self.rows

    def statistic(self, idx: np.ndarray | None = None) -> float:
        """The main score on rows ``idx`` (all rows when None)."""
        v = self.values if idx is None else self.values[idx]
        g = self.gold if idx is None or self.gold is None else self.gold[idx]
        if self.kind in ("mean", "experiments"):
            return float(np.mean(v))
        if self.kind == "spearman":
            rho = spearmanr(v, g).statistic
            return float(rho) if np.isfinite(rho) else 0.0
        return float(average_precision_score(g, v)) if 0 < g.sum() < len(g) else 0.0

    def statistics(self, idx: np.ndarray) -> np.ndarray:
        """The main score on each row of ``idx`` (resamples x rows) at once: what :meth:`statistic` gives
        for each, in numpy (Spearman as Pearson's r of average ranks, as scipy computes it); ``ap`` loops.
        Blocks of resamples keep the arrays near 2M values (16 MB) whatever the task's size."""
        step = max(1, 2_000_000 // max(idx.shape[1], 1))
        if len(idx) > step:
            return np.concatenate([self.statistics(idx[i : i + step]) for i in range(0, len(idx), step)])
        if self.kind in ("mean", "experiments"):
            return self.values[idx].mean(axis=1)
        if self.kind == "ap":
            return np.array([self.statistic(i) for i in idx])
        x, y = (rankdata(a[idx], axis=1) for a in (self.values, self.gold))
        x, y = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample of equal values: no correlation
            rho = (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
        return np.where(np.isfinite(rho), np.clip(rho, -1.0, 1.0), 0.0)


def _retrieval_rows(predictions: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k: int) -> np.ndarray:
    """Each judged query's nDCG@k from mteb's saved scores (ties broken by document id, as pytrec_eval does)."""
    out = []
    for qid in sorted(qrels):
        scores = predictions.get(qid, {})
        ranked = sorted(scores, key=lambda d: (-scores[d], d))
        out.append(ndcg_at_k(ranked, {d: g for d, g in qrels[qid].items() if g > 0}, k))
    return np.asarray(out)


def _average_precision(ranked: list[str], relevant: set[str]) -> float:
    """Average precision of one ranking (MAP's per-query term).

    >>> _average_precision(["a", "b", "c"], {"a", "c"})  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked, 1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant) if relevant else 0.0


def row_scores(task: Any, predictions: Any, scores: dict[str, Any]) -> RowScores | None:
    """Per-row material of one model on one loaded mteb task, from mteb's predictions and scores.

    ``predictions`` is the ``["default"]["test"]`` entry of mteb's ``<task>_predictions.json``;
    ``scores`` is the task result's ``scores["test"][0]``. None for a type without an interval.
    """
    kind, name = task.metadata.type, task.metadata.name
    if kind in ("Retrieval", "Reranking"):
        split = task.dataset["default"]["test"]
        qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in split["relevant_docs"].items()}
        if kind == "Retrieval":
            return RowScores(name, "mean", _retrieval_rows(predictions, qrels, 10))
        ranked = {q: sorted(s, key=lambda d: (-s[d], d)) for q, s in predictions.items()}
        aps = [_average_precision(ranked.get(q, []), {d for d, g in qrels[q].items() if g > 0}) for q in sorted(qrels)]
        return RowScores(name, "mean", np.asarray(aps))
    test = task.dataset["test"] if "test" in task.dataset else task.dataset["default"]["test"]
    if kind == "STS":
        return RowScores(name, "spearman", np.asarray(predictions["cosine_scores"]), np.asarray(test["score"]))
    if kind == "Classification":
        gold = np.asarray(test["label"])
        correct = np.mean([np.asarray(run) == gold for run in predictions], axis=0)
        return RowScores(name, "mean", correct.astype(float))
    if kind == "PairClassification":
        return RowScores(name, "ap", np.asarray(predictions["cosine_scores"]), np.asarray(test["labels"]))
    if kind == "Clustering":
        (per_level,) = scores["v_measures"].values()
        return RowScores(name, "experiments", np.asarray(per_level, dtype=float), texts=len(test))
    return None


def _resamples(rows: int, seed: int, n: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, rows, size=(n, rows))


def bootstrap_interval(scores: RowScores, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` interval of ``scores``' main score: percentile bootstrap over rows (or, for
    ``experiments``, the percentiles of mteb's own bootstrap samples)."""
    tail = 100 * (1 - level) / 2
    if scores.kind == "experiments":
        low, high = np.percentile(scores.values, [tail, 100 - tail])
        return float(low), float(high)
    boot = scores.statistics(_resamples(scores.rows, seed))
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)


def paired_interval(
    base: RowScores, other: RowScores, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``other`` minus ``base`` on the same rows: (gain, low, high), the rows resampled together.

    Refuses scores of different tasks or row counts: a paired comparison needs the same rows.
    """
    if base.task != other.task or base.rows != other.rows or base.kind != other.kind:
        raise ValueError(
            f"paired_interval: {base.task} ({base.rows} rows) vs {other.task} ({other.rows}): not the same rows"
        )
    gain = other.statistic() - base.statistic()
    tail = 100 * (1 - level) / 2
    if base.kind == "experiments":
        low, high = np.percentile(other.values - base.values, [tail, 100 - tail])
        return gain, float(low), float(high)
    idx = _resamples(base.rows, seed)
    boot = other.statistics(idx) - base.statistics(idx)
    low, high = np.percentile(boot, [tail, 100 - tail])
    return gain, float(low), float(high)


def verdict(low: float, high: float) -> str:
    """``gain`` when the whole interval of a difference is above zero, ``loss`` below, else ``tie``.

    >>> verdict(0.01, 0.05), verdict(-0.02, 0.03), verdict(-0.04, -0.01)
    ('gain', 'tie', 'loss')
    """
    return "gain" if low > 0 else "loss" if high < 0 else "tie"
