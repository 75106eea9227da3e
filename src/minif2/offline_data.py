"""The kit's default data: offline sources -> training samples + held-out evaluation tasks.

F2LLM (SPEC §1) trains on 6M open-source samples (4.9M retrieval, 0.2M classification,
0.8M clustering) and de-duplicates against MTEB's test sets. Offline, the kit builds a
small analogue from what is installed (``sources.py``):

training sources (name: task, rule)
  ``code_search``     retrieval       docstring summary -> function code (question -> answer)
  ``code_library``    classification  docstring -> library name (label as document, n = 1)
  ``code_modules``    clustering      docstring -> another docstring of its module
  ``lee_news``        retrieval       news lead sentence -> rest of the article (title -> body)
  ``word_similarity`` sts             WordSim-353 / SimLex-999 pairs rated >= threshold

held-out tasks (``eval_tasks.py`` formats)
  ``CodeSearchHeldOut`` retrieval from whole held-out modules; ``CodeLibraryClassification``;
  ``LeeSTS`` (human document similarity); ``PolarityClassification`` (movie sentences);
  ``NewsgroupsClustering`` (alt.atheism vs sci.space).

Code is split by MODULE, so no held-out function's file is seen in training; functions
copied between modules (transformers does this a lot) are caught by de-duplication.
Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .adapters import from_classification_examples, from_classification_labels, from_clustering, from_pairs, from_sts
from .dedup import text_hash
from .eval_tasks import write_eval_task
from .instructions import instruction_for
from .schema import Sample
from .sources import ORIGINS, harvest_code_pairs, read_lee_background, read_lee_sts, read_newsgroups, read_polarity, read_word_similarity

if TYPE_CHECKING:
    from .unify import UnifyConfig

__all__ = ["LIBRARY_NAMES", "build_offline", "split_code_pairs"]

# library -> the label text used as the positive "document" (classification, label-as-document)
LIBRARY_NAMES = {"stdlib": "the Python standard library", "numpy": "NumPy", "torch": "PyTorch",
                 "transformers": "Hugging Face Transformers"}


def _topic(module: str, library: str) -> str:
    """Cluster label of a module: ``json.decoder`` -> ``json``; ``torch.nn.modules.conv`` -> ``torch.nn``."""
    parts = module.split(".")
    return parts[0] if library == "stdlib" else ".".join(parts[:2])


def split_code_pairs(pairs: list[dict[str, Any]], eval_pairs: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole modules, in a seeded order, until at least ``eval_pairs`` pairs are held out."""
    by_module: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        by_module[p["module"]].append(p)
    modules = sorted(by_module)
    random.Random(seed).shuffle(modules)
    train, held = [], []
    for m in modules:
        (held if len(held) < eval_pairs else train).extend(by_module[m])
    return train, held


def _code_retrieval_task(held: list[dict], num_queries: int, seed: int) -> dict[str, Any]:
    """BEIR data from held-out pairs: identical code is one document; a docstring shared by
    several functions is one query with all of them relevant."""
    corpus, doc_id = [], {}
    for p in held:
        h = text_hash(p["code"])
        if h not in doc_id:
            doc_id[h] = f"d{len(corpus)}"
            corpus.append({"_id": doc_id[h], "title": "", "text": p["code"]})
    relevant: dict[str, set[str]] = defaultdict(set)
    text_of: dict[str, str] = {}
    for p in held:
        q = text_hash(p["query"])
        relevant[q].add(doc_id[text_hash(p["code"])])
        text_of.setdefault(q, p["query"])
    chosen = sorted(relevant)
    random.Random(seed).shuffle(chosen)
    chosen = chosen[:num_queries]
    queries = [{"_id": f"q{i}", "text": text_of[h]} for i, h in enumerate(chosen)]
    qrels = [(f"q{i}", d, 1) for i, h in enumerate(chosen) for d in sorted(relevant[h])]
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def _split_rows(rows: list[dict], test_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    cut = int(round(len(rows) * (1 - test_fraction)))
    return rows[:cut], rows[cut:]


def _cap(rows: list, limit: int | None, seed: int) -> list:
    return rows if limit is None or len(rows) <= limit else random.Random(seed).sample(rows, limit)


def write_offline_eval_tasks(cfg: UnifyConfig, held: list[dict], root: Path) -> dict[str, dict[str, Any]]:
    """Write the held-out tasks; returns {name: {type, source, rows}} for the manifest."""
    written: dict[str, dict[str, Any]] = {}
    s = cfg.seed

    def put(name: str, kind: str, source: str, **data: Any) -> None:
        write_eval_task(root, name, kind, instruction_for(name, kind), source, **data)
        written[name] = {"type": kind, "source": source, **{k: len(v) for k, v in data.items()}}

    put("CodeSearchHeldOut", "retrieval", "code", **_code_retrieval_task(held, cfg.eval_code_queries, s))
    library_rows = [{"text": p["query"], "label": p["library"]} for p in held]
    train, test = _split_rows(_cap(library_rows, 2 * cfg.eval_rows_per_split, s), 0.5, s)
    put("CodeLibraryClassification", "classification", "code", train=train, test=test)
    put("LeeSTS", "sts", "lee_sts", test=_cap(read_lee_sts(), cfg.eval_sts_pairs, s))
    train, test = _split_rows(read_polarity(), 0.5, s)
    put("PolarityClassification", "classification", "polarity", train=train, test=test)
    news = [{"text": r["text"], "label": r["label"]} for r in read_newsgroups()]
    put("NewsgroupsClustering", "clustering", "newsgroups", test=_cap(news, cfg.eval_rows_per_split, s))
    return written


def build_offline(cfg: UnifyConfig, eval_root: Path) -> tuple[dict[str, list[Sample]], dict[str, Any]]:
    """Harvest the offline sources, write held-out tasks under ``eval_root``, return the training
    samples per source (not yet de-duplicated) and a manifest fragment (origins, licences, counts)."""
    pairs, harvest = harvest_code_pairs(tuple(cfg.code_libraries), cfg.cache_dir, cfg.code_max_files_per_library,
                                        cfg.seed, cfg.code_max_code_chars)
    train, held = split_code_pairs(pairs, cfg.eval_code_corpus, cfg.seed)
    eval_manifest = write_offline_eval_tasks(cfg, held, eval_root)
    cap, s = cfg.max_samples_per_source, cfg.seed
    train = _cap(train, None if cap is None else 3 * cap, s)  # bound the work; each source is capped below
    docs = [{"text": p["query"], "label": p["library"], "module": p["module"]} for p in train]
    classification = (from_classification_labels(docs, "code_library", s, LIBRARY_NAMES) if cfg.classification_form == "labels"
                      else from_classification_examples(docs, "code_library", s))
    topics = [{"text": d["text"], "label": _topic(d["module"], d["label"])} for d in docs]
    words = [r for name in ("wordsim353", "simlex999") for r in read_word_similarity(name)]
    samples = {
        "code_search": from_pairs([{"query": p["query"], "positive": p["code"]} for p in train], "code_search"),
        "code_library": classification,
        "code_modules": from_clustering(topics, "code_modules", cfg.clustering_negatives, s),
        "lee_news": from_pairs(read_lee_background(), "lee_news", "lead", "body"),
        "word_similarity": from_sts(words, "word_similarity", cfg.word_similarity_threshold),
    }
    samples = {k: _cap(v, cap, s) for k, v in samples.items() if k in cfg.offline_sources}
    origin_keys = {"code_search": list(cfg.code_libraries), "code_library": list(cfg.code_libraries),
                   "code_modules": list(cfg.code_libraries), "lee_news": ["lee_background"],
                   "word_similarity": ["wordsim353", "simlex999"], "CodeSearchHeldOut": list(cfg.code_libraries),
                   "CodeLibraryClassification": list(cfg.code_libraries), "LeeSTS": ["lee_sts"],
                   "PolarityClassification": ["polarity"], "NewsgroupsClustering": ["newsgroups"]}
    origins = {name: {k: ORIGINS[k] for k in keys} for name, keys in origin_keys.items()
               if name in samples or name in eval_manifest}
    fragment = {"origins": origins, "harvest": {k: v for k, v in harvest.items() if k != "origins"},
                "code_split": {"train_pairs": len(train), "held_out_pairs": len(held)}, "eval_tasks": eval_manifest}
    return samples, fragment
