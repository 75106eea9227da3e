"""minif2.evaluation.space: the views notebook 04 draws, on a hand-made task and against sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minif2.evaluation import (
    labelled_texts,
    misses,
    pair_cosines,
    plot_cosine_histograms,
    plot_space,
    top_hits,
    view_retrieval,
)


class _Lookup:
    """A fake embedder: each text maps to a fixed unit vector; records the instruction it was given."""

    def __init__(self, table: dict[str, list[float]], takes_instructions: bool = True) -> None:
        self.table, self.takes_instructions, self.instructions = table, takes_instructions, []

    def encode(self, texts, batch_size=32, instruction=None, show_progress_bar=None):
        self.instructions.append(instruction)
        vecs = np.array([self.table[t] for t in texts], dtype=np.float64)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def _task(tmp_path: Path) -> Path:
    task = tmp_path / "T"
    (task / "qrels").mkdir(parents=True)
    (task / "task.json").write_text(
        json.dumps({"name": "T", "type": "retrieval", "instruction": "Find it.", "source": "x"})
    )
    (task / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": d}) + "\n" for d in ("a", "b", "c")))
    (task / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": q}) + "\n" for q in ("q1", "q2")))
    (task / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tc\t1\n")
    return task


TABLE = {"q1": [1, 0], "q2": [0, 1], "a": [1, 0.1], "b": [0.1, 1], "c": [0.6, 0.8], "my text": [0.7, 0.7]}


def test_a_view_finds_the_miss_and_the_pair_cosines(tmp_path):
    emb = _Lookup(TABLE)
    view = view_retrieval(emb, _task(tmp_path))
    assert view.documents == ["a", "b", "c"] and list(view.gold) == [0, 2] and view.instruction == "Find it."
    unit = {k: np.array(v) / np.linalg.norm(v) for k, v in TABLE.items()}
    pairs = pair_cosines(view)
    np.testing.assert_allclose(pairs["positive"], [unit["q1"] @ unit["a"], unit["q2"] @ unit["c"]])
    others = {0: {unit["q1"] @ unit["b"], unit["q1"] @ unit["c"]}, 1: {unit["q2"] @ unit["a"], unit["q2"] @ unit["b"]}}
    assert all(min(abs(pairs["negative"][i] - o) for o in others[i]) < 1e-12 for i in (0, 1))  # never the gold
    # q2's document c (cosine 0.8) is beaten by b (0.995): the one miss, at rank 2; q1 is right (rank 1)
    table = misses(view, n=2)
    assert list(table["query"]) == ["q2", "q1"] and list(table["rank of the right one"]) == [2, 1]
    assert table.loc[0, "retrieved instead"] == "b" and table.loc[0, "right document"] == "c"
    hits = top_hits(view, emb, "my text", k=2)
    by_hand = sorted("abc", key=lambda d: -(unit["my text"] @ unit[d]))[:2]
    assert list(hits["document"]) == by_hand and emb.instructions[-1] == "Find it."


def test_a_model_without_instructions_embeds_queries_plain(tmp_path):
    emb = _Lookup(TABLE, takes_instructions=False)
    assert view_retrieval(emb, _task(tmp_path)).instruction is None and set(emb.instructions) == {None}


def test_view_vectors_are_sentence_transformers_own(tmp_path, minilm_path):
    from sentence_transformers import SentenceTransformer

    from minif2 import Embedder

    view = view_retrieval(Embedder.from_pretrained(str(minilm_path)), _task(tmp_path))
    st = SentenceTransformer(str(minilm_path), device="cpu")
    np.testing.assert_allclose(view.document_vectors, st.encode(["a", "b", "c"], normalize_embeddings=True), atol=1e-5)


def test_the_plots_have_one_panel_per_model():
    rng = np.random.default_rng(0)
    pairs = {"m1": {"positive": rng.uniform(0.5, 1, 20), "negative": rng.uniform(0, 0.6, 20)}, "m2": None}
    pairs["m2"] = pairs["m1"]
    assert len(plot_cosine_histograms(pairs).axes) == 2
    points = {m: (rng.standard_normal((30, 5)), ["x", "y", "z"] * 10) for m in ("m1", "m2", "m3")}
    assert len(plot_space(points).axes) == 3


def test_a_task_of_another_type_is_refused(tmp_path):
    from minif2.data.task_folders import write_task_folder

    sts = write_task_folder(
        tmp_path / "S", "S", "sts", test=[{"sentence1": "a", "sentence2": "b", "score": s} for s in (1.0, 4.0)]
    )
    with pytest.raises(ValueError, match="needs a retrieval task"):
        view_retrieval(_Lookup(TABLE), sts)
    with pytest.raises(ValueError, match="needs a classification task"):
        labelled_texts(sts)
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(6)]
    cls = write_task_folder(tmp_path / "C", "C", "classification", train=rows, test=rows)
    assert labelled_texts(cls, max_rows=3) == (["t0", "t1", "t2"], ["0", "1", "0"])
