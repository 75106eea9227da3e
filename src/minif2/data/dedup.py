"""De-duplication of training samples against evaluation data, by normalised-text hashing.

F2LLM (docs/recipe.md §1) trains on MTEB training splits and, where a source has no training
split, de-duplicates it against the MTEB test sets, so that evaluation measures
generalisation and not recall. Here a text is normalised (Unicode NFKC, case-folded,
whitespace collapsed) and hashed; a training sample whose query or positive hashes
to any evaluation text is removed, a matching negative is dropped from its list, and
exact repeats of a (query, positive) pair inside a source are removed too. Every
removal is counted in a :class:`DedupReport`.

It does not find near-duplicates (paraphrases, shared boilerplate); MinHash would.
Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from minif2.schema import Sample, text_hash

__all__ = ["DedupReport", "dedup_samples"]


@dataclass
class DedupReport:
    """What de-duplication removed, per source (nothing is dropped silently)."""

    eval_texts: int = 0  # distinct normalised evaluation texts hashed
    removed_eval_overlap: Counter = field(
        default_factory=Counter
    )  # source -> samples whose query/positive is an eval text
    removed_repeats: Counter = field(default_factory=Counter)  # source -> repeated (query, positive) pairs
    dropped_negatives: Counter = field(default_factory=Counter)  # source -> negatives that were eval texts
    examples: list[dict[str, str]] = field(default_factory=list)  # first few removed samples, for a look

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval_texts": self.eval_texts,
            "removed_eval_overlap": dict(self.removed_eval_overlap),
            "removed_repeats": dict(self.removed_repeats),
            "dropped_negatives": dict(self.dropped_negatives),
            "total_removed": sum(self.removed_eval_overlap.values()) + sum(self.removed_repeats.values()),
            "examples": self.examples,
        }


def dedup_samples(
    samples: Iterable[Sample], eval_texts: Iterable[str], report: DedupReport | None = None, max_examples: int = 10
) -> tuple[list[Sample], DedupReport]:
    """Remove samples that overlap evaluation texts or repeat an earlier (query, positive).

    Worked example: with eval text "Hello  World", the samples ("hello world", "x") and
    ("y", "HELLO WORLD") are both removed; ("y", "z") appears twice and is kept once.
    """
    report = report if report is not None else DedupReport()
    banned = {text_hash(t) for t in eval_texts}
    report.eval_texts = max(report.eval_texts, len(banned))
    seen: set[tuple[str, str]] = set()
    kept: list[Sample] = []
    for sample in samples:
        q, p = text_hash(sample.query), text_hash(sample.positive)
        if q in banned or p in banned:
            report.removed_eval_overlap[sample.source] += 1
            if len(report.examples) < max_examples:
                which = "query" if q in banned else "positive"
                report.examples.append(
                    {
                        "source": sample.source,
                        "reason": f"{which} is in the eval data",
                        "text": (sample.query if q in banned else sample.positive)[:120],
                    }
                )
            continue
        if (q, p) in seen:
            report.removed_repeats[sample.source] += 1
            continue
        seen.add((q, p))
        negatives = [n for n in sample.negatives if text_hash(n) not in banned]
        if len(negatives) != len(sample.negatives):
            report.dropped_negatives[sample.source] += len(sample.negatives) - len(negatives)
            sample = replace(sample, negatives=negatives)
        kept.append(sample)
    return kept, report
