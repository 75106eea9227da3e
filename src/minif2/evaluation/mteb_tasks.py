"""Local evaluation tasks: plain files on disk -> real ``mteb`` task objects.

So that anyone can score a model on their own data, offline, with MTEB's own scoring
code (docs/recipe.md §1a: F2LLM is evaluated with ``mteb``). A task is a folder with a
``task.json`` ``{"name", "type", "instruction", "source"}`` and, by type:

============== ============================================================ ===========================
type           files                                                        main score (mteb)
============== ============================================================ ===========================
retrieval      BEIR: ``corpus.jsonl`` {_id,title,text}, ``queries.jsonl``   nDCG@10
               {_id,text}, ``qrels/test.tsv`` (or ``qrels.tsv``) with the
               header ``query-id<TAB>corpus-id<TAB>score``
sts            ``test.jsonl`` {sentence1, sentence2, score} (any range)     Spearman of cosine
classification ``train.jsonl`` + ``test.jsonl`` {text, label}               accuracy (logistic regr.)
clustering     ``test.jsonl`` {text, label}                                 v-measure (mini-batch k-means)
pair_classif.  ``test.jsonl`` {sentence1, sentence2, label in {0, 1}}       average precision (cosine)
============== ============================================================ ===========================

Each loader returns an instance of a subclass of mteb's own ``AbsTaskRetrieval`` /
``AbsTaskSTS`` / ... so every number is computed by mteb. The task's instruction is
stored as its metadata ``prompt`` (empty: ``instructions.instruction_for`` its name
or type); the model wrapper (``evaluation/mteb_model.py``) puts it on
queries only. Files are checked as they are read; an error names the file, the line
and the field at fault.

This module does not write the kit's held-out tasks (``data/unify.py`` does, notebook 01)
and does not run models (``evaluation/evaluate.py``). Taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering import AbsTaskClustering
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata

from minif2.instructions import instruction_for

__all__ = ["LOCAL_TASK_TYPES", "MTEB_TYPE", "TaskFormatError", "load_local_task", "load_local_tasks"]

# kit task type -> mteb TaskMetadata.type (the category names of the MTEB leaderboard)
MTEB_TYPE = {
    "retrieval": "Retrieval",
    "sts": "STS",
    "classification": "Classification",
    "clustering": "Clustering",
    "pair_classification": "PairClassification",
}
LOCAL_TASK_TYPES = tuple(MTEB_TYPE)
_MAIN_SCORE = {
    "retrieval": "ndcg_at_10",
    "sts": "cosine_spearman",
    "classification": "accuracy",
    "clustering": "v_measure",
    "pair_classification": "similarity_ap",
}
_FIELDS = {  # (file, fields every row must have), per type
    "sts": [("test.jsonl", ("sentence1", "sentence2", "score"))],
    "classification": [("train.jsonl", ("text", "label")), ("test.jsonl", ("text", "label"))],
    "clustering": [("test.jsonl", ("text", "label"))],
    "pair_classification": [("test.jsonl", ("sentence1", "sentence2", "label"))],
}


class TaskFormatError(ValueError):
    """A task folder or file does not follow the format above; the message says where and what to fix."""


# ------------------------------------------------------------------ reading files
def _read_jsonl(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a jsonl file, each checked for ``fields``; blank lines are skipped."""
    if not path.is_file():
        raise TaskFormatError(
            f"{path} is missing: a task of this type needs it (one JSON object per line with {list(fields)})."
        )
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskFormatError(
                f"{path}:{line_no}: not valid JSON ({err.msg}); each line must be one JSON object."
            ) from None
        missing = [f for f in fields if not isinstance(row, dict) or f not in row]
        if missing:
            raise TaskFormatError(f"{path}:{line_no}: missing field(s) {missing}; every row needs {list(fields)}.")
        rows.append(row)
    if not rows:
        raise TaskFormatError(f"{path} has no rows: a task needs at least one example.")
    return rows


def _read_qrels(folder: Path) -> tuple[Path, dict[str, dict[str, int]]]:
    """``qrels/test.tsv`` (BEIR) or ``qrels.tsv`` -> {query-id: {corpus-id: score}}."""
    path = next((p for p in (folder / "qrels" / "test.tsv", folder / "qrels.tsv") if p.is_file()), None)
    if path is None:
        raise TaskFormatError(
            f"{folder}: qrels/test.tsv (or qrels.tsv) is missing: a retrieval task needs relevance judgements."
        )
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise TaskFormatError(f"{path}:1: the header must be 'query-id<TAB>corpus-id<TAB>score', got {header}.")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 3:
                raise TaskFormatError(f"{path}:{line_no}: expected 3 tab-separated columns, got {len(row)}.")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
            except ValueError:
                raise TaskFormatError(f"{path}:{line_no}: score '{row[2]}' is not a number.") from None
    return path, qrels


def _fingerprint(folder: Path) -> str:
    """A short hash of every file in the task folder: the task's dataset revision in mteb's results."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _metadata(spec: dict[str, Any], folder: Path) -> TaskMetadata:
    """mteb metadata for a local task; ``prompt`` carries the query instruction."""
    kind = spec["type"]
    return TaskMetadata(
        name=spec["name"],
        description=f"local {kind} task from {folder} (source: {spec.get('source', 'unknown')})",
        prompt=spec.get("instruction") or instruction_for(spec["name"], kind),
        type=MTEB_TYPE[kind],
        category="t2t",
        reference=None,
        dataset={"path": str(folder), "revision": _fingerprint(folder)},
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=_MAIN_SCORE[kind],
        date=None,
        domains=None,
        task_subtypes=None,
        license="not specified",
        annotations_creators=None,
        dialect=None,
        sample_creation="found",
        bibtex_citation="",
    )


# ------------------------------------------------------------------ task classes
class _LocalTask:
    """Mixin: metadata per instance (one class serves every folder of its type), data read from files.

    ``max_rows`` (a quick look, e.g. a notebook's smoke run) keeps a seeded sample of the
    test rows (retrieval: of the queries, with their relevant documents plus 3x as many
    others); it is part of the task's dataset revision, so cached full-size scores are not reused.
    """

    def __init__(self, folder: Path, spec: dict[str, Any], seed: int = 42, max_rows: int | None = None) -> None:
        self.folder = folder
        self.max_rows = max_rows
        self.metadata = _metadata(spec, folder)
        if max_rows is not None:
            self.metadata.dataset["revision"] += f"-max{max_rows}"
        super().__init__(seed=seed)  # type: ignore[call-arg]

    def _load(self) -> Any:
        raise NotImplementedError

    def _shrink(self, data: Any, n: int) -> Any:
        data["test"] = data["test"].shuffle(seed=self.seed).select(range(min(n, len(data["test"]))))
        return data

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if not self.data_loaded:
            data = self._load()
            self.dataset = data if self.max_rows is None else self._shrink(data, self.max_rows)
            self.data_loaded = True


class LocalRetrievalTask(_LocalTask, AbsTaskRetrieval):
    """BEIR folder; documents are ``(title + " " + text).strip()``, as mteb builds them."""

    def _load(self) -> Any:
        corpus = _read_jsonl(self.folder / "corpus.jsonl", ("_id", "text"))
        queries = _read_jsonl(self.folder / "queries.jsonl", ("_id", "text"))
        qrels_path, qrels = _read_qrels(self.folder)
        doc_ids, query_ids = {str(r["_id"]) for r in corpus}, {str(r["_id"]) for r in queries}
        unknown_q = sorted(set(qrels) - query_ids)
        unknown_d = sorted({d for docs in qrels.values() for d in docs} - doc_ids)
        if unknown_q or unknown_d:
            raise TaskFormatError(
                f"{qrels_path}: ids not found in queries.jsonl {unknown_q[:5]} / corpus.jsonl {unknown_d[:5]} "
                f"({len(unknown_q)} query ids, {len(unknown_d)} corpus ids); every id in qrels must exist."
            )
        corpus_ds = Dataset.from_list(
            [{"id": str(r["_id"]), "title": str(r.get("title") or ""), "text": str(r["text"])} for r in corpus]
        )
        query_ds = Dataset.from_list([{"id": str(r["_id"]), "text": str(r["text"])} for r in queries])
        split = {"corpus": corpus_ds, "queries": query_ds, "relevant_docs": qrels, "top_ranked": None}
        return {"default": {"test": split}}

    def _shrink(self, data: Any, n: int) -> Any:
        split = data["default"]["test"]
        judged = [i for i, q in enumerate(split["queries"]["id"]) if q in split["relevant_docs"]]
        queries = split["queries"].select(judged).shuffle(seed=self.seed)
        queries = queries.select(range(min(n, len(queries))))
        qrels = {q: split["relevant_docs"][q] for q in queries["id"]}
        relevant = {d for docs in qrels.values() for d in docs}
        others = [d for d in split["corpus"].shuffle(seed=self.seed)["id"] if d not in relevant][: 3 * n]
        keep = relevant | set(others)
        corpus = split["corpus"].select([i for i, d in enumerate(split["corpus"]["id"]) if d in keep])
        data["default"]["test"] = {"corpus": corpus, "queries": queries, "relevant_docs": qrels, "top_ranked": None}
        return data


class LocalSTSTask(_LocalTask, AbsTaskSTS):
    """Sentence pairs with a gold score in any range; mteb reports the Spearman correlation of cosine."""

    def _load(self) -> Any:
        rows = _read_jsonl(self.folder / "test.jsonl", _FIELDS["sts"][0][1])
        scores = [float(r["score"]) for r in rows]
        self.min_score, self.max_score = min(scores), max(scores)  # only rescales; Spearman is unchanged
        if self.max_score == self.min_score:
            raise TaskFormatError(
                f"{self.folder / 'test.jsonl'}: every 'score' equals {self.min_score}; a correlation needs "
                f"varied scores."
            )
        return DatasetDict(
            {
                "test": Dataset.from_dict(
                    {
                        "sentence1": [str(r["sentence1"]) for r in rows],
                        "sentence2": [str(r["sentence2"]) for r in rows],
                        "score": scores,
                    }
                )
            }
        )


def _labelled(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {"text": [str(r["text"]) for r in rows], "label": [str(r["label"]) for r in rows]}


class LocalClassificationTask(_LocalTask, AbsTaskClassification):
    """mteb's protocol: 10 experiments, each a logistic regression on 8 train samples per label (its seeds)."""

    def _load(self) -> Any:
        train = _read_jsonl(self.folder / "train.jsonl", ("text", "label"))
        test = _read_jsonl(self.folder / "test.jsonl", ("text", "label"))
        unseen = sorted({str(r["label"]) for r in test} - {str(r["label"]) for r in train})
        if unseen:
            raise TaskFormatError(
                f"{self.folder / 'test.jsonl'}: label(s) {unseen[:5]} never occur in train.jsonl; the "
                f"classifier cannot predict them."
            )
        # integer ids in sorted label order: mteb's binary metrics (average precision) assume labels 0/1
        self.label_names = sorted({str(r["label"]) for r in train})
        ids = {name: i for i, name in enumerate(self.label_names)}
        encode = lambda rows: {"text": [str(r["text"]) for r in rows], "label": [ids[str(r["label"])] for r in rows]}  # noqa: E731
        return DatasetDict({"train": Dataset.from_dict(encode(train)), "test": Dataset.from_dict(encode(test))})


class LocalClusteringTask(_LocalTask, AbsTaskClustering):
    """mteb's v2 clustering: k-means with k = number of labels, v-measure over 10 bootstrap samples.

    mteb embeds only 4 % of a (large) hub dataset; a local task is small, so every
    text is embedded and each bootstrap sample has as many texts as the task.
    """

    input_column_name = "text"
    label_column_name = "label"
    max_fraction_of_documents_to_embed = None

    def _load(self) -> Any:
        rows = _read_jsonl(self.folder / "test.jsonl", ("text", "label"))
        if len({str(r["label"]) for r in rows}) < 2:
            raise TaskFormatError(f"{self.folder / 'test.jsonl'}: needs at least 2 different labels to cluster.")
        self.max_documents_per_cluster = min(len(rows), AbsTaskClustering.max_documents_per_cluster)
        return DatasetDict({"test": Dataset.from_dict(_labelled(rows))})


class LocalPairClassificationTask(_LocalTask, AbsTaskPairClassification):
    """Sentence pairs labelled 1 (same meaning / duplicate) or 0; mteb reports average precision of cosine."""

    def _load(self) -> Any:
        path = self.folder / "test.jsonl"
        rows = _read_jsonl(path, _FIELDS["pair_classification"][0][1])
        bad = sorted({r["label"] for r in rows} - {0, 1})
        if bad:
            raise TaskFormatError(f"{path}: 'label' must be 0 or 1, found {bad[:5]}.")
        return DatasetDict(
            {
                "test": Dataset.from_dict(
                    {
                        "sentence1": [str(r["sentence1"]) for r in rows],
                        "sentence2": [str(r["sentence2"]) for r in rows],
                        "labels": [int(r["label"]) for r in rows],
                    }
                )
            }
        )


_CLASSES: dict[str, type[_LocalTask]] = {
    "retrieval": LocalRetrievalTask,
    "sts": LocalSTSTask,
    "classification": LocalClassificationTask,
    "clustering": LocalClusteringTask,
    "pair_classification": LocalPairClassificationTask,
}


# ------------------------------------------------------------------ public API
def load_local_task(folder: str | Path, seed: int = 42, check: bool = True, max_rows: int | None = None) -> Any:
    """One task folder -> an mteb task object (data read, and checked, now unless ``check=False``).

    Build a FRESH task for every model: mteb seeds a task's sampling (classification
    few-shot draws, clustering bootstraps) once, when the task is created.
    """
    folder = Path(folder)
    spec_path = folder / "task.json"
    if not spec_path.is_file():
        raise TaskFormatError(
            f"{spec_path} is missing: every task folder needs a task.json with name, type, instruction, source."
        )
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TaskFormatError(f"{spec_path}:{err.lineno}: not valid JSON ({err.msg}).") from None
    for key in ("name", "type"):
        if not spec.get(key):
            raise TaskFormatError(f"{spec_path}: field '{key}' is missing or empty.")
    if spec["type"] not in _CLASSES:
        raise TaskFormatError(f"{spec_path}: field 'type' is '{spec['type']}'; expected one of {list(_CLASSES)}.")
    task = _CLASSES[spec["type"]](folder, spec, seed=seed, max_rows=max_rows)
    if check:
        task.load_data()
    return task


def load_local_tasks(root: str | Path, seed: int = 42, max_rows: int | None = None) -> list[Any]:
    """Every task folder under ``root`` (or ``root`` itself if it holds a task.json), sorted by name."""
    root = Path(root)
    if (root / "task.json").is_file():
        return [load_local_task(root, seed, max_rows=max_rows)]
    if not root.is_dir():
        raise TaskFormatError(
            f"{root} does not exist: expected a folder of task folders (written by `minif2 unify`) or one task folder."
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise TaskFormatError(f"{root} has no task folders: each task is a sub-folder with a task.json.")
    tasks = [load_local_task(p, seed, max_rows=max_rows) for p in folders]
    names = [t.metadata.name for t in tasks]
    if len(set(names)) != len(names):
        raise TaskFormatError(f"{root}: task names in task.json must be unique, got {names}.")
    return tasks
