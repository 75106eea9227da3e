"""Local evaluation tasks: plain files on disk -> real ``mteb`` task objects.

So that anyone can score a model on their own data, offline, with MTEB's own scoring
code (docs/recipe.md §1a: F2LLM is evaluated with ``mteb``). The folder format, and the one
reader that checks it, live in ``data/task_folders.py``; the main score of each type is
mteb's (nDCG@10, Spearman of cosine, accuracy, v-measure, average precision, MAP@1000 for
reranking as in MTEB(eng, v2)'s reranking tasks, Spearman of cosine for summarisation).

Each loader returns an instance of a subclass of mteb's own ``AbsTaskRetrieval`` /
``AbsTaskSTS`` / ``AbsTaskReranking`` / ``AbsTaskSummarization`` / ... so every number is
computed by mteb, for all seven task types of MTEB(eng, v2). The task's instruction is
stored as its metadata ``prompt`` (empty: ``instructions.instruction_for`` its name
or type); the model wrapper (``evaluation/mteb_model.py``) puts it on
queries only. Files are checked as they are read; an error names the file, the line
and the field at fault.

This module does not write the kit's held-out tasks (``data/unify.py`` does, notebook 01)
and does not run models (``evaluation/evaluate.py``). Taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering import AbsTaskClustering
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.abstasks.text import reranking as mteb_reranking
from mteb.abstasks.text.summarization import AbsTaskSummarization

from minif2.data.task_folders import EVAL_TYPES, TaskFormatError, read_eval_task
from minif2.instructions import instruction_for
from minif2.provenance import folder_fingerprint
from minif2.schema import MTEB_TASK_TYPES

__all__ = ["LOCAL_TASK_TYPES", "MTEB_TYPE", "load_local_task", "load_local_tasks"]

LOCAL_TASK_TYPES = EVAL_TYPES  # the local folder formats (data/task_folders.py)
MTEB_TYPE = {kind: MTEB_TASK_TYPES[kind] for kind in LOCAL_TASK_TYPES}
_MAIN_SCORE = {
    "retrieval": "ndcg_at_10",
    "sts": "cosine_spearman",
    "classification": "accuracy",
    "clustering": "v_measure",
    "pair_classification": "similarity_ap",
    "reranking": "map_at_1000",  # as mteb's AskUbuntuDupQuestions / StackOverflowDupQuestions
    "summarization": "cosine_spearman",  # as mteb's SummEvalSummarization.v2
}


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
        dataset={"path": str(folder), "revision": folder_fingerprint(folder)},
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
        self.local_data = spec  # read and checked by data.task_folders.read_eval_task
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
        corpus = [{"id": i, "title": r["title"], "text": r["text"]} for i, r in self.local_data["corpus"].items()]
        queries = [{"id": i, "text": text} for i, text in self.local_data["queries"].items()]
        split = {
            "corpus": Dataset.from_list(corpus),
            "queries": Dataset.from_list(queries),
            "relevant_docs": self.local_data["qrels"],
            "top_ranked": None,
        }
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
        rows = self.local_data["test"]
        scores = [float(r["score"]) for r in rows]
        self.min_score, self.max_score = min(scores), max(scores)  # only rescales; Spearman is unchanged
        columns = {"sentence1": [r["sentence1"] for r in rows], "sentence2": [r["sentence2"] for r in rows]}
        return DatasetDict({"test": Dataset.from_dict({**columns, "score": scores})})


def _labelled(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {"text": [str(r["text"]) for r in rows], "label": [str(r["label"]) for r in rows]}


class LocalClassificationTask(_LocalTask, AbsTaskClassification):
    """mteb's protocol: 10 experiments, each a logistic regression on 8 train samples per label (its seeds)."""

    def _load(self) -> Any:
        train, test = self.local_data["train"], self.local_data["test"]
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
        rows = self.local_data["test"]
        self.max_documents_per_cluster = min(len(rows), AbsTaskClustering.max_documents_per_cluster)
        return DatasetDict({"test": Dataset.from_dict(_labelled(rows))})


class LocalPairClassificationTask(_LocalTask, AbsTaskPairClassification):
    """Sentence pairs labelled 1 (same meaning / duplicate) or 0; mteb reports average precision of cosine."""

    def _load(self) -> Any:
        rows = self.local_data["test"]
        columns = {"sentence1": [r["sentence1"] for r in rows], "sentence2": [r["sentence2"] for r in rows]}
        return DatasetDict({"test": Dataset.from_dict({**columns, "labels": [int(r["label"]) for r in rows]})})


class LocalRerankingTask(_LocalTask, mteb_reranking.AbsTaskReranking):
    """Each query with its positive and negative candidates, ranked by cosine; mteb reports MAP and MRR.

    The rows are mteb's reranking rows; mteb's own ``transform_old_dataset_format`` turns them into
    a retrieval split whose ``top_ranked`` lists are the candidates (a name in mteb's
    ``OLD_FORMAT_RERANKING_TASKS`` selects that path, as mteb's deprecation note says).
    """

    def _load(self) -> Any:
        rows = self.local_data["test"]
        columns = {name: [r[name] for r in rows] for name in ("query", "positive", "negative")}
        test = Dataset.from_dict(columns)
        if self.max_rows is not None:
            test = test.shuffle(seed=self.seed).select(range(min(self.max_rows, len(test))))
        if self.metadata.name not in mteb_reranking.OLD_FORMAT_RERANKING_TASKS:
            mteb_reranking.OLD_FORMAT_RERANKING_TASKS.append(self.metadata.name)
        self.transform_old_dataset_format(DatasetDict({"test": test}))
        return self.dataset

    def _shrink(self, data: Any, n: int) -> Any:
        return data  # rows were sampled before the transformation


class LocalSummarizationTask(_LocalTask, AbsTaskSummarization):
    """Machine summaries with human scores, compared by cosine with the human summaries (SummEval's
    protocol); mteb reports the Spearman correlation. Scores may use any range (Spearman ignores it)."""

    def _load(self) -> Any:
        rows = self.local_data["test"]
        scores = [float(x) for r in rows for x in r["relevance"]]
        self.min_score, self.max_score = min(scores), max(scores)  # type: ignore[assignment]
        columns = {name: [r[name] for r in rows] for name in ("text", "human_summaries", "machine_summaries")}
        relevance = [[float(x) for x in r["relevance"]] for r in rows]
        return DatasetDict({"test": Dataset.from_dict({**columns, "relevance": relevance})})


_CLASSES: dict[str, type[_LocalTask]] = {
    "retrieval": LocalRetrievalTask,
    "sts": LocalSTSTask,
    "classification": LocalClassificationTask,
    "clustering": LocalClusteringTask,
    "pair_classification": LocalPairClassificationTask,
    "reranking": LocalRerankingTask,
    "summarization": LocalSummarizationTask,
}


# ------------------------------------------------------------------ public API
def load_local_task(folder: str | Path, seed: int = 42, max_rows: int | None = None) -> Any:
    """One task folder -> an mteb task object, its files read and checked now (``read_eval_task``).

    Build a FRESH task for every model: mteb seeds a task's sampling (classification
    few-shot draws, clustering bootstraps) once, when the task is created.
    """
    files = read_eval_task(folder)
    task = _CLASSES[files["type"]](Path(folder), files, seed=seed, max_rows=max_rows)
    task.load_data()  # now: mteb unloads (and forgets the metadata of) only data that it loaded itself
    return task


def load_local_tasks(root: str | Path, seed: int = 42, max_rows: int | None = None) -> list[Any]:
    """Every task folder under ``root`` (or ``root`` itself if it holds a task.json), sorted by name."""
    root = Path(root)
    if (root / "task.json").is_file():
        return [load_local_task(root, seed, max_rows=max_rows)]
    if not root.is_dir():
        raise TaskFormatError(
            root,
            None,
            None,
            "missing folder: it does not exist",
            "Give a folder of task folders (written by `minif2 unify`) or one task folder",
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise TaskFormatError(root, None, None, "no task folders", "Each task is a sub-folder with a task.json")
    tasks = [load_local_task(p, seed, max_rows=max_rows) for p in folders]
    names = [t.metadata.name for t in tasks]
    if len(set(names)) != len(names):
        raise TaskFormatError(root, None, "name", f"task names in task.json must be unique, got {names}")
    return tasks
