"""Mining a corpus larger than memory: float16 embeddings on disk, searched chunk by chunk.

F2LLM mines about 6 million samples (docs/recipe.md §1); their corpus embeddings do not fit
in a laptop's RAM as float32 (6M x 1024 x 4 bytes = 24 GB). With
``MiningConfig.corpus_storage: disk`` the mining step works from disk instead:

- :func:`encode_to_disk` encodes the corpus ``chunk_docs`` documents at a time and writes each
  chunk into a memory-mapped ``.npy`` file (float16 by default: half the disk and page cache
  of float32). The file is named by the teacher's fingerprint and the texts' hash, like
  ``retrieve.encode_cached``'s, so a rerun reuses it; a run that stopped halfway resumes from
  its last written chunk (``<name>.partial.npy`` + ``<name>.partial.json``); the final name
  appears only once every row is written, so a crash never replaces a good file.
- :func:`block_search` reads one corpus chunk at a time (as float32), scores every block of
  ``query_chunk`` queries against it with faiss' exact ``IndexFlatIP`` (or a torch matmul) and
  merges each chunk's top-k into the running top-k (:func:`merge_top_k`). Each chunk is read
  from disk once. Extra memory: one float32 chunk plus a ``query_chunk x corpus_chunk`` block.

Scores are float32 inner products of the float16-stored vectors, everywhere on this path (the
positive's score too), so the rule compares like with like. Rankings can differ from the
in-memory float32 path only between documents whose scores are within float16's rounding
(about 5e-4 near 1): a test checks both paths give the same negatives when gaps are wider.
Not handled here: the query embeddings and the (queries x k) results stay in memory; an
approximate index (IVF, HNSW). Taught in ``notebooks/02_hard_negative_mining.ipynb``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from minif2.mining.retrieve import Backend, resolve_backend, teacher_fingerprint, texts_hash

try:  # optional at run time, as in retrieve.py
    import faiss
except ImportError:  # pragma: no cover
    faiss = None

__all__ = ["DiskDtype", "block_search", "disk_path", "encode_to_disk", "merge_top_k"]

DiskDtype = Literal["float16", "float32"]
log = logging.getLogger(__name__)
FAISS_QUERY_BLOCK = 4096  # faiss' own query block (distance_compute_blas_query_bs): the least it is given at once


def disk_path(embedder: Any, texts: Sequence[str], folder: str | Path, dtype: DiskDtype = "float16") -> Path:
    """``<folder>/<teacher fingerprint[:16]>-<texts hash[:24]>-<dtype>.npy``: one file per teacher, corpus, dtype."""
    return Path(folder) / f"{teacher_fingerprint(embedder)[:16]}-{texts_hash(texts)[:24]}-{dtype}.npy"


def encode_to_disk(
    embedder: Any,
    texts: Sequence[str],
    folder: str | Path,
    chunk_docs: int = 65536,
    batch_size: int = 64,
    dtype: DiskDtype = "float16",
    show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, bool]:
    """The corpus embeddings as a read-only memory map (len(texts), dim); returns (map, cache_hit).

    A complete file of the right shape and dtype is reused (cache_hit True). Otherwise
    ``chunk_docs`` texts at a time are encoded and written to ``<name>.partial.npy``, and
    ``<name>.partial.json`` records the rows written so far, after each chunk is flushed: a
    rerun after a crash starts at the first unwritten chunk. On completion the partial file
    is renamed to the final name (atomic), so the final name only ever holds a whole corpus.
    """
    final = disk_path(embedder, texts, folder, dtype)
    shape = (len(texts), int(embedder.dim))
    if final.is_file():
        done = np.load(final, mmap_mode="r", allow_pickle=False)
        if done.shape == shape and done.dtype == np.dtype(dtype):
            return done, True
        log.info("%s has shape %s %s, expected %s %s: encoding again", final, done.shape, done.dtype, shape, dtype)
    partial, progress = final.with_suffix(".partial.npy"), final.with_suffix(".partial.json")
    stored, start = _open_partial(partial, progress, shape, dtype)
    show = len(texts) > chunk_docs if show_progress_bar is None else show_progress_bar
    bar = tqdm(total=len(texts), initial=start, desc="encode corpus to disk", unit="doc", disable=not show)
    for begin in range(start, len(texts), chunk_docs):
        chunk = list(texts[begin : begin + chunk_docs])
        vectors = embedder.encode(chunk, batch_size=batch_size, show_progress_bar=False)
        stored[begin : begin + len(chunk)] = np.asarray(vectors, dtype=np.float32)  # rounded to dtype here
        stored.flush()  # the rows are on disk before the progress file says so
        _write_json(progress, {"rows_written": begin + len(chunk), "shape": list(shape), "dtype": dtype})
        bar.update(len(chunk))
    bar.close()
    del stored
    os.replace(partial, final)
    progress.unlink()
    return np.load(final, mmap_mode="r", allow_pickle=False), False


def _open_partial(partial: Path, progress: Path, shape: tuple[int, int], dtype: str) -> tuple[np.ndarray, int]:
    """A writable map of the partial file and the first row still to write (0 when starting afresh)."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    if partial.is_file() and progress.is_file():
        state = json.loads(progress.read_text())
        if state.get("shape") == list(shape) and state.get("dtype") == dtype:
            stored = np.lib.format.open_memmap(partial, mode="r+")
            if stored.shape == shape and stored.dtype == np.dtype(dtype):
                log.info("resuming %s at row %d of %d", partial, state["rows_written"], shape[0])
                return stored, int(state["rows_written"])
            del stored
    progress.unlink(missing_ok=True)  # no record of what was written: start over
    return np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape), 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temp file renamed over it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def merge_top_k(
    best_s: torch.Tensor, best_i: torch.Tensor, new_s: torch.Tensor, new_i: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best of two (scores, indices) lists per row, best first.

    >>> t = torch.tensor
    >>> s, i = merge_top_k(t([[0.75, 0.25]]), t([[4, 7]]), t([[0.5]]), t([[2]]), k=2)
    >>> s.tolist(), i.tolist()
    ([[0.75, 0.5]], [[4, 2]])
    """
    scores, indices = torch.cat([best_s, new_s], dim=1), torch.cat([best_i, new_i], dim=1)
    top_s, pos = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return top_s, torch.gather(indices, 1, pos)


def _chunk_top_k(queries: np.ndarray, chunk: np.ndarray, k: int, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` inner products of ``queries`` (float32) against one in-memory ``chunk`` (float32)."""
    k = min(k, len(chunk))
    if backend == "faiss":
        index = faiss.IndexFlatIP(chunk.shape[1])
        index.add(chunk)
        return index.search(queries, k)
    top_s, top_i = torch.topk(torch.from_numpy(queries) @ torch.from_numpy(chunk).T, k, dim=1)
    return top_s.numpy(), top_i.numpy()


def block_search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    backend: Backend = "auto",
    query_chunk: int = 1024,
    corpus_chunk: int = 65536,
    show_progress_bar: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores float32, indices int64), best first, of each query against a corpus
    that may be a float16 memory map; ``k = min(k, len(corpus))``, as ``retrieve.exact_search``.

    The corpus is read one ``corpus_chunk`` at a time (each chunk once); every block of
    ``query_chunk`` queries (faiss: at least 4096) is scored against it (faiss ``IndexFlatIP``
    or torch; ``auto``: faiss when installed) and merged into that block's running top-k.
    """
    backend = resolve_backend(backend)
    n_queries, k = len(queries), min(k, len(corpus))
    best_s = torch.full((n_queries, k), -torch.inf, dtype=torch.float32)  # -inf loses to every real score
    best_i = torch.full((n_queries, k), -1, dtype=torch.int64)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    show = len(corpus) > corpus_chunk if show_progress_bar is None else show_progress_bar
    # faiss blocks its own products (4096 queries x 1024 documents): calls of fewer queries were ~40 % slower
    query_chunk = max(query_chunk, FAISS_QUERY_BLOCK) if backend == "faiss" else query_chunk
    for c_start in tqdm(range(0, len(corpus), corpus_chunk), desc="search", unit="chunk", disable=not show or k == 0):
        chunk = np.ascontiguousarray(corpus[c_start : c_start + corpus_chunk], dtype=np.float32)  # (chunk, dim)
        for q_start in range(0, n_queries, query_chunk):
            rows = slice(q_start, q_start + query_chunk)
            top_s, top_i = _chunk_top_k(queries[rows], chunk, k, backend)
            new_i = torch.from_numpy(np.asarray(top_i, dtype=np.int64)) + c_start
            best_s[rows], best_i[rows] = merge_top_k(best_s[rows], best_i[rows], torch.from_numpy(top_s), new_i, k)
    return best_s.numpy(), best_i.numpy()
