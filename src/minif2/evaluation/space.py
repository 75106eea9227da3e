"""See and touch the embedding space: what training changed, where a model still fails (notebook 04).

A score says how much a model improved; these say *how*, on a retrieval task folder of the suite:

- :func:`view_retrieval`: every query and document of a task embedded once by one model (queries with the task's
  instruction where the model takes instructions, documents plain, as the evaluation embeds them);
- :func:`pair_cosines` and :func:`plot_cosine_histograms`: each query's cosine with its own document and with a
  random other one. An untrained decoder puts every text in a narrow cone (both cosines high, close together:
  anisotropy); training pulls the two apart;
- :func:`misses`: the queries whose best hit is wrong, with what the model retrieved instead (error analysis);
- :func:`top_hits`: any text a student types, searched in the task's documents (try it on your own text);
- :func:`labelled_texts` and :func:`plot_space`: two PCA axes of labelled texts (e.g. docstrings coloured by
  library), one panel per model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from minif2.data.task_folders import read_eval_task
from minif2.evaluation.retrieval import document_text

__all__ = [
    "RetrievalView",
    "labelled_texts",
    "misses",
    "pair_cosines",
    "plot_cosine_histograms",
    "plot_space",
    "top_hits",
    "view_retrieval",
]


@dataclass
class RetrievalView:
    """One model's vectors of one retrieval task: ``queries[i]`` is relevant to ``documents[gold[i]]``."""

    queries: list[str]
    documents: list[str]
    gold: np.ndarray  # (Q,) index into documents of each query's (first) relevant document
    query_vectors: np.ndarray  # (Q, d), L2-normalised
    document_vectors: np.ndarray  # (D, d), L2-normalised
    instruction: str | None  # what the queries were embedded with

    @property
    def scores(self) -> np.ndarray:
        """(Q, D) cosines."""
        return self.query_vectors @ self.document_vectors.T


def _query_instruction(embedder: Any, instruction: str) -> str | None:
    return (instruction or None) if getattr(embedder, "takes_instructions", True) else None


def _encode(embedder: Any, texts: list[str], batch_size: int, instruction: str | None) -> np.ndarray:
    """A few hundred short texts take seconds: no progress bar (one per call would fill a notebook cell)."""
    return embedder.encode(texts, batch_size=batch_size, instruction=instruction, show_progress_bar=False)


def view_retrieval(embedder: Any, task_folder: str | Path, batch_size: int = 32) -> RetrievalView:
    """Embed a retrieval task folder's queries (those with a relevant document) and its whole corpus."""
    task = read_eval_task(task_folder)
    if task["type"] != "retrieval":
        raise ValueError(f"{task_folder}: task type is {task['type']!r}; view_retrieval needs a retrieval task")
    doc_ids = sorted(task["corpus"])
    index = {d: i for i, d in enumerate(doc_ids)}
    qids = [q for q in sorted(task["qrels"]) if q in task["queries"] and any(g > 0 for g in task["qrels"][q].values())]
    gold = np.array([index[next(d for d, g in task["qrels"][q].items() if g > 0)] for q in qids])
    documents = [document_text(task["corpus"][d]) for d in doc_ids]
    queries = [task["queries"][q] for q in qids]
    instruction = _query_instruction(embedder, task["instruction"])
    return RetrievalView(
        queries=queries,
        documents=documents,
        gold=gold,
        query_vectors=np.asarray(_encode(embedder, queries, batch_size, instruction)),
        document_vectors=np.asarray(_encode(embedder, documents, batch_size, None)),
        instruction=instruction,
    )


def labelled_texts(task_folder: str | Path, max_rows: int | None = None) -> tuple[list[str], list[str]]:
    """A classification task folder's test texts and labels (what :func:`plot_space` colours by)."""
    task = read_eval_task(task_folder)
    if task["type"] != "classification":
        raise ValueError(f"{task_folder}: task type is {task['type']!r}; labelled_texts needs a classification task")
    rows = task["test"][:max_rows]
    return [r["text"] for r in rows], [str(r["label"]) for r in rows]


def pair_cosines(view: RetrievalView, seed: int = 0) -> dict[str, np.ndarray]:
    """Each query's cosine with its relevant document (``positive``) and with one random other (``negative``)."""
    rng = np.random.default_rng(seed)
    n_docs = len(view.documents)
    other = (view.gold + rng.integers(1, n_docs, size=len(view.gold))) % n_docs  # never the gold document
    scores = view.scores
    rows = np.arange(len(view.gold))
    return {"positive": scores[rows, view.gold], "negative": scores[rows, other]}


def misses(view: RetrievalView, n: int = 5, width: int = 70) -> pd.DataFrame:
    """The ``n`` queries whose relevant document is ranked lowest: what the model retrieved instead, and where
    the right document ended up (rank 1 = best). Texts are cut to their first line, ``width`` characters."""
    scores = view.scores
    rows = np.arange(len(view.gold))
    rank = 1 + (scores > scores[rows, view.gold][:, None]).sum(axis=1)
    top = scores.argmax(axis=1)
    worst = np.argsort(-rank, kind="stable")[:n]

    def cut(text: str) -> str:
        return text.strip().splitlines()[0][:width] if text.strip() else ""

    return pd.DataFrame(
        {
            "query": [cut(view.queries[i]) for i in worst],
            "retrieved instead": [cut(view.documents[top[i]]) for i in worst],
            "cosine (retrieved)": scores[worst, top[worst]].round(3),
            "right document": [cut(view.documents[view.gold[i]]) for i in worst],
            "cosine (right)": scores[worst, view.gold[worst]].round(3),
            "rank of the right one": rank[worst],
        }
    )


def top_hits(view: RetrievalView, embedder: Any, text: str, k: int = 3, width: int = 70) -> pd.DataFrame:
    """Search ``text`` (embedded as a query, with the view's instruction) in the view's documents: the top ``k``."""
    vector = np.asarray(embedder.encode([text], instruction=view.instruction))[0]
    scores = view.document_vectors @ vector
    best = np.argsort(-scores, kind="stable")[:k]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(best) + 1),
            "cosine": scores[best].round(3),
            "document": [view.documents[j].strip().splitlines()[0][:width] for j in best],
        }
    )


def plot_cosine_histograms(cosines: Mapping[str, Mapping[str, np.ndarray]], bins: int = 40):
    """One panel per model, on one cosine axis: the positive and negative cosines of :func:`pair_cosines`."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - plotting only

    # one x axis for all: a narrow cone (anisotropy) then shows as two histograms squeezed together near 1
    low = min(min(pair["negative"].min(), pair["positive"].min()) for pair in cosines.values())
    edges = np.linspace(min(low, 0.0), 1.0, bins + 1)
    fig, axes = plt.subplots(
        1, len(cosines), figsize=(4.2 * len(cosines), 3.4), sharex=True, sharey=True, squeeze=False
    )
    for ax, (label, pair) in zip(axes[0], cosines.items(), strict=True):
        ax.hist(pair["negative"], bins=edges, alpha=0.6, label=f"random other (mean {pair['negative'].mean():.2f})")
        ax.hist(pair["positive"], bins=edges, alpha=0.6, label=f"its own document (mean {pair['positive'].mean():.2f})")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("cosine with the query")
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("queries")
    fig.tight_layout()
    return fig


def plot_space(points: Mapping[str, tuple[np.ndarray, Sequence[str]]], seed: int = 0):
    """One panel per model: its vectors on their first two principal components, coloured by label."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - plotting only
    from sklearn.decomposition import PCA  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 3.8), squeeze=False)
    for ax, (label, (vectors, labels)) in zip(axes[0], points.items(), strict=True):
        xy = PCA(n_components=2, random_state=seed).fit_transform(np.asarray(vectors, dtype=np.float64))
        for name in sorted(set(labels)):
            keep = np.array([lab == name for lab in labels])
            ax.scatter(xy[keep, 0], xy[keep, 1], s=10, alpha=0.7, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig
