"""Training data for the trainer: the 99 % / 1 % split and the texts of one micro-batch (SPEC §1a).

F2LLM keeps one parquet per source and splits each 99 % train / 1 % validation with
seed 0; validation reports both losses per source. Every micro-batch comes from ONE
source (``sampler.py`` picks which rows) and trains on the same k of that source's
mined negatives for every row (``sampler.negatives_for_step``). Queries carry their
task instruction (``Instruct: ...\\nQuery: ...``); positives and negatives carry none.

This module reads the unified/mined folder (``schema.read_unified``) and builds text
lists; it does not tokenise, embed or compute losses (``trainer.py``). Taught in
``notebooks/03_contrastive_training.ipynb``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import DEFAULT_QUERY_TEMPLATE, format_query
from .schema import read_unified, training_family

__all__ = ["MicroBatch", "TrainingData", "load_training_data"]

log = logging.getLogger(__name__)


@dataclass
class MicroBatch:
    """The texts of one micro-batch: b queries, b positives, b*k negatives (row-major)."""

    source: str
    family: str  # retrieval | classification | clustering: decides the in-batch loss
    queries: list[str]
    positives: list[str]
    negatives: list[str]  # row i's negatives are negatives[i*k:(i+1)*k]
    k: int  # negatives per row this step (0 when the source has none)


@dataclass
class TrainingData:
    """Per-source train / validation splits with each source's family and usable negatives."""

    train: dict[str, Any]  # source -> datasets.Dataset
    validation: dict[str, Any]
    family: dict[str, str]
    negatives_available: dict[str, int]  # min over rows of len(negatives): every row can give that many
    report: dict[str, Any] = field(default_factory=dict)  # counts for the run log

    @property
    def sizes(self) -> dict[str, int]:
        return {s: len(d) for s, d in self.train.items()}

    def batch(self, source: str, indices: list[int], negative_ids: list[int], split: str = "train",
              template: str = DEFAULT_QUERY_TEMPLATE) -> MicroBatch:
        """The texts of rows ``indices`` of ``source``, keeping negatives ``negative_ids`` of each row."""
        rows = (self.train if split == "train" else self.validation)[source].select(indices)
        queries = [format_query(q, instr or None, template) for q, instr in zip(rows["query"], rows["instruction"])]
        negatives = [row_negs[j] for row_negs in rows["negatives"] for j in negative_ids]
        return MicroBatch(source, self.family[source], queries, list(rows["positive"]), negatives, len(negative_ids))


def load_training_data(folder: str | Path, validation_fraction: float = 0.01, seed: int = 0) -> TrainingData:
    """Read a unified (or mined) folder and split every source ``1 - f`` / ``f`` with ``seed`` (SPEC §1a: 1 %, 0).

    A source keeps at least one validation row when ``f > 0`` (datasets rounds the test
    size up). A source whose rows carry different numbers of negatives trains on the
    smallest number; that, and rows with none, are reported, not hidden.
    """
    folder = Path(folder)
    sources = read_unified(folder)
    train, validation, family, available, report = {}, {}, {}, {}, {"sources": {}}
    for source, data in sources.items():
        if len(data) == 0:
            report["sources"][source] = {"rows": 0, "skipped": "empty"}
            continue
        tasks = set(data.unique("task"))
        families = {training_family(t) for t in tasks}
        if len(families) != 1:
            raise ValueError(f"{folder / (source + '.parquet')}: column 'task' mixes families {sorted(families)}; "
                             "one source must be one family (split it in the unify step)")
        counts = [len(n) for n in data["negatives"]]
        if validation_fraction > 0 and len(data) > 1:
            split = data.train_test_split(test_size=validation_fraction, seed=seed, shuffle=True)
            train[source], validation[source] = split["train"], split["test"]
        else:
            train[source] = data
        family[source] = families.pop()
        available[source] = min(counts)
        report["sources"][source] = {
            "rows": len(data), "train": len(train[source]), "validation": len(validation.get(source, [])),
            "family": family[source], "negatives_min": min(counts), "negatives_max": max(counts),
        }
        if min(counts) != max(counts):
            log.warning("%s: rows have %d to %d negatives; training uses %d per row", source, min(counts), max(counts), min(counts))
    return TrainingData(train, validation, family, available, report)
