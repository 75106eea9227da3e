"""The TeacherAgreement task (issue 23): whole held-out Wikipedia articles, pairs of their sentences scored by
MiniLM's cosines. Checked against sentence-transformers' own MiniLM and against the training data unify writes."""

from __future__ import annotations

import numpy as np
import pytest

from minif2.data import TEACHER_AGREEMENT, sentence_pairs, split_articles, teacher_agreement_rows
from minif2.schema import SENTENCE_END

PARAS = [
    {"title": "Snow", "text": "Snow falls in the winter months. It covers the ground in a white layer."},
    {"title": "Snow", "text": "Children build figures out of packed snow. The snow melts again in spring."},
    {"title": "Rivers", "text": "Rivers carry water down to the sea. Large rivers cut deep valleys in rock."},
    {"title": "Rivers", "text": "Fish swim upstream in many rivers. Some rivers flood their banks each year."},
    {"title": "Stars", "text": "Stars are balls of burning gas far away. The sun is the star nearest to us."},
]


def _title_of(sentence: str) -> str:
    (title,) = {p["title"] for p in PARAS if sentence in SENTENCE_END.split(p["text"])}
    return title


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_articles_holds_out_whole_articles_and_loses_no_paragraph(seed):
    train, held = split_articles(PARAS, 1, seed)
    held_titles = {p["title"] for p in held}
    assert len(held_titles) == 1 and not held_titles & {p["title"] for p in train}
    assert sorted(map(str, train + held)) == sorted(map(str, PARAS))
    assert split_articles(PARAS, 1, seed) == (train, held)  # seeded
    with pytest.raises(ValueError, match="3 articles to hold out of only 3"):
        split_articles(PARAS, 3, seed)


def test_sentence_pairs_are_distinct_half_within_half_across_articles():
    pairs = sentence_pairs(PARAS, 10, seed=0, min_words=4)
    assert len(pairs) == len(set(pairs)) == 10 and all(a < b for a, b in pairs)
    within = sum(_title_of(a) == _title_of(b) for a, b in pairs)
    assert 3 <= within <= 7  # alternating draws; a repeated draw is retried, so not exactly 5
    assert sentence_pairs(PARAS, 10, seed=0, min_words=4) == pairs
    with pytest.raises(ValueError, match="needs two articles"):
        sentence_pairs(PARAS[:2], 4, seed=0, min_words=4)


def test_scores_equal_sentence_transformers_minilm_cosines(minilm_path):
    from sentence_transformers import SentenceTransformer

    from minif2.model import Embedder

    pairs = sentence_pairs(PARAS, 8, seed=0, min_words=4)
    rows = teacher_agreement_rows(pairs, Embedder.from_pretrained(minilm_path))
    reference = SentenceTransformer(str(minilm_path), device="cpu")
    a = reference.encode([r["sentence1"] for r in rows], normalize_embeddings=True)
    b = reference.encode([r["sentence2"] for r in rows], normalize_embeddings=True)
    np.testing.assert_allclose([r["score"] for r in rows], (a * b).sum(axis=1), atol=1e-3)
    assert [(r["sentence1"], r["sentence2"]) for r in rows] == pairs
    assert len({r["score"] for r in rows}) > 1  # the cosines spread: a constant gold score has no Spearman


def test_task_name_is_registered_with_an_instruction():
    from minif2.instructions import SOURCE_INSTRUCTIONS

    assert SOURCE_INSTRUCTIONS[TEACHER_AGREEMENT]
