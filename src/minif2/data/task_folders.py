"""Held-out evaluation tasks on disk: the contract between the data step and evaluation.

A task is a folder ``<eval_tasks>/<name>/`` with ``task.json``
``{"name", "type", "instruction", "source"}`` and, by type (the kit's convention):

- retrieval: a BEIR folder: ``corpus.jsonl`` ``{_id, title, text}``, ``queries.jsonl``
  ``{_id, text}``, ``qrels/test.tsv`` with header ``query-id<TAB>corpus-id<TAB>score``;
- sts: ``test.jsonl`` ``{sentence1, sentence2, score}``;
- classification: ``train.jsonl`` + ``test.jsonl`` ``{text, label}``;
- clustering: ``test.jsonl`` ``{text, label}``;
- pair_classification: ``test.jsonl`` ``{sentence1, sentence2, label}`` (label 0/1).

The data step (``data/unify.py``) writes them; ``evaluation/evaluate.py`` scores them; both use
:func:`eval_texts` so that training data is de-duplicated against exactly what is
scored (F2LLM, docs/recipe.md §1). This module does not score anything. Taught in
``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from minif2.data.validation import read_jsonl, read_tsv

__all__ = ["EVAL_TYPES", "eval_texts", "list_eval_tasks", "read_eval_task", "write_eval_task", "write_task_folder"]

EVAL_TYPES = ("retrieval", "sts", "classification", "clustering", "pair_classification")
_ROW_SCHEMA = {
    "sts": {"sentence1": str, "sentence2": str, "score": (int, float)},
    "classification": {"text": str, "label": (str, int)},
    "clustering": {"text": str, "label": (str, int)},
    "pair_classification": {"sentence1": str, "sentence2": str, "label": int},
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


def read_eval_task(folder: str | Path) -> dict[str, Any]:
    """``task.json`` plus its data: ``corpus``/``queries`` dicts and ``qrels`` {qid: {did: score}}
    for retrieval, else ``train``/``test`` row lists. Bad lines raise ``UnifyError``."""
    folder = Path(folder)
    meta = json.loads((folder / "task.json").read_text())
    kind = meta["type"]
    if kind == "retrieval":
        meta["corpus"] = {r["_id"]: r for _, r in read_jsonl(folder / "corpus.jsonl", {"_id": str, "text": str})}
        meta["queries"] = {
            r["_id"]: r["text"] for _, r in read_jsonl(folder / "queries.jsonl", {"_id": str, "text": str})
        }
        qrels: dict[str, dict[str, int]] = {}
        for _, row in read_tsv(folder / "qrels" / "test.tsv", ("query-id", "corpus-id", "score")):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(float(row["score"]))
        meta["qrels"] = qrels
    else:
        for split in ("train", "test") if kind == "classification" else ("test",):
            meta[split] = [r for _, r in read_jsonl(folder / f"{split}.jsonl", _ROW_SCHEMA[kind])]
    return meta


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
        else:
            for row in task.get("train", []) + task["test"]:
                yield from (row["sentence1"], row["sentence2"]) if "sentence1" in row else (row["text"],)
