"""Mining's retrieval at scale: corpus embeddings in memory vs float16 on disk (issue 24).

A cheap hashed embedder (no model: each text's crc32 drives a fixed bank of sines) stands in
for the teacher, so the figures are the storage, IO and search of ``minif2.mining``, not the
encoder. For each corpus size and storage, in a fresh subprocess:

- ``memory``: ``retrieve.encode_cached`` (float32 array) + ``retrieve.search``, today's path;
- ``disk``: ``chunked.encode_to_disk`` (float16 memory map, written chunk by chunk) +
  ``chunked.block_search``, then ``encode_to_disk`` again to time the reuse of the file.

Each child samples its own ``/proc/self/status`` every 20 ms and reports peak RSS split into
anonymous memory (private: arrays, faiss, torch) and file-backed pages (the memory map, which
the kernel may drop at any time), plus wall time per stage. The text lists themselves are
built before the clock and reported as ``rss_before_mib``. Linux only.

    python benchmarks/mining_scale.py                          # 100k and 1M documents x 10k queries
    python benchmarks/mining_scale.py --corpus-sizes 20000 --queries 1000 --out /tmp/small.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

OUT = Path(__file__).parent / "measured" / "mining_scale_issue24.json"


@dataclass
class HashedConfig:
    """What ``teacher_fingerprint`` reads of a teacher's settings."""

    model: str = "hashed"
    dim: int = 384


class HashedEmbedder:
    """Unit vectors from a text's crc32: ``sin(crc * freq + phase)`` over ``dim`` fixed random sines."""

    def __init__(self, dim: int) -> None:
        self.dim, self.config, self.source = dim, HashedConfig(dim=dim), "hashed-embedder"
        rng = np.random.default_rng(0)
        self.freq, self.phase = rng.uniform(1e-4, 1e-3, dim), rng.uniform(0, 2 * np.pi, dim)

    def encode(self, texts, batch_size=64, instruction=None, show_progress_bar=None) -> np.ndarray:
        """float32 (len(texts), dim), made 4096 texts at a time (a model's batches: no float64 corpus copy)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), 4096):
            crc = np.array([zlib.crc32(t.encode()) for t in texts[start : start + 4096]], dtype=np.float64)
            vectors = np.sin(crc[:, None] * self.freq + self.phase)  # (block, dim)
            out[start : start + len(crc)] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return out


class PeakMemory:
    """Peak VmRSS, RssAnon and RssFile of this process in MiB, sampled every 20 ms from /proc."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self) -> None:
        self.peak = dict.fromkeys(self.FIELDS, 0.0)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> dict[str, float]:
        lines = Path("/proc/self/status").read_text().splitlines()
        kib = {line.split(":")[0]: int(line.split()[1]) for line in lines if line.split(":")[0] in self.FIELDS}
        return {name: kib[name] / 1024 for name in self.FIELDS}

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak = {name: max(self.peak[name], value) for name, value in self.now().items()}
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        self.thread.join()


def child(n_docs: int, storage: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run in this (fresh) process: encode the corpus, encode the queries, search; timed and sampled."""
    from minif2.mining.chunked import block_search, encode_to_disk
    from minif2.mining.retrieve import encode_cached, search

    teacher = HashedEmbedder(args.dim)
    corpus = [f"document {i}" for i in range(n_docs)]
    queries = [f"query {i}" for i in range(args.queries)]
    folder = tempfile.mkdtemp(prefix="mining-scale-")
    result: dict[str, Any] = {"corpus_docs": n_docs, "queries": args.queries, "dim": args.dim, "storage": storage}
    with PeakMemory() as memory:
        result["rss_before_mib"] = memory.now()["VmRSS"]
        t0 = time.perf_counter()
        if storage == "disk":
            corpus_emb, _ = encode_to_disk(teacher, corpus, folder, args.encode_chunk_docs, show_progress_bar=False)
        else:
            corpus_emb, _ = encode_cached(teacher, corpus, None, None)
        q_emb = teacher.encode(queries)
        t1 = time.perf_counter()
        if storage == "disk":
            scores, indices = block_search(
                q_emb, corpus_emb, args.k, "auto", args.query_chunk, args.corpus_chunk, False
            )
        else:
            scores, indices = search(q_emb, corpus_emb, args.k, "auto", args.query_chunk, args.corpus_chunk)
        t2 = time.perf_counter()
        if storage == "disk":
            _, hit = encode_to_disk(teacher, corpus, folder, args.encode_chunk_docs)
            result.update(reuse_s=time.perf_counter() - t2, reuse_was_cache_hit=hit)
    result.update(encode_s=t1 - t0, search_s=t2 - t1, total_s=t2 - t0, checksum=float(scores[:, 0].sum()))
    result.update({f"peak_{name}_mib": value for name, value in memory.peak.items()})
    result["disk_file_mib"] = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20
    for path in Path(folder).iterdir():
        path.unlink()
    Path(folder).rmdir()
    return result


def run_child(n_docs: int, storage: str, argv: list[str]) -> dict[str, Any]:
    """``child`` in a fresh interpreter (so each peak is its own), its JSON line parsed."""
    command = [sys.executable, __file__, *argv, "--child", str(n_docs), storage]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {n_docs} {storage} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--storages", nargs="+", choices=["memory", "disk"], default=["disk", "memory"])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)  # the kit's teacher, all-MiniLM-L6-v2
    parser.add_argument("--k", type=int, default=100)  # F2LLM's top 100
    parser.add_argument("--query-chunk", type=int, default=1024)  # MiningConfig's defaults
    parser.add_argument("--corpus-chunk", type=int, default=65536)
    parser.add_argument("--encode-chunk-docs", type=int, default=65536)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--child", nargs=2, metavar=("N_DOCS", "STORAGE"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path | None:
    args = parse(argv)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args)))
        return None
    passed = argv if argv is not None else sys.argv[1:]  # the child reads the same settings
    runs = []
    for n_docs in args.corpus_sizes:
        for storage in args.storages:
            runs.append(run_child(n_docs, storage, passed))
            print(json.dumps(runs[-1]))
    what = "issue 24: mining's retrieval (encode corpus + queries, exact top-k search) with a hashed embedder"
    return save_result({"what": what, "machine": machine_info(), "settings": vars(args), "runs": runs}, args.out)


if __name__ == "__main__":
    main()
