"""Step 01: adapters on hand-written fixtures, validation errors, de-duplication, main(cfg) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minif2.data.adapters import (
    from_beir,
    from_classification_examples,
    from_classification_labels,
    from_clustering,
    from_nli,
    from_pairs,
    from_sts,
    import_jsonl,
)
from minif2.data.dedup import dedup_samples
from minif2.data.task_folders import eval_texts, list_eval_tasks, read_eval_task
from minif2.data.teacher_agreement import TEACHER_AGREEMENT
from minif2.data.unify import UnifyConfig, cli, main, stratified_split, write_offline_eval_tasks
from minif2.data.validation import SkipReport, UnifyError
from minif2.data.wikipedia import WIKI_SOURCES, read_wikipedia, split_articles
from minif2.evaluation.mteb_tasks import load_local_task
from minif2.instructions import SOURCE_INSTRUCTIONS, TYPE_INSTRUCTIONS, instruction_for
from minif2.provenance import file_sha256, folder_fingerprint
from minif2.schema import Sample, normalize_text, read_unified, text_hash, write_unified

INST = "Find it."


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ adapters


def test_pairs_title_body_and_question_answer():
    rows = [{"title": "Tea", "body": "Tea is a drink."}, {"title": "Rust", "body": "Rust is iron oxide."}]
    out = from_pairs(rows, "wiki", "title", "body", instruction=INST)
    assert [s.to_dict() for s in out] == [
        {
            "query": "Tea",
            "positive": "Tea is a drink.",
            "negatives": [],
            "task": "retrieval",
            "source": "wiki",
            "instruction": INST,
        },
        {
            "query": "Rust",
            "positive": "Rust is iron oxide.",
            "negatives": [],
            "task": "retrieval",
            "source": "wiki",
            "instruction": INST,
        },
    ]
    qa = from_pairs([{"question": "2+2?", "answer": "4"}], "quiz", "question", "answer")
    assert (qa[0].query, qa[0].positive) == ("2+2?", "4")
    assert qa[0].instruction == TYPE_INSTRUCTIONS["retrieval"]  # unknown source -> its task type's default


def _beir(folder: Path, qrels: list[str]) -> Path:
    _write(
        folder / "corpus.jsonl",
        ['{"_id": "d1", "title": "Tea", "text": "A drink."}', '{"_id": "d2", "title": "", "text": "Iron oxide."}'],
    )
    _write(folder / "queries.jsonl", ['{"_id": "q1", "text": "what is tea"}', '{"_id": "q2", "text": "what is rust"}'])
    _write(folder / "qrels" / "train.tsv", ["query-id\tcorpus-id\tscore", *qrels])
    return folder


def test_beir_folder_to_samples_title_joined_and_zero_scores_ignored(tmp_path):
    folder = _beir(tmp_path / "beir", ["q1\td1\t1", "q2\td2\t2", "q2\td1\t0"])
    out = from_beir(folder, "mini", split="train", instruction=INST)
    assert [(s.query, s.positive) for s in out] == [("what is tea", "Tea A drink."), ("what is rust", "Iron oxide.")]


def test_beir_unknown_id_names_file_line_field(tmp_path):
    folder = _beir(tmp_path / "beir", ["q1\td1\t1", "q9\td1\t1"])
    with pytest.raises(UnifyError) as err:
        from_beir(folder, "mini", split="train")
    assert (err.value.line, err.value.field) == (3, "query-id") and "train.tsv" in err.value.path
    report = SkipReport()
    assert len(from_beir(folder, "mini", split="train", lenient=True, report=report)) == 1
    assert report.counts == {"unknown id": 1}


def test_classification_label_as_document_one_negative_of_another_label():
    rows = [
        {"text": "great film", "label": "pos"},
        {"text": "dull film", "label": "neg"},
        {"text": "fine", "label": "meh"},
    ]
    out = from_classification_labels(rows, "reviews", seed=0, label_names={"pos": "positive", "neg": "negative"})
    assert [(s.query, s.positive) for s in out] == [
        ("great film", "positive"),
        ("dull film", "negative"),
        ("fine", "meh"),
    ]
    for s in out:
        assert len(s.negatives) == 1 and s.negatives[0] != s.positive and s.task == "classification"
        assert s.negatives[0] in {"positive", "negative", "meh"}


def test_classification_example_form_positive_same_label_negative_other():
    rows = [
        {"text": "a1", "label": 0},
        {"text": "a2", "label": 0},
        {"text": "b1", "label": 1},
        {"text": "b2", "label": 1},
        {"text": "c1", "label": 2},
    ]  # label 2 has one text: no positive exists, so no sample
    out = from_classification_examples(rows, "abc", seed=1)
    assert sorted((s.query, s.positive) for s in out) == [("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b1")]
    for s in out:
        assert len(s.negatives) == 1 and s.negatives[0][0] != s.query[0]


def test_clustering_positive_same_cluster_negatives_from_others():
    rows = [{"text": f"{c}{i}", "label": c} for c in "xyz" for i in range(3)]
    out = from_clustering(rows, "letters", num_negatives=4, seed=0)
    assert len(out) == 9
    for s in out:
        assert s.positive[0] == s.query[0] and s.positive != s.query
        assert len(s.negatives) == 4 and all(n[0] != s.query[0] for n in s.negatives)
    assert out == from_clustering(rows, "letters", num_negatives=4, seed=0)  # seeded


def test_nli_entailment_positive_contradiction_negative():
    rows = [
        {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": "entailment"},
        {"premise": "A dog runs.", "hypothesis": "A cat sleeps.", "label": 2},
        {"premise": "A dog runs.", "hypothesis": "The dog is brown.", "label": "neutral"},
        {"premise": "No entailment here.", "hypothesis": "Whatever.", "label": 1},
    ]
    out = from_nli(rows, "snli", include_neutral=False)  # the kit's stricter option; the default is below
    assert [s.to_dict() for s in out] == [
        {
            "query": "A dog runs.",
            "positive": "An animal moves.",
            "negatives": ["A cat sleeps."],
            "task": "nli",
            "source": "snli",
            "instruction": instruction_for("snli"),
        }
    ]
    assert from_nli(rows, "snli")[0].negatives == ["A cat sleeps.", "The dog is brown."]  # F2LLM's rule


def test_sts_threshold_both_directions():
    rows = [
        {"sentence1": "a", "sentence2": "b", "score": 4.5},
        {"sentence1": "c", "sentence2": "d", "score": 4.0},
        {"sentence1": "e", "sentence2": "f", "score": 3.9},
    ]
    out = from_sts(rows, "stsb", threshold=4.0)
    assert [(s.query, s.positive) for s in out] == [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]
    assert {s.task for s in out} == {"sts"}


# ------------------------------------------------------------------ validation

BAD_LINES = {
    "malformed line": '{"query": "q", "positive": ',
    "missing field": '{"query": "q"}',
    "empty text": '{"query": "q", "positive": "   "}',
    "wrong type": '{"query": "q", "positive": 3}',
}


@pytest.mark.parametrize("reason", list(BAD_LINES))
def test_bad_input_names_file_line_field(tmp_path, reason):
    path = _write(tmp_path / "pairs.jsonl", ['{"query": "ok", "positive": "fine"}', "", BAD_LINES[reason]])
    with pytest.raises(UnifyError) as err:
        import_jsonl(path, "pairs", "mine")
    assert err.value.reason.startswith(reason)
    assert err.value.line == 3 and str(path) in str(err.value) and "line 3" in str(err.value)
    assert err.value.field == (None if reason == "malformed line" else "positive")
    report = SkipReport()
    out = import_jsonl(path, "pairs", "mine", lenient=True, report=report)
    assert [s.query for s in out] == ["ok"] and report.counts == {reason: 1}
    assert report.examples[0]["line"] == 3


def test_lenient_counts_every_kind_of_bad_record(tmp_path):
    path = _write(tmp_path / "all.jsonl", ['{"query": "ok", "positive": "fine"}', *BAD_LINES.values(), "[1, 2]"])
    report = SkipReport()
    assert len(import_jsonl(path, "pairs", "mine", lenient=True, report=report)) == 1
    assert report.to_dict()["by_reason"] == {"malformed line": 1, "missing field": 1, "empty text": 1, "wrong type": 2}
    assert report.total == 5


def test_qrels_header_checked(tmp_path):
    folder = _beir(tmp_path / "beir", [])
    _write(folder / "qrels" / "test.tsv", ["qid\tdid\tscore", "q1\td1\t1"])
    with pytest.raises(UnifyError, match="malformed header"):
        from_beir(folder, "mini")


# ------------------------------------------------------------------ de-duplication


def test_normalisation_folds_case_whitespace_and_unicode():
    assert normalize_text("  Hello\u00a0\tWORLD \n") == "hello world"
    assert text_hash("ﬁle") == text_hash("FILE")  # NFKC ligature + case
    assert text_hash("a b") != text_hash("ab")


def test_dedup_removes_exact_and_variants_and_reports():
    samples = [
        Sample("Hello  World", "x", source="s"),
        Sample("y", "hello world\n", source="s"),
        Sample("keep", "me", ["Hello World", "other"], source="s"),
        Sample("KEEP", "me", source="s"),
        Sample("keep", "me", source="t"),
    ]
    kept, report = dedup_samples(samples, ["hello world"])
    assert [(s.query, s.positive, s.negatives) for s in kept] == [("keep", "me", ["other"])]
    assert report.removed_eval_overlap == {"s": 2} and report.removed_repeats == {"s": 1, "t": 1}
    assert report.dropped_negatives == {"s": 1} and report.to_dict()["total_removed"] == 4


# ------------------------------------------------------------------ instructions and disk


def test_instruction_registry():
    assert instruction_for("code_search") == SOURCE_INSTRUCTIONS["code_search"]
    assert instruction_for("ArguAna") == "Given a claim, find documents that refute the claim."  # F2LLM's MTEB prompt
    assert instruction_for("brand_new", "clustering") == TYPE_INSTRUCTIONS["clustering"]
    with pytest.raises(KeyError, match="SOURCE_INSTRUCTIONS"):
        instruction_for("brand_new")


def test_round_trip_through_disk(tmp_path):
    samples = from_nli(
        [{"premise": "p", "hypothesis": "h", "label": 0}, {"premise": "p", "hypothesis": "c", "label": 2}], "nli"
    )
    samples += from_clustering([{"text": t, "label": t[0]} for t in ("a1", "a2", "b1", "b2")], "clu", 2)
    write_unified({"nli": samples[:1], "clu": samples[1:]}, tmp_path / "u")
    back = read_unified(tmp_path / "u")
    assert list(back) == ["nli", "clu"]
    assert [Sample(**row) for name in back for row in back[name]] == samples


def _tiny_cfg(tmp_path: Path, **kw) -> UnifyConfig:
    return UnifyConfig(
        out_dir=str(tmp_path / "data"),
        cache_dir=str(tmp_path / "cache"),
        code_max_files_per_library=25,
        max_samples_per_source=150,
        eval_code_corpus=120,
        eval_code_queries=50,
        eval_rows_per_split=40,
        eval_sts_pairs=100,
        eval_teacher_pairs=100,
        **kw,
    )


def test_main_writes_unified_and_eval_tasks_without_overlap(tmp_path):
    """One whole unify, checked for: sources, skips, licences, eval tasks, no overlap, instructions, held-out
    articles, and ``source_caps`` giving one source its own cap (the tiny profile's code search: issue 17)."""
    bad = _write(tmp_path / "mine.jsonl", ['{"query": "my question", "positive": "my answer"}', '{"query": ""}'])
    imports = [{"name": "mine", "path": str(bad), "shape": "pairs"}]
    out = main(_tiny_cfg(tmp_path, imports=imports, lenient=True, source_caps={"code_search": 220}))
    unified = read_unified(out / "unified")
    assert 150 < len(unified["code_search"]) <= 220
    assert all(len(rows) <= 150 for name, rows in unified.items() if name != "code_search")
    manifest = json.loads((out / "unified" / "manifest.json").read_text())
    offline = {"code_search", "code_library", "code_modules", "lee_news", "word_similarity"}
    assert set(unified) == offline | {"wiki_paragraphs", "wiki_articles", "mine"}
    assert manifest["sources"] == {k: len(v) for k, v in unified.items()}
    assert manifest["skips"]["by_reason"] == {"empty text": 1}
    assert all(o["licence"] for origins in manifest["origins"].values() for o in origins.values())
    tasks = {p.name: read_eval_task(p) for p in list_eval_tasks(out / "eval_tasks")}
    assert {t["type"] for t in tasks.values()} == {"retrieval", "sts", "classification", "clustering"}
    code = tasks["CodeSearchHeldOut"]
    assert set(code["qrels"]) == set(code["queries"]) and all(
        d in code["corpus"] for r in code["qrels"].values() for d in r
    )
    assert (
        (out / "eval_tasks" / "CodeSearchHeldOut" / "qrels" / "test.tsv")
        .read_text()
        .startswith("query-id\tcorpus-id\tscore\n")
    )
    banned = {text_hash(t) for t in eval_texts(out / "eval_tasks")}
    for data in unified.values():
        assert not banned & {text_hash(t) for t in list(data["query"]) + list(data["positive"])}
    removed = manifest["dedup"]["total_removed"]
    assert sum(manifest["before_dedup"].values()) - removed == sum(manifest["sources"].values())
    assert (out / "unified" / "unify_config.yaml").is_file() and (out / "unified" / "stats.json").is_file()
    for data in unified.values():
        assert all(row["instruction"] for row in data)
    assert tasks[TEACHER_AGREEMENT]["type"] == "sts" and manifest["eval_tasks"][TEACHER_AGREEMENT]["test"] == 100
    _, held_wiki = split_articles(list(read_wikipedia()), 12, seed=0)  # the articles unify held out
    trained = " ".join(
        text
        for name in WIKI_SOURCES
        for row in unified[name]
        for text in (row["query"], row["positive"], *row["negatives"])
    )
    assert not [p["title"] for p in held_wiki if p["text"][:80] in trained]


def test_cli_with_config_and_strict_error(tmp_path, capsys):
    bad = _write(tmp_path / "bad.jsonl", ['{"query": "q", "positive": 7}'])
    config = tmp_path / "unify.yaml"
    config.write_text(f"offline_sources: []\nimports:\n  - {{name: mine, path: {bad}, shape: pairs}}\n")
    with pytest.raises(UnifyError, match=r"bad.jsonl, line 1, field 'positive': wrong type"):
        cli(["--config", str(config), "--out-dir", str(tmp_path / "d")])
    good = _write(tmp_path / "good.jsonl", ['{"query": "q", "positive": "p"}'])
    config.write_text(f"offline_sources: []\nimports:\n  - {{name: mine, path: {good}, shape: pairs}}\n")
    assert cli(["--config", str(config), "--out-dir", str(tmp_path / "d")]) == 0
    assert "mine" in capsys.readouterr().out
    assert len(read_unified(tmp_path / "d" / "unified")["mine"]) == 1


def test_cli_config_keys_win_over_profile(tmp_path):
    import yaml

    config = tmp_path / "unify.yaml"
    config.write_text("offline_sources: []\neval_code_queries: 500\n")  # 500 = the default, still wins over tiny's 200
    assert cli(["--profile", "tiny", "--config", str(config), "--out-dir", str(tmp_path / "d"), "--seed", "3"]) == 0
    saved = yaml.safe_load((tmp_path / "d" / "unified" / "unify_config.yaml").read_text())
    assert saved["offline_sources"] == [] and saved["eval_code_queries"] == 500
    assert saved["max_samples_per_source"] == 500 and saved["seed"] == 3  # from the tiny profile / the flag


@pytest.mark.parametrize("seed", range(6))
def test_stratified_split_keeps_every_test_label_in_train(seed):
    import random

    rng = random.Random(seed)
    sizes = {"common": rng.randint(5, 40), "rare": 1, "pair": 2, "few": rng.randint(3, 6)}
    rows = [{"text": f"{label} {i}", "label": label} for label, n in sizes.items() for i in range(n)]
    train, test = stratified_split(rows, 0.5, seed)
    assert sorted(r["text"] for r in train + test) == sorted(r["text"] for r in rows)  # nothing lost or repeated
    assert {r["label"] for r in test} <= {r["label"] for r in train}
    assert {r["label"] for r in train} == set(sizes)  # a one-row label stays in train
    for label, n in sizes.items():  # each label is split in the asked proportion (its last row kept in train)
        assert sum(r["label"] == label for r in test) == min(round(n * 0.5), n - 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_skewed_harvest_gives_a_valid_suite(tmp_path, seed):
    """Another machine's packages hold other files: fewer numpy docstrings, say. Every split still
    gives mteb a classification task whose test labels all occur in train (issue 21's failure)."""
    held = [
        {"query": f"docstring {lib} {i}", "code": f"def f{lib}{i}(): pass", "library": lib, "module": f"{lib}.m{i % 7}"}
        for lib, n in {"stdlib": 60, "torch": 25, "transformers": 12, "numpy": 2}.items()
        for i in range(n)
    ]
    cfg = UnifyConfig(seed=seed, eval_rows_per_split=30, eval_code_queries=20)
    written = write_offline_eval_tasks(cfg, held, [], tmp_path)
    for name, info in written.items():
        task = read_eval_task(tmp_path / name)  # raises TaskFormatError on an unseen test label
        assert info["fingerprint"] == folder_fingerprint(tmp_path / name)
        if task["type"] == "classification":
            assert {r["label"] for r in task["test"]} <= {r["label"] for r in task["train"]}
            assert load_local_task(tmp_path / name).metadata.dataset["revision"] == info["fingerprint"]


def test_manifest_records_fingerprints_and_versions(tmp_path):
    out = main(_tiny_cfg(tmp_path, offline_sources=("lee_news", "word_similarity")))
    manifest = json.loads((out / "unified" / "manifest.json").read_text())
    assert manifest["fingerprints"] == {
        source: file_sha256(out / "unified" / f"{source}.parquet") for source in manifest["sources"]
    }
    env = manifest["environment"]
    assert env["python"] and set(env["versions"]) >= {"torch", "transformers", "mteb", "datasets"}
    assert manifest["origins"]["lee_news"]["lee_background"]["package"].startswith("gensim ")
    assert all(info["fingerprint"] for info in manifest["eval_tasks"].values())
