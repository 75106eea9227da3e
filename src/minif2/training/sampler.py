"""F2LLM's multi-task batch sampler: every micro-batch from ONE source (docs/recipe.md §1, §1a; notebook 03).

Two rules pick the source of the next step; both draw from ``random.Random(seed + epoch)``,
seeded THE SAME on every rank, as F2LLM's released ``MultiLoader`` does (``F2LLM/run.py``,
docs/recipe.md §1a): every rank trains the same source at the same step, which is what makes
the in-batch all-gather of ``losses.gather`` legal. The paper's wording ("each GPU
independently picks") is not what the code does.

- ``rule="f2llm"`` (default, the released code): ``rng.choices(names, weights)`` with each
  source's weight FIXED for the epoch at its number of batches; a draw that lands on a source
  with no batch left removes that source and yields nothing. Large sources therefore stay
  likely to the end while small ones run dry early.
- ``rule="batches_left"`` (the kit's option): the weight is the number of batches a source has
  LEFT, so an epoch is a uniform shuffle of all batches and every source runs dry near the end.
- ``rule="even"`` (QZhou-Embedding's data grouping, docs/recipe.md §2): every source with a batch left
  is equally likely, whatever its size, so small sources are not drowned by large ones; a source that
  runs dry drops out (the kit's reading: QZhou does not say what happens then).

Within a source, a seeded per-epoch permutation is cut into global batches of
``batch_size * world_size`` consecutive indices; rank r takes the r-th slice of
``batch_size``, so ranks see different samples (accelerate's sharding of each DataLoader).
As in F2LLM's DataLoaders (``drop_last=False``), the last, partial batch is kept: with one
process it stays short; with several it is completed from the start of the source's epoch
order, as accelerate's ``even_batches=True`` does, so every rank gets a full batch.
The sampler yields indices only; ``training/trainer.py`` turns them into rows, and
:func:`negatives_for_step` picks the step's k of the 24 mined negatives.

Example, one process, two sources of 4 and 2 samples, batch size 2::

    >>> s = SourceBatchSampler({"a": 4, "b": 2}, batch_size=2, seed=0)
    >>> [src for src, _ in s]  # 2 batches of "a", 1 of "b", in a seeded order
    ['b', 'a', 'a']
"""

from __future__ import annotations

import logging
import math
import random
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.compute as pc
from datasets.table import InMemoryTable

from minif2.config import MINING
from minif2.data.corpus import CorpusData, is_corpus_layout, read_corpus_layout
from minif2.model import DEFAULT_QUERY_TEMPLATE, format_query
from minif2.schema import read_unified, training_family

__all__ = [
    "NEGATIVES_PER_STEP",
    "NEGATIVES_PER_STEP_V2",
    "SAMPLER_RULES",
    "MicroBatch",
    "SourceBatchSampler",
    "TrainingData",
    "load_training_data",
    "negatives_for_step",
    "negatives_per_step",
]

SAMPLER_RULES = ("f2llm", "batches_left", "even")  # fixed weights (F2LLM/run.py) | batches left (kit) | even (QZhou)


class SourceBatchSampler:
    """Yields ``(source, indices)`` micro-batches for THIS rank; indices point into that source.

    Args:
        source_sizes: ``{source: number of samples}``; the order is part of the seed.
        batch_size: micro-batch size per rank (F2LLM: 16 per GPU).
        seed: base seed; epoch e uses ``random.Random(seed + e)`` for the source order
            (F2LLM: ``random.Random(epoch)``, i.e. seed 0).
        rank, world_size: this process and the number of data-parallel processes.
        drop_last: drop each source's last incomplete global batch (reported in
            :attr:`remainder` and :meth:`summary`). ``False`` (F2LLM) keeps it: short with one
            process, completed from the start of the source's epoch order with several.
        rule: ``"f2llm"`` (fixed weights, the released code), ``"batches_left"`` or ``"even"`` (QZhou; see
            the module docstring).

    Iteration and resumption: iterating to the end moves the sampler to the next epoch;
    :meth:`set_epoch` jumps to an epoch's start unless the sampler is already in it (as
    after :meth:`load_state_dict`), so ``for epoch ...: sampler.set_epoch(epoch); for b in
    sampler: ...`` resumes mid-epoch with nothing repeated or lost. :meth:`state_dict` counts
    the micro-batches HANDED OUT; if a loader prefetches, save the number actually trained.
    """

    def __init__(
        self,
        source_sizes: Mapping[str, int],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        rule: str = "f2llm",
    ) -> None:
        if rule not in SAMPLER_RULES:
            raise ValueError(f"SourceBatchSampler: rule must be one of {SAMPLER_RULES}, got {rule!r}")
        if batch_size < 1:
            raise ValueError(f"SourceBatchSampler: batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"SourceBatchSampler: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        bad = {s: n for s, n in source_sizes.items() if not isinstance(n, (int, np.integer)) or n < 0}
        if bad:
            raise ValueError(f"SourceBatchSampler: source sizes must be non-negative integers, got {bad}")
        self.source_sizes = {str(s): int(n) for s, n in source_sizes.items()}
        self.batch_size, self.seed, self.rank, self.world_size, self.drop_last = (
            batch_size,
            seed,
            rank,
            world_size,
            drop_last,
        )
        self.rule = rule
        self.epoch, self.step = 0, 0
        self._cache: dict[str, Any] = {"epoch": None}
        empty = [s for s, n in self.source_sizes.items() if self.batches_per_source[s] == 0 and n > 0]
        if empty:
            warnings.warn(
                f"SourceBatchSampler: source(s) {empty} have fewer samples than one global batch "
                f"({self.global_batch_size}) and are skipped entirely with drop_last=True",
                stacklevel=2,
            )

    # -- sizes -------------------------------------------------------------------------------
    @property
    def global_batch_size(self) -> int:
        """Samples per step over all ranks: ``batch_size * world_size``."""
        return self.batch_size * self.world_size

    @property
    def batches_per_source(self) -> dict[str, int]:
        """Global batches (= steps) each source contributes to an epoch."""
        g = self.global_batch_size
        return {s: (n // g if self.drop_last else math.ceil(n / g)) for s, n in self.source_sizes.items()}

    @property
    def remainder(self) -> dict[str, int]:
        """Samples of each source left out of every epoch by ``drop_last`` (0 when it is False)."""
        g = self.global_batch_size
        return {s: (n % g if self.drop_last else 0) for s, n in self.source_sizes.items()}

    def __len__(self) -> int:
        """Micro-batches per epoch for this rank (the same on every rank: they step together)."""
        return sum(self.batches_per_source.values())

    def summary(self) -> dict[str, Any]:
        """Counts for the run log: per-source samples, batches and samples dropped."""
        batches, dropped = self.batches_per_source, self.remainder
        return {
            "rule": self.rule,
            "global_batch_size": self.global_batch_size,
            "steps_per_epoch": len(self),
            "samples_per_epoch": sum(self.source_sizes.values()) - sum(dropped.values()),
            "dropped_per_epoch": sum(dropped.values()),
            "sources": {
                s: {"samples": n, "batches": batches[s], "dropped": dropped[s]} for s, n in self.source_sizes.items()
            },
        }

    # -- the epoch's plan ------------------------------------------------------------------------
    def schedule(self, epoch: int | None = None) -> list[str]:
        """The source of every step of ``epoch`` (default: the current one), identical on all ranks.

        ``f2llm``: the loop of ``MultiLoader.__iter__`` (``F2LLM/run.py``, docs/recipe.md §1a) with
        weights fixed at each source's batch count; a draw of a source with no batch left removes it
        and yields no step. ``batches_left``: weights = batches left; ``even``: equal weights (QZhou);
        in both a source at zero drops out.
        Sources with no batch at all are left out (F2LLM's loop would fail on an empty loader).
        """
        epoch = self.epoch if epoch is None else epoch
        rng = random.Random(self.seed + epoch)
        left = {s: k for s, k in self.batches_per_source.items() if k > 0}
        order: list[str] = []
        if self.rule == "f2llm":
            names, weights = list(left), [left[s] for s in left]
            while names:
                source = rng.choices(names, weights=weights)[0]
                if left[source] > 0:
                    order.append(source)
                    left[source] -= 1
                else:  # the source's iterator is exhausted: drop it, no batch this draw
                    i = names.index(source)
                    names.pop(i)
                    weights.pop(i)
            return order
        while left:
            names = list(left)
            weights = [left[s] for s in names] if self.rule == "batches_left" else None  # None: uniform (even)
            source = rng.choices(names, weights=weights)[0]
            order.append(source)
            left[source] -= 1
            if left[source] == 0:
                del left[source]
        return order

    def _permutation(self, source: str) -> np.ndarray:
        """This epoch's shuffled order of ``source``'s indices, seeded by (seed, epoch, source name)."""
        key = [self.seed, self.epoch, zlib.crc32(source.encode())]
        return np.random.default_rng(key).permutation(self.source_sizes[source])

    def _plan(self) -> tuple[list[str], list[int]]:
        """Schedule of the current epoch and, per step, the index of that batch within its source."""
        if self._cache["epoch"] != self.epoch:
            order = self.schedule(self.epoch)
            seen: dict[str, int] = {}
            batch_no = []
            for source in order:
                batch_no.append(seen.get(source, 0))
                seen[source] = batch_no[-1] + 1
            self._cache = {"epoch": self.epoch, "order": order, "batch_no": batch_no, "perms": {}}
        return self._cache["order"], self._cache["batch_no"]

    def _indices(self, source: str, batch_no: int) -> list[int]:
        perms = self._cache["perms"]
        if source not in perms:
            perms[source] = self._permutation(source)
        g = self.global_batch_size
        chunk = perms[source][batch_no * g : (batch_no + 1) * g]  # this step's global batch
        if len(chunk) == g:
            mine = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        elif self.world_size == 1:  # last, partial batch of one process: kept short (DataLoader)
            mine = chunk
        else:  # several processes: completed from the epoch's start, as accelerate's even_batches=True
            chunk = np.concatenate([chunk, np.resize(perms[source], g - len(chunk))])
            mine = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return [int(i) for i in mine]

    def __iter__(self) -> Iterator[tuple[str, list[int]]]:
        order, batch_no = self._plan()
        while self.step < len(order):
            source, k = order[self.step], batch_no[self.step]
            self.step += 1
            yield source, self._indices(source, k)
        self.epoch, self.step = self.epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        """Go to the start of ``epoch``; a no-op if already in it (keeps a restored mid-epoch position)."""
        if epoch != self.epoch:
            self.epoch, self.step = epoch, 0

    # -- resumption ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Position (epoch, step) and what must match on resume; JSON-serialisable."""
        epoch, step = self.epoch, self.step
        if step >= len(self) > 0:  # a finished epoch is the start of the next
            epoch, step = epoch + 1, 0
        return {
            "epoch": epoch,
            "step": step,
            "seed": self.seed,
            "global_batch_size": self.global_batch_size,
            "drop_last": self.drop_last,
            "rule": self.rule,
            "source_sizes": dict(self.source_sizes),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` left off. Seed, sizes, drop_last, rule and the GLOBAL batch must
        match (the number of ranks may change if ``batch_size * world_size`` stays the same, except
        that a partial last batch is completed differently). States saved before the rule existed
        used ``batches_left``."""
        mine = self.state_dict()
        state = {"rule": "batches_left", **state}
        for key in ("seed", "global_batch_size", "drop_last", "rule", "source_sizes"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"SourceBatchSampler.load_state_dict: '{key}' differs: checkpoint has {state.get(key)!r}, "
                    f"this run has {mine[key]!r}; resume with the checkpoint's data and batch settings"
                )
        self.epoch, self.step = int(state["epoch"]), int(state["step"])


# Negatives trained per micro-batch, by family: F2LLM v1 draws 7 of the 24 mined for retrieval and clustering
# and keeps the one of classification (F2LLM/run.py collate_fn, arguments.py num_hard_neg; docs/recipe.md §1a).
NEGATIVES_PER_STEP = {"retrieval": MINING["negatives_per_step"], "classification": 1, "clustering": 7}
# F2LLM-v2 trains clustering on 9 (arguments.py num_hard_neg_clustering, v2; docs/recipe.md §1b)
NEGATIVES_PER_STEP_V2 = {**NEGATIVES_PER_STEP, "clustering": 9}


def negatives_per_step(setting: int | Mapping[str, int], family: str) -> int:
    """How many negatives a micro-batch of ``family`` trains on (TrainConfig's ``num_negatives``, the one
    way to set them): one number for every family, or a per-family mapping; a family it omits keeps
    F2LLM's value. F2LLM-v2's 9 for clustering (``num_hard_neg_clustering``, docs/recipe.md §1b) is
    ``{clustering: 9}``.

    >>> negatives_per_step(NEGATIVES_PER_STEP_V2, "clustering"), negatives_per_step(3, "retrieval")
    (9, 3)
    >>> negatives_per_step({"retrieval": 5}, "classification"), negatives_per_step({"clustering": 9}, "clustering")
    (1, 9)
    """
    if isinstance(setting, Mapping):
        unknown = set(setting) - set(NEGATIVES_PER_STEP)
        if unknown:
            raise ValueError(f"num_negatives: unknown families {sorted(unknown)}; use {sorted(NEGATIVES_PER_STEP)}")
        return int({**NEGATIVES_PER_STEP, **setting}[family])
    return int(setting)


def negatives_for_step(rng: random.Random | int | str, available: int, k: int = 7) -> list[int]:
    """Which of a sample's ``available`` mined negatives to train on this step (docs/recipe.md §1a).

    F2LLM mines 24 negatives and, for each micro-batch, draws 7 of them at random: the
    SAME 7 positions for every sample of the batch. Classification (1 negative) keeps
    its one; with ``available <= k`` all are used, in a shuffled order.

    Args:
        rng: a ``random.Random``, or a seed for one (an int, or a string such as
            ``f"{seed}-{epoch}-{step}"``, which makes the draw resumable).
        available: negatives per sample in this source (24, or 1 for classification).
        k: how many to draw (7 in F2LLM v1; v2 uses 9 for clustering, docs/recipe.md §1b).

    Example:
        >>> negatives_for_step("0-0-0", available=1)
        [0]
        >>> len(negatives_for_step(random.Random(0), available=24))
        7
    """
    if available < 0 or k < 0:
        raise ValueError(f"negatives_for_step: available and k must be >= 0, got available={available}, k={k}")
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    return rng.sample(range(available), min(k, available))


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
    document_ids: list[list[int]] | None = None  # token ids of positives + negatives (pre-tokenized corpus), or None


@dataclass
class TrainingData:
    """Per-source train / validation splits with each source's family and usable negatives."""

    train: dict[str, Any]  # source -> datasets.Dataset
    validation: dict[str, Any]
    family: dict[str, str]
    negatives_available: dict[str, int]  # min over rows of len(negatives): every row can give that many
    report: dict[str, Any] = field(default_factory=dict)  # counts for the run log
    corpus: CorpusData | None = None  # the documents of a corpus-layout folder (rows hold ids), else None

    @property
    def sizes(self) -> dict[str, int]:
        return {s: len(d) for s, d in self.train.items()}

    def texts(self, source: str, column: str) -> Sequence[str]:
        """Every training ``query`` or ``positive`` text of ``source``, whichever the layout (the head's texts)."""
        rows = self.train[source]
        if self.corpus is None or column == "query":
            return rows[column]
        return self.corpus.texts(rows.with_format("arrow")["positive_id"])

    def batch(
        self,
        source: str,
        indices: list[int],
        negative_ids: list[int],
        split: str = "train",
        template: str = DEFAULT_QUERY_TEMPLATE,
        instruction_tasks: Sequence[str] | None = None,
        token_ids: bool = False,
    ) -> MicroBatch:
        """The texts of rows ``indices`` of ``source``, keeping negatives ``negative_ids`` of each row.

        ``instruction_tasks``: only rows of these task types keep their instruction (None: every row, F2LLM).
        ``token_ids``: also hand the documents' stored token ids (a pre-tokenized corpus, ``data/pretokenize.py``).
        """
        rows = (self.train if split == "train" else self.validation)[source].select(indices)
        keep = [instruction_tasks is None or task in instruction_tasks for task in rows["task"]]
        instructions = [instr if k else None for instr, k in zip(rows["instruction"], keep, strict=True)]
        queries = [format_query(q, instr or None, template) for q, instr in zip(rows["query"], instructions)]
        if self.corpus is None:
            negatives = [row_negs[j] for row_negs in rows["negatives"] for j in negative_ids]
            return MicroBatch(
                source, self.family[source], queries, list(rows["positive"]), negatives, len(negative_ids)
            )
        doc_ids = list(rows["positive_id"]) + [row_negs[j] for row_negs in rows["negative_ids"] for j in negative_ids]
        texts = self.corpus.texts(doc_ids)
        tokens = self.corpus.token_ids(doc_ids) if token_ids else None
        b = len(indices)
        return MicroBatch(source, self.family[source], queries, texts[:b], texts[b:], len(negative_ids), tokens)


def _negative_counts(data: Any, column: str = "negatives") -> tuple[int, int]:
    """Fewest and most negatives in a row, counted by Arrow on the column (issue 24: no Python list per row)."""
    lengths = pc.list_value_length(data.with_format("arrow")[column])
    bounds = pc.min_max(lengths)
    return int(bounds["min"].as_py()), int(bounds["max"].as_py())


def _read_sources(folder: Path) -> tuple[dict[str, Any], CorpusData | None]:
    """``({source: Dataset}, corpus)``: the inline form through datasets' memory-mapped Arrow cache, or the
    corpus layout's tables memory-mapped (``data/corpus.py``), wrapped as datasets without a copy."""
    if not is_corpus_layout(folder):
        return read_unified(folder), None
    corpus = read_corpus_layout(folder)
    return {s: datasets.Dataset(InMemoryTable(t)) for s, t in corpus.rows.items()}, corpus


def load_training_data(folder: str | Path, validation_fraction: float = 0.01, seed: int = 0) -> TrainingData:
    """Read a unified (or mined) folder; split each source ``1 - f`` / ``f`` with ``seed`` (recipe §1a: 1 %, seed 0).

    A source keeps at least one validation row when ``f > 0`` (datasets rounds the test
    size up). A source whose rows carry different numbers of negatives trains on the
    smallest number; that, and rows with none, are reported, not hidden.
    """
    folder = Path(folder)
    sources, corpus = _read_sources(folder)
    column = "negatives" if corpus is None else "negative_ids"
    train, validation, family, available, report = {}, {}, {}, {}, {"sources": {}}
    for source, data in sources.items():
        if len(data) == 0:
            report["sources"][source] = {"rows": 0, "skipped": "empty"}
            continue
        tasks = set(data.unique("task"))
        families = {training_family(t) for t in tasks}
        if len(families) != 1:
            raise ValueError(
                f"{folder / (source + '.parquet')}: column 'task' mixes families {sorted(families)}; "
                "one source must be one family (split it in the unify step)"
            )
        fewest, most = _negative_counts(data, column)
        if validation_fraction > 0 and len(data) > 1:
            split = data.train_test_split(test_size=validation_fraction, seed=seed, shuffle=True)
            train[source], validation[source] = split["train"], split["test"]
        else:
            train[source] = data
        family[source] = families.pop()
        available[source] = fewest
        report["sources"][source] = {
            "rows": len(data),
            "train": len(train[source]),
            "validation": len(validation.get(source, [])),
            "family": family[source],
            "negatives_min": fewest,
            "negatives_max": most,
        }
        if fewest != most:
            # counted in the report (negatives_min/max): a step draws at most the fewest a row of the source has
            log.info("%s: rows have %d to %d negatives; a step can draw at most %d", source, fewest, most, fewest)
    return TrainingData(train, validation, family, available, report, corpus)
