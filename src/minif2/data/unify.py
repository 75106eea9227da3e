"""Step 01: every source into one sample shape, (query, positive, negatives) + instruction.

F2LLM's key simplification (docs/recipe.md §1) is one format for every task; QZhou (docs/recipe.md §2)
lists how each source shape is transformed. :func:`main` runs the step:

1. harvest the offline sources and write the held-out evaluation tasks (``data/unify.py``);
2. import the user's own files or hub datasets, if configured (``data/adapters.py``,
   ``data/loaders.py``), strictly or leniently (``data/validation.py``);
3. de-duplicate the training samples against every evaluation text (``data/dedup.py``);
4. write ``<out_dir>/unified/`` (one parquet per source + manifest with counts, origins,
   licences, de-dup and skip reports, stats) and ``<out_dir>/eval_tasks/``.

Negatives are mined in step 02 (``mining/mine.py``); classification and clustering samples
leave here with their random negatives. Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import yaml
from transformers import AutoTokenizer

from minif2.assets import is_hub_id, resolve_model
from minif2.config import PROFILES, from_dict, load_config, profile_path, save_config, staged_folder
from minif2.data.adapters import (
    from_classification_examples,
    from_classification_labels,
    from_clustering,
    from_pairs,
    from_sts,
    import_jsonl,
)
from minif2.data.corpus import CorpusWriter
from minif2.data.dedup import DedupReport, dedup_samples
from minif2.data.f2llm import download_f2llm, f2llm_files, import_f2llm_file, import_f2llm_folder
from minif2.data.holdout import hold_out_source, stratified_split
from minif2.data.loaders import HUB_SOURCES, load_hub_source
from minif2.data.sources import (
    CODE_LIBRARIES,
    harvest_code_pairs,
    origin_record,
    read_lee_background,
    read_lee_sts,
    read_newsgroups,
    read_polarity,
    read_word_similarity,
)
from minif2.data.task_folders import eval_texts, write_eval_task
from minif2.data.teacher_agreement import TEACHER_AGREEMENT, sentence_pairs, teacher_agreement_rows
from minif2.data.validation import SkipReport, UnifyError
from minif2.data.wikipedia import WIKI_SOURCES, read_wikipedia, split_articles, wikipedia_samples
from minif2.instructions import instruction_for
from minif2.provenance import environment_record, folder_fingerprint
from minif2.schema import NUM_NEGATIVES, Sample, text_hash, write_unified

__all__ = [
    "ImportSpec",
    "LIBRARY_NAMES",
    "UnifyConfig",
    "build_offline",
    "cli",
    "format_stats",
    "main",
    "source_stats",
    "split_code_pairs",
    "stratified_split",
    "stream_imports",
    "streamed",
]


OFFLINE_SOURCES = (
    "code_search",
    "code_library",
    "code_modules",
    "lee_news",
    "word_similarity",
    *WIKI_SOURCES,
)


@dataclass
class ImportSpec:
    """One extra source: a local jsonl file / BEIR folder (``path``) or a dataset (``hub``)."""

    name: str  # source name; also picks its instruction (instructions.py)
    shape: str  # pairs | classification_labels | classification_examples | clustering | nli | sts | beir | f2llm
    path: str | None = None  # local .jsonl file, or BEIR folder for shape "beir"
    hub: str | None = None  # hub id or local parquet/jsonl (datasets.load_dataset), or a HUB_SOURCES name
    split: str = "train"  # dataset split (hub) / qrels split (beir)
    options: dict[str, Any] = field(default_factory=dict)  # adapter keywords: threshold, query_field, seed, ...
    task: str | None = None  # shape f2llm: override the family F2LLM's lists give `name` (schema.F2LLM_FAMILIES)
    holdout: float | None = None  # fraction held out as the task <name>_heldout (data/holdout.py); None: UnifyConfig's


@dataclass
class UnifyConfig:
    """Defaults = the full offline build (~18k code pairs; ~75 s on 2 cores, ~13 s once cached); tiny caps it."""

    out_dir: str = "runs/latest/data"  # a run's data/ folder: unified/ and eval_tasks/ go inside
    cache_dir: str | None = None  # harvest cache; None = <repo>/data/cache (git-ignored)
    seed: int = 0  # every random choice (splits, caps, label and negative draws)
    offline_sources: tuple[str, ...] = OFFLINE_SOURCES  # which offline training sources to build
    code_libraries: tuple[str, ...] = CODE_LIBRARIES  # stdlib, numpy, torch, transformers
    code_max_files_per_library: int | None = None  # None = every file; tiny: a seeded subset
    code_max_code_chars: int = 2000  # skip longer functions (counted in the harvest manifest)
    max_samples_per_source: int | None = None  # seeded cap per training source; None = all
    source_caps: dict[str, int] = field(default_factory=dict)  # per-source caps that replace the one above
    # "labels" (label as document, F2LLM) | "examples" (docs/recipe.md §3)
    classification_form: Literal["labels", "examples"] = "labels"
    clustering_negatives: int = NUM_NEGATIVES["clustering"]  # 24 random other-cluster texts (docs/recipe.md §1)
    word_similarity_threshold: float = 7.0  # on the 0-10 human scale; >= this -> positive pair (a guess)
    eval_code_corpus: int = 2000  # held-out code pairs (whole modules) -> retrieval corpus
    eval_code_queries: int = 500  # queries of the held-out code retrieval task
    eval_sts_pairs: int | None = None  # Lee STS pairs kept (None = all 1225)
    eval_rows_per_split: int = 200  # classification/clustering rows per split (code library, newsgroups)
    # kit (issue 23): whole Wikipedia articles held out of training; pairs of their sentences, scored by the
    # teacher's cosines, make the TeacherAgreement task (data/teacher_agreement.py). 0 = no such task
    eval_wiki_articles: int = 12  # of the sample's ~100 articles
    eval_teacher_pairs: int = 500  # sentence pairs of the task
    eval_teacher: str = "minilm"  # whose cosines are the gold scores (an asset name or a local folder)
    imports: list[dict[str, Any]] = field(default_factory=list)  # ImportSpec dicts (user files, hub data)
    lenient: bool = False  # skip and count bad records instead of stopping at the first
    holdout: float = 0.0  # every import's held-out fraction, unless it sets its own (data/holdout.py); 0 = none
    offline_eval_tasks: bool = False  # write the offline held-out suite even with `offline_sources: []`
    # kit (issue 24): "inline" (every row holds its texts: schema.write_unified) | "corpus" (F2LLM-v2, docs/recipe.md
    # §1b: documents once in corpus.parquet, rows by id; data/corpus.py). With "corpus", every import of shape f2llm
    # (a local file or folder, or a hub dataset: its parquet files) is streamed in batches (data/f2llm.py)
    layout: Literal["inline", "corpus"] = "inline"
    f2llm_cap: int | None = None  # rows kept per streamed F2LLM source (seeded); F2LLM-v2: 80000 (f2llm.F2LLM_CAP)
    # F2LLM-v2's own files hold token ids only: the tokenizer that made them (Qwen/Qwen3-0.6B, or a local copy)
    # decodes them back to text (f2llm.decode_ids); None: such files are refused with this hint
    f2llm_tokenizer: str | None = None


def import_sources(specs: list[dict[str, Any]], lenient: bool, report: SkipReport) -> dict[str, list[Sample]]:
    """Load each ``ImportSpec`` (as a dict from YAML) through the adapters and validation."""
    out: dict[str, list[Sample]] = {}
    for i, raw in enumerate(specs):
        spec = from_dict(ImportSpec, raw, f"imports[{i}]")
        out[spec.name] = _import_one(spec, i, lenient, report)
    return out


def _import_one(spec: ImportSpec, i: int, lenient: bool, report: SkipReport) -> list[Sample]:
    if spec.hub is not None:
        kwargs = {**HUB_SOURCES.get(spec.hub, {"path": spec.hub, "shape": spec.shape}), **spec.options}
        kwargs.setdefault("shape", spec.shape)
        if spec.task is not None:
            kwargs["task"] = spec.task
        return load_hub_source(source=spec.name, split=spec.split, lenient=lenient, report=report, **kwargs)
    if spec.path is not None:
        extra = {"split": spec.split} if spec.shape == "beir" else {}
        return import_jsonl(spec.path, spec.shape, spec.name, lenient, report, **extra, **spec.options)
    raise ValueError(f"imports[{i}] ('{spec.name}'): give either `path` (a local file) or `hub` (a dataset)")


def import_held_out(
    cfg: UnifyConfig, eval_root: Path, report: SkipReport
) -> tuple[dict[str, list[Sample]], dict[str, dict[str, Any]]]:  # fmt: skip
    """Each import's training samples, its held-out split (``holdout``) written first as a task under
    ``eval_root`` (``data/holdout.py``), so that de-duplication then removes it from training.
    Returns (samples by source, manifest entries of the tasks written)."""
    out: dict[str, list[Sample]] = {}
    tasks: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(cfg.imports):
        spec = from_dict(ImportSpec, raw, f"imports[{i}]")
        fraction = cfg.holdout if spec.holdout is None else spec.holdout
        if streamed(spec, cfg.layout):
            if spec.holdout:
                raise ValueError(f"imports[{i}] ('{spec.name}'): a streamed F2LLM import has no hold-out split")
            continue
        if not fraction:
            out[spec.name] = _import_one(spec, i, cfg.lenient, report)
            continue
        path = spec.path if spec.hub is None else None
        options = {"split": spec.split, **spec.options} if spec.shape == "beir" else spec.options
        out[spec.name], task = hold_out_source(
            spec.name, spec.shape, path, options, fraction, cfg.seed, cfg.lenient, report, eval_root,
            load=lambda spec=spec, i=i: _import_one(spec, i, cfg.lenient, report),
        )  # fmt: skip
        tasks.update(task)
    return out, tasks


def streamed(spec: ImportSpec, layout: str) -> bool:
    """An import read in batches into the corpus layout: shape f2llm, from a local file or folder or a hub
    dataset (its parquet files downloaded first: :func:`f2llm_local`; data/f2llm.py)."""
    return layout == "corpus" and spec.shape == "f2llm" and (spec.path or spec.hub) is not None


def f2llm_local(spec: ImportSpec) -> Path:
    """The local file or folder of a streamed F2LLM import: ``path``, a ``hub`` that is a local path, or a hub
    dataset (a ``HUB_SOURCES`` name such as ``f2llm``, or an id) fetched by ``f2llm.download_f2llm``."""
    local = spec.path if spec.path is not None else spec.hub
    if Path(local).exists():
        return Path(local)
    if spec.path is None and (spec.hub in HUB_SOURCES or is_hub_id(spec.hub)):
        return download_f2llm(HUB_SOURCES.get(spec.hub, {"path": spec.hub})["path"], spec.options.get("revision"))
    raise UnifyError(local, None, None, "missing file: no such file or folder", "give F2LLM's parquet files")


def _tokenizer(name: str | None) -> Any:
    """The tokenizer of ``f2llm_tokenizer`` (an asset name, local folder or hub id; no remote code), or None."""
    if name is None:
        return None
    return AutoTokenizer.from_pretrained(resolve_model(name))


def stream_imports(cfg: UnifyConfig, writer: CorpusWriter, skips: SkipReport, dedup: DedupReport) -> list[Any]:
    """Stream every F2LLM import (:func:`streamed`) into ``writer``; returns each source's import record.

    A folder gives every source of a copy of F2LLM's data (``hub: f2llm``: every source of the released
    dataset); a file, one source named by the import. Drops are added to ``dedup`` and ``skips``, as for
    the other sources.
    """
    runs, tokenizer = [], _tokenizer(cfg.f2llm_tokenizer)
    for i, raw in enumerate(cfg.imports):
        spec = from_dict(ImportSpec, raw, f"imports[{i}]")
        if not streamed(spec, cfg.layout):
            continue
        local = f2llm_local(spec)
        if local.is_dir():
            tasks = {name: spec.task for name in f2llm_files(local)} if spec.task else None
            found = import_f2llm_folder(local, writer, cfg.f2llm_cap, cfg.seed, cfg.lenient, skips, tasks, tokenizer)
            runs += list(found.values())
        else:
            runs.append(
                import_f2llm_file(local, spec.name, writer, spec.task, cfg.f2llm_cap, cfg.seed, cfg.lenient, skips)
            )
    for run in runs:
        dedup.removed_eval_overlap[run.source] += run.counts.removed_eval_overlap
        dedup.removed_repeats[run.source] += run.counts.removed_repeats
        dedup.dropped_negatives[run.source] += run.counts.dropped_negatives
    return runs


def source_stats(samples_by_source: dict[str, Any]) -> list[dict[str, Any]]:
    """Per source: task, sample count, mean negatives, median/mean characters of queries and positives."""
    rows = []
    for source, data in samples_by_source.items():
        items = [s if isinstance(s, dict) else s.to_dict() for s in data]
        q = [len(s["query"]) for s in items] or [0]
        p = [len(s["positive"]) for s in items] or [0]
        n = [len(s["negatives"]) for s in items] or [0]
        rows.append(
            {
                "source": source,
                "task": items[0]["task"] if items else "-",
                "samples": len(items),
                "negatives_mean": round(statistics.fmean(n), 2),
                "query_chars_median": statistics.median(q),
                "query_chars_mean": round(statistics.fmean(q), 1),
                "positive_chars_median": statistics.median(p),
                "positive_chars_mean": round(statistics.fmean(p), 1),
            }
        )
    return rows


def format_stats(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`source_stats` rows, with a total line."""
    head = f"{'source':<18}{'task':<16}{'samples':>8}{'negs':>6}{'q chars':>9}{'pos chars':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['source']:<18}{r['task']:<16}{r['samples']:>8}{r['negatives_mean']:>6}"
            f"{r['query_chars_median']:>9}{r['positive_chars_median']:>10}"
        )
    lines.append(f"{'total':<34}{sum(r['samples'] for r in rows):>8}   (chars: medians)")
    return "\n".join(lines)


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide datasets' per-file progress bars (one per source) while writing; restore after."""

    was_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


# library -> the label text used as the positive "document" (classification, label-as-document)
LIBRARY_NAMES = {
    "stdlib": "the Python standard library",
    "numpy": "NumPy",
    "torch": "PyTorch",
    "transformers": "Hugging Face Transformers",
}


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


def _cap(rows: list, limit: int | None, seed: int) -> list:
    return rows if limit is None or len(rows) <= limit else random.Random(seed).sample(rows, limit)


def write_offline_eval_tasks(
    cfg: UnifyConfig, held: list[dict], held_wiki: list[dict[str, str]], root: Path
) -> dict[str, dict[str, Any]]:
    """Write the held-out tasks (``held``: code pairs, ``held_wiki``: held-out Wikipedia paragraphs); returns
    {name: {type, source, rows}} for the manifest."""
    written: dict[str, dict[str, Any]] = {}
    s = cfg.seed

    def put(name: str, kind: str, source: str, **data: Any) -> None:
        folder = write_eval_task(root, name, kind, instruction_for(name, kind), source, **data)
        counts = {k: len(v) for k, v in data.items()}
        written[name] = {"type": kind, "source": source, **counts, "fingerprint": folder_fingerprint(folder)}

    put("CodeSearchHeldOut", "retrieval", "code", **_code_retrieval_task(held, cfg.eval_code_queries, s))
    library_rows = [{"text": p["query"], "label": p["library"]} for p in held]
    train, test = stratified_split(_cap(library_rows, 2 * cfg.eval_rows_per_split, s), 0.5, s)
    put("CodeLibraryClassification", "classification", "code", train=train, test=test)
    put("LeeSTS", "sts", "lee_sts", test=_cap(read_lee_sts(), cfg.eval_sts_pairs, s))
    train, test = stratified_split(read_polarity(), 0.5, s)
    put("PolarityClassification", "classification", "polarity", train=train, test=test)
    news = [{"text": r["text"], "label": r["label"]} for r in read_newsgroups()]
    put("NewsgroupsClustering", "clustering", "newsgroups", test=_cap(news, cfg.eval_rows_per_split, s))
    if held_wiki:
        put(TEACHER_AGREEMENT, "sts", "wikipedia", test=_teacher_agreement(cfg, held_wiki))
    return written


def _teacher_agreement(cfg: UnifyConfig, paragraphs: list[dict[str, str]]) -> list[dict[str, object]]:
    """The TeacherAgreement rows: pairs of held-out sentences scored by ``cfg.eval_teacher``'s cosines."""
    from minif2.model import Embedder  # noqa: PLC0415 - the teacher loads only when the task is asked for

    teacher = Embedder.from_pretrained(cfg.eval_teacher)
    return teacher_agreement_rows(sentence_pairs(paragraphs, cfg.eval_teacher_pairs, cfg.seed), teacher)


def _split_wikipedia(cfg: UnifyConfig) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(training, held-out)`` Wikipedia paragraphs; nothing is read when neither side is wanted."""
    wants_training = any(name in cfg.offline_sources for name in WIKI_SOURCES)
    if not wants_training and not cfg.eval_wiki_articles:
        return [], []
    paragraphs = list(read_wikipedia())
    if not cfg.eval_wiki_articles:
        return paragraphs, []
    return split_articles(paragraphs, cfg.eval_wiki_articles, cfg.seed)


def build_offline(cfg: UnifyConfig, eval_root: Path) -> tuple[dict[str, list[Sample]], dict[str, Any]]:
    """Harvest the offline sources, write held-out tasks under ``eval_root``, return the training
    samples per source (not yet de-duplicated) and a manifest fragment (origins, licences, counts)."""
    pairs, harvest = harvest_code_pairs(
        tuple(cfg.code_libraries), cfg.cache_dir, cfg.code_max_files_per_library, cfg.seed, cfg.code_max_code_chars
    )
    train, held = split_code_pairs(pairs, cfg.eval_code_corpus, cfg.seed)
    wiki_train, wiki_held = _split_wikipedia(cfg)
    eval_manifest = write_offline_eval_tasks(cfg, held, wiki_held, eval_root)
    cap, s = cfg.max_samples_per_source, cfg.seed
    caps = {name: cfg.source_caps.get(name, cap) for name in OFFLINE_SOURCES}
    code_caps = [caps[n] for n in ("code_search", "code_library", "code_modules")]
    bound = None if None in code_caps else 3 * max(c for c in code_caps if c is not None)
    train = _cap(train, bound, s)  # bound the work; each source is capped below
    docs = [{"text": p["query"], "label": p["library"], "module": p["module"]} for p in train]
    classification = (
        from_classification_labels(docs, "code_library", s, LIBRARY_NAMES)
        if cfg.classification_form == "labels"
        else from_classification_examples(docs, "code_library", s)
    )
    topics = [{"text": d["text"], "label": _topic(d["module"], d["label"])} for d in docs]
    words = [r for name in ("wordsim353", "simlex999") for r in read_word_similarity(name)]
    samples = {
        "code_search": from_pairs([{"query": p["query"], "positive": p["code"]} for p in train], "code_search"),
        "code_library": classification,
        "code_modules": from_clustering(topics, "code_modules", cfg.clustering_negatives, s),
        "lee_news": from_pairs(read_lee_background(), "lee_news", "lead", "body"),
        "word_similarity": from_sts(words, "word_similarity", cfg.word_similarity_threshold),
        **wikipedia_samples(
            wiki_train, cfg.offline_sources, [caps[n] for n in WIKI_SOURCES], cfg.clustering_negatives, s
        ),
    }
    samples = {k: _cap(v, caps.get(k, cap), s) for k, v in samples.items() if k in cfg.offline_sources}
    origin_keys = {
        "code_search": list(cfg.code_libraries),
        "code_library": list(cfg.code_libraries),
        "code_modules": list(cfg.code_libraries),
        "lee_news": ["lee_background"],
        "word_similarity": ["wordsim353", "simlex999"],
        "wiki_paragraphs": ["wikipedia"],
        "wiki_articles": ["wikipedia"],
        "CodeSearchHeldOut": list(cfg.code_libraries),
        "CodeLibraryClassification": list(cfg.code_libraries),
        "LeeSTS": ["lee_sts"],
        "PolarityClassification": ["polarity"],
        "NewsgroupsClustering": ["newsgroups"],
        TEACHER_AGREEMENT: ["wikipedia"],
    }
    origins = {
        name: {k: origin_record(k) for k in keys}
        for name, keys in origin_keys.items()
        if name in samples or name in eval_manifest
    }
    fragment = {
        "origins": origins,
        "harvest": {k: v for k, v in harvest.items() if k != "origins"},
        "code_split": {"train_pairs": len(train), "held_out_pairs": len(held)},
        "eval_tasks": eval_manifest,
    }
    return samples, fragment


def main(cfg: UnifyConfig) -> Path:
    """Build ``<out_dir>/unified`` and ``<out_dir>/eval_tasks``; return ``<out_dir>``.

    Both are built in temporary folders and swapped in only when everything succeeded, so a
    failed rerun leaves the previous output as it was (``config.staged_folder``).
    """
    out = Path(cfg.out_dir)
    with staged_folder(out / "unified") as unified, staged_folder(out / "eval_tasks") as eval_root:
        _build(cfg, unified, eval_root)
    return out


def _warn_empty(empty: list[str], before: dict[str, int]) -> None:
    """Say on the console which sources gave no sample (the manifest lists them too)."""
    for source in empty:
        why = "it had no valid record" if not before.get(source) else "de-duplication removed every sample"
        print(f"warning: source '{source}' gave no training samples ({why}); it is left out", file=sys.stderr)


def _build(cfg: UnifyConfig, unified: Path, eval_root: Path) -> None:
    offline = cfg.offline_sources or cfg.offline_eval_tasks
    samples, fragment = build_offline(cfg, eval_root) if offline else ({}, {"eval_tasks": {}})
    skips = SkipReport()
    imported, held_out = import_held_out(cfg, eval_root, skips)
    samples.update(imported)
    fragment["eval_tasks"] = {**fragment["eval_tasks"], **held_out}
    dedup = DedupReport()
    banned = list(eval_texts(eval_root))
    kept = {}
    for source, items in samples.items():
        kept[source], dedup = dedup_samples(items, banned, dedup)
    before = {s: len(v) for s, v in samples.items()}
    kept = {s: items for s, items in kept.items() if items}
    write = _write_corpus if cfg.layout == "corpus" else _write_inline
    stats, empty = write(cfg, kept, unified, banned, {**fragment, "skips": skips, "dedup": dedup, "before": before})
    (unified / "stats.json").write_text(json.dumps(stats, indent=2))
    save_config(cfg, unified / "unify_config.yaml")
    print(format_stats(stats))
    print(
        f"de-duplication against {dedup.eval_texts} eval texts removed {dedup.to_dict()['total_removed']} samples"
        + (f"; lenient mode skipped {skips.total} records {dict(skips.counts)}" if skips.total else "")
    )
    _warn_empty(empty, before)


def _manifest(parts: dict[str, Any], stats: list[dict[str, Any]], empty: list[str]) -> dict[str, Any]:
    """The manifest's records: origins, eval tasks, environment, de-dup and skip reports, stats."""
    fragment = {k: v for k, v in parts.items() if k not in ("skips", "dedup", "before")}
    return {
        **fragment,
        "environment": environment_record(),
        "dedup": parts["dedup"].to_dict(),
        "skips": parts["skips"].to_dict(),
        "stats": stats,
        "empty_sources_dropped": empty,
        "before_dedup": parts["before"],
    }


def _write_inline(cfg: UnifyConfig, kept: dict, unified: Path, banned: list[str], parts: dict) -> tuple[list, list]:
    """``schema.write_unified``: one parquet per source, every row with its texts."""
    empty = sorted(s for s in parts["before"] if s not in kept)
    stats = source_stats(kept)
    with _quiet_datasets():
        write_unified(kept, unified, _manifest(parts, stats, empty))
    return stats, empty


def _write_corpus(cfg: UnifyConfig, kept: dict, unified: Path, banned: list[str], parts: dict) -> tuple[list, list]:
    """The corpus layout (``data/corpus.py``): the de-duplicated samples, then the streamed F2LLM imports."""
    writer = CorpusWriter(unified, {text_hash(t) for t in banned})
    parts["dedup"].eval_texts = max(parts["dedup"].eval_texts, len(writer.banned))
    for source, items in kept.items():
        writer.write_samples(source, items)
    runs = stream_imports(cfg, writer, parts["skips"], parts["dedup"])
    parts["before"].update(
        {r.source: r.counts.rows_read - r.counts.capped_out - r.counts.skipped_invalid for r in runs}
    )
    empty = sorted(s for s in parts["before"] if s not in writer.rows)
    stats = source_stats(kept) + [r.stats() for r in runs if r.counts.kept]
    manifest = _manifest(parts, stats, empty)
    manifest["f2llm_import"] = {r.source: r.counts.to_dict() for r in runs}
    writer.close(manifest)
    return stats, empty


def cli(argv: list[str] | None = None) -> int:
    """``minif2 unify [--profile tiny] [--config PATH] [--out-dir DIR] [--lenient]``."""
    parser = argparse.ArgumentParser(prog="minif2 unify", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, help="configs/<profile>/unify.yaml")
    parser.add_argument("--config", help="a unify YAML (overrides the profile)")
    parser.add_argument("--out-dir", help="a run's data/ folder (default runs/latest/data)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--lenient", action="store_true", default=None, help="skip and count bad records")
    args = parser.parse_args(argv)
    explicit: dict[str, Any] = {}  # the keys written in --config win over --profile
    if args.config:
        from_file = load_config(UnifyConfig, args.config)  # validates, naming the file and key at fault
        explicit = {k: getattr(from_file, k) for k in yaml.safe_load(Path(args.config).read_text()) or {}}
    cfg = load_config(
        UnifyConfig,
        profile_path(args.profile, "unify") if args.profile else None,
        **{**explicit, "out_dir": args.out_dir, "seed": args.seed, "lenient": args.lenient},
    )
    main(cfg)
    return 0
