"""Held-out evaluation tasks on disk: the contract between the data step and evaluation.

A task is a folder ``<eval_tasks>/<name>/`` with ``task.json``
``{"name", "type", "instruction", "source"}`` and, by type (the kit's convention):

- retrieval: a BEIR folder: ``corpus.jsonl`` ``{_id, title, text}``, ``queries.jsonl``
  ``{_id, text}``, ``qrels/test.tsv`` with header ``query-id<TAB>corpus-id<TAB>score`` (integer
  relevance grades, as mteb's pytrec_eval takes them);
- sts: ``test.jsonl`` ``{sentence1, sentence2, score}``;
- classification: ``train.jsonl`` + ``test.jsonl`` ``{text, label}``;
- clustering: ``test.jsonl`` ``{text, label}``;
- pair_classification: ``test.jsonl`` ``{sentence1, sentence2, label}`` (label 0/1);
- reranking: ``test.jsonl`` ``{query, positive: [texts], negative: [texts]}``: each query's candidates
  (mteb's reranking rows; scored by MAP and MRR over the candidates);
- summarization: ``test.jsonl`` ``{text, human_summaries: [texts], machine_summaries: [texts],
  relevance: [numbers]}``, one human score per machine summary (SummEval's rows; mteb's Spearman).

Together with retrieval, STS, classification, clustering and pair classification these are the
seven task types of MTEB(eng, v2) (docs/recipe.md §1), so category averages can be taken offline.

The data step (``data/unify.py``) writes them; ``evaluation/evaluate.py`` scores them; both use
:func:`eval_texts` so that training data is de-duplicated against exactly what is
scored (F2LLM, docs/recipe.md §1). This module does not score anything. Taught in
``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from minif2.data.validation import Numbers, UnifyError, read_jsonl, read_tsv

__all__ = [
    "EVAL_TYPES",
    "TaskFormatError",
    "eval_texts",
    "list_eval_tasks",
    "read_eval_task",
    "write_eval_task",
    "write_task_folder",
]

EVAL_TYPES = ("retrieval", "sts", "classification", "clustering", "pair_classification", "reranking", "summarization")
_ROW_SCHEMA = {
    "sts": {"sentence1": str, "sentence2": str, "score": (int, float)},
    "classification": {"text": str, "label": (str, int)},
    "clustering": {"text": str, "label": (str, int)},
    "pair_classification": {"sentence1": str, "sentence2": str, "label": int},
    "reranking": {"query": str, "positive": list, "negative": list},
    "summarization": {"text": str, "human_summaries": list, "machine_summaries": list, "relevance": Numbers},
}


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_eval_task(root: str | Path, name: str, task_type: str, instruction: str, source: str, **data: Any) -> Path:
    """Write one task folder ``<root>/<name>``. Keyword data by type:

    - retrieval: ``corpus`` [{_id, title, text}], ``queries`` [{_id, text}], ``qrels`` [(query_id, corpus_id, score)]
    - sts: ``test`` [{sentence1, sentence2, score}]
    - classification: ``train`` and ``test`` [{text, label}]
    - clustering: ``test`` [{text, label}]
    - pair_classification: ``test`` [{sentence1, sentence2, label}]
    - reranking: ``test`` [{query, positive: [..], negative: [..]}]
    - summarization: ``test`` [{text, human_summaries: [..], machine_summaries: [..], relevance: [..]}]
    """
    return write_task_folder(Path(root) / name, name, task_type, instruction, source, **data)


def write_task_folder(
    folder: str | Path, name: str, task_type: str, instruction: str = "", source: str = "local", **data: Any
) -> Path:
    """Write a task into ``folder`` itself (any folder name), as :func:`write_eval_task` does under a root;
    for users packaging their own data and for tests."""
    if task_type not in EVAL_TYPES:
        raise ValueError(f"task '{name}': type '{task_type}' is not one of {EVAL_TYPES}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if task_type == "retrieval":
        _write_jsonl(folder / "corpus.jsonl", data["corpus"])
        _write_jsonl(folder / "queries.jsonl", data["queries"])
        (folder / "qrels").mkdir(exist_ok=True)
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{int(s)}" for q, d, s in data["qrels"]]
        (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        for split in ("train", "test") if task_type == "classification" else ("test",):
            _write_jsonl(folder / f"{split}.jsonl", data[split])
    meta = {"name": name, "type": task_type, "instruction": instruction, "source": source}
    (folder / "task.json").write_text(json.dumps(meta, indent=2))
    return folder


def list_eval_tasks(root: str | Path) -> list[Path]:
    """Task folders (those with a ``task.json``) under ``root``, sorted by name."""
    return sorted(p.parent for p in Path(root).glob("*/task.json"))


class TaskFormatError(UnifyError):
    """A task folder or file breaks the format above; the message names the file, line and field."""


def _rows(path: Path, schema: dict[str, Any], optional: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every row of a task's jsonl file, type-checked (``optional`` fields when present); no lenient mode."""
    if not path.is_file():
        raise TaskFormatError(
            path,
            None,
            None,
            "missing file: a task of this type needs it",
            f"Write one JSON object per line with {list(schema)}",
        )
    try:
        rows = [row for _, row in read_jsonl(path, schema, optional=optional)]
    except UnifyError as err:
        raise TaskFormatError(err.path, err.line, err.field, err.reason, "Fix the task file") from None
    if not rows:
        raise TaskFormatError(path, None, None, "no rows: a task needs at least one example", "Add rows")
    return rows


def _grade(path: Path, line: int, text: str) -> int:
    """A qrels score as mteb takes it: an integer relevance grade (graded: 0, 1, 2, ... are kept).

    mteb's retrieval metrics run pytrec_eval, whose ``RelevanceEvaluator`` refuses non-integer
    relevance, so a fraction such as 0.5 is an error here rather than silently truncated to 0.
    """
    try:
        value = float(text)
    except ValueError:
        raise TaskFormatError(path, line, "score", f"not a number: {text!r}", "Fix the qrels file") from None
    if not math.isfinite(value) or not value.is_integer():
        raise TaskFormatError(
            path,
            line,
            "score",
            f"not an integer relevance grade: {text!r}",
            "mteb (pytrec_eval) takes integer grades such as 0, 1, 2; scale fractional judgements to integers",
        )
    return int(value)


def _qrels(folder: Path) -> tuple[Path, dict[str, dict[str, int]]]:
    """``qrels/test.tsv`` (BEIR) or ``qrels.tsv`` -> {query-id: {corpus-id: score}}.

    A (query, document) pair judged twice is reported with a warning that counts such lines and names
    the first conflicting pair of lines; the last line wins (as a BEIR loader's dict does).
    """
    path = next((p for p in (folder / "qrels" / "test.tsv", folder / "qrels.tsv") if p.is_file()), None)
    if path is None:
        raise TaskFormatError(
            folder / "qrels" / "test.tsv",
            None,
            None,
            "missing file: a retrieval task needs relevance judgements",
            "Write query-id<TAB>corpus-id<TAB>score lines under a header",
        )
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    repeats, conflicts = 0, []
    try:
        for line, row in read_tsv(path, ("query-id", "corpus-id", "score")):
            grade, pair = _grade(path, line, row["score"]), (row["query-id"], row["corpus-id"])
            docs = qrels.setdefault(pair[0], {})
            if pair[1] in docs and docs[pair[1]] != grade:
                conflicts.append(f"line {line} grades {pair} {grade}, line {first_line[pair]} {docs[pair[1]]}")
            repeats += pair[1] in docs and docs[pair[1]] == grade
            docs[pair[1]] = grade
            first_line.setdefault(pair, line)
    except TaskFormatError:
        raise
    except UnifyError as err:
        raise TaskFormatError(err.path, err.line, err.field, err.reason, err.args[0].split(". ", 1)[-1]) from None
    if conflicts:
        warnings.warn(
            f"{path}: {len(conflicts)} conflicting duplicate judgement(s), the last line wins ({conflicts[0]}; ...)",
            stacklevel=2,
        )
    if repeats:
        warnings.warn(f"{path}: {repeats} duplicate qrels line(s) repeat an earlier judgement", stacklevel=2)
    return path, qrels


def _check(ok: bool, path: Path, field_name: str | None, reason: str) -> None:
    if not ok:
        raise TaskFormatError(path, None, field_name, reason, "Fix the task file")


def read_eval_task(folder: str | Path) -> dict[str, Any]:
    """``task.json`` plus its data, checked: the ONE reader of task folders (evaluation uses it too).

    Returns the task.json fields and, for retrieval, ``corpus`` {id: row}, ``queries`` {id: text}
    and ``qrels`` {query id: {doc id: score}}; for the other types ``train``/``test`` row lists.
    Every problem raises :class:`TaskFormatError` naming the file, line and field.
    """
    folder = Path(folder)
    meta = _read_task_json(folder / "task.json")
    kind = meta["type"]
    if kind == "retrieval":
        return {**meta, **_read_retrieval(folder)}
    for split in ("train", "test") if kind == "classification" else ("test",):
        meta[split] = _rows(folder / f"{split}.jsonl", _ROW_SCHEMA[kind])
    _check_rows(kind, meta, folder / "test.jsonl")
    return meta


def _read_task_json(spec_path: Path) -> dict[str, Any]:
    """A task folder's ``task.json``: a mapping with a name, one of :data:`EVAL_TYPES` and text fields."""
    if not spec_path.is_file():
        raise TaskFormatError(
            spec_path,
            None,
            None,
            "missing file: every task folder needs a task.json",
            'Write {"name": ..., "type": ..., "instruction": ..., "source": ...}',
        )
    try:
        meta = json.loads(spec_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TaskFormatError(spec_path, err.lineno, None, f"not valid JSON ({err.msg})", "Fix task.json") from None
    for key in ("name", "type"):
        _check(
            isinstance(meta, dict) and isinstance(meta.get(key), str) and bool(meta[key].strip()),
            spec_path,
            key,
            "missing or empty",
        )
    for key in ("instruction", "source"):
        _check(key not in meta or isinstance(meta[key], str), spec_path, key, 'must be a text ("" for none)')
    kind = meta["type"]
    _check(kind in EVAL_TYPES, spec_path, "type", f"is {kind!r}; expected one of {list(EVAL_TYPES)}")
    return meta


def _read_retrieval(folder: Path) -> dict[str, Any]:
    """A retrieval task's ``corpus``, ``queries`` and ``qrels``, every qrels id found in the other two."""
    corpus = _rows(folder / "corpus.jsonl", {"_id": (str, int), "text": str}, {"title": str})
    queries = _rows(folder / "queries.jsonl", {"_id": (str, int), "text": str})
    meta: dict[str, Any] = {}
    meta["corpus"] = {str(r["_id"]): {**r, "_id": str(r["_id"]), "title": str(r.get("title") or "")} for r in corpus}
    meta["queries"] = {str(r["_id"]): r["text"] for r in queries}
    qrels_path, meta["qrels"] = _qrels(folder)
    unknown_q = sorted(set(meta["qrels"]) - set(meta["queries"]))
    unknown_d = sorted({d for docs in meta["qrels"].values() for d in docs} - set(meta["corpus"]))
    _check(
        not unknown_q and not unknown_d,
        qrels_path,
        "query-id" if unknown_q else "corpus-id",
        f"ids not found in queries.jsonl {unknown_q[:5]} / corpus.jsonl {unknown_d[:5]}; every id in qrels must exist",
    )
    return meta


def _check_rows(kind: str, meta: dict[str, Any], test_path: Path) -> None:
    """What each task type's scorer needs of its rows (varied scores, labels seen in training, ...)."""
    if kind == "sts":
        scores = {float(r["score"]) for r in meta["test"]}
        _check(
            len(scores) > 1, test_path, "score", f"every score equals {scores.pop()}; a correlation needs varied scores"
        )
    elif kind == "classification":
        unseen = sorted({str(r["label"]) for r in meta["test"]} - {str(r["label"]) for r in meta["train"]})
        _check(
            not unseen,
            test_path,
            "label",
            f"label(s) {unseen[:5]} never occur in train.jsonl; the classifier cannot predict them",
        )
    elif kind == "clustering":
        _check(
            len({str(r["label"]) for r in meta["test"]}) > 1,
            test_path,
            "label",
            "needs at least 2 different labels to cluster",
        )
    elif kind == "pair_classification":
        bad = sorted({r["label"] for r in meta["test"]} - {0, 1})
        _check(not bad, test_path, "label", f"must be 0 or 1, found {bad[:5]}")
    elif kind == "reranking":
        _check_lists(meta["test"], test_path, ("positive", "negative"))
    elif kind == "summarization":
        _check_lists(meta["test"], test_path, ("human_summaries", "machine_summaries"))
        for line, row in enumerate(meta["test"], start=1):
            scores = row["relevance"]
            ok = len(scores) == len(row["machine_summaries"]) and all(_is_number(x) for x in scores)
            _check(ok, test_path, "relevance", f"row {line}: needs one number per machine summary")
        _check(
            len({float(x) for r in meta["test"] for x in r["relevance"]}) > 1,
            test_path,
            "relevance",
            "every score is the same; a correlation needs varied scores",
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_lists(rows: list[dict[str, Any]], path: Path, fields: tuple[str, ...]) -> None:
    """Each of ``fields`` is a non-empty list of non-empty strings in every row."""
    for line, row in enumerate(rows, start=1):
        for name in fields:
            ok = bool(row[name]) and all(isinstance(t, str) and t.strip() for t in row[name])
            _check(ok, path, name, f"row {line}: needs a non-empty list of non-empty texts")


def eval_texts(root: str | Path) -> Iterator[str]:
    """Every text a held-out task scores (queries, documents, sentences, train and test texts)."""
    for folder in list_eval_tasks(root):
        task = read_eval_task(folder)
        if task["type"] == "retrieval":
            yield from task["queries"].values()
            for doc in task["corpus"].values():
                yield doc["text"]
                if doc.get("title"):
                    yield f"{doc['title']} {doc['text']}"
        elif task["type"] == "reranking":
            for row in task["test"]:
                yield from [row["query"], *row["positive"], *row["negative"]]
        elif task["type"] == "summarization":
            for row in task["test"]:
                yield from [row["text"], *row["human_summaries"], *row["machine_summaries"]]
        else:
            for row in task.get("train", []) + task["test"]:
                yield from (row["sentence1"], row["sentence2"]) if "sentence1" in row else (row["text"],)
