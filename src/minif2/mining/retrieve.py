"""Encode a corpus once, then find each query's top-k documents: the retrieval half of mining.

F2LLM (docs/recipe.md §1) has a teacher retrieve the top 100 passages for every query before its
margin rule picks hard negatives (``mining/mine.py``). Two things make that step cheap to
repeat while a student tinkers with the rule:

- :func:`encode_cached` stores embeddings as ``.npy`` files keyed by the teacher's
  fingerprint and a hash of the texts (and of the query instruction), so a second run
  on the same corpus encodes nothing. Files are written atomically and read with
  ``allow_pickle=False``.
- :func:`search` is an exact inner-product top-k (on L2-normalised vectors: cosine).
  The ``exact`` backend multiplies a block of queries with a block of documents at a
  time and merges running top-k lists, so its memory is bounded by
  ``query_chunk x corpus_chunk`` floats and the corpus may be a memory-mapped array
  larger than RAM. The ``faiss`` backend (``IndexFlatIP``, also exact) gives the same
  results; ``auto`` picks faiss when it is installed.

This module knows nothing of positives or margins. Taught in
``notebooks/02_hard_negative_mining.ipynb``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

try:  # optional at run time: faiss-cpu is a dependency, but the exact backend works without it
    import faiss
except ImportError:  # pragma: no cover
    faiss = None

__all__ = [
    "encode_cached",
    "encode_queries",
    "exact_search",
    "faiss_available",
    "faiss_search",
    "resolve_backend",
    "search",
    "teacher_fingerprint",
    "texts_hash",
]

Backend = Literal["auto", "exact", "faiss"]


def teacher_fingerprint(embedder: Any) -> str:
    """A hex digest naming the teacher: its source, its settings and its weight files' size and time.

    Any change to the weights (a re-save), pooling, template or max length gives a new
    fingerprint, so cached embeddings of another teacher are never reused.
    """
    digest = hashlib.sha256()
    settings = asdict(embedder.config)
    settings.pop("model", None)  # the resolved source below names the model
    digest.update(
        json.dumps({"source": str(embedder.source), "config": settings}, sort_keys=True, default=str).encode()
    )
    folder = Path(str(embedder.source))
    if folder.is_dir():
        for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + [folder / "config.json"]:
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def texts_hash(texts: Sequence[str], instruction: str | None = None) -> str:
    """sha256 over the texts in order (NUL-separated) and the query instruction, if any.

    >>> texts_hash(["a", "b"]) == texts_hash(["a", "b"]) != texts_hash(["b", "a"])
    True
    """
    digest = hashlib.sha256(f"instruction={instruction or ''}\x00".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def encode_cached(
    embedder: Any,
    texts: Sequence[str],
    instruction: str | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, bool]:
    """``embedder.encode(texts, instruction=...)`` with an on-disk cache; returns (embeddings, cache_hit).

    The file is ``<cache_dir>/<teacher fingerprint[:16]>-<texts hash[:24]>.npy``; with
    ``cache_dir=None`` nothing is cached. A cached file of the wrong shape is ignored
    and rewritten.
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{teacher_fingerprint(embedder)[:16]}-{texts_hash(texts, instruction)[:24]}.npy"
        if path.is_file():
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(texts), embedder.dim):
                return cached, True
    embeddings = np.asarray(
        embedder.encode(
            list(texts), batch_size=batch_size, instruction=instruction, show_progress_bar=show_progress_bar
        ),
        dtype=np.float32,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, embeddings, allow_pickle=False)
        os.replace(tmp, path)  # atomic: a crash never leaves half a file under the final name
    return embeddings, False


def encode_queries(
    embedder: Any,
    queries: Sequence[str],
    instructions: Sequence[str],
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
) -> tuple[np.ndarray, int]:
    """Each row's query embedding, formatted with that row's instruction ("" = none).

    Rows sharing an instruction are encoded together (one cache file per instruction),
    each distinct query once. Returns (embeddings (n, dim), number of cache hits).
    """
    out = np.empty((len(queries), embedder.dim), dtype=np.float32)
    hits = 0
    for instruction in dict.fromkeys(instructions):
        rows = [r for r, i in enumerate(instructions) if i == instruction]
        unique = list(dict.fromkeys(queries[r] for r in rows))
        emb, hit = encode_cached(embedder, unique, instruction or None, cache_dir, batch_size)
        position = {text: j for j, text in enumerate(unique)}
        out[rows] = emb[[position[queries[r]] for r in rows]]
        hits += hit
    return out, hits


def exact_search(
    queries: np.ndarray, corpus: np.ndarray, k: int, query_chunk: int = 1024, corpus_chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` inner products of each query row against every corpus row, best first.

    Returns ``scores`` float32 (n_queries, k) and ``indices`` int64 (n_queries, k) with
    ``k = min(k, len(corpus))``. Works block by block: for each block of queries, each
    block of the corpus gives its own top-k, merged with the running top-k. Peak extra
    memory is about ``4 * query_chunk * corpus_chunk`` bytes (256 MiB with the defaults),
    whatever the corpus size; ``corpus`` may be ``np.load(..., mmap_mode="r")``.
    """
    n_queries, n_corpus = len(queries), len(corpus)
    k = min(k, n_corpus)
    scores = np.empty((n_queries, k), dtype=np.float32)
    indices = np.empty((n_queries, k), dtype=np.int64)
    if k == 0:
        return scores, indices
    for q_start in range(0, n_queries, query_chunk):
        q = torch.from_numpy(
            np.array(queries[q_start : q_start + query_chunk], dtype=np.float32)
        )  # a copy: mmap is read-only
        best_s: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for c_start in range(0, n_corpus, corpus_chunk):
            c = torch.from_numpy(np.array(corpus[c_start : c_start + corpus_chunk], dtype=np.float32))
            block = q @ c.T  # (queries in block, documents in block)
            top_s, top_i = torch.topk(block, min(k, block.shape[1]), dim=1)
            top_i += c_start
            if best_s is None or best_i is None:
                best_s, best_i = top_s, top_i
                continue
            merged_s, merged_i = torch.cat([best_s, top_s], dim=1), torch.cat([best_i, top_i], dim=1)
            best_s, pos = torch.topk(merged_s, min(k, merged_s.shape[1]), dim=1)
            best_i = torch.gather(merged_i, 1, pos)
        assert best_s is not None and best_i is not None
        scores[q_start : q_start + len(q)] = best_s.numpy()
        indices[q_start : q_start + len(q)] = best_i.numpy()
    return scores, indices


def faiss_search(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same as :func:`exact_search`, with faiss' exact ``IndexFlatIP`` (the corpus is copied into it)."""

    k = min(k, len(corpus))
    if k == 0:
        return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(np.ascontiguousarray(corpus, dtype=np.float32))
    scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, indices.astype(np.int64)


def faiss_available() -> bool:
    """True when ``import faiss`` works."""
    return faiss is not None


def resolve_backend(backend: str) -> str:
    """``"exact"`` or ``"faiss"`` for a configured backend (``auto``: faiss when installed); else a ValueError."""
    if backend == "auto":
        return "faiss" if faiss_available() else "exact"
    if backend not in ("exact", "faiss"):
        raise ValueError(f"unknown search backend '{backend}': use 'auto', 'exact' or 'faiss'")
    return backend


def search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    backend: Backend = "auto",
    query_chunk: int = 1024,
    corpus_chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, indices) per query with the chosen backend; ``auto`` = faiss if installed."""
    if resolve_backend(backend) == "faiss":
        return faiss_search(queries, corpus, k)
    return exact_search(queries, corpus, k, query_chunk=query_chunk, corpus_chunk=corpus_chunk)
