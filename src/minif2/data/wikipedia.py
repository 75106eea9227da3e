"""General English prose offline: the Wikipedia sample in gensim's wheel, as paragraphs per article.

The kit's other offline training text is code (docstrings and functions) plus 300 short news documents,
so a model trained on it learns code and forgets general text (issue 17: sentiment and newsgroup tasks
fell below the untrained base). gensim ships the first ~200 pages of an English Wikipedia dump
(``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``, ~100 real articles from
"Anarchism" to "Aldous Huxley"); :func:`read_wikipedia` turns it into paragraphs of plain text, which
:mod:`minif2.data.unify` makes into two general-text training sources:

- ``wiki_paragraphs`` (retrieval): a paragraph's first sentence -> the rest of the paragraph;
- ``wiki_articles`` (clustering): a paragraph -> another paragraph of the same article, with
  paragraphs of other articles as negatives (topic similarity, as F2LLM's clustering data).

:func:`split_articles` holds whole articles out of training (issue 23): their sentences become the suite's
``TeacherAgreement`` task (``data/teacher_agreement.py``), general text the model never saw. The suite's
sentiment, newsgroup and Lee tasks use none of this text (docs/recipe.md §4).
"""

from __future__ import annotations

import bz2
import random
from collections.abc import Sequence
from functools import lru_cache

from gensim.corpora.wikicorpus import extract_pages, filter_wiki

from minif2.data.adapters import from_clustering, from_pairs
from minif2.data.sources import gensim_file
from minif2.schema import SENTENCE_END, Sample

__all__ = [
    "WIKIPEDIA_FILE",
    "WIKI_SOURCES",
    "first_sentence_split",
    "read_wikipedia",
    "split_articles",
    "wikipedia_samples",
]

WIKI_SOURCES = ("wiki_paragraphs", "wiki_articles")

WIKIPEDIA_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_MARKUP = ("*", "|", "=", "{", "!", ":", ";", "#", "<")


def first_sentence_split(text: str, min_words: int = 5) -> tuple[str, str] | None:
    """``(first sentence, rest)``, or None when either part is too short to be a training pair.

    >>> first_sentence_split("Albedo is the fraction of light a surface reflects. Snow reflects most of it back.")
    ('Albedo is the fraction of light a surface reflects.', 'Snow reflects most of it back.')
    >>> first_sentence_split("Too short. Also short.") is None
    True
    """
    parts = SENTENCE_END.split(text, maxsplit=1)
    if len(parts) != 2 or len(parts[0].split()) < min_words or len(parts[1].split()) < min_words:
        return None
    return parts[0], parts[1]


def _is_prose(paragraph: str, min_chars: int) -> bool:
    """Plain sentences, not lists, tables or markup left over by ``filter_wiki``."""
    if len(paragraph) < min_chars or paragraph.startswith(_MARKUP) or "|" in paragraph:
        return False
    letters = sum(c.isalpha() or c.isspace() for c in paragraph)
    return letters / len(paragraph) > 0.9


@lru_cache(maxsize=4)
def read_wikipedia(min_chars: int = 200, max_chars: int = 1500) -> tuple[dict[str, str], ...]:
    """Paragraphs ``{title, text}`` of the Wikipedia sample's articles, in file order (redirects skipped).

    A paragraph is kept when it is prose of at least ``min_chars`` characters; longer ones are cut at
    ``max_chars``. About 3,600 paragraphs of 106 articles (~1 s to read).
    """
    out = []
    with bz2.open(gensim_file(WIKIPEDIA_FILE), "rb") as raw:
        for title, markup, _page_id in extract_pages(raw):
            if markup.lstrip().lower().startswith("#redirect"):
                continue
            for block in filter_wiki(markup).split("\n\n"):
                paragraph = " ".join(block.split())
                if _is_prose(paragraph, min_chars):
                    out.append({"title": title, "text": paragraph[:max_chars]})
    return tuple(out)


def split_articles(
    paragraphs: Sequence[dict[str, str]], n_held: int, seed: int
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(train, held)`` paragraphs: every paragraph of ``n_held`` seeded articles is held out (whole articles,
    so no sentence of a held-out article is trained on); both keep file order.

    >>> paras = [{"title": t, "text": t * 3} for t in "AABBC"]
    >>> train, held = split_articles(paras, 1, seed=0)
    >>> len(train) + len(held), len({p["title"] for p in held})
    (5, 1)
    """
    titles = sorted({p["title"] for p in paragraphs})
    if n_held >= len(titles):
        raise ValueError(f"split_articles: {n_held} articles to hold out of only {len(titles)}")
    held_titles = set(random.Random(seed).sample(titles, n_held))
    train = [p for p in paragraphs if p["title"] not in held_titles]
    return train, [p for p in paragraphs if p["title"] in held_titles]


def wikipedia_samples(
    paragraphs: Sequence[dict[str, str]],
    sources: Sequence[str],
    caps: Sequence[int | None],
    clustering_negatives: int,
    seed: int,
) -> dict[str, list[Sample]]:
    """The two training sources of :data:`WIKI_SOURCES` that ``sources`` asks for (not yet capped), from the
    training ``paragraphs`` (:func:`read_wikipedia` less :func:`split_articles`'s held-out articles).

    At most 4x the larger of ``caps`` paragraphs are used (a seeded draw), so that a small profile's
    clustering negatives, which mining embeds, come from a small pool too.
    """
    wanted = [name for name in WIKI_SOURCES if name in sources]
    if not wanted:
        return {}
    paragraphs = list(paragraphs)
    bound = None if None in caps else 4 * max(c for c in caps if c is not None)
    if bound is not None and len(paragraphs) > bound:
        paragraphs = random.Random(seed).sample(paragraphs, bound)
    splits = [first_sentence_split(p["text"]) for p in paragraphs]
    leads = [{"lead": split[0], "rest": split[1]} for split in splits if split]
    articles = [{"text": p["text"], "label": p["title"]} for p in paragraphs]
    built = {
        "wiki_paragraphs": lambda: from_pairs(leads, "wiki_paragraphs", "lead", "rest"),
        "wiki_articles": lambda: from_clustering(articles, "wiki_articles", clustering_negatives, seed),
    }
    return {name: built[name]() for name in wanted}
