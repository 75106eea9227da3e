"""Offline harvesters (ast docstring -> code, gensim's corpora), hub loaders on local files, eval-task files."""

from __future__ import annotations

import json
import re

import pytest
from datasets import Dataset

from minif2.data.loaders import load_hub_source
from minif2.data.sources import (
    harvest_code_pairs,
    pairs_from_source,
    read_lee_background,
    read_lee_sts,
    read_newsgroups,
    read_polarity,
    read_word_similarity,
)
from minif2.data.task_folders import read_eval_task, write_eval_task
from minif2.data.unify import split_code_pairs
from minif2.data.validation import SkipReport, UnifyError
from minif2.data.wikipedia import first_sentence_split, read_wikipedia

SNIPPET = '''
def add(a, b):
    """Add two numbers and return the sum.

    Args:
        a: first
    """
    total = a + b
    return total


def _private(x):
    """A private helper that is not harvested."""
    return x


class Box:
    def size(self):
        """Return how many items the box holds."""
        return len(self.items)

    def short(self):
        """Too short."""
        return 1

    def only_doc(self):
        """This method has a docstring and nothing else."""
'''


def test_pairs_from_source_strips_docstring_and_skips_private_short_and_empty():
    pairs, skipped = pairs_from_source(SNIPPET, "pkg.mod", "stdlib")
    assert [(p["query"], p["code"]) for p in pairs] == [
        ("Add two numbers and return the sum.", "def add(a, b):\n    total = a + b\n    return total"),
        ("Return how many items the box holds.", "def size(self):\n    return len(self.items)"),
    ]
    assert skipped == {"docstring summary under min_words": 1, "no code besides the docstring": 1}
    assert pairs[0]["module"] == "pkg.mod" and pairs[0]["line"] == 2


def test_harvest_is_cached_seeded_and_reports_origins(tmp_path):
    pairs, manifest = harvest_code_pairs(("stdlib", "numpy"), tmp_path, max_files_per_library=15, seed=3)
    assert manifest["files_read"] == {"stdlib": 15, "numpy": 15} and manifest["pairs"] == len(pairs) > 20
    assert manifest["origins"]["numpy"]["licence"] == "BSD-3-Clause"
    assert {p["library"] for p in pairs} == {"stdlib", "numpy"}
    cached = list(tmp_path.glob("code_pairs-*.jsonl"))
    assert len(cached) == 1
    again, _ = harvest_code_pairs(("stdlib", "numpy"), tmp_path, max_files_per_library=15, seed=3)
    assert again == pairs and len(list(tmp_path.glob("code_pairs-*.jsonl"))) == 1
    train, held = split_code_pairs(pairs, 10, seed=0)
    assert len(train) + len(held) == len(pairs) and len(held) >= 10
    assert not {p["module"] for p in train} & {p["module"] for p in held}  # whole modules held out


def test_gensim_corpora_shapes_and_known_values():
    lee = read_lee_sts()
    assert len(lee) == 50 * 49 // 2 and all(0.0 <= r["score"] <= 1.0 for r in lee)
    assert lee[0]["score"] == 0.3  # similarities0-1.txt, row 1 column 2
    polarity = read_polarity()
    assert len(polarity) == 200 and sum(r["label"] == "positive" for r in polarity) == 100
    news = read_newsgroups()
    assert {r["label"] for r in news} == {"alt.atheism", "sci.space"} and len(news) == 200
    assert not any("Newsgroups:" in r["text"] for r in news)  # headers name the label: removed
    # quotes and their attributions, as sklearn's fetch_20newsgroups(remove=(..., "quotes")): message ids gone
    attributed = [r for r in news if re.search(r"In article <|writes:", r["text"])]
    assert len(attributed) == 1 and attributed[0]["text"].startswith("#In article")  # "#" is not a quote mark


def test_wikipedia_paragraphs_are_prose_of_whole_articles():
    paragraphs = read_wikipedia()
    titles = {p["title"] for p in paragraphs}
    assert len(paragraphs) > 3000 and 90 < len(titles) < 110 and {"Anarchism", "Albedo"} <= titles
    assert all(200 <= len(p["text"]) <= 1500 and "|" not in p["text"] and "[[" not in p["text"] for p in paragraphs)
    lead, rest = first_sentence_split(next(p["text"] for p in paragraphs if p["title"] == "Albedo"))
    assert lead == "It is the ratio of reflected radiation from the surface to incident radiation upon it."
    assert rest.startswith("Its dimensionless nature")
    assert len(read_lee_background()) > 250
    words = read_word_similarity("wordsim353")
    assert words[0] == {"sentence1": "love", "sentence2": "sex", "score": 6.77} and len(words) == 353
    assert len(read_word_similarity("simlex999")) == 999


def test_f2llm_parquet_loader_offline(tmp_path):
    rows = {
        "query": ["q1", "q2"],
        "passage": ["p1", "p2"],
        **{f"negative_{i}": [f"n{i}a", f"n{i}b"] for i in (1, 2, 10)},
    }
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "msmarco.parquet"))
    out = load_hub_source(str(tmp_path / "msmarco.parquet"), "f2llm", "msmarco")
    assert [(s.query, s.positive, s.negatives, s.task) for s in out] == [
        ("q1", "p1", ["n1a", "n2a", "n10a"], "retrieval"),
        ("q2", "p2", ["n1b", "n2b", "n10b"], "retrieval"),
    ]
    Dataset.from_dict({"query": ["t"], "passage": ["label"], "negative_1": ["other"]}).to_parquet(
        str(tmp_path / "cls.parquet")
    )
    assert load_hub_source(str(tmp_path / "cls.parquet"), "f2llm", "imdb")[0].task == "classification"


def test_hub_loader_on_local_jsonl_validates_rows(tmp_path):
    path = tmp_path / "sts.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"sentence1": "a", "sentence2": "b", "score": 0.9},
                {"sentence1": "c", "sentence2": "", "score": 0.95},
            ]
        )
        + "\n"
    )
    with pytest.raises(UnifyError, match=r"row|line 2, field 'sentence2': empty text"):
        load_hub_source(str(path), "sts", "stsbenchmark", threshold=0.8)
    report = SkipReport()
    out = load_hub_source(str(path), "sts", "stsbenchmark", threshold=0.8, lenient=True, report=report)
    assert [(s.query, s.positive) for s in out] == [("a", "b"), ("b", "a")] and report.total == 1
    with pytest.raises(UnifyError, match="cannot load dataset"):
        load_hub_source(str(tmp_path / "missing-folder"), "sts", "x")


def test_eval_task_files_round_trip(tmp_path):
    write_eval_task(
        tmp_path,
        "R",
        "retrieval",
        "Find code.",
        "code",
        corpus=[{"_id": "d0", "title": "", "text": "def f(): pass"}],
        queries=[{"_id": "q0", "text": "f"}],
        qrels=[("q0", "d0", 1)],
    )
    write_eval_task(
        tmp_path,
        "C",
        "classification",
        "Classify.",
        "x",
        train=[{"text": "a", "label": "1"}, {"text": "c", "label": "2"}],
        test=[{"text": "b", "label": "2"}],
    )
    task = read_eval_task(tmp_path / "R")
    assert task["qrels"] == {"q0": {"d0": 1}} and task["queries"] == {"q0": "f"} and task["instruction"] == "Find code."
    assert (tmp_path / "R" / "qrels" / "test.tsv").read_text() == "query-id\tcorpus-id\tscore\nq0\td0\t1\n"
    assert read_eval_task(tmp_path / "C")["test"] == [{"text": "b", "label": "2"}]
    with pytest.raises(ValueError, match="not one of"):
        write_eval_task(tmp_path, "X", "bitext", "", "x")
