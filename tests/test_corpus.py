"""Issue 24: the corpus layout (data/corpus.py), streaming F2LLM import (data/f2llm.py), pre-tokenization
(data/pretokenize.py) and training on either form (training/sampler.py) -- on hand-written files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from minif2.data.corpus import MISSING, CorpusWriter, KeyIndex, is_corpus_layout, read_corpus_layout
from minif2.data.f2llm import cap_mask, f2llm_files, import_f2llm_file, import_f2llm_folder
from minif2.data.pretokenize import PretokenizeConfig, document_token_ids, ids_fit
from minif2.data.pretokenize import main as pretokenize
from minif2.data.unify import UnifyConfig, main
from minif2.data.validation import SkipReport, UnifyError
from minif2.schema import Sample, text_hash
from minif2.training.sampler import load_training_data


def _v1_file(path: Path, rows: list[tuple[str, str, list[str]]]) -> Path:
    """F2LLM's v1 file: query, passage, negative_1..N (one column per negative)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {"query": [q for q, _, _ in rows], "passage": [p for _, p, _ in rows]}
    for i in range(len(rows[0][2])):
        columns[f"negative_{i + 1}"] = [n[i] for _, _, n in rows]
    pq.write_table(pa.table(columns), path)
    return path


# (query, passage, negatives): row 3 repeats row 1's pair, row 5's query is an eval text, row 4's
# second negative is one (case and spacing differ: the normalised hash matches)
ROWS = [
    ("tea", "tea is a drink", ["coffee beans", "a teapot"]),
    ("rust", "rust is iron oxide", ["coffee beans", "steel"]),
    ("TEA", "tea is a drink", ["steel", "a teapot"]),
    ("iron", "iron is a metal", ["steel", "Held  OUT doc"]),
    ("held out query", "some text", ["steel", "a teapot"]),
]
EVAL = {text_hash("held out doc"), text_hash("held out query")}


def test_writer_stores_each_document_once(tmp_path):
    writer = CorpusWriter(tmp_path, banned={text_hash("x")})
    assert writer.document_ids(pa.array(["a", "b", "a", "X "])).tolist() == [0, 1, 0, -1]
    assert writer.document_ids(pa.chunked_array([["b"], ["c", "a"]])).tolist() == [1, 2, 0]
    writer.close({})
    assert pq.read_table(tmp_path / "corpus.parquet").to_pydict() == {"doc_id": [0, 1, 2], "text": ["a", "b", "c"]}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["documents"] == {"distinct": 3, "references": 7, "evaluation_texts_dropped": 1}
    assert is_corpus_layout(tmp_path)


def test_key_index_answers_as_a_dict_across_merges():
    """Batches of new keys past the merge threshold (2**16 in the recent run): every lookup as a dict's."""
    rng = np.random.default_rng(0)
    index, reference = KeyIndex(), {}
    for size in (5, 40_000, 30_000, 70_000, 3):  # the recent run merges into the large one twice
        keys = np.setdiff1d(rng.integers(0, 2**64, size * 2, dtype=np.uint64), list(reference))[:size]
        keys = rng.permutation(keys)
        ids = np.arange(len(reference), len(reference) + size)
        index.add(keys, ids)
        reference |= dict(zip(keys.tolist(), ids.tolist(), strict=True))
        probe = np.concatenate([rng.choice(np.array(list(reference), np.uint64), 1000), keys[:3] + np.uint64(1)])
        assert index.lookup(probe).tolist() == [reference.get(k, MISSING) for k in probe.tolist()]
    assert len(index) == len(reference) and len(index.recent[0]) < len(index.large[0])


def test_v1_import_drops_and_counts_like_dedup(tmp_path):
    writer = CorpusWriter(tmp_path / "out", banned=EVAL)
    run = import_f2llm_file(_v1_file(tmp_path / "msmarco.parquet", ROWS), "msmarco", writer)
    writer.close({})
    assert run.counts.to_dict() == {
        "rows_read": 5, "capped_out": 0, "skipped_invalid": 0, "removed_eval_overlap": 1,
        "removed_repeats": 1, "kept": 3, "dropped_negatives": 1,
    }  # fmt: skip
    data = read_corpus_layout(tmp_path / "out")
    rows = data.rows["msmarco"].to_pylist()
    assert [r["query"] for r in rows] == ["tea", "rust", "iron"]
    assert [data.texts([r["positive_id"]])[0] for r in rows] == [
        "tea is a drink",
        "rust is iron oxide",
        "iron is a metal",
    ]
    assert [data.texts(r["negative_ids"]) for r in rows] == [
        ["coffee beans", "a teapot"],
        ["coffee beans", "steel"],
        ["steel"],
    ]
    assert {r["task"] for r in rows} == {"retrieval"}
    # ids in order of first sight, a batch read column by column (passages, then negative_1, negative_2);
    # "Held  OUT doc" is an eval text and never written; "some text" is, though its row is dropped
    assert data.text.to_pylist() == [
        "tea is a drink", "rust is iron oxide", "iron is a metal", "some text", "coffee beans", "steel", "a teapot",
    ]  # fmt: skip


def test_strict_import_names_file_row_and_column_lenient_counts(tmp_path):
    bad = ROWS[:2] + [("q", "  ", ["n1", "n2"])]
    path = _v1_file(tmp_path / "fiqa.parquet", bad)
    with pytest.raises(UnifyError) as err:
        import_f2llm_file(path, "fiqa", CorpusWriter(tmp_path / "a"))
    assert (err.value.line, err.value.field) == (3, "passage")
    assert "fiqa.parquet" in str(err.value) and "empty text" in str(err.value)
    report = SkipReport()
    run = import_f2llm_file(path, "fiqa", CorpusWriter(tmp_path / "b"), lenient=True, report=report)
    assert (run.counts.skipped_invalid, run.counts.kept, report.counts["empty text"]) == (1, 2, 1)


def test_cap_keeps_a_seeded_choice_of_rows(tmp_path):
    rows = [(f"q{i}", f"p{i}", [f"n{i}"]) for i in range(10)]
    writer = CorpusWriter(tmp_path / "out")
    run = import_f2llm_file(_v1_file(tmp_path / "imdb.parquet", rows), "imdb", writer, cap=4, seed=3)
    writer.close({})
    assert (run.counts.rows_read, run.counts.capped_out, run.counts.kept) == (10, 6, 4)
    chosen = [f"q{i}" for i in cap_mask(10, 4, 3).nonzero()[0]]
    assert read_corpus_layout(tmp_path / "out").rows["imdb"]["query"].to_pylist() == chosen
    assert run.task == "classification"  # imdb is in F2LLM's classification list, one negative


def test_v2_layout_gives_the_rows_of_v1(tmp_path):
    """F2LLM-v2 (tokenize_data_qwen.py): corpus.parquet with string doc ids, rows holding ids in *_input_ids."""
    texts = sorted({t for _, p, n in ROWS for t in [p, *n]})
    ids = {t: f"msmarco_{i}" for i, t in enumerate(texts)}
    v2 = tmp_path / "v2"
    v2.mkdir()
    pq.write_table(pa.table({"doc_id": [ids[t] for t in texts], "text": texts}), v2 / "corpus.parquet")
    columns = {"query": [q for q, _, _ in ROWS], "passage_input_ids": [ids[p] for _, p, _ in ROWS]}
    columns |= {f"negative_{i + 1}_input_ids": [ids[n[i]] for _, _, n in ROWS] for i in range(2)}
    pq.write_table(pa.table(columns), v2 / "msmarco_query.parquet")
    assert list(f2llm_files(v2)) == ["msmarco"]
    out = {}
    for name, folder in (("v1", _v1_file(tmp_path / "v1" / "msmarco.parquet", ROWS).parent), ("v2", v2)):
        writer = CorpusWriter(tmp_path / f"out_{name}", banned=EVAL)
        import_f2llm_folder(folder, writer)
        writer.close({})
        data = read_corpus_layout(tmp_path / f"out_{name}")
        out[name] = [
            (r["query"], data.texts([r["positive_id"], *r["negative_ids"]])) for r in data.rows["msmarco"].to_pylist()
        ]
    assert out["v1"] == out["v2"] and len(out["v1"]) == 3


def test_v2_token_ids_are_decoded_with_the_tokenizer_that_made_them(tmp_path):
    """F2LLM-v2's own files keep ids only (tokenize_data_qwen.py: encode, truncate, append EOS; integer doc ids):
    decoded with the tokenizer, the rows equal those of the same data given as texts; without it, refused."""
    from transformers import AutoTokenizer

    from minif2.assets import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("tiny-qwen3"))
    rows = [*ROWS, ("café  au lait?", "naïve  text\twith tabs", ["ünïcode — dash", "  leading space"])]
    texts = sorted({t for _, p, n in rows for t in [p, *n]})
    doc_id = {t: 100 + i for i, t in enumerate(texts)}

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    folders = {"text": tmp_path / "text", "ids": tmp_path / "ids"}
    for name, folder in folders.items():
        folder.mkdir()
        corpus = {"doc_id": [doc_id[t] for t in texts]}
        corpus |= {"text": texts} if name == "text" else {"input_ids": [ids(t) for t in texts]}
        pq.write_table(pa.table(corpus), folder / "corpus.parquet")
        queries = [q for q, _, _ in rows]
        columns = {"query": queries} if name == "text" else {"query_input_ids": [ids(q) for q in queries]}
        columns |= {"passage_input_ids": [doc_id[p] for _, p, _ in rows]}
        columns |= {f"negative_{i + 1}_input_ids": [doc_id[n[i]] for _, _, n in rows] for i in range(2)}
        pq.write_table(pa.table(columns), folder / "msmarco_query.parquet")
    with pytest.raises(UnifyError, match="f2llm_tokenizer"):
        import_f2llm_folder(folders["ids"], CorpusWriter(tmp_path / "refused"))
    out = {}
    for name, folder in folders.items():
        writer = CorpusWriter(tmp_path / f"out_{name}", banned=EVAL)
        import_f2llm_folder(folder, writer, tokenizer=tokenizer if name == "ids" else None)
        writer.close({})
        data = read_corpus_layout(tmp_path / f"out_{name}")
        out[name] = [
            (r["query"], data.texts([r["positive_id"], *r["negative_ids"]])) for r in data.rows["msmarco"].to_pylist()
        ]
    assert out["ids"] == out["text"] and len(out["text"]) == 4
    assert ("café  au lait?", ["naïve  text\twith tabs", "ünïcode — dash", "  leading space"]) in out["ids"]


def test_v2_unknown_document_id_is_named(tmp_path):
    pq.write_table(pa.table({"doc_id": ["d0"], "text": ["a"]}), tmp_path / "corpus.parquet")
    pq.write_table(pa.table({"query": ["q", "r"], "passage_input_ids": ["d0", "d9"]}), tmp_path / "fever_query.parquet")
    with pytest.raises(UnifyError) as err:
        import_f2llm_folder(tmp_path, CorpusWriter(tmp_path / "out"))
    assert (err.value.line, err.value.field) == (2, "passage_input_ids")


def test_folder_import_gives_each_source_its_family(tmp_path):
    """``hub: f2llm`` from a local copy: every file a source, its family from F2LLM's lists (schema.F2LLM_FAMILIES)."""
    raw = tmp_path / "f2llm"
    _v1_file(raw / "banking77.parquet", [("a", "b", ["c", "d"]), ("e", "f", ["g", "h"])])
    _v1_file(raw / "imdb.parquet", [("good film", "positive", ["negative"])])
    _v1_file(raw / "snli.parquet", [("x", "y", ["z", "w"])])
    cfg = UnifyConfig(out_dir=str(tmp_path / "data"), offline_sources=(), layout="corpus",
                      imports=[{"name": "f2llm", "shape": "f2llm", "hub": str(raw)}])  # fmt: skip
    main(cfg)
    manifest = json.loads((tmp_path / "data" / "unified" / "manifest.json").read_text())
    assert manifest["sources"] == {"banking77": 2, "imdb": 1, "snli": 1}
    assert {s["source"]: s["task"] for s in manifest["stats"]} == {
        "banking77": "clustering", "imdb": "classification", "snli": "retrieval"
    }  # fmt: skip
    assert manifest["f2llm_import"]["banking77"]["kept"] == 2


def test_hub_f2llm_streams_every_source_of_the_cached_dataset(tmp_path, monkeypatch):
    """``hub: f2llm`` by name: codefuse-ai/F2LLM's parquet files through huggingface_hub's cache (offline: a
    cache laid out as a download leaves it, sources in a sub-folder), each file streamed as its own source."""
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "datasets--codefuse-ai--F2LLM"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40) / "data"
    _v1_file(snapshot / "msmarco.parquet", [("a", "b", ["c", "d"]), ("e", "f", ["g", "h"])])
    _v1_file(snapshot / "imdb.parquet", [("good film", "positive", ["negative"])])
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cfg = UnifyConfig(out_dir=str(tmp_path / "data"), offline_sources=(), layout="corpus",
                      imports=[{"name": "f2llm", "shape": "f2llm", "hub": "f2llm"}])  # fmt: skip
    main(cfg)
    manifest = json.loads((tmp_path / "data" / "unified" / "manifest.json").read_text())
    assert manifest["sources"] == {"imdb": 1, "msmarco": 2}
    with pytest.raises(UnifyError, match="cannot fetch dataset"):  # not in the cache, and offline
        main(UnifyConfig(out_dir=str(tmp_path / "other"), offline_sources=(), layout="corpus",
                         imports=[{"name": "x", "shape": "f2llm", "hub": "someone/absent"}]))  # fmt: skip
    with pytest.raises(UnifyError, match="no such file or folder"):
        main(UnifyConfig(out_dir=str(tmp_path / "other"), offline_sources=(), layout="corpus",
                         imports=[{"name": "x", "shape": "f2llm", "hub": "/no/such/F2LLM"}]))  # fmt: skip


def _unify(tmp_path: Path, layout: str) -> Path:
    rows = [(f"query {i}", f"doc {i}", [f"doc {(i + j) % 7}" for j in (1, 2, 3)]) for i in range(20)]
    raw = _v1_file(tmp_path / "raw" / "msmarco.parquet", rows)
    cfg = UnifyConfig(out_dir=str(tmp_path / layout), offline_sources=(), layout=layout,
                      imports=[{"name": "msmarco", "shape": "f2llm", "hub": str(raw)}])  # fmt: skip
    return main(cfg) / "unified"


def test_either_layout_gives_the_same_training_batches(tmp_path):
    inline, corpus = _unify(tmp_path, "inline"), _unify(tmp_path, "corpus")
    assert not is_corpus_layout(inline) and is_corpus_layout(corpus)
    a, b = load_training_data(inline, 0.1), load_training_data(corpus, 0.1)
    assert a.sizes == b.sizes == {"msmarco": 18} and a.negatives_available == b.negatives_available == {"msmarco": 3}
    for split, indices in (("train", [0, 5, 17]), ("validation", [0, 1])):
        x, y = a.batch("msmarco", indices, [2, 0], split), b.batch("msmarco", indices, [2, 0], split)
        assert (x.queries, x.positives, x.negatives, x.k) == (y.queries, y.positives, y.negatives, y.k)
    assert y.document_ids is None


def test_an_inline_folder_converted_gives_the_same_training_batches(tmp_path):
    """``inline_to_corpus`` (e.g. on ``minif2 mine``'s output): the same rows and batches, each document once."""
    from minif2.data.corpus import inline_to_corpus

    inline = _unify(tmp_path, "inline")
    converted = inline_to_corpus(inline, tmp_path / "converted", rows_per_batch=7)  # three batches of 18 + 2 rows
    manifest = json.loads((converted / "manifest.json").read_text())
    assert manifest["sources"] == {"msmarco": 20} and manifest["documents"]["distinct"] == 20
    assert manifest["documents"]["references"] == 20 * 4  # positive + 3 negatives per row, stored once each
    a, b = load_training_data(inline, 0.1), load_training_data(converted, 0.1)
    assert a.sizes == b.sizes and a.negatives_available == b.negatives_available
    for split, indices in (("train", [0, 5, 17]), ("validation", [0, 1])):
        x, y = a.batch("msmarco", indices, [2, 0], split), b.batch("msmarco", indices, [2, 0], split)
        assert (x.queries, x.positives, x.negatives, x.k) == (y.queries, y.positives, y.negatives, y.k)


def test_pretokenized_corpus_gives_the_same_input_ids_and_masks(tmp_path, train_config):
    from minif2.model import Embedder
    from minif2.training.trainer import draw_batch, embed_batch

    folder = _unify(tmp_path, "corpus")
    pretokenize(PretokenizeConfig(data_dir=str(folder), model="tiny-qwen3", max_length_tokens=4))
    embedder = Embedder.from_pretrained("tiny-qwen3", max_length_tokens=4)
    data = load_training_data(folder, 0.1)
    assert ids_fit(data.corpus.tokenized, embedder)
    assert not ids_fit(data.corpus.tokenized, Embedder.from_pretrained("tiny-qwen3", max_length_tokens=5))
    ids = data.corpus.token_ids([0])[0]  # "doc 0": 3 tokens + EOS, within 4
    assert ids == document_token_ids(embedder, ["doc 0"])[0] and ids[-1] == embedder.tokenizer.eos_token_id
    cfg = train_config(folder, tmp_path / "ckpt", max_length_tokens=4, num_negatives=2)
    batch = draw_batch(data, cfg, "msmarco", [3, 1, 4, 0], micro=7, embedder=embedder)
    assert batch.document_ids is not None and len(batch.document_ids) == 4 + 4 * 2
    from_text = embedder.tokenize(batch.positives + batch.negatives)
    from_ids = embedder.pad(batch.document_ids)
    assert torch.equal(from_text["input_ids"], from_ids["input_ids"])
    assert torch.equal(from_text["attention_mask"], from_ids["attention_mask"])
    seen = []
    embed_batch(lambda i, m: seen.append(i) or torch.zeros(len(i), 8), embedder, batch)
    assert torch.equal(seen[1], from_text["input_ids"])


def test_small_sources_write_into_the_corpus_layout(tmp_path):
    samples = [
        Sample("q1", "shared", ["n1", "n2"], "retrieval", "mine", "Find."),
        Sample("q2", "shared", [], "retrieval", "mine", "Find."),
    ]
    writer = CorpusWriter(tmp_path)
    writer.write_samples("mine", samples)
    writer.close({})
    rows = read_corpus_layout(tmp_path).rows["mine"].to_pylist()
    assert [(r["positive_id"], r["negative_ids"]) for r in rows] == [(0, [1, 2]), (0, [])]


def test_streamed_import_is_deduplicated_against_held_out_tasks(tmp_path):
    """A jsonl import's held-out split (data/holdout.py) becomes an eval task; the streamed F2LLM rows that
    share its texts are dropped and counted, as dedup_samples drops inline samples."""
    from minif2.data.task_folders import eval_texts

    pairs = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"query": f"pair question {i}", "positive": f"pair answer {i}"}) for i in range(10)]
    pairs.write_text("\n".join(lines) + "\n")
    rows = [(f"pair question {i}", f"other text {i}", ["n a", "n b"]) for i in range(10)]
    raw = _v1_file(tmp_path / "msmarco.parquet", rows)
    cfg = UnifyConfig(out_dir=str(tmp_path / "data"), offline_sources=(), layout="corpus", imports=[
        {"name": "mine", "shape": "pairs", "path": str(pairs), "holdout": 0.5},
        {"name": "msmarco", "shape": "f2llm", "path": str(raw)},
    ])  # fmt: skip
    main(cfg)
    held = {text_hash(t) for t in eval_texts(tmp_path / "data" / "eval_tasks")}
    expected = sum(text_hash(f"pair question {i}") in held for i in range(10))
    assert 0 < expected < 10
    manifest = json.loads((tmp_path / "data" / "unified" / "manifest.json").read_text())
    assert manifest["f2llm_import"]["msmarco"]["removed_eval_overlap"] == expected
    assert manifest["dedup"]["removed_eval_overlap"]["msmarco"] == expected
    kept = read_corpus_layout(tmp_path / "data" / "unified").rows["msmarco"]["query"].to_pylist()
    assert len(kept) == 10 - expected and not {text_hash(q) for q in kept} & held
    assert manifest["sources"]["mine"] == 10 - expected  # the held-out pairs left the jsonl source too


def test_reading_a_corpus_folder_as_inline_says_what_to_do(tmp_path):
    from minif2.config import MissingInputError
    from minif2.schema import read_unified

    CorpusWriter(tmp_path).close({})
    with pytest.raises(MissingInputError, match="corpus layout"):
        read_unified(tmp_path)


def test_training_texts_are_the_same_in_either_layout(tmp_path):
    a, b = load_training_data(_unify(tmp_path, "inline"), 0.1), load_training_data(_unify(tmp_path, "corpus"), 0.1)
    for column in ("query", "positive"):
        assert list(a.texts("msmarco", column)) == list(b.texts("msmarco", column))
    assert len(b.texts("msmarco", "positive")) == 18


def test_a_null_negative_drops_its_row_only(tmp_path):
    path = tmp_path / "fever.parquet"
    table = {"query": ["a", "b", "c"], "passage": ["pa", "pb", "pc"], "negative_1": ["shared", "shared", "x"]}
    pq.write_table(pa.table({**table, "negative_2": ["y", None, "shared"]}), path)
    with pytest.raises(UnifyError) as err:
        import_f2llm_file(path, "fever", CorpusWriter(tmp_path / "strict"))
    assert (err.value.line, err.value.field, err.value.reason.split(":")[0]) == (2, "negative_2", "missing field")
    writer = CorpusWriter(tmp_path / "lenient")
    run = import_f2llm_file(path, "fever", writer, lenient=True)
    writer.close({})
    data = read_corpus_layout(tmp_path / "lenient")
    kept = [(r["query"], data.texts([r["positive_id"], *r["negative_ids"]])) for r in data.rows["fever"].to_pylist()]
    assert kept == [("a", ["pa", "shared", "y"]), ("c", ["pc", "x", "shared"])]
    assert (run.counts.skipped_invalid, run.counts.kept) == (1, 2)
