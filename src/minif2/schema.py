"""The one sample shape every task is turned into (F2LLM, docs/recipe.md §1): (query, positive, negatives).

A unified dataset is a folder with one parquet file per source (as F2LLM's code keeps
its data, docs/recipe.md §1a) and a ``manifest.json``; each row has the columns below. The
instruction is stored raw and applied to the QUERY only, when it is encoded.

This module fixes the contract between the steps (unify -> mine -> train); it does not
build samples (``data/unify.py``) or find negatives (``mining/mine.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Sequence, Value

from minif2.config import MINING, MissingInputError
from minif2.provenance import file_sha256

__all__ = [
    "SENTENCE_END",
    "F2LLM_CLASSIFICATION_DATASETS",
    "F2LLM_CLUSTERING_DATASETS",
    "F2LLM_FAMILIES",
    "F2LLM_RETRIEVAL_DATASETS",
    "NUM_NEGATIVES",
    "Sample",
    "MTEB_TASK_TYPES",
    "TASK_TYPES",
    "f2llm_family",
    "features",
    "normalize_text",
    "read_unified",
    "text_hash",
    "training_family",
    "write_unified",
]

TASK_TYPES = ("retrieval", "classification", "clustering", "sts", "nli", "pair_classification", "reranking")
# The seven task types of MTEB(eng, v2) (docs/recipe.md §1) -> mteb's TaskMetadata.type names (the leaderboard's).
MTEB_TASK_TYPES = {
    "retrieval": "Retrieval",
    "sts": "STS",
    "classification": "Classification",
    "clustering": "Clustering",
    "pair_classification": "PairClassification",
    "reranking": "Reranking",
    "summarization": "Summarization",
}

# F2LLM has three training families (4.9M retrieval, 0.2M classification, 0.8M clustering);
# its NLI / STS / QA sources are formatted as retrieval, and so are they here.
_FAMILY = {
    "retrieval": "retrieval",
    "sts": "retrieval",
    "nli": "retrieval",
    "pair_classification": "retrieval",
    "reranking": "retrieval",
    "classification": "classification",
    "clustering": "clustering",
}
# hard negatives mined per sample (docs/recipe.md §1): 24 for retrieval and clustering, 1 for classification
NUM_NEGATIVES = dict(MINING["num_negatives"])
log = logging.getLogger(__name__)


# F2LLM's families by source (file) name, copied from the released code's module-level lists
# (codefuse-ai/CodeFuse-Embeddings F2LLM/utils.py:8-10, v1; docs/recipe.md §1a). The family decides the
# in-batch loss (retrieval only) and the negatives per step; NLI, STS and duplicate-question sources are
# retrieval, and many MTEB classification sets (banking77, emotion, mtop, massive) train as clustering.
F2LLM_CLASSIFICATION_DATASETS = ("amazon_counterfactual", "amazon_polarity", "imdb", "toxic_conversations", "cola")
F2LLM_CLUSTERING_DATASETS = (
    "amazon_reviews", "banking77", "emotion", "mtop_intent", "mtop_domain", "massive_scenario", "massive_intent",
    "tweet_sentiment_extraction", "arxiv_clustering_p2p", "arxiv_clustering_s2s", "biorxiv_clustering_p2p",
    "biorxiv_clustering_s2s", "medrxiv_clustering_p2p", "medrxiv_clustering_s2s", "reddit_clustering_p2p",
    "reddit_clustering_s2s", "stackexchange_clustering_p2p", "stackexchange_clustering_s2s", "twentynewsgroups",
)  # fmt: skip
F2LLM_RETRIEVAL_DATASETS = (
    "arguana", "snli", "mnli", "anli", "paq", "squad", "stackexchange", "msmarco", "natural_questions", "hotpotqa",
    "fever", "eli5", "fiqa", "bioasq", "nfcorpus", "miracl", "mrtidy", "scifact", "qqp",
    "stackoverflowdupquestions", "sts12", "sts22", "stsbenchmark", "amazon_qa", "cnn_dm", "coliee", "paq_part2",
    "pubmedqa", "s2orc_abstract_citation", "s2orc_title_abstract", "s2orc_title_citation", "sentence_compression",
    "specter", "triviaqa", "xsum", "stackexchange_part2", "stackexchangedupquestions_s2s",
    "stackexchangedupquestions_p2p",
)  # fmt: skip
F2LLM_FAMILIES: dict[str, str] = {
    **{name: "retrieval" for name in F2LLM_RETRIEVAL_DATASETS},
    **{name: "classification" for name in F2LLM_CLASSIFICATION_DATASETS},
    **{name: "clustering" for name in F2LLM_CLUSTERING_DATASETS},
}


def f2llm_family(source: str, one_negative: bool) -> str:
    """The family F2LLM's released lists give ``source`` (F2LLM/utils.py:8-10, :data:`F2LLM_FAMILIES`).

    A name missing from the lists falls back to the data's shape (one negative per row:
    classification, else retrieval) with a warning; F2LLM v1 would train it like clustering and
    v2 refuses it (docs/recipe.md §1a). Set ``task`` in the import to choose.
    """
    if source in F2LLM_FAMILIES:
        return F2LLM_FAMILIES[source]
    guess = "classification" if one_negative else "retrieval"
    log.warning(
        "source '%s' is not in F2LLM's dataset lists (F2LLM/utils.py); treating it as %s from its number of "
        "negatives; set `task` in its import to choose",
        source,
        guess,
    )
    return guess


def training_family(task: str) -> str:
    """``retrieval`` | ``classification`` | ``clustering``: decides negatives and the in-batch loss."""
    try:
        return _FAMILY[task]
    except KeyError:
        raise ValueError(f"unknown task type '{task}': expected one of {TASK_TYPES}") from None


@dataclass
class Sample:
    """One training example in F2LLM's shape."""

    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)  # empty until mined (classification may come with one)
    task: str = "retrieval"  # one of TASK_TYPES
    source: str = "unknown"  # dataset name; every micro-batch is drawn from one source
    instruction: str = ""  # task instruction for the query (docs/recipe.md §1: queries only)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def features() -> Any:
    """The ``datasets.Features`` of a unified dataset."""

    return Features(
        {
            "query": Value("string"),
            "positive": Value("string"),
            "negatives": Sequence(Value("string")),
            "task": Value("string"),
            "source": Value("string"),
            "instruction": Value("string"),
        }
    )


def write_unified(
    samples_by_source: dict[str, Any], folder: str | Path, extra_manifest: dict[str, Any] | None = None
) -> Path:
    """Write ``{source: Dataset | list[Sample]}`` as ``<folder>/<source>.parquet`` + ``manifest.json``.

    The manifest records each source's row count and the sha256 of its parquet file (``fingerprints``),
    so two runs can be compared at a glance (provenance.py)."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts, fingerprints = {}, {}
    for source, data in samples_by_source.items():
        if not isinstance(data, Dataset):
            data = Dataset.from_list(
                [s.to_dict() if isinstance(s, Sample) else dict(s) for s in data], features=features()
            )
        data.to_parquet(str(folder / f"{source}.parquet"))
        counts[source] = len(data)
        fingerprints[source] = file_sha256(folder / f"{source}.parquet")
    manifest = {"sources": counts, "fingerprints": fingerprints, **(extra_manifest or {})}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def read_unified(folder: str | Path) -> dict[str, Any]:
    """``{source: Dataset}`` from a folder written by :func:`write_unified`, in manifest order."""

    folder = Path(folder)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise MissingInputError(f"{folder} is not a unified dataset: manifest.json is missing (run `minif2 unify`).")
    record = json.loads(manifest.read_text())
    if record.get("layout") == "corpus":
        raise MissingInputError(
            f"{folder} is in the corpus layout (documents by id, data/corpus.py), not one parquet of texts per "
            "source: train on it directly (training.load_training_data reads both), or unify with `layout: inline`"
        )
    sources = record["sources"]
    out = {}
    for source in sources:
        path = folder / f"{source}.parquet"
        if not path.is_file():
            raise MissingInputError(f"{path} is listed in {manifest} but missing")
        out[source] = Dataset.from_parquet(str(path), features=features())
    return out


_SPACE = re.compile(r"\s+")
# A sentence boundary in plain prose: end punctuation after a lowercase letter, digit or ")", then a capital or
# quote. Used to split Wikipedia paragraphs (data/wikipedia.py) and the head's distillation texts (training/head.py).
SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z\"'])")


def normalize_text(text: str) -> str:
    """NFKC, case-fold, collapse every run of whitespace to one space, strip.

    >>> normalize_text("  Hello\\u00a0 WORLD\\n")
    'hello world'
    """
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> str:
    """A 16-byte BLAKE2 hex digest of the normalised text: equal for case/space/Unicode variants."""
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).hexdigest()
