"""Mining: the rule on hand-built cases, search against references, and the whole step
against sentence-transformers' ``mine_hard_negatives`` (docs/recipe.md §1)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json

import numpy as np
import pytest

import minif2.mining
import minif2.mining.retrieve
from minif2.config import save_config
from minif2.mining.mine import MiningConfig, main, mine_source
from minif2.mining.report import sentence_transformers_negatives, show, st_kwargs
from minif2.mining.retrieve import encode_cached, exact_search, faiss_search, search
from minif2.mining.rule import apply_rule, exclusion_masks, select_negatives
from minif2.model import EmbedderConfig
from minif2.schema import Sample, normalize_text, read_unified, write_unified


# ----------------------------------------------------------------------------- helpers
class FakeTeacher:
    """A teacher whose cosine scores are chosen by hand: query q = e0, a document with score s
    is s * e0 + sqrt(1 - s^2) * e_j (its own axis j), so <q, doc> = s exactly (up to float32)."""

    pooling = "mean"
    takes_instructions = False  # an encoder, as MiniLM

    def __init__(self, query: str, doc_scores: dict[str, float]) -> None:
        self.dim = len(doc_scores) + 2
        self.config, self.source, self.calls = EmbedderConfig(model="fake"), "fake-teacher", 0
        self.vectors = {query: np.eye(self.dim, dtype=np.float32)[0]}
        for j, (text, s) in enumerate(doc_scores.items(), start=1):
            v = np.zeros(self.dim, dtype=np.float32)
            v[0], v[j] = s, np.sqrt(1 - s * s)
            self.vectors[text] = v

    def encode(self, texts, batch_size=32, instruction=None, show_progress_bar=None):
        self.calls += 1
        return np.stack([self.vectors[t] for t in texts])


def stdlib_pairs(n: int = 80) -> list[Sample]:
    """Real text: (first docstring line -> function source without its docstring) from a few stdlib modules."""
    pairs: list[Sample] = []
    for name in [
        "textwrap",
        "shlex",
        "string",
        "difflib",
        "fractions",
        "statistics",
        "csv",
        "json.decoder",
        "calendar",
    ]:
        for node in ast.walk(ast.parse(inspect.getsource(importlib.import_module(name)))):
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if doc and len(doc.split("\n")[0]) > 20:
                node.body = node.body[1:] or [ast.Pass()]
                pairs.append(Sample(query=doc.split("\n")[0], positive=ast.unparse(node)[:400], source="stdlib"))
    unique = list({(s.query, s.positive): s for s in pairs}.values())
    return list({s.query: s for s in unique}.values())[:n]


# F2LLM's rule on one query: positive score 0.8 -> margin threshold 0.95 * 0.8 = 0.76
DOCS = {
    "the positive": 0.97,
    "The  POSITIVE": 0.95,
    "What is  X": 0.93,
    "rank one": 0.9,
    "too close": 0.85,
    "inside margin": 0.78,
    "hard negative": 0.7,
    "second negative": 0.6,
    "beyond top_k": 0.5,
}


def test_hand_built_each_filter_removes_its_candidate():
    corpus = list(DOCS)
    keys = {}
    corpus_keys = np.array([keys.setdefault(normalize_text(t), len(keys)) for t in corpus])
    indices = np.arange(len(corpus))[None, :]
    scores = np.array([list(DOCS.values())], dtype=np.float32)
    excluded = exclusion_masks(indices, [[0]], corpus_keys, np.array([keys[normalize_text("what is x")]]))  # the query
    rule = apply_rule(
        indices, scores, np.array([0.8]), excluded, top_k=5, skip_top=1, max_score=0.8, relative_margin=0.95
    )
    assert rule.removed == {
        "positive": 1,
        "identical_to_positive": 1,
        "same_as_query": 1,
        "skip_top": 1,
        "max_score": 1,
        "relative_margin": 1,
    }
    assert [corpus[i] for i in np.flatnonzero(rule.keep[0])] == ["hard negative", "second negative"]
    assert rule.rank[0, 3:].tolist() == [1, 2, 3, 4, 5, 6]  # the three excluded texts take no rank
    assert select_negatives(rule.keep, 1)[0].tolist() == [False] * 6 + [True, False, False]
    # turning a filter off lets its candidate through
    loose = apply_rule(
        indices, scores, np.array([0.8]), excluded, top_k=5, skip_top=0, max_score=None, relative_margin=None
    )
    assert [corpus[i] for i in np.flatnonzero(loose.keep[0])] == [
        "rank one",
        "too close",
        "inside margin",
        "hard negative",
        "second negative",
    ]


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("drop", None),
        ("keep_fewer", ["inside margin", "hard negative", "second negative"]),
        ("fill", ["inside margin", "hard negative", "second negative", "beyond top_k"]),
    ],
)
def test_mine_source_end_to_end_with_shortfall_policies(policy, expected, tmp_path):
    # the positive scores 0.97 here: threshold 0.9215, so only skip_top and max_score bite within the top 5
    teacher = FakeTeacher("what is x", {**DOCS, "given": 0.0})
    samples = [
        Sample("what is x", "the positive"),
        Sample("another query", "given", negatives=[d for d in DOCS if d != "the positive"]),
    ]  # kept as given
    cfg = MiningConfig(top_k=5, skip_top=1, num_negatives={"retrieval": 4}, on_shortfall=policy, fill_top_k=10)
    result = mine_source(samples, teacher, cfg, cache_dir=tmp_path)
    mined = [r for r in result.samples if r["positive"] == "the positive"]
    assert result.report["kept_existing_negatives"] == 1 and result.report["mined"] == 1
    assert result.report["removed"] == {
        "positive": 1,
        "identical_to_positive": 1,
        "same_as_query": 1,
        "skip_top": 1,
        "max_score": 1,
        "relative_margin": 0,
    }
    assert result.report["shortfall"]["short"] == 1
    if expected is None:
        assert mined == [] and result.report["shortfall"]["dropped"] == 1 and result.report["samples_out"] == 1
    else:
        assert mined[0]["negatives"] == expected
        assert result.scores["negative_ranks"][0] == [3, 4, 5, 6][: len(expected)]
        np.testing.assert_allclose(result.scores["negative_scores"][0], [DOCS[t] for t in expected], atol=1e-6)
        np.testing.assert_allclose(result.scores["positive_score"], [0.97], atol=1e-6)
    assert [r["negatives"] for r in result.samples if r["positive"] == "given"] == [samples[1].negatives]


def test_positive_is_never_a_negative_even_when_duplicated():
    # every document scores above the positive except a near-copy of it; nothing else passes
    docs = {"p": 0.5, " P ": 0.49, "a": 0.3, "b": 0.2}
    teacher = FakeTeacher("q", docs)
    cfg = MiningConfig(
        top_k=10,
        skip_top=0,
        max_score=None,
        relative_margin=None,
        num_negatives={"retrieval": 3},
        on_shortfall="keep_fewer",
    )
    out = mine_source([Sample("q", "p", negatives=[]), Sample("other", " P ", negatives=["a", "b"])], teacher, cfg)
    assert out.samples[0]["negatives"] == ["a", "b"]  # not "p", not " P "
    assert out.report["removed"]["positive"] == 1 and out.report["removed"]["identical_to_positive"] == 1


def test_chunked_search_equals_one_shot_numpy_and_faiss(tmp_path):
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((300, 32)).astype(np.float32)
    corpus = rng.standard_normal((2000, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    np.save(tmp_path / "corpus.npy", corpus)
    mapped = np.load(tmp_path / "corpus.npy", mmap_mode="r")  # a corpus that need not fit in memory
    full = queries.astype(np.float64) @ corpus.T.astype(np.float64)
    best = -np.sort(-full, axis=1)[:, :50]  # the 50 best scores of each query, exact
    one_s, one_i = exact_search(queries, corpus, 50, query_chunk=10_000, corpus_chunk=10_000)
    chunk_s, chunk_i = exact_search(queries, mapped, 50, query_chunk=64, corpus_chunk=257)
    faiss_s, faiss_i = faiss_search(queries, corpus, 50)
    for s, i in [(one_s, one_i), (chunk_s, chunk_i), (faiss_s, faiss_i)]:
        # the returned documents really have the 50 best scores, in order (documents tied to ~1e-7 may swap)
        np.testing.assert_allclose(np.take_along_axis(full, i, axis=1), best, atol=1e-6)
        np.testing.assert_allclose(s, best, atol=1e-5)
        assert (i != one_i).mean() < 1e-3 and all(len(set(row)) == 50 for row in i)
    small_s, small_i = search(queries[:3], corpus[:7], 50, backend="exact")
    assert small_i.shape == (3, 7)  # k is capped at the corpus size


def test_encode_cache_hits_and_misses(tmp_path):
    teacher = FakeTeacher("q", {"a": 0.1, "b": 0.2})
    first, hit1 = encode_cached(teacher, ["a", "b"], cache_dir=tmp_path)
    again, hit2 = encode_cached(teacher, ["a", "b"], cache_dir=tmp_path)
    _, hit3 = encode_cached(teacher, ["a", "b"], instruction="Retrieve code", cache_dir=tmp_path)
    _, hit4 = encode_cached(teacher, ["b", "a"], cache_dir=tmp_path)
    assert (hit1, hit2, hit3, hit4) == (False, True, False, False) and teacher.calls == 3
    np.testing.assert_array_equal(first, again)
    assert len(list(tmp_path.glob("*.npy"))) == 3


def test_queries_get_their_instruction_only_when_the_teacher_expects_it(tmp_path):
    from types import SimpleNamespace

    from minif2.mining.mine import uses_instructions
    from minif2.mining.retrieve import encode_queries

    class Recorder(FakeTeacher):
        def encode(self, texts, batch_size=32, instruction=None, show_progress_bar=None):
            self.seen = [*getattr(self, "seen", []), (tuple(texts), instruction)]
            return np.ones((len(texts), self.dim), dtype=np.float32) * len(self.seen)

    teacher = Recorder("q", {"a": 0.1})
    emb, hits = encode_queries(teacher, ["q1", "q2", "q1", "q3"], ["Find code", "Find news", "Find code", "Find code"])
    assert teacher.seen == [(("q1", "q3"), "Find code"), (("q2",), "Find news")] and hits == 0  # each query once
    assert emb[:, 0].tolist() == [1, 2, 1, 1]  # rows get their own group's vectors back, in order
    assert uses_instructions(MiningConfig(), SimpleNamespace(takes_instructions=True))  # Qwen3-Embedding-like decoder
    assert not uses_instructions(MiningConfig(), SimpleNamespace(takes_instructions=False))  # MiniLM
    assert uses_instructions(MiningConfig(teacher_uses_instructions=True), SimpleNamespace(takes_instructions=False))


def test_hardness_table_hand_computed():
    from minif2.mining.report import hardness_table
    from minif2.training import hard_negative_loss

    docs = {"pos": 0.9, "d1": 0.8, "d2": 0.7, "d3": 0.6, "d4": 0.5, "d5": 0.4, "d6": 0.3}
    teacher = FakeTeacher("q", docs)
    corpus = list(docs)
    corpus_emb, query_emb = teacher.encode(corpus), teacher.encode(["q"])
    rows = [{"query": "q", "positive": "pos"}]
    table = hardness_table(
        query_emb,
        corpus_emb,
        corpus,
        rows,
        np.arange(7)[None],
        {("q", "pos"): ["d3", "d4"]},
        num=2,
        skip_top=2,
        loss_fn=hard_negative_loss,
    )
    assert table.loc["mined", "mean negative score"] == pytest.approx(0.55, abs=1e-6)
    assert table.loc["skipped top ranks 1-2", "mean negative score"] == pytest.approx(0.75, abs=1e-6)
    assert 0.3 <= table.loc["random", "mean negative score"] <= 0.55  # drawn from d3..d6 only
    by_hand = -np.log(np.exp(0.9 / 0.05) / (np.exp(0.9 / 0.05) + np.exp(0.6 / 0.05) + np.exp(0.5 / 0.05)))
    assert table.loc["mined", "hard-negative loss"] == pytest.approx(by_hand, rel=1e-4)


def test_st_kwargs_refuses_settings_where_the_rules_differ():
    with pytest.raises(ValueError, match="skip_top=5"):
        st_kwargs(MiningConfig(on_shortfall="drop"))
    assert st_kwargs(MiningConfig(skip_order="survivors", on_shortfall="drop"))["range_min"] == 5
    kwargs = st_kwargs(MiningConfig(skip_top=0, on_shortfall="drop"))
    assert kwargs["relative_margin"] == 0.05 and kwargs["range_min"] == 0 and kwargs["num_negatives"] == 24


@pytest.fixture(scope="module")
def stdlib_samples() -> list[Sample]:
    samples = stdlib_pairs(80)
    assert len(samples) == 80
    return samples


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One embedding cache for the module: the kit and ST each encode the stdlib pairs once."""
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.mark.parametrize(
    "rule",
    [
        dict(skip_top=0),  # both score filters on, no skip
        dict(skip_top=5, max_score=None, relative_margin=None),  # skip only
        dict(skip_top=5, skip_order="survivors"),  # F2LLM's numbers in sentence-transformers' order
    ],
)
def test_negatives_equal_sentence_transformers(rule, stdlib_samples, minilm_path, shared_cache):
    from minif2.mining.mine import load_teacher

    cfg = MiningConfig(
        top_k=30,
        num_negatives={"retrieval": 5, "clustering": 5, "classification": 1},
        on_shortfall="drop",
        search_backend="exact",
        **rule,
    )
    ours = mine_source(stdlib_samples, load_teacher(cfg), cfg, cache_dir=shared_cache)
    theirs = sentence_transformers_negatives(stdlib_samples, minilm_path, cfg, cache_folder=str(shared_cache / "st"))
    kit = {(r["query"], r["positive"]): r["negatives"] for r in ours.samples}
    assert 10 < len(kit) and kit == theirs  # same samples kept, same negatives in the same order
    if rule["skip_top"] == 0 or "skip_order" in rule:
        assert ours.report["shortfall"]["dropped"] > 0 and ours.report["removed"]["relative_margin"] > 0


def test_main_writes_schema_report_config_and_reuses_cache(stdlib_samples, shared_cache, tmp_path):
    data = write_unified(
        {
            "code": stdlib_samples[:40],
            "labels": [
                Sample(s.query, "stdlib", negatives=["numpy"], task="classification") for s in stdlib_samples[:5]
            ],
        },
        tmp_path / "unified",
    )
    cfg = MiningConfig(
        data_dir=str(data),
        out_dir=str(tmp_path / "mined"),
        cache_dir=str(shared_cache),
        top_k=20,
        num_negatives={"retrieval": 4, "clustering": 4, "classification": 1},
        max_samples_per_source=30,
    )
    out = main(cfg)
    mined = read_unified(out)
    report = json.loads((out / "mining_report.json").read_text())
    code = report["sources"]["code"]
    assert code["truncated_by_max_samples"] == 10 and code["samples_in"] == 30
    assert code["samples_out"] == 30 - code["shortfall"]["dropped"] == len(mined["code"])
    assert all(len(r["negatives"]) == 4 and r["positive"] not in r["negatives"] for r in mined["code"])
    assert (
        mined["labels"]["negatives"] == [["numpy"]] * 5 and report["sources"]["labels"]["kept_existing_negatives"] == 5
    )
    assert (out / "mining_config.yaml").is_file() and "QUERY" in show(out, "code", 0)
    # second run through the CLI: every embedding comes from the cache, same output
    save_config(cfg, tmp_path / "mine.yaml")
    assert minif2.mining.cli(["--config", str(tmp_path / "mine.yaml"), "--out-dir", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "mining_report.json").read_text())["sources"]["code"]
    assert again["cache_hits"] == {"corpus": True, "query_groups": 1}
    assert read_unified(tmp_path / "again")["code"]["negatives"] == mined["code"]["negatives"]
