"""The quick retrieval score of notebook 03: nDCG@10 against sklearn, a hand-made BEIR folder, and (slow)
the tiny training profile improving held-out retrieval over its base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minif2.evaluation.retrieval import ndcg_at_k, retrieval_score


def test_ndcg_matches_sklearn() -> None:
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        gains = rng.integers(0, 3, size=15)
        if gains.sum() == 0:
            continue
        scores = rng.normal(size=15)
        ranked = [f"d{i}" for i in np.argsort(-scores)]
        relevant = {f"d{i}": int(g) for i, g in enumerate(gains) if g > 0}
        assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(ndcg_score([gains], [scores], k=10))


class _Lookup:
    """A fake embedder: each text maps to a fixed unit vector."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def encode(self, texts, batch_size=32, instruction=None):
        vecs = np.array([self.table[t] for t in texts], dtype=np.float32)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def test_retrieval_score_on_a_hand_made_task(tmp_path: Path) -> None:
    task = tmp_path / "T"
    (task / "qrels").mkdir(parents=True)
    (task / "task.json").write_text(json.dumps({"name": "T", "type": "retrieval", "instruction": "", "source": "x"}))
    (task / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": d}) + "\n" for d in ("a", "b", "c"))
    )
    (task / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": q}) + "\n" for q in ("q1", "q2")))
    (task / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tc\t1\n")
    emb = _Lookup({"q1": [1, 0], "q2": [0, 1], "a": [1, 0.1], "b": [0.2, 1], "c": [0.1, 0.9]})
    out = retrieval_score(emb, task, k=2)
    # q1: a has cosine 0.995, first. q2: c = (0.1, 0.9) has cosine 0.994, b = (0.2, 1) 0.981: c first. nDCG 1 for both.
    assert out["ndcg@2"] == pytest.approx(1.0) and out["recall@2"] == 1.0 and out["queries"] == 2
    emb.table["b"] = [0.0, 1.0]  # now b is ahead of c for q2: c at rank 2 -> 1 / log2(3)
    assert retrieval_score(emb, task, k=2)["ndcg@2"] == pytest.approx((1 + 1 / np.log2(3)) / 2)


def test_retrieval_curve_scores_every_n_steps_and_writes_points(tmp_path: Path) -> None:
    from minif2.evaluation.retrieval import RetrievalCurve

    task = tmp_path / "T"
    (task / "qrels").mkdir(parents=True)
    (task / "task.json").write_text(json.dumps({"name": "T", "type": "retrieval", "instruction": "", "source": "x"}))
    (task / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": d}) + "\n" for d in ("a", "b")))
    (task / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "q"}) + "\n")
    (task / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tb\t1\n")
    emb = _Lookup({"q": [1, 0], "a": [1, 0.1], "b": [0, 1]})  # b at rank 2 at first
    curve = RetrievalCurve(task, every=2, max_queries=None, out=tmp_path / "curve.jsonl")
    curve(0, emb)
    curve(1, emb, {"step": 1})  # not a multiple of 2: skipped
    emb.table["b"] = [1, 0]  # "training" moved b to rank 1
    curve(2, emb, {"step": 2})
    assert [p["step"] for p in curve.points] == [0, 2]
    assert curve.points[0]["ndcg@10"] == pytest.approx(1 / np.log2(3)) and curve.points[1]["ndcg@10"] == 1.0
    assert RetrievalCurve.read(tmp_path / "curve.jsonl") == curve.points


def _sts_task(root: Path) -> Path:
    """Four pairs with cosines 1, 0.8, 0.6, 0 (see _STS_TABLE) and gold scores ranked 4, 2, 3, 1."""
    from minif2.data.task_folders import write_eval_task

    rows = [("a1", "a2", 4.0), ("b1", "b2", 2.0), ("c1", "c2", 3.0), ("d1", "d2", 1.0)]
    test = [{"sentence1": a, "sentence2": b, "score": g} for a, b, g in rows]
    return write_eval_task(root, "S", "sts", "", "x", test=test)


_STS_TABLE = {"a1": [1, 0], "a2": [1, 0], "b1": [1, 0], "b2": [0.8, 0.6], "c1": [1, 0], "c2": [0.6, 0.8]}
_STS_TABLE |= {"d1": [1, 0], "d2": [0, 1]}


def test_sts_score_is_spearman_of_cosines_on_a_hand_case(tmp_path: Path) -> None:
    from minif2.evaluation.retrieval import sts_score

    # cosine ranks 4 3 2 1, gold ranks 4 2 3 1: sum d^2 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8
    out = sts_score(_Lookup(_STS_TABLE), _sts_task(tmp_path))
    assert out == {"spearman": pytest.approx(0.8), "pairs": 4, "task": "S"}
    assert sts_score(_Lookup(_STS_TABLE), _sts_task(tmp_path), max_pairs=2)["pairs"] == 2
    with pytest.raises(ValueError, match="sts_score needs an sts task"):
        sts_score(_Lookup(_STS_TABLE), _retrieval_task(tmp_path))


def _retrieval_task(tmp_path: Path) -> Path:
    task = tmp_path / "T"
    (task / "qrels").mkdir(parents=True)
    (task / "task.json").write_text(json.dumps({"name": "T", "type": "retrieval", "instruction": "", "source": "x"}))
    (task / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": d}) + "\n" for d in ("a", "b")))
    (task / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "q"}) + "\n")
    (task / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tb\t1\n")
    return task


def test_curve_with_an_sts_task_records_both_scores(tmp_path: Path) -> None:
    from minif2.evaluation.retrieval import RetrievalCurve

    emb = _Lookup({**_STS_TABLE, "q": [1, 0], "a": [1, 0.1], "b": [0, 1]})
    curve = RetrievalCurve(_retrieval_task(tmp_path), every=1, max_queries=None, sts_folder=_sts_task(tmp_path))
    curve(0, emb)
    emb.table["b2"], emb.table["c2"] = [0.6, 0.8], [0.8, 0.6]  # "training" put pairs b and c in gold order
    curve(1, emb)
    assert [p["spearman"] for p in curve.points] == [pytest.approx(0.8), pytest.approx(1.0)]
    assert curve.points[0]["ndcg@10"] == pytest.approx(1 / np.log2(3))


@pytest.mark.slow
def test_tiny_profile_turns_the_pruned_decoder_into_an_embedder(tmp_path: Path) -> None:
    """Issue 17's goal: unify -> mine -> train with the tiny profiles, scored as notebook 04 scores.

    The trained decoder (SmolLM2's first 4 layers, fully trained with frozen embeddings) should reach
    nDCG@10 >= 0.30 on CodeSearchHeldOut through mteb (configs/tiny/eval.yaml: 64 tokens, 50 rows)
    and beat its untrained base on every task type of the offline suite (the mean of a type's tasks).
    Seeds 0-2 give 0.49-0.53 held-out and a gain on every task, not only every type
    (benchmarks/measured/README.md); sentiment's margin alone is too thin (+0.010 on the worst seed)
    to assert on another machine's floating point, so the test asserts the goal as the issue states it.
    """
    from minif2 import mining
    from minif2.config import load_config, profile_path
    from minif2.data import unify
    from minif2.evaluation import EvalConfig, evaluate_models
    from minif2.training import trainer

    data = tmp_path / "data"
    unify.main(load_config(unify.UnifyConfig, profile_path("tiny", "unify"), out_dir=str(data)))
    mining.main(
        load_config(
            mining.MiningConfig,
            profile_path("tiny", "mine"),
            data_dir=str(data / "unified"),
            out_dir=str(data / "mined"),
            cache_dir=str(tmp_path / "cache"),
        )
    )
    cfg = load_config(
        trainer.TrainConfig,
        profile_path("tiny", "train"),
        data_dir=str(data / "mined"),
        out_dir=str(tmp_path / "checkpoints"),
        progress=False,
        save_every_steps=0,
    )
    final = trainer.train(cfg)
    eval_cfg = load_config(EvalConfig, profile_path("tiny", "eval"), out_dir=str(tmp_path / "eval"), plot=False)
    scores = evaluate_models([cfg.model, str(final)], str(data / "eval_tasks"), ["base", "trained"], eval_cfg)
    by_type = scores.pivot_table(index="type", columns="model", values="main_score")  # mean over a type's tasks
    by_task = scores.pivot_table(index="task", columns="model", values="main_score")
    assert by_task.loc["CodeSearchHeldOut", "trained"] >= 0.30, by_task
    assert (by_type["trained"] > by_type["base"]).all(), by_type
