"""TeacherAgreement: a held-out STS task whose gold scores are a good embedder's cosines (issue 23; notebook 03).

Why. The kit's suite has one human-scored STS task of general text (LeeSTS: 50 news documents, 1225 pairs).
Whether training made the model a better *general* embedder, on sentences it never saw, needs more than that,
and public STS test sets must not come into the kit. MiniLM (all-MiniLM-L6-v2) scores about 0.82 Spearman on
real STS benchmarks, so agreeing with its cosines on unseen sentences is a fair stand-in: the task's score is
the Spearman between the model's cosines and MiniLM's on pairs of held-out Wikipedia sentences. It measures
agreement with a teacher, not meaning itself: MiniLM scores 1.0 on it by construction, and a model distilled
from MiniLM is favoured. Read it beside LeeSTS and the classification tasks, never alone.

What. The Wikipedia articles held out by :func:`minif2.data.wikipedia.split_articles` (whole articles: no
sentence of them is trained on) are cut into sentences; half the pairs are two sentences of one article (related
topic), half two sentences of different articles, so that the cosines spread. This module does not choose the
articles or write the folder (``data/unify.py``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from minif2.schema import SENTENCE_END

__all__ = ["TEACHER_AGREEMENT", "sentence_pairs", "teacher_agreement_rows"]

TEACHER_AGREEMENT = "TeacherAgreement"


def _sentences(paragraphs: Sequence[dict[str, str]], min_words: int, max_words: int) -> dict[str, list[str]]:
    """``{title: distinct sentences}`` of the paragraphs, in order."""
    by_title: dict[str, dict[str, None]] = defaultdict(dict)
    for p in paragraphs:
        for sentence in SENTENCE_END.split(" ".join(p["text"].split())):
            if min_words <= len(sentence.split()) <= max_words:
                by_title[p["title"]].setdefault(sentence, None)
    return {title: list(found) for title, found in by_title.items() if found}


def sentence_pairs(
    paragraphs: Sequence[dict[str, str]], n_pairs: int, seed: int, min_words: int = 6, max_words: int = 40
) -> list[tuple[str, str]]:
    """``n_pairs`` distinct pairs of sentences: half within one article, half across two (seeded).

    >>> paras = [{"title": "A", "text": "Snow is white and cold today. Coal is black and warm today."},
    ...          {"title": "B", "text": "Rivers flow down to the sea. Mountains rise up to the sky."}]
    >>> sorted(map(len, sentence_pairs(paras, 4, seed=0)))
    [2, 2, 2, 2]
    """
    by_title = _sentences(paragraphs, min_words, max_words)
    titles = sorted(by_title)
    within = [t for t in titles if len(by_title[t]) > 1]
    if len(titles) < 2 or not within:
        raise ValueError(f"{TEACHER_AGREEMENT}: needs two articles with sentences, got {len(titles)}")
    rng, pairs = random.Random(seed), {}
    for attempt in range(50 * n_pairs):
        if len(pairs) == n_pairs:
            break
        if attempt % 2 == 0:
            a, b = rng.sample(by_title[rng.choice(within)], 2)
        else:
            t1, t2 = rng.sample(titles, 2)
            a, b = rng.choice(by_title[t1]), rng.choice(by_title[t2])
        pairs.setdefault((a, b) if a < b else (b, a), None)
    return list(pairs)


def teacher_agreement_rows(pairs: Sequence[tuple[str, str]], teacher: object) -> list[dict[str, object]]:
    """STS rows ``{sentence1, sentence2, score}``: the score is ``teacher``'s cosine (4 decimals).

    ``teacher`` is any object with ``encode(texts) -> (n, dim)`` L2-normalised vectors (a :class:`minif2.Embedder`).
    """
    texts = sorted({t for pair in pairs for t in pair})
    index = {t: i for i, t in enumerate(texts)}
    vectors = np.asarray(teacher.encode(texts), dtype=np.float64)  # type: ignore[attr-defined]
    cosines = [float(vectors[index[a]] @ vectors[index[b]]) for a, b in pairs]
    return [{"sentence1": a, "sentence2": b, "score": round(c, 4)} for (a, b), c in zip(pairs, cosines, strict=True)]
