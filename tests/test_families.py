"""Imported F2LLM data: each source's family from the released code's lists, negatives and losses per family."""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset

from minif2.data.adapters import from_nli
from minif2.data.unify import import_sources
from minif2.data.validation import SkipReport
from minif2.model import format_query
from minif2.schema import F2LLM_FAMILIES, write_unified
from minif2.training.losses import f2llm_loss
from minif2.training.sampler import NEGATIVES_PER_STEP, NEGATIVES_PER_STEP_V2, load_training_data, negatives_per_step

# The released lists, as written in codefuse-ai/CodeFuse-Embeddings F2LLM/utils.py (v1), for the names used here.
RELEASED = {"msmarco": "retrieval", "snli": "retrieval", "imdb": "classification", "banking77": "clustering"}
INSTRUCTED = "Instruct: Given a web search query, retrieve relevant passages.\nQuery: what is tea"


def _f2llm_parquet(path, n_rows: int, n_negatives: int, first_query: str | None = None) -> None:
    """A file shaped like F2LLM's published data: query, passage, negative_1..negative_n."""
    rows = {
        "query": [first_query or "q0"] + [f"q{i}" for i in range(1, n_rows)],
        "passage": [f"p{i}" for i in range(n_rows)],
        **{f"negative_{j}": [f"n{j}-{i}" for i in range(n_rows)] for j in range(1, n_negatives + 1)},
    }
    Dataset.from_dict(rows).to_parquet(str(path))


@pytest.fixture
def imported(tmp_path):
    shapes = {"msmarco": 24, "snli": 24, "imdb": 1, "banking77": 24, "my_topics": 24}
    for name, k in shapes.items():
        _f2llm_parquet(tmp_path / f"{name}.parquet", 6, k, INSTRUCTED if name == "msmarco" else None)
    specs = [{"name": n, "shape": "f2llm", "hub": str(tmp_path / f"{n}.parquet")} for n in shapes]
    specs[-1]["task"] = "clustering"  # a user's config decides the family of a source F2LLM does not list
    samples = import_sources(specs, lenient=False, report=SkipReport())
    write_unified(samples, tmp_path / "unified")
    return samples, load_training_data(tmp_path / "unified", validation_fraction=0.0)


def test_families_follow_the_released_lists_and_the_users_override(imported):
    samples, data = imported
    assert all(F2LLM_FAMILIES[name] == family for name, family in RELEASED.items())
    assert data.family == {**RELEASED, "my_topics": "clustering"}
    assert data.negatives_available == {"msmarco": 24, "snli": 24, "imdb": 1, "banking77": 24, "my_topics": 24}
    steps = {
        s: min(negatives_per_step(NEGATIVES_PER_STEP, f), data.negatives_available[s]) for s, f in RELEASED.items()
    }
    assert steps == {"msmarco": 7, "snli": 7, "imdb": 1, "banking77": 7}  # F2LLM/run.py collate_fn
    assert negatives_per_step(NEGATIVES_PER_STEP_V2, data.family["banking77"]) == 9  # F2LLM-v2 option


def test_in_batch_loss_only_on_retrieval_sources(imported):
    _, data = imported
    torch.manual_seed(0)
    for source, family in data.family.items():
        k = min(negatives_per_step(NEGATIVES_PER_STEP, family), data.negatives_available[source])
        batch = data.batch(source, [0, 1, 2], list(range(k)))
        q, p, n = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, k, 8)
        parts = f2llm_loss(q, p, n, batch.family)
        assert ("in_batch" in parts) == (family == "retrieval"), source
        assert len(batch.negatives) == 3 * k


def test_an_instructed_query_is_prefixed_once(imported):
    samples, data = imported
    first = samples["msmarco"][0]
    assert (first.instruction, first.query) == ("Given a web search query, retrieve relevant passages.", "what is tea")
    assert format_query(first.query, first.instruction) == INSTRUCTED
    assert data.batch("msmarco", [0], []).queries == [INSTRUCTED]
    plain = samples["msmarco"][1]
    assert format_query(plain.query, plain.instruction).startswith("Instruct: ") and plain.query == "q1"


def test_unlisted_source_falls_back_to_its_shape_with_a_warning(tmp_path, caplog):
    _f2llm_parquet(tmp_path / "mine.parquet", 2, 1)
    with caplog.at_level(logging.WARNING):
        out = import_sources(
            [{"name": "mine", "shape": "f2llm", "hub": str(tmp_path / "mine.parquet")}], False, SkipReport()
        )
    assert out["mine"][0].task == "classification" and "not in F2LLM's dataset lists" in caplog.text


def test_nli_default_is_f2llms_rule_and_contradictions_only_an_option():
    rows = [
        {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": "entailment"},
        {"premise": "A dog runs.", "hypothesis": "The dog is brown.", "label": "neutral"},
        {"premise": "A dog runs.", "hypothesis": "A cat sleeps.", "label": 2},
    ]
    f2llm = from_nli(rows, "snli")[0]  # F2LLM's seed explainer: neutral and contradicting hypotheses
    assert sorted(f2llm.negatives) == ["A cat sleeps.", "The dog is brown."]
    assert from_nli(rows, "snli", include_neutral=False)[0].negatives == ["A cat sleeps."]  # the kit's option
