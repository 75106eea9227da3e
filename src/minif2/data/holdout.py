"""Held-out tasks from the user's own sources: a seeded split of each import, made before training data.

A learner who fine-tunes on their own data wants to know whether it helped on THAT data
(issue 27). For every import with a ``holdout`` fraction (``ImportSpec.holdout``, else
``UnifyConfig.holdout``), ``minif2 unify`` sets that fraction aside and writes it as a normal task
folder ``<eval_tasks>/<name>_heldout/`` (``task_folders.py``), whose fingerprint the manifest records:

- labelled files (``classification_labels``, ``classification_examples``): a classification task; the
  held-out rows are split again 50/50 into the task's own train and test (a classifier is fitted on
  the first), both stratified (:func:`stratified_split`) so every label also occurs where it is needed;
- ``clustering`` files: a clustering task of the held-out texts and their labels;
- scored files (``sts``): an STS task of the held-out pairs with their scores;
- everything else (pairs, pairs with negatives, NLI, BEIR folders, F2LLM parquet, hub datasets): a
  retrieval task: each held-out query -> its positives, among every held-out positive, the held-out
  rows' own negatives and, for a BEIR folder, corpus documents that no sample uses (distractors).
  Classification samples from the hub or F2LLM files (label as document) give a classification task.

Retrieval splits keep all samples of one query together. The held-out texts then belong to
``eval_texts(eval_tasks)``, so unify's de-duplication (``dedup.py``) removes every training sample that
shares a text with them: the training data never contains a held-out text. The documents of the other
training samples are NOT distractors: they would be de-duplicated out of training. Not handled:
near-duplicates (as in ``dedup.py``); STS or clustering datasets from the hub (held out as retrieval).
Taught in ``notebooks/06_beyond_f2llm.ipynb`` (Train on your own data) and the README.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minif2.data.adapters import SHAPES, _adapt_rows, _beir_text
from minif2.data.task_folders import write_eval_task
from minif2.data.validation import SkipReport, UnifyError, check_record, read_jsonl
from minif2.instructions import instruction_for
from minif2.provenance import folder_fingerprint
from minif2.schema import Sample, text_hash

__all__ = [
    "MAX_DISTRACTORS",
    "ROW_SHAPES",
    "hold_out_source",
    "retrieval_task",
    "split_by_query",
    "stratified_split",
]

ROW_SHAPES = {"classification_labels": "classification", "classification_examples": "classification"}
ROW_SHAPES |= {"clustering": "clustering", "sts": "sts"}  # file shapes split as rows (labels and scores kept)
MAX_DISTRACTORS = 2000  # BEIR corpus documents no sample uses, added to a held-out corpus (a seeded draw)


def stratified_split(rows: list[dict], test_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Split labelled rows into (train, test) label by label, so every test label also occurs in train.

    Each label's rows are shuffled (seeded) and ``round(n * test_fraction)`` of them go to test, but
    never all: a label with one row stays in train. A plain shuffle-and-cut can put every row of a rare
    label in test (issue 21: all ``numpy`` docstrings of one harvest), where a classifier trained on
    the train split cannot predict it and mteb's scoring stops.

    >>> rows = [{"label": "a"}] * 4 + [{"label": "b"}]
    >>> train, test = stratified_split(rows, 0.5, seed=0)
    >>> sorted(r["label"] for r in train), sorted(r["label"] for r in test)
    (['a', 'a', 'b'], ['a', 'a'])
    """
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[str(row["label"])].append(row)
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        cut = min(int(round(len(group) * test_fraction)), len(group) - 1)
        test += group[:cut]
        train += group[cut:]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def split_by_query(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, held): a seeded ``fraction`` of the distinct queries (at least one, never all) is held out,
    with every sample of those queries, so no held-out query is also trained on.

    >>> s = [Sample(q, "doc " + q, [], "retrieval", "src", "") for q in "abcdefghij"]
    >>> train, held = split_by_query(s, 0.2, seed=0)
    >>> len(train), len(held), {x.query for x in held} & {x.query for x in train}
    (8, 2, set())
    """
    keys = sorted({text_hash(s.query) for s in samples})
    random.Random(seed).shuffle(keys)
    n = min(max(1, round(len(keys) * fraction)), len(keys) - 1)
    held_keys = set(keys[:n])
    train = [s for s in samples if text_hash(s.query) not in held_keys]
    return train, [s for s in samples if text_hash(s.query) in held_keys]


def retrieval_task(held: list[Sample], distractors: list[str] = ()) -> dict[str, Any]:
    """BEIR data of held-out samples: identical texts are one document; a query's positives are relevant;
    its negatives and ``distractors`` are documents that no query is judged relevant to.

    >>> t = retrieval_task([Sample("q", "p", ["n"], "retrieval", "s", "")], ["x"])
    >>> [d["text"] for d in t["corpus"]], t["queries"], t["qrels"]
    (['p', 'n', 'x'], [{'_id': 'q0', 'text': 'q'}], [('q0', 'd0', 1)])
    """
    corpus: list[dict[str, str]] = []
    doc_id: dict[str, str] = {}

    def doc(text: str) -> str:
        h = text_hash(text)
        if h not in doc_id:
            doc_id[h] = f"d{len(corpus)}"
            corpus.append({"_id": doc_id[h], "title": "", "text": text})
        return doc_id[h]

    relevant: dict[str, set[str]] = defaultdict(set)
    text_of: dict[str, str] = {}
    for s in held:
        relevant[text_hash(s.query)].add(doc(s.positive))
        text_of.setdefault(text_hash(s.query), s.query)
    for text in [n for s in held for n in s.negatives] + list(distractors):
        doc(text)
    order = list(text_of)
    queries = [{"_id": f"q{i}", "text": text_of[h]} for i, h in enumerate(order)]
    qrels = [(f"q{i}", d, 1) for i, h in enumerate(order) for d in sorted(relevant[h], key=lambda x: int(x[1:]))]
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def _valid_rows(
    path: str, shape: str, lenient: bool, report: SkipReport
) -> list[tuple[int, dict[str, Any]]]:  # fmt: skip
    """The rows of a labelled or scored jsonl file that pass its shape's schema (bad ones raise, or are
    counted in lenient mode), as ``(line, row)``."""
    schema, rows = SHAPES[shape][1], []
    for line, row in read_jsonl(path, {}, lenient, report):
        try:
            rows.append((line, check_record(row, schema, path, line)))
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
    return rows


def _row_task(shape: str, held: list[dict], seed: int) -> dict[str, Any]:
    """Task data of held-out raw rows: classification (its own stratified 50/50), clustering or STS."""
    if ROW_SHAPES[shape] == "classification":
        rows = [{"text": r["text"], "label": r["label"]} for r in held]
        train, test = stratified_split(rows, 0.5, seed)
        return {"train": train, "test": test}
    if shape == "clustering":
        return {"test": [{"text": r["text"], "label": r["label"]} for r in held]}
    return {"test": [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "score": r["score"]} for r in held]}


def _hold_out_rows(
    name: str, shape: str, path: str, options: dict[str, Any], fraction: float, seed: int, lenient: bool,
    report: SkipReport,
) -> tuple[list[Sample], str, dict[str, Any], int]:  # fmt: skip
    """Split a labelled or scored jsonl file as rows (stratified by label), adapt the training rows."""
    numbered = _valid_rows(path, shape, lenient, report)
    labelled = shape != "sts"
    rows = [{"label": row["label"] if labelled else 0, "line": line, "row": row} for line, row in numbered]
    if labelled:
        train, held = stratified_split(rows, fraction, seed)
    else:
        order = list(rows)
        random.Random(seed).shuffle(order)
        cut = min(max(1, round(len(order) * fraction)), len(order) - 1)
        held, train = order[:cut], order[cut:]
    train.sort(key=lambda r: r["line"])  # the file's order, as without a holdout
    samples = _adapt_rows(shape, [(r["line"], r["row"]) for r in train], path, name, lenient, report, options)
    return samples, ROW_SHAPES[shape], _row_task(shape, [r["row"] for r in held], seed), len(held)


def _beir_distractors(folder: str, used: set[str], seed: int) -> list[str]:
    """Up to :data:`MAX_DISTRACTORS` corpus documents of a BEIR folder that no sample uses (seeded draw)."""
    texts = [_beir_text(r) for _, r in read_jsonl(Path(folder) / "corpus.jsonl", {"text": str}, True, SkipReport())]
    free = sorted({t for t in texts if text_hash(t) not in used})
    return random.Random(seed).sample(free, min(MAX_DISTRACTORS, len(free)))


def _hold_out_samples(
    shape: str, path: str | None, samples: list[Sample], fraction: float, seed: int
) -> tuple[list[Sample], str, dict[str, Any], int]:  # fmt: skip
    """Split adapted samples: classification (label as document) stratified by label, else by query."""
    if samples and samples[0].task == "classification" and shape in ("classification_labels", "f2llm"):
        rows = [{"label": s.positive, "sample": s} for s in samples]
        train, held = stratified_split(rows, fraction, seed)
        texts = [{"text": r["sample"].query, "label": r["label"]} for r in held]
        task = _row_task("classification_labels", texts, seed)
        return [r["sample"] for r in train], "classification", task, len(held)
    train, held = split_by_query(samples, fraction, seed)
    used = {text_hash(t) for s in samples for t in (s.query, s.positive)}
    distractors = _beir_distractors(path, used, seed) if shape == "beir" and path else []
    return train, "retrieval", retrieval_task(held, distractors), len(held)


def hold_out_source(
    name: str, shape: str, path: str | None, options: dict[str, Any], fraction: float, seed: int, lenient: bool,
    report: SkipReport, eval_root: Path, load: Callable[[], list[Sample]],
) -> tuple[list[Sample], dict[str, Any]]:  # fmt: skip
    """Hold out ``fraction`` of one import as the task ``<name>_heldout`` under ``eval_root``.

    ``load`` reads the import as samples (unify's own import path), for every shape not split as rows.
    Returns the training samples (not yet de-duplicated) and the manifest entry of the task.
    """
    if not 0 < fraction < 1:
        raise UnifyError(path or name, None, "holdout", f"is {fraction}; a fraction in (0, 1) holds out data")
    if path is not None and shape in ROW_SHAPES:
        train, kind, data, held = _hold_out_rows(name, shape, path, options, fraction, seed, lenient, report)
        instruction = instruction_for(name, kind)
    else:
        samples = load()
        if len({text_hash(s.query) for s in samples}) < 2:
            raise UnifyError(path or name, None, "holdout", "needs at least 2 distinct queries to hold one out")
        train, kind, data, held = _hold_out_samples(shape, path, samples, fraction, seed)
        instruction = samples[0].instruction
    task_name = f"{name}_heldout"
    if held == 0:
        raise UnifyError(
            path or name, None, "holdout", f"{fraction} of this source holds out no row", "Raise `holdout` or add rows"
        )
    folder = write_eval_task(eval_root, task_name, kind, instruction, name, **data)
    counts = {k: len(v) for k, v in data.items()}
    entry = {"type": kind, "source": name, **counts, "held_out": held, "fraction": fraction}
    return train, {task_name: {**entry, "fingerprint": folder_fingerprint(folder)}}
