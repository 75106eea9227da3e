"""Hard-negative mining: the kit (``minif2.mining``) vs sentence-transformers' ``mine_hard_negatives``.

Same queries, corpus, teacher (MiniLM by default), k and rule (the settings where the
two rules coincide: no rank skip, max_score 0.8, 95 % margin, see
``minif2.mining.st_kwargs``), in ONE process, in this order:

1. cold: neither has embeddings; both encode corpus and queries (``--repeats`` times,
   in the order kit, ST, ST, kit, ..., each in a fresh process; the best time counts);
2. warm: corpus and query embeddings cached on disk by each (the kit's cache; ST's
   ``cache_folder``), so only search, filtering and output remain.

It prints wall time, the time ratios and the peak resident-memory increase of each run
(sampled every 5 ms with psutil: it includes torch's allocations, which tracemalloc
cannot see), checks that both chose the same negatives, and times the two search
backends (exact chunked matmul vs faiss) on a larger random corpus. Figures are saved
as JSON under benchmarks/results/ (git-ignored).

    python benchmarks/mining.py                    # ~1-2 minutes on 2 CPU cores
    python benchmarks/mining.py --pairs 2000 --extra-corpus 5000   # bigger, minutes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
RESULTS = Path(__file__).parent / "results"


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Run ``fn``; return (result, wall seconds, peak RSS increase in MiB, CPU seconds of this process, all threads).

    CPU seconds are less sensitive than wall time to other jobs sharing the machine."""
    import psutil

    process = psutil.Process()
    start_rss = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = fn()
    finally:
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        done.set()
        thread.join()
    peak = max(peak, process.memory_info().rss)
    return result, elapsed, (peak - start_rss) / 2**20, cpu


def code_pairs(n_pairs: int, n_extra: int, max_chars: int, cache: Path) -> tuple[list, list[str]]:
    """``n_pairs`` docstring -> code samples from the standard library and ``n_extra`` more code bodies as
    extra corpus."""
    import random

    from minif2.data.sources import harvest_code_pairs
    from minif2.schema import Sample

    pairs, _ = harvest_code_pairs(("stdlib",), cache_dir=cache, max_files_per_library=None, seed=0)
    unique = list({p["query"]: p for p in pairs}.values())
    unique = list({p["code"][:max_chars]: p for p in unique}.values())
    random.Random(0).shuffle(unique)
    if len(unique) < n_pairs + n_extra:
        raise SystemExit(f"only {len(unique)} distinct stdlib pairs; ask for fewer --pairs/--extra-corpus")
    samples = [Sample(p["query"], p["code"][:max_chars], source="stdlib") for p in unique[:n_pairs]]
    return samples, [p["code"][:max_chars] for p in unique[n_pairs : n_pairs + n_extra]]


def search_backends(n_queries: int, n_corpus: int, dim: int, k: int) -> dict[str, Any]:
    """Exact chunked matmul vs faiss IndexFlatIP on random unit vectors: time and agreement."""
    import numpy as np

    from minif2.mining.retrieve import exact_search, faiss_search

    rng = np.random.default_rng(0)
    q = rng.standard_normal((n_queries, dim)).astype(np.float32)
    c = rng.standard_normal((n_corpus, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    (es, ei), exact_s, exact_mb, _ = measure(lambda: exact_search(q, c, k, query_chunk=512, corpus_chunk=16384))
    (fs, fi), faiss_s, faiss_mb, _ = measure(lambda: faiss_search(q, c, k))
    return {
        "n_queries": n_queries,
        "n_corpus": n_corpus,
        "dim": dim,
        "k": k,
        "exact_time_s": exact_s,
        "exact_peak_mib": exact_mb,
        "faiss_time_s": faiss_s,
        "faiss_peak_mib": faiss_mb,
        "same_indices_fraction": float((ei == fi).mean()),
        "max_score_difference": float(np.abs(es - fs).max()),
    }


def _one_run(which: str, args: dict[str, Any], cache: str, conn: Any) -> None:
    """In a fresh process: load the teacher, warm up, then time one mining run ("kit" or "st")."""
    from sentence_transformers import SentenceTransformer

    from minif2.mining.mine import MiningConfig, load_teacher, mine_source
    from minif2.mining.report import sentence_transformers_negatives

    samples, extra = code_pairs(args["pairs"], args["extra_corpus"], args["max_chars"], RESULTS / "cache")
    cfg = MiningConfig(
        teacher=args["teacher"],
        top_k=args["top_k"],
        skip_top=0,
        on_shortfall="drop",
        batch_size=args["batch_size"],
        num_negatives={"retrieval": args["num_negatives"]},
        search_backend="exact",
    )
    teacher = load_teacher(cfg)
    if which == "kit":
        teacher.encode(["warm-up"] * 4)  # first-call costs are paid outside the clock

        def run() -> dict:
            out = mine_source(samples, teacher, cfg, cache_dir=cache, extra_corpus=extra)
            return {(r["query"], r["positive"]): r["negatives"] for r in out.samples}
    else:
        st_model = SentenceTransformer(str(teacher.source), device="cpu")
        st_model.max_seq_length = teacher.config.max_length_tokens
        del teacher
        st_model.encode(["warm-up"] * 4)

        def run() -> dict:
            return sentence_transformers_negatives(
                samples, st_model, cfg, extra_corpus=extra, batch_size=args["batch_size"], cache_folder=cache
            )

    negatives, seconds, mib, cpu = measure(run)
    conn.send(
        (
            negatives,
            {
                "time_s": seconds,
                "cpu_s": cpu,
                "peak_rss_increase_mib": mib,
                "samples_kept": len(negatives),
                "corpus_size": len({s.positive for s in samples} | set(extra)),
            },
        )
    )
    conn.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="minilm", help="asset name or local folder (default: minilm)")
    parser.add_argument("--pairs", type=int, default=150, help="(query, positive) samples to mine")
    parser.add_argument("--extra-corpus", type=int, default=150, help="extra documents in the corpus")
    parser.add_argument("--max-chars", type=int, default=300, help="code documents cut to this many characters")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--num-negatives", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="cold runs of each (the best counts)")
    parser.add_argument("--search-corpus", type=int, default=100_000, help="random corpus size for the backend timing")
    parser.add_argument("--out", default=str(RESULTS / "mining.json"))
    args = parser.parse_args(argv)

    import multiprocessing

    runs: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {}
    context = multiprocessing.get_context("spawn")
    # cold runs alternate kit, ST, ST, kit, ... (each with an empty cache) so that load on the machine hits both alike;
    # warm runs reuse the caches the first cold runs wrote
    plan = [(f"{w}_cold{r}", w, f"{w}-{r}") for r in range(args.repeats) for w in (("kit", "st"), ("st", "kit"))[r % 2]]
    plan += [("kit_warm", "kit", "kit-0"), ("st_warm", "st", "st-0")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, which, cache in plan:
            parent, child = context.Pipe()
            process = context.Process(target=_one_run, args=(which, vars(args), str(Path(tmp) / cache), child))
            process.start()
            results[name], runs[name] = parent.recv()
            process.join()
            print(
                f"{name:<9} {runs[name]['time_s']:8.2f} s wall {runs[name]['cpu_s']:8.2f} s CPU   peak RSS "
                f"+{runs[name]['peak_rss_increase_mib']:7.1f} MiB"
                f"   samples kept {len(results[name])}"
            )
    for which in ("kit", "st"):  # the best of the cold repeats
        best = min((runs[f"{which}_cold{r}"] for r in range(args.repeats)), key=lambda run: run["time_s"])
        runs[f"{which}_cold"] = best
        results[f"{which}_cold"] = results[f"{which}_cold0"]

    same = all(negatives == results["kit_cold0"] for negatives in results.values())
    ratios = {
        "st_cold / kit_cold": runs["st_cold"]["time_s"] / runs["kit_cold"]["time_s"],
        "st_cold / kit_warm": runs["st_cold"]["time_s"] / runs["kit_warm"]["time_s"],
        "st_warm / kit_warm": runs["st_warm"]["time_s"] / runs["kit_warm"]["time_s"],
        "st_cold / kit_cold (CPU s)": runs["st_cold"]["cpu_s"] / runs["kit_cold"]["cpu_s"],
    }
    for name, value in ratios.items():
        print(f"speed-up {name:<20} {value:6.2f}x")
    print(f"identical negatives (kit vs sentence-transformers): {same}")
    backends = search_backends(2000, args.search_corpus, 384, args.top_k)
    print(
        f"search {backends['n_queries']} x {backends['n_corpus']} (d=384, k={args.top_k}): "
        f"exact {backends['exact_time_s']:.2f} s (+{backends['exact_peak_mib']:.0f} MiB), "
        f"faiss {backends['faiss_time_s']:.2f} s (+{backends['faiss_peak_mib']:.0f} MiB), "
        f"same indices {backends['same_indices_fraction']:.4%}"
    )

    report = {
        "args": vars(args),
        "runs": runs,
        "ratios": ratios,
        "identical_negatives": same,
        "search_backends": backends,
        "machine": machine_info(),
    }
    save_result(report, args.out)
    return report


if __name__ == "__main__":
    main()
