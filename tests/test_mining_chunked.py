"""Mining from disk (``minif2.mining.chunked``): the same negatives as the in-memory path, float16
search within float16's rounding of exact, and an encode that resumes and never breaks a good file."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from test_mining import stdlib_pairs

from minif2.config import ConfigError, load_config
from minif2.mining.chunked import block_search, disk_path, encode_to_disk, merge_top_k
from minif2.mining.mine import MiningConfig, mine_source
from minif2.mining.retrieve import exact_search
from minif2.model import EmbedderConfig


def _hashed(text: str, dim: int) -> np.ndarray:
    """A fixed random vector per text (seeded by its sha256)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim)


class PairTeacher:
    """Documents fall in 3 tight clusters (so both score filters bite); each query sits near its
    positive. Every vector is rounded to float16 and back, so float16 storage loses nothing and both
    mining paths score the very same numbers (up to float32 summation order, ~1e-7). ``SALT`` is one
    for which the fixture's scores are at least 1e-5 apart (checked in ``pair_case``)."""

    pooling, takes_instructions, dim, SALT = "mean", False, 24, "14"

    def __init__(self, samples) -> None:
        self.config, self.source, self.calls = EmbedderConfig(model="pair"), "pair-teacher", 0
        self.vectors = {}
        for s in samples:
            key = self.SALT + s.positive
            cluster = np.eye(self.dim)[hashlib.sha256(key.encode()).digest()[0] % 3]
            self.vectors[s.positive] = cluster + 0.6 * _hashed(key, self.dim) / self.dim**0.5
            noise = _hashed(self.SALT + s.query, self.dim) / self.dim**0.5
            self.vectors[s.query] = self.vectors[s.positive] + 0.7 * noise
        for text, v in self.vectors.items():
            self.vectors[text] = (v / np.linalg.norm(v)).astype(np.float16).astype(np.float32)

    def encode(self, texts, batch_size=32, instruction=None, show_progress_bar=None):
        self.calls += 1
        return np.stack([self.vectors[t] for t in texts])


@pytest.fixture(scope="module")
def pair_case():
    samples = stdlib_pairs(60)
    teacher = PairTeacher(samples)
    corpus = np.stack([teacher.vectors[s.positive] for s in samples]).astype(np.float64)
    queries = np.stack([teacher.vectors[s.query] for s in samples]).astype(np.float64)
    scores = queries @ corpus.T  # (60, 60) exact
    positive = np.diag(scores)
    # the test's premise: no two scores of a query, and no score and threshold, closer than 1e-5
    gaps = np.diff(np.sort(scores, axis=1), axis=1)
    to_threshold = np.minimum(np.abs(scores - 0.8), np.abs(scores - 0.95 * positive[:, None]))
    assert gaps.min() > 1e-5 and to_threshold.min() > 1e-5
    return samples, teacher


@pytest.mark.parametrize(
    "backend, use_cache", [("exact", True), ("faiss", True), ("auto", False)], ids=["torch", "faiss", "no-cache"]
)
def test_disk_path_mines_the_same_negatives_as_memory(pair_case, backend, use_cache, tmp_path):
    samples, teacher = pair_case
    rule = dict(top_k=6, skip_top=1, num_negatives={"retrieval": 4}, fill_top_k=60, use_cache=use_cache)
    memory = mine_source(samples, teacher, MiningConfig(**rule), cache_dir=tmp_path / "memory")
    disk_cfg = MiningConfig(
        **rule,
        corpus_storage="disk",
        search_backend=backend,
        encode_chunk_docs=11,
        corpus_chunk=7,
        query_chunk=5,
        progress_bar=False,
    )  # 60 documents: 6 encode chunks, 9 corpus chunks x 12 query blocks (faiss: 1)
    disk = mine_source(samples, teacher, disk_cfg, cache_dir=tmp_path / "disk")
    assert [r["negatives"] for r in disk.samples] == [r["negatives"] for r in memory.samples]
    assert disk.report["removed"] == memory.report["removed"] and disk.report["shortfall"] == memory.report["shortfall"]
    assert memory.report["removed"]["max_score"] > 0 and memory.report["removed"]["relative_margin"] > 0
    assert memory.report["shortfall"]["filled"] > 0  # the deeper "fill" search ran on both paths
    for a, b in zip(disk.scores["negative_scores"], memory.scores["negative_scores"]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert len(list((tmp_path / "disk").glob("*-float16.npy"))) == (1 if use_cache else 0)


def test_float16_search_is_exact_up_to_float16_rounding(tmp_path):
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((40, 32)).astype(np.float32)
    corpus = rng.standard_normal((1500, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    stored = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.float16, shape=corpus.shape)
    stored[:] = corpus
    stored.flush()
    mapped = np.load(tmp_path / "c.npy", mmap_mode="r")
    true_s, true_i = exact_search(queries, corpus, 20)  # float32, in memory
    full = queries @ corpus.T
    for backend in ("exact", "faiss"):
        s, i = block_search(queries, mapped, 20, backend, query_chunk=16, corpus_chunk=100)
        assert s.dtype == np.float32 and i.dtype == np.int64 and s.shape == i.shape == (40, 20)
        np.testing.assert_allclose(np.take_along_axis(full, i, axis=1), s, atol=2e-3)  # float16 rounding
        for row in range(40):  # a document may change places only with one scored within 2e-3 of the cut
            swapped = set(i[row]) ^ set(true_i[row])
            assert all(abs(full[row, j] - true_s[row, -1]) < 2e-3 for j in swapped)
        assert (i == true_i).mean() > 0.95
    assert block_search(queries[:2], mapped[:3], 20, "exact")[1].shape == (2, 3)  # k capped at the corpus size


def test_merge_top_k_keeps_the_best_of_both():
    import torch

    s, i = merge_top_k(torch.tensor([[0.9, 0.3], [0.2, 0.1]]), torch.tensor([[0, 1], [0, 1]]),
                       torch.tensor([[0.5], [0.6]]), torch.tensor([[7], [8]]), k=2)  # fmt: skip
    assert i.tolist() == [[0, 7], [8, 0]] and s[1].tolist() == pytest.approx([0.6, 0.2])


class FlakyTeacher:
    """Hashed vectors; raises on the ``fail_on``-th call to encode (1-based), as a crash would."""

    config, source, dim = EmbedderConfig(model="flaky"), "flaky-teacher", 8

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls, self.texts_seen, self.fail_on = 0, 0, fail_on

    def encode(self, texts, batch_size=32, instruction=None, show_progress_bar=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("out of memory (simulated)")
        self.texts_seen += len(texts)
        return np.stack([_hashed(t, self.dim) for t in texts]).astype(np.float32)


def test_encode_to_disk_resumes_and_never_replaces_a_good_file_on_failure(tmp_path):
    texts = [f"document {n}" for n in range(10)]
    expected = np.stack([_hashed(t, 8) for t in texts]).astype(np.float16)
    final = disk_path(FlakyTeacher(), texts, tmp_path)
    np.save(final, np.zeros((3, 8), np.float16))  # a stale file of the wrong shape under the final name
    with pytest.raises(RuntimeError, match="simulated"):
        encode_to_disk(FlakyTeacher(fail_on=3), texts, tmp_path, chunk_docs=4)  # chunks 0-3, 4-7 written
    assert np.load(final).shape == (3, 8)  # untouched by the failed run
    assert json.loads(final.with_suffix(".partial.json").read_text())["rows_written"] == 8
    resumed = FlakyTeacher()
    stored, hit = encode_to_disk(resumed, texts, tmp_path, chunk_docs=4)
    assert not hit and resumed.texts_seen == 2  # only documents 8 and 9 were encoded again
    assert isinstance(stored, np.memmap) and stored.dtype == np.float16
    np.testing.assert_array_equal(stored, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]  # partial and progress files gone
    again = FlakyTeacher()
    stored, hit = encode_to_disk(again, texts, tmp_path, chunk_docs=4)
    assert hit and again.calls == 0
    assert encode_to_disk(FlakyTeacher(), texts, tmp_path, dtype="float32")[0].dtype == np.float32  # its own file


def test_config_names_the_bad_storage_field():
    with pytest.raises(ConfigError, match="corpus_storage"):
        load_config(MiningConfig, corpus_storage="ssd")
    assert load_config(MiningConfig, corpus_storage="disk").disk_dtype == "float16"
