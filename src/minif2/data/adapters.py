"""Adapters: raw dataset shapes -> F2LLM's one sample shape (query, positive, negatives).

F2LLM (docs/recipe.md §1) trains every task in one format; QZhou (docs/recipe.md §2) lists how each
source shape becomes it. One small function per shape, each saying which rule it
applies; all take already-validated rows (dicts) and return ``list[Sample]`` with the
task instruction of the source attached (queries only, docs/recipe.md §1):

- :func:`from_pairs`            (query, document), title -> body, question -> answer
- :func:`from_beir`             a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
- :func:`from_classification_labels`    text -> its label's name; 1 other label as negative
- :func:`from_classification_examples`  text -> another text of its label; 1 of another label
- :func:`from_clustering`       text -> another text of its cluster; texts of other clusters
- :func:`from_nli`              premise -> entailed hypothesis; neutral + contradicting hypotheses negatives (F2LLM)
- :func:`from_sts`              pairs scoring >= threshold, in both directions

:func:`import_jsonl` reads a JSON-lines file for any of these shapes through the
validation layer (``data/validation.py``); ``loaders.py`` reads datasets (hub or local parquet,
F2LLM's published files) through the same adapters. Adapters do not mine negatives (``mining/mine.py``)
and do not de-duplicate (``data/dedup.py``). Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from minif2.data.validation import SkipReport, TextList, UnifyError, check_record, read_jsonl, read_tsv
from minif2.instructions import instruction_for
from minif2.schema import NUM_NEGATIVES, Sample

__all__ = [
    "SHAPES",
    "from_beir",
    "from_classification_examples",
    "from_classification_labels",
    "from_clustering",
    "from_nli",
    "from_pairs",
    "from_sts",
    "import_jsonl",
]


Row = Mapping[str, Any]


def _instruction(source: str, task: str, instruction: str | None) -> str:
    return instruction if instruction is not None else instruction_for(source, task)


def from_pairs(
    rows: Iterable[Row],
    source: str,
    query_field: str = "query",
    positive_field: str = "positive",
    task: str = "retrieval",
    instruction: str | None = None,
    negatives_field: str = "negatives",
) -> list[Sample]:
    """(query, document) pairs as retrieval samples; title->body and question->answer are the
    same rule with other field names (QZhou, docs/recipe.md §2). A row's own hard negatives
    (a list of texts in ``negatives_field``) are kept; mining may add to them.

    >>> from_pairs([{"title": "Tea", "body": "Tea is a drink."}], "t", "title", "body", instruction="")[0].positive
    'Tea is a drink.'
    """
    inst = _instruction(source, task, instruction)
    return [
        Sample(r[query_field], r[positive_field], list(r.get(negatives_field) or []), task, source, inst) for r in rows
    ]


def from_beir(
    folder: str | Path,
    source: str,
    split: str = "test",
    instruction: str | None = None,
    lenient: bool = False,
    report: SkipReport | None = None,
) -> list[Sample]:
    """A BEIR folder -> one retrieval sample per (query, relevant document) with score > 0.

    Document text is ``title + " " + text`` when a title exists (BEIR's convention). A
    qrels line naming an unknown query or document id is a :class:`UnifyError`.
    """
    folder = Path(folder)
    report = report if report is not None else SkipReport()
    corpus = {
        r["_id"]: _beir_text(r)
        for _, r in read_jsonl(folder / "corpus.jsonl", {"_id": str, "text": str}, lenient, report, {"title": str})
    }
    queries = {
        r["_id"]: r["text"] for _, r in read_jsonl(folder / "queries.jsonl", {"_id": str, "text": str}, lenient, report)
    }
    qrels = folder / "qrels" / f"{split}.tsv"
    inst = _instruction(source, "retrieval", instruction)
    samples = []
    for line, row in read_tsv(qrels, ("query-id", "corpus-id", "score"), lenient, report):
        try:
            try:
                score = float(row["score"])
            except ValueError:
                raise UnifyError(qrels, line, "score", f"wrong type: expected a number, got {row['score']!r}") from None
            if not math.isfinite(score):
                raise UnifyError(qrels, line, "score", f"not a number: the value is {row['score']!r}")
            for name, table in (("query-id", queries), ("corpus-id", corpus)):
                if row[name] not in table:
                    raise UnifyError(
                        qrels,
                        line,
                        name,
                        f"unknown id: '{row[name]}' is not in {'queries' if table is queries else 'corpus'}.jsonl",
                    )
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
            continue
        if score > 0:
            samples.append(Sample(queries[row["query-id"]], corpus[row["corpus-id"]], [], "retrieval", source, inst))
    return samples


def _beir_text(row: Row) -> str:
    title = (row.get("title") or "").strip()  # read_jsonl checked it is a text when present
    return f"{title} {row['text']}" if title else row["text"]


def _group(rows: Iterable[Row], text_field: str, label_field: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        groups[str(r[label_field])].append(r[text_field])
    return dict(groups)


def from_classification_labels(
    rows: Iterable[Row],
    source: str,
    seed: int = 0,
    label_names: Mapping[str, str] | None = None,
    text_field: str = "text",
    label_field: str = "label",
    instruction: str | None = None,
) -> list[Sample]:
    """Label-as-document: query = text, positive = its label's name, negative = one other
    label's name drawn at random (F2LLM, docs/recipe.md §1: n = 1 negative for classification).

    Needs at least two labels.
    """
    rows = list(rows)
    names = {str(k): v for k, v in (label_names or {}).items()}
    labels = sorted({str(r[label_field]) for r in rows})
    if len(labels) < 2:
        raise ValueError(f"source '{source}': classification needs at least 2 labels, got {labels}")
    rng, inst = random.Random(seed), _instruction(source, "classification", instruction)
    out = []
    for r in rows:
        label = str(r[label_field])
        other = rng.choice([x for x in labels if x != label])
        out.append(
            Sample(r[text_field], names.get(label, label), [names.get(other, other)], "classification", source, inst)
        )
    return out


def from_classification_examples(
    rows: Iterable[Row],
    source: str,
    seed: int = 0,
    text_field: str = "text",
    label_field: str = "label",
    instruction: str | None = None,
) -> list[Sample]:
    """Example-based: positive = another text of the same label, negative = a text of another
    label (docs/recipe.md §3's multi-class labelling; n = 1 as in F2LLM). Labels with one text are skipped."""
    return _same_group_samples(rows, source, "classification", 1, seed, text_field, label_field, instruction)


def from_clustering(
    rows: Iterable[Row],
    source: str,
    num_negatives: int = NUM_NEGATIVES["clustering"],
    seed: int = 0,
    text_field: str = "text",
    label_field: str = "label",
    instruction: str | None = None,
) -> list[Sample]:
    """(text, cluster) -> positive from the same cluster, ``num_negatives`` random texts from other
    clusters (F2LLM, docs/recipe.md §1: clustering trains like retrieval with 24 negatives; mining may replace them)."""
    return _same_group_samples(rows, source, "clustering", num_negatives, seed, text_field, label_field, instruction)


def _same_group_samples(
    rows: Iterable[Row],
    source: str,
    task: str,
    num_negatives: int,
    seed: int,
    text_field: str,
    label_field: str,
    instruction: str | None,
) -> list[Sample]:
    groups = _group(rows, text_field, label_field)
    if len(groups) < 2:
        raise ValueError(f"source '{source}': {task} needs at least 2 labels/clusters, got {sorted(groups)}")
    rng, inst = random.Random(seed), _instruction(source, task, instruction)
    out = []
    for label in sorted(groups):
        texts = groups[label]
        others = [t for other in sorted(groups) if other != label for t in groups[other]]
        for i, text in enumerate(texts):
            candidates = [t for j, t in enumerate(texts) if j != i and t != text]
            if not candidates:
                continue
            negatives = rng.sample(others, min(num_negatives, len(others)))
            out.append(Sample(text, rng.choice(candidates), negatives, task, source, inst))
    return out


_NLI_LABELS = {
    "entailment": "entailment",
    "0": "entailment",
    "neutral": "neutral",
    "1": "neutral",
    "contradiction": "contradiction",
    "2": "contradiction",
}  # MNLI/SNLI integer convention


def from_nli(
    rows: Iterable[Row], source: str, include_neutral: bool = True, instruction: str | None = None
) -> list[Sample]:
    """premise -> entailed hypothesis as positive, its neutral and contradicting hypotheses as hard negatives.

    The default is F2LLM's rule, as its seed explainer states it (docs/recipe.md §1: neutral OR
    contradicting hypotheses are hard negatives). ``include_neutral=False`` keeps contradictions only,
    the kit's stricter option (docs/recipe.md §4): a neutral hypothesis may still be true of the premise.
    QZhou's report names NLI pairs with their labels but not how they become negatives (§2).

    Labels: entailment/neutral/contradiction or 0/1/2 (MNLI). Premises without an
    entailed hypothesis give no sample.
    """
    by_premise: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        label = _NLI_LABELS.get(str(r["label"]).lower())
        if label is None:  # import_jsonl / load_hub_source name the file and line first (_adapt_rows)
            raise ValueError(f"source '{source}': NLI label {r['label']!r} is not one of {sorted(_NLI_LABELS)}")
        by_premise[r["premise"]][label].append(r["hypothesis"])
    inst = _instruction(source, "nli", instruction)
    out = []
    for premise, hyps in by_premise.items():
        negatives = hyps["contradiction"] + (hyps["neutral"] if include_neutral else [])
        out += [Sample(premise, pos, list(negatives), "nli", source, inst) for pos in hyps["entailment"]]
    return out


def from_sts(rows: Iterable[Row], source: str, threshold: float, instruction: str | None = None) -> list[Sample]:
    """Pairs whose score >= ``threshold`` become positives in BOTH directions (s1->s2, s2->s1);
    lower-scored pairs are not used (no negatives before mining)."""
    inst = _instruction(source, "sts", instruction)
    out = []
    for r in rows:
        if float(r["score"]) >= threshold:
            out.append(Sample(r["sentence1"], r["sentence2"], [], "sts", source, inst))
            out.append(Sample(r["sentence2"], r["sentence1"], [], "sts", source, inst))
    return out


# shape -> (adapter, schema of one jsonl row)
SHAPES: dict[str, tuple[Callable[..., list[Sample]], dict[str, Any]]] = {
    "pairs": (from_pairs, {"query": str, "positive": str}),
    "classification_labels": (from_classification_labels, {"text": str, "label": (str, int)}),
    "classification_examples": (from_classification_examples, {"text": str, "label": (str, int)}),
    "clustering": (from_clustering, {"text": str, "label": (str, int)}),
    "nli": (from_nli, {"premise": str, "hypothesis": str, "label": (str, int)}),
    "sts": (from_sts, {"sentence1": str, "sentence2": str, "score": (int, float)}),
}


def _adapt_rows(
    shape: str, numbered: Iterable[tuple[int, Any]], where: str | Path, source: str, lenient: bool, report: SkipReport,
    kwargs: dict[str, Any],
) -> list[Sample]:  # fmt: skip
    """Check each ``(line, row)`` of one raw shape (types, texts, NLI labels; naming file, line and field),
    skip and count bad rows in lenient mode, and adapt the rest. A pairs row may bring its own
    ``negatives`` (a list of texts); an STS source needs its ``threshold`` option."""
    if shape == "sts" and "threshold" not in kwargs:
        hint = "Add `options: {threshold: <score>}` to this import in the unify config"
        raise UnifyError(where, None, "threshold", "missing option: an STS source needs a score threshold", hint)
    schema, optional = SHAPES[shape][1], {}
    if shape == "pairs":
        schema = {kwargs.get("query_field", "query"): str, kwargs.get("positive_field", "positive"): str}
        optional = {kwargs.get("negatives_field", "negatives"): TextList}
    rows = []
    for line, row in numbered:
        try:
            check_record(row, schema, where, line, optional)
            if shape == "nli" and str(row["label"]).lower() not in _NLI_LABELS:
                raise UnifyError(where, line, "label", f"unknown NLI label {row['label']!r}: use {sorted(_NLI_LABELS)}")
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
            continue
        rows.append(row)
    return SHAPES[shape][0](rows, source, **kwargs)


def import_jsonl(
    path: str | Path,
    shape: str,
    source: str,
    lenient: bool = False,
    report: SkipReport | None = None,
    **adapter_kwargs: Any,
) -> list[Sample]:
    """Read a JSON-lines file of one raw shape (see ``SHAPES``) and adapt it; ``beir`` takes a folder.

    For ``pairs``, ``query_field`` / ``positive_field`` rename the two columns (e.g. title/body).
    """
    if shape == "beir":
        return from_beir(path, source, lenient=lenient, report=report, **adapter_kwargs)
    if shape not in SHAPES:
        raise ValueError(f"unknown shape '{shape}' for {path}: expected one of {sorted(SHAPES) + ['beir']}")
    report = report if report is not None else SkipReport()
    return _adapt_rows(shape, read_jsonl(path, {}, lenient, report), path, source, lenient, report, adapter_kwargs)
