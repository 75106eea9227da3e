"""F2LLM's margin rule on retrieved candidates (docs/recipe.md §1), as three small functions.

Given each query's candidates best first (``mining/retrieve.py``), :func:`exclusion_masks` marks the
texts that are never negatives (the positive, texts equal to it, the query's own text),
:func:`apply_rule` drops ranks 1..``skip_top``, scores >= ``max_score`` and scores >=
``relative_margin`` x the positive's score (or, with ``skip_order="survivors"``, the filters first and
then the first ``skip_top`` survivors, as sentence-transformers does), counting what each removed, and
:func:`select_negatives` keeps the best ``n`` survivors. Texts count as equal under
:func:`minif2.schema.normalize_text`.

This module does no I/O and no encoding (``mine.py`` does). Taught in
``notebooks/02_hard_negative_mining.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SKIP_ORDERS", "RuleResult", "apply_rule", "exclusion_masks", "select_negatives", "source_corpus"]

SKIP_ORDERS = ("ranks", "survivors")  # skip retrieval ranks 1..n, then filter (kit) | filter, then skip (ST)


@dataclass
class RuleResult:
    """What the rule made of a (queries x candidates) block, candidates best first."""

    keep: np.ndarray  # (n, k) bool: passed every filter
    rank: np.ndarray  # (n, k) int: 1-based rank among candidates that are not excluded
    removed: dict[str, int]  # filter -> candidates it removed, in the order applied


def exclusion_masks(
    indices: np.ndarray, positive_ids: list[list[int]], corpus_keys: np.ndarray, query_keys: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Candidates that are never negatives, as (n, k) masks in the order they are applied.

    ``positive_ids[i]``: corpus ids of row i's positive(s) (rows with the same query share
    them); ``corpus_keys``: an int id of each document's :func:`normalize_text`;
    ``query_keys[i]``: the same id of row i's query text (or None to allow the query's text).
    """
    safe = np.where(indices >= 0, indices, 0)
    candidate_keys = np.where(indices >= 0, corpus_keys[safe], -2)  # (n, k)
    single = np.array([len(ids) == 1 for ids in positive_ids], dtype=bool)
    first = np.array([ids[0] for ids in positive_ids], dtype=np.int64)
    positive = np.zeros(indices.shape, dtype=bool)
    identical = np.zeros(indices.shape, dtype=bool)
    positive[single] = indices[single] == first[single, None]  # the common case, vectorised
    identical[single] = candidate_keys[single] == corpus_keys[first[single]][:, None]
    for row in np.flatnonzero(~single):  # queries with several positives
        positive[row] = np.isin(indices[row], positive_ids[row])
        identical[row] = np.isin(candidate_keys[row], corpus_keys[positive_ids[row]])
    identical &= ~positive
    masks = {"positive": positive, "identical_to_positive": identical}
    if query_keys is not None:
        masks["same_as_query"] = candidate_keys == query_keys[:, None]
    return masks


def apply_rule(
    indices: np.ndarray,
    scores: np.ndarray,
    positive_scores: np.ndarray,
    excluded: dict[str, np.ndarray],
    *,
    top_k: int = 100,
    skip_top: int = 5,
    max_score: float | None = 0.8,
    relative_margin: float | None = 0.95,
    skip_order: str = "ranks",
) -> RuleResult:
    """F2LLM's filter on retrieved candidates (``indices``/``scores`` (n, k), best first; -1 = none).

    Excluded candidates take no rank; of the first ``top_k`` others, ranks <= ``skip_top``
    go, then scores >= ``max_score``, then scores >= ``pos - (1 - relative_margin) |pos|``.
    Worked example, one query, positive score 0.8, candidates scored
    [0.9 (the positive), 0.85, 0.79, 0.77, 0.5] with top_k=4, skip_top=1: the positive
    is excluded; 0.85 is rank 1 (skip_top); 0.79 >= 0.8 x 0.95 = 0.76 (margin); 0.77
    also (margin); 0.5 is rank 4 and kept.

    ``skip_order="survivors"`` is sentence-transformers' order (``mine_hard_negatives``: the score
    filters first, then ``range_min`` of the candidates they left; docs/recipe.md §1 gives both readings
    of F2LLM's sentence). In the example 0.85 then goes to max_score, 0.79 and 0.77 to the margin, and
    0.5, the first survivor, to the skip: nothing is kept.
    """
    removed: dict[str, int] = {}
    blocked = indices < 0
    for name, mask in excluded.items():
        hit = mask & ~blocked
        removed[name] = int(hit.sum())
        blocked |= hit
    rank = np.cumsum(~blocked, axis=1)
    alive = ~blocked & (rank <= top_k)
    if skip_order not in SKIP_ORDERS:
        raise ValueError(f"apply_rule: skip_order must be one of {SKIP_ORDERS}, got {skip_order!r}")
    steps: list[tuple[str, np.ndarray]] = [("skip_top", rank <= skip_top)] if skip_order == "ranks" else []
    if max_score is not None:
        steps.append(("max_score", scores >= max_score))
    if relative_margin is not None:
        threshold = positive_scores - (1.0 - relative_margin) * np.abs(positive_scores)  # (n,)
        steps.append(("relative_margin", scores >= threshold[:, None]))
    for name, mask in steps:
        hit = alive & mask
        removed[name] = int(hit.sum())
        alive &= ~hit
    if skip_order == "survivors":  # the first skip_top candidates the filters left
        hit = alive & (np.cumsum(alive, axis=1) <= skip_top)
        removed["skip_top"] = int(hit.sum())
        alive &= ~hit
    return RuleResult(keep=alive, rank=rank, removed=removed)


def select_negatives(keep: np.ndarray, need: int | np.ndarray) -> np.ndarray:
    """The first ``need`` kept candidates of each row (they are sorted best first), as a mask.

    >>> select_negatives(np.array([[True, False, True, True]]), 2).astype(int).tolist()
    [[1, 0, 1, 0]]
    """
    need = np.broadcast_to(np.asarray(need), (keep.shape[0],))
    return keep & (np.cumsum(keep, axis=1) <= need[:, None])


def source_corpus(rows: Any, extra_corpus: Sequence[str] = ()) -> list[str]:
    """The documents a source mines from: positives, then given negatives, then extras; exact duplicates once.

    >>> source_corpus([{"positive": "a", "negatives": ["b", "a"]}, {"positive": "c", "negatives": []}], ["b", "d"])
    ['a', 'c', 'b', 'd']
    """
    return list(
        dict.fromkeys([r["positive"] for r in rows] + [n for r in rows for n in r["negatives"]] + list(extra_corpus))
    )
