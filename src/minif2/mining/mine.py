"""Margin-based hard-negative mining, F2LLM's rule (docs/recipe.md §1), as a few small functions.

For every query a teacher retrieves the top ``top_k`` = 100 documents of the query's own
source; ranks 1-5 are dropped (they are often unlabelled positives: false negatives);
of the rest, a candidate is kept when its score is < ``max_score`` = 0.8 AND
< ``relative_margin`` = 0.95 x the positive's score; the best 24 survivors (1 for
classification) become the sample's negatives. The steps, each a function:

1. encode   ``retrieve.encode_cached``: corpus once, queries with their instruction.
2. search   ``retrieve.search``: exact top-k, chunked matmul or faiss.
3. filter   ``rule.exclusion_masks`` + ``rule.apply_rule``: counts what every filter removes.
4. select   ``rule.select_negatives``: the best ``n`` survivors, best first.
5. report   ``report``: score distributions, removals, a sample to eyeball.

Conventions (where the paper is silent, the kit's choice, stated once):
- The corpus of a source is the set of its positives plus any negatives already present,
  de-duplicated by exact text. The positive, a text equal to it up to case and
  whitespace, and the query's own text are never negatives and take no rank: ranks
  count only the other candidates (as in sentence-transformers).
- Scores are cosine similarities of the teacher's L2-normalised embeddings. "Keep
  score < 0.95 x positive" is computed sign-safely as ``score < pos - 0.05 |pos|``
  (identical for pos >= 0). Filters apply in the order skip_top, max_score,
  relative_margin (with ``skip_order="survivors"``: max_score, relative_margin, skip_top);
  each is credited with what it removed from the survivors of the previous ones.
- Fewer than ``n`` survivors: ``on_shortfall`` = ``drop`` the sample, ``keep_fewer``,
  or ``fill`` (search ranks top_k+1 .. fill_top_k with the same filters; samples still
  short are dropped, so every kept sample has exactly ``n``, as F2LLM's trainer
  expects). Counts go to the report.

The paper says the top 5 are dropped and the rest filtered; read literally, ranks 1-5 of the
retrieval go first (``skip_order="ranks"``, the default). F2LLM's seed explainer says the
negatives were mined with sentence-transformers, whose ``mine_hard_negatives`` filters first and
then skips ``range_min`` of the survivors (``skip_order="survivors"``, equal to it: tested). The two
agree when either the skip or the filters are off (``report.st_kwargs``). Not handled here: cross-encoder
rescoring, random sampling of negatives. Taught in ``notebooks/02_hard_negative_mining.ipynb``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from datasets import Dataset

from minif2.assets import cache_dir as asset_cache_dir
from minif2.config import MINING, PROFILES, load_config, profile_path, save_config, staged_folder
from minif2.mining.chunked import DiskDtype, block_search, encode_to_disk
from minif2.mining.report import score_summary
from minif2.mining.retrieve import Backend, encode_cached, encode_queries, search, teacher_fingerprint
from minif2.mining.rule import RuleResult, apply_rule, exclusion_masks, select_negatives, source_corpus
from minif2.model import Embedder
from minif2.provenance import environment_record
from minif2.schema import NUM_NEGATIVES, Sample, features, normalize_text, read_unified, training_family, write_unified

__all__ = ["MinedSource", "MiningConfig", "cli", "load_teacher", "main", "mine_source", "uses_instructions"]


@dataclass
class MiningConfig:
    """Every number of the rule is a field; defaults are F2LLM's (docs/recipe.md §1) unless marked 'kit'."""

    data_dir: str = "runs/latest/data/unified"  # a unified folder (schema.write_unified)
    out_dir: str = "runs/latest/data/mined"  # written in the same schema, plus mining_report.json
    teacher: str = "minilm"  # F2LLM: Qwen/Qwen3-Embedding-0.6B (hub); kit offline default: all-MiniLM-L6-v2
    teacher_uses_instructions: bool | None = None  # None: Embedder.takes_instructions (decoders yes, encoders no)
    teacher_max_length_tokens: int | None = None  # None: the teacher's own (sentence_bert_config, else 1024)
    batch_size: int = 64  # encoding batch
    top_k: int = MINING["top_k"]  # F2LLM: the teacher retrieves the top 100
    skip_top: int = MINING["skip_top"]  # F2LLM: ranks 1-5 are dropped (likely false negatives)
    skip_order: Literal["ranks", "survivors"] = "ranks"  # the paper's sentence read two ways (docs/recipe.md §1):
    # ranks: skip retrieval ranks 1-5, then filter (kit) | survivors: filter, then skip 5 (sentence-transformers)
    max_score: float | None = MINING["max_score"]  # F2LLM: keep score < 0.8; None turns the filter off
    relative_margin: float | None = MINING["relative_margin"]  # F2LLM: keep score < 0.95 x positive score; None: off
    num_negatives: dict[str, int] = field(
        default_factory=lambda: dict(NUM_NEGATIVES)
    )  # family -> n: 24, 1 for classification
    on_shortfall: Literal["drop", "keep_fewer", "fill"] = "fill"  # kit: paper silent
    fill_top_k: int = 1000  # kit: how deep "fill" searches
    existing_negatives: Literal["keep", "replace"] = "keep"  # kit: samples that arrive with negatives keep them
    exclude_query_text: bool = True  # kit: a document equal to the query is never its negative
    search_backend: Backend = "auto"  # faiss when installed, else exact chunked matmul (same results)
    query_chunk: int = 1024  # search block sizes: memory ~ 4 * query_chunk * corpus_chunk bytes
    corpus_chunk: int = 65536  # (disk storage: also one float32 chunk, 4 * corpus_chunk * dim bytes)
    corpus_storage: Literal["memory", "disk"] = "memory"  # kit: memory = float32 in RAM (F2LLM scale needs
    # ~24 GB) | disk = encoded in chunks to a memory-mapped file in the cache, searched chunk by chunk (chunked.py)
    disk_dtype: DiskDtype = "float16"  # kit: disk storage's dtype; float16 halves disk and page cache
    encode_chunk_docs: int = 65536  # disk storage: documents encoded and written (and resumable) per chunk
    progress_bar: bool | None = None  # disk storage's encode/search bars; None: only for more than one chunk
    cache_dir: str | None = None  # embedding cache; None: $MINIF2_CACHE/embeddings (~/.cache/minif2/embeddings)
    use_cache: bool = True
    max_samples_per_source: int | None = None  # smoke runs: the first N samples of each source (reported)


@dataclass
class MinedSource:
    """One source after mining: output rows, per-row scores for diagnostics, and its report."""

    samples: list[dict[str, Any]]
    scores: dict[str, list[Any]]  # row, positive_score, negative_scores, negative_ranks (mined rows only)
    report: dict[str, Any]


def load_teacher(cfg: MiningConfig) -> Any:
    """The teacher Embedder (a sentence-transformers folder keeps its own max length, MiniLM: 256)."""

    return Embedder.from_pretrained(cfg.teacher, max_length_tokens=cfg.teacher_max_length_tokens)


def uses_instructions(cfg: MiningConfig, teacher: Any) -> bool:
    """``cfg.teacher_uses_instructions`` when set, else the teacher's own answer (``Embedder.takes_instructions``)."""
    return teacher.takes_instructions if cfg.teacher_uses_instructions is None else cfg.teacher_uses_instructions


def _retrieve_and_filter(
    q_emb: np.ndarray,
    corpus_emb: np.ndarray,
    pos_ids: list[list[int]],
    corpus_keys: np.ndarray,
    query_keys: np.ndarray | None,
    pos_scores: np.ndarray,
    cfg: MiningConfig,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, RuleResult]:
    """Search ``top_k`` + room for the excluded texts, then apply the rule."""
    per_key = np.bincount(corpus_keys, minlength=int(corpus_keys.max()) + 2)  # documents sharing each text key
    excluded_per_row = [per_key[np.unique(corpus_keys[ids])].sum() for ids in pos_ids]
    if query_keys is not None:
        excluded_per_row = [n + (per_key[q] if q >= 0 else 0) for n, q in zip(excluded_per_row, query_keys)]
    slack = int(max(excluded_per_row))  # retrieve enough that top_k candidates remain after the exclusions
    scores, indices = _search(q_emb, corpus_emb, top_k + slack, cfg)
    excluded = exclusion_masks(indices, pos_ids, corpus_keys, query_keys)
    rule = apply_rule(
        indices,
        scores,
        pos_scores,
        excluded,
        top_k=top_k,
        skip_top=cfg.skip_top,
        max_score=cfg.max_score,
        relative_margin=cfg.relative_margin,
        skip_order=cfg.skip_order,
    )
    return indices, scores, rule


def _encode_corpus(teacher: Any, corpus: list[str], cfg: MiningConfig, cache: str | None) -> tuple[np.ndarray, bool]:
    """The corpus embeddings and whether they came from the cache: float32 in memory, or with
    ``corpus_storage: disk`` a memory map written chunk by chunk into the cache (``chunked.encode_to_disk``).

    Without a cache the disk file goes to a temporary folder removed at once: the open map keeps
    the (unlinked) file readable until it is dropped (POSIX).
    """
    if cfg.corpus_storage == "memory":
        return encode_cached(teacher, corpus, None, cache, cfg.batch_size)
    args = (cfg.encode_chunk_docs, cfg.batch_size, cfg.disk_dtype, cfg.progress_bar)
    if cache is not None:
        return encode_to_disk(teacher, corpus, cache, *args)
    with tempfile.TemporaryDirectory(prefix="minif2-corpus-") as folder:
        return encode_to_disk(teacher, corpus, folder, *args)


def _search(q_emb: np.ndarray, corpus_emb: np.ndarray, k: int, cfg: MiningConfig) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, indices): ``retrieve.search`` in memory, ``chunked.block_search`` on disk storage."""
    if cfg.corpus_storage == "disk":
        return block_search(
            q_emb, corpus_emb, k, cfg.search_backend, cfg.query_chunk, cfg.corpus_chunk, cfg.progress_bar
        )
    return search(q_emb, corpus_emb, k, cfg.search_backend, cfg.query_chunk, cfg.corpus_chunk)


def mine_source(
    samples: Any, teacher: Any, cfg: MiningConfig, cache_dir: str | Path | None = None, extra_corpus: Sequence[str] = ()
) -> MinedSource:
    """Mine one source (a ``datasets.Dataset`` or a list of :class:`Sample`) within its own corpus.

    The corpus is the source's positives, its given negatives and ``extra_corpus``
    (e.g. unlabelled documents), de-duplicated; ``cache_dir=None`` caches nothing.
    """
    rows = [s.to_dict() if isinstance(s, Sample) else dict(s) for s in samples]
    timer = {"start": time.perf_counter()}
    per_family = {**NUM_NEGATIVES, **cfg.num_negatives}  # a YAML may name only some families
    need_all = np.array([per_family[training_family(r["task"])] for r in rows], dtype=np.int64)
    corpus = source_corpus(rows, extra_corpus)
    corpus_id = {text: i for i, text in enumerate(corpus)}
    key_id: dict[str, int] = {}
    corpus_keys = np.array([key_id.setdefault(normalize_text(t), len(key_id)) for t in corpus], dtype=np.int64)
    mine_rows = [i for i, r in enumerate(rows) if cfg.existing_negatives == "replace" or not r["negatives"]]
    report: dict[str, Any] = {
        "samples_in": len(rows),
        "corpus_size": len(corpus),
        "kept_existing_negatives": len(rows) - len(mine_rows),
        "mined": len(mine_rows),
    }
    scores_out: dict[str, list[Any]] = {"row": [], "positive_score": [], "negative_scores": [], "negative_ranks": []}
    if not mine_rows:
        report.update(samples_out=len(rows), removed={}, shortfall={"policy": cfg.on_shortfall, "short": 0})
        return MinedSource(rows, scores_out, report)

    cache = None if not cfg.use_cache else str(cache_dir) if cache_dir is not None else None
    corpus_emb, corpus_hit = _encode_corpus(teacher, corpus, cfg, cache)
    sub = [rows[i] for i in mine_rows]
    instructions = [r["instruction"] if uses_instructions(cfg, teacher) else "" for r in sub]
    q_emb, q_hits = encode_queries(teacher, [r["query"] for r in sub], instructions, cache, cfg.batch_size)
    timer["encoded"] = time.perf_counter()
    pos_ids = _positive_ids(sub, corpus_id)
    own_pos = np.array([corpus_id[r["positive"]] for r in sub])
    pos_scores = np.einsum("nd,nd->n", q_emb, corpus_emb[own_pos].astype(np.float32))  # (n,) cosine with the positive
    query_keys = np.array([key_id.get(normalize_text(r["query"]), -1) for r in sub]) if cfg.exclude_query_text else None
    need = need_all[mine_rows]

    indices, scores, rule = _retrieve_and_filter(
        q_emb, corpus_emb, pos_ids, corpus_keys, query_keys, pos_scores, cfg, cfg.top_k
    )
    chosen = select_negatives(rule.keep, need)
    short = np.flatnonzero(chosen.sum(axis=1) < need)
    shortfall = {"policy": cfg.on_shortfall, "short": int(len(short)), "filled": 0, "dropped": 0, "kept_fewer": 0}
    picks = {i: (indices[i][chosen[i]], scores[i][chosen[i]], rule.rank[i][chosen[i]]) for i in range(len(sub))}
    if cfg.on_shortfall == "fill" and len(short) and cfg.fill_top_k > cfg.top_k:
        shortfall["filled"] = _fill(
            picks, short, need, q_emb, corpus_emb, pos_ids, corpus_keys, query_keys, pos_scores, cfg
        )
    timer["filtered"] = time.perf_counter()

    still_short = [i for i in short if len(picks[i][0]) < need[i]]  # after "fill", if it ran
    shortfall["kept_fewer" if cfg.on_shortfall == "keep_fewer" else "dropped"] = len(still_short)
    drop = set() if cfg.on_shortfall == "keep_fewer" else {mine_rows[i] for i in still_short}
    out_rows = _with_negatives(rows, mine_rows, picks, drop, corpus, pos_scores, scores_out)
    report.update(
        samples_out=len(out_rows),
        queries_encoded=len(sub),
        cache_hits={"corpus": corpus_hit, "query_groups": q_hits},
        candidates_retrieved=int((indices >= 0).sum()),
        removed=rule.removed,
        shortfall=shortfall,
        negatives_selected=int(sum(len(n) for n in scores_out["negative_scores"])),
        time_s={"encode": timer["encoded"] - timer["start"], "search_and_filter": timer["filtered"] - timer["encoded"]},
    )
    return MinedSource(out_rows, scores_out, report)


def _positive_ids(rows: list[dict[str, Any]], corpus_id: dict[str, int]) -> list[list[int]]:
    """Per row, the corpus ids of EVERY positive of its (query, instruction): none may be its negative.

    >>> rows = [{"query": "q", "instruction": "", "positive": p} for p in ("a", "b")]
    >>> _positive_ids(rows, {"a": 0, "b": 1})
    [[0, 1], [0, 1]]
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        groups.setdefault((r["query"], r["instruction"]), []).append(corpus_id[r["positive"]])
    return [sorted(set(groups[(r["query"], r["instruction"])])) for r in rows]


def _fill(
    picks: dict[int, Any],
    short: np.ndarray,
    need: np.ndarray,
    q_emb: np.ndarray,
    corpus_emb: np.ndarray,
    pos_ids: list[list[int]],
    corpus_keys: np.ndarray,
    query_keys: np.ndarray | None,
    pos_scores: np.ndarray,
    cfg: MiningConfig,
) -> int:
    """``on_shortfall: fill``: search the ``short`` queries again, ``cfg.fill_top_k`` deep, and replace
    their picks; returns how many now have all the negatives they need."""
    qk = query_keys[short] if query_keys is not None else None
    f_idx, f_sc, f_rule = _retrieve_and_filter(
        q_emb[short], corpus_emb, [pos_ids[i] for i in short], corpus_keys, qk, pos_scores[short], cfg, cfg.fill_top_k
    )
    f_chosen = select_negatives(f_rule.keep, need[short])
    for j, i in enumerate(short):
        picks[i] = (f_idx[j][f_chosen[j]], f_sc[j][f_chosen[j]], f_rule.rank[j][f_chosen[j]])
    return int((f_chosen.sum(axis=1) >= need[short]).sum())


def _with_negatives(
    rows: list[dict[str, Any]],
    mine_rows: list[int],
    picks: dict[int, Any],
    drop: set[int],
    corpus: list[str],
    pos_scores: np.ndarray,
    scores_out: dict[str, list[Any]],
) -> list[dict[str, Any]]:
    """The source's rows in order, mined ones with their picked negatives, ``drop`` left out; each mined
    row's scores and ranks are appended to ``scores_out`` (row = its index in the output)."""
    mined_at = {row: i for i, row in enumerate(mine_rows)}
    out_rows = []
    for row, r in enumerate(rows):
        if row in drop:
            continue
        if row in mined_at:
            ids, sc, rk = picks[mined_at[row]]
            r = {**r, "negatives": [corpus[j] for j in ids]}
            scores_out["row"].append(len(out_rows))
            scores_out["positive_score"].append(float(pos_scores[mined_at[row]]))
            scores_out["negative_scores"].append([float(s) for s in sc])
            scores_out["negative_ranks"].append([int(x) for x in rk])
        out_rows.append(r)
    return out_rows


def main(cfg: MiningConfig) -> Path:
    """Read ``cfg.data_dir``, mine every source, write ``cfg.out_dir``; returns ``out_dir``.

    Writes the unified schema (``<source>.parquet`` + ``manifest.json``), plus
    ``mining_scores/<source>.parquet`` (per-row teacher scores), ``mining_report.json``
    (per-filter removals, shortfall counts, score summaries) and ``mining_config.yaml``. The folder
    is built aside and swapped in only on success: a failed rerun leaves the previous one as it was.
    """

    data_dir, final_dir = Path(cfg.data_dir), Path(cfg.out_dir)
    if data_dir.resolve() == final_dir.resolve():
        raise ValueError(f"MiningConfig: out_dir must differ from data_dir ({data_dir}); mining writes a new folder.")
    with staged_folder(final_dir) as out_dir:
        _mine_into(cfg, data_dir, out_dir)
    return final_dir


def _mine_into(cfg: MiningConfig, data_dir: Path, out_dir: Path) -> None:
    """:func:`main`'s work, written into ``out_dir`` (the staged folder)."""
    data = read_unified(data_dir)
    teacher = load_teacher(cfg)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else asset_cache_dir() / "embeddings"
    mined, reports = {}, {}
    (out_dir / "mining_scores").mkdir(parents=True, exist_ok=True)
    for source, dataset in data.items():
        truncated = 0
        if cfg.max_samples_per_source is not None and len(dataset) > cfg.max_samples_per_source:
            truncated = len(dataset) - cfg.max_samples_per_source
            dataset = dataset.select(range(cfg.max_samples_per_source))
        result = mine_source(dataset, teacher, cfg, cache)
        mined[source] = (
            Dataset.from_list(result.samples, features=features())
            if result.samples
            else Dataset.from_dict({c: [] for c in features()}, features=features())
        )
        Dataset.from_dict(result.scores).to_parquet(str(out_dir / "mining_scores" / f"{source}.parquet"))
        result.report.update(
            truncated_by_max_samples=truncated,
            positive_score=score_summary(result.scores["positive_score"]),
            negative_score=score_summary([s for row in result.scores["negative_scores"] for s in row]),
        )
        reports[source] = result.report
        print(
            f"mine {source}: {result.report['samples_in']} in -> {result.report['samples_out']} out, "
            f"removed {result.report['removed']}, shortfall {result.report['shortfall']}"
        )
    write_unified(
        mined,
        out_dir,
        extra_manifest={
            "mined_from": str(data_dir),
            "teacher": cfg.teacher,
            "report": "mining_report.json",
            "environment": environment_record(),
        },
    )
    report = {
        "teacher": cfg.teacher,
        "teacher_fingerprint": teacher_fingerprint(teacher),
        "teacher_uses_instructions": uses_instructions(cfg, teacher),
        "sources": reports,
    }
    (out_dir / "mining_report.json").write_text(json.dumps(report, indent=2))
    save_config(cfg, out_dir / "mining_config.yaml")


def cli(argv: list[str] | None = None) -> int:
    """``minif2 mine --config PATH | --profile tiny`` plus a few overrides."""
    parser = argparse.ArgumentParser(
        prog="minif2 mine", description="Add margin-based hard negatives (F2LLM) to a unified dataset."
    )
    parser.add_argument("--config", help="YAML file with MiningConfig fields")
    parser.add_argument("--profile", choices=PROFILES, help="use configs/<profile>/mine.yaml")
    for flag, kind in [
        ("--data-dir", str),
        ("--out-dir", str),
        ("--teacher", str),
        ("--top-k", int),
        ("--skip-top", int),
        ("--skip-order", str),
        ("--max-score", float),
        ("--relative-margin", float),
        ("--max-samples-per-source", int),
        ("--cache-dir", str),
    ]:
        parser.add_argument(flag, type=kind, help=f"overrides MiningConfig.{flag[2:].replace('-', '_')}")
    parser.add_argument("--on-shortfall", choices=["drop", "keep_fewer", "fill"])
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    args = parser.parse_args(argv)
    path = args.config or (profile_path(args.profile, "mine") if args.profile else None)
    overrides = {k: v for k, v in vars(args).items() if k not in {"config", "profile", "no_cache"}}
    if args.no_cache:
        overrides["use_cache"] = False
    cfg = load_config(MiningConfig, path, **overrides)
    print(f"mined dataset written to {main(cfg)}")
    return 0
