"""Quick before/after scores on held-out task folders, and the learning curve built from them (notebook 03).

Notebook 03 wants one number, in seconds, that says whether training helped: nDCG@10
and recall@10 of exact cosine search over a (sub-sampled) held-out retrieval task,
queries with the task's instruction, documents plain (docs/recipe.md §1a); and, for general text,
the Spearman correlation of cosines with an STS task's gold scores (the TeacherAgreement proxy, issue 23).
They are NOT the MTEB scores: ``evaluation/evaluate.py`` runs mteb itself (notebook 04), and this
module's numbers match it only for the same rows.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from minif2.data.task_folders import read_eval_task

__all__ = ["RetrievalCurve", "ndcg_at_k", "retrieval_score", "sts_score"]


def document_text(row: dict[str, Any]) -> str:
    """A BEIR corpus row as the model reads it: its title, a space, its text (a missing title is no title)."""
    return (row.get("title", "") + " " + row["text"]).strip()


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded relevance and the linear gain (as BEIR / pytrec_eval's ``ndcg_cut``).

    >>> round(ndcg_at_k(["b", "a"], {"a": 1}), 4)  # relevant doc at rank 2: 1/log2(3)
    0.6309
    """
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    return dcg / ideal if ideal > 0 else 0.0


def retrieval_score(
    embedder: Any,
    task_folder: str | Path,
    max_queries: int | None = None,
    k: int = 10,
    seed: int = 0,
    batch_size: int = 32,
) -> dict[str, Any]:
    """nDCG@k and recall@k of ``embedder`` on a BEIR task folder (``unify`` writes them).

    With ``max_queries``, a seeded subset of queries is scored against the corpus reduced to
    their relevant documents plus an equal number of seeded others (so that it stays hard),
    and the sizes used are returned with the scores.
    """
    task = read_eval_task(task_folder)
    if task["type"] != "retrieval":
        raise ValueError(f"{task_folder}: task type is {task['type']!r}; retrieval_score needs a retrieval task")
    qids = sorted(q for q in task["qrels"] if q in task["queries"])
    doc_ids = sorted(task["corpus"])
    if max_queries is not None and len(qids) > max_queries:
        rng = random.Random(seed)
        qids = sorted(rng.sample(qids, max_queries))
        wanted = {d for q in qids for d in task["qrels"][q]}
        others = [d for d in doc_ids if d not in wanted]
        doc_ids = sorted(wanted | set(rng.sample(others, min(len(others), len(wanted)))))
    docs = [document_text(task["corpus"][d]) for d in doc_ids]
    q_emb = embedder.encode(
        [task["queries"][q] for q in qids], batch_size=batch_size, instruction=task["instruction"] or None
    )
    d_emb = embedder.encode(docs, batch_size=batch_size)
    scores = q_emb @ d_emb.T  # cosine: both L2-normalised
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    ndcg, recall = [], []
    for row, q in zip(top, qids):
        ranked = [doc_ids[j] for j in row]
        relevant = {d: g for d, g in task["qrels"][q].items() if g > 0}
        ndcg.append(ndcg_at_k(ranked, relevant, k))
        recall.append(len(set(ranked) & set(relevant)) / max(len(relevant), 1))
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"recall@{k}": float(np.mean(recall)),
        "queries": len(qids),
        "corpus": len(doc_ids),
        "task": task["name"],
    }


def sts_score(
    embedder: Any, task_folder: str | Path, max_pairs: int | None = None, seed: int = 0, batch_size: int = 32
) -> dict[str, Any]:
    """Spearman between ``embedder``'s cosines and an STS task's gold scores (mteb's STS main score).

    Both sentences are encoded plain, as mteb encodes an STS task for a model without instructions for it.
    With ``max_pairs``, a seeded subset of the test pairs is scored.
    """
    task = read_eval_task(task_folder)
    if task["type"] != "sts":
        raise ValueError(f"{task_folder}: task type is {task['type']!r}; sts_score needs an sts task")
    rows = task["test"]
    if max_pairs is not None and len(rows) > max_pairs:
        rows = random.Random(seed).sample(rows, max_pairs)
    a = embedder.encode([r["sentence1"] for r in rows], batch_size=batch_size)
    b = embedder.encode([r["sentence2"] for r in rows], batch_size=batch_size)
    cosines = (np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)).sum(axis=1)  # L2-normalised
    rho = spearmanr(cosines, [float(r["score"]) for r in rows]).statistic
    return {"spearman": float(rho), "pairs": len(rows), "task": task["name"]}


class RetrievalCurve:
    """A training callback: held-out nDCG@k every ``every`` steps -> a learning curve (notebook 03).

    ``train(cfg, callbacks=[curve])`` calls it as ``curve(step, embedder, row)`` after each
    optimiser step (training does not import this stage; the caller passes it in). Call it with
    ``step=0`` before training for the starting point; pick ``every`` dividing ``max_steps`` to
    get the end. Each point (step, ndcg@k, recall@k, the CPU seconds it took) is kept in
    ``points`` and, with ``out``, appended to a JSON-lines file that :meth:`read` reads back.
    With ``sts_folder`` (an STS task, e.g. TeacherAgreement), each point also holds its ``spearman``
    (:func:`sts_score`, a seeded ``max_pairs`` of its pairs), so one curve shows the training task and
    general text side by side.
    """

    def __init__(
        self,
        task_folder: str | Path,
        every: int = 10,
        max_queries: int | None = 50,
        out: str | Path | None = None,
        seed: int = 0,
        sts_folder: str | Path | None = None,
        max_pairs: int | None = 200,
    ) -> None:
        self.task_folder, self.every, self.max_queries, self.seed = task_folder, every, max_queries, seed
        self.sts_folder, self.max_pairs = sts_folder, max_pairs
        self.out = Path(out) if out is not None else None
        self.points: list[dict[str, Any]] = []
        self.cpu_s = 0.0  # CPU seconds spent scoring (subtract from a timed training run)
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text("")

    def __call__(self, step: int, embedder: Any, row: dict[str, Any] | None = None) -> None:
        if step % self.every != 0:
            return
        start = time.process_time()
        score = retrieval_score(embedder, self.task_folder, max_queries=self.max_queries, seed=self.seed)
        point = {"step": step, **{k: score[k] for k in score if k.startswith(("ndcg", "recall"))}}
        if self.sts_folder is not None:
            point["spearman"] = sts_score(embedder, self.sts_folder, self.max_pairs, self.seed)["spearman"]
        spent = time.process_time() - start
        self.cpu_s += spent
        point["cpu_s"] = spent
        self.points.append(point)
        if self.out is not None:
            with self.out.open("a") as f:
                f.write(json.dumps(point) + "\n")

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """The points a curve wrote to ``path``."""
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
