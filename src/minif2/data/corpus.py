"""The corpus layout of a unified dataset: every document stored once, rows referring to it by id.

F2LLM-v2's released pipeline (``F2LLM/tokenize_data_qwen.py``, ``F2LLM/run.py``; docs/recipe.md §1b) keeps
each distinct document (passage or negative) once in ``corpus.parquet`` and each source's rows in
``{source}_query.parquet``, whose passage and negative columns hold document ids; the trainer looks the
documents up (``id_to_docs``). Negatives drawn from a shared pool repeat across rows, so this is many
times smaller than the inline form (``schema.write_unified``: every row carries its own texts).

The kit's files, written in batches with ``pyarrow.parquet.ParquetWriter``:

- ``corpus.parquet``: ``doc_id`` (int32, = row number), ``text``, and after ``minif2 tokenize``
  ``input_ids`` (list of int32, EOS included: ``data/pretokenize.py``);
- ``{source}_query.parquet``: ``query``, ``positive_id``, ``negative_ids`` (list), ``task``, ``source``,
  ``instruction`` (the inline form's columns, documents as ids);
- ``manifest.json`` with ``"layout": "corpus"``.

A document's identity is its exact text (as F2LLM's ``set(ls)``), kept as an 8-byte XXH3 digest (``xxhash``,
a fast non-cryptographic hash: chosen because each distinct text of a batch is hashed once per batch, the
import's hottest loop, 10x cheaper than BLAKE2 here): two different texts share an id with probability
about n^2 / 2^65 (1e-6 for 6M documents); texts crafted to collide could be merged. This
module writes and reads the layout; importing F2LLM's files into it is ``data/f2llm.py``; it does not
read texts for mining (``minif2 mine`` reads and writes the inline form; :func:`inline_to_corpus` converts
its output). Described in docs/recipe.md §1b and the README (F2LLM's full data); taught at the end of
notebook 02 on the course's mined data.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from minif2.config import MissingInputError, staged_folder
from minif2.provenance import file_sha256
from minif2.schema import Sample, read_unified, text_hash

__all__ = [
    "CORPUS_FILE",
    "CorpusData",
    "CorpusWriter",
    "KeyIndex",
    "QUERY_SCHEMA",
    "dictionary_indices",
    "inline_to_corpus",
    "is_corpus_layout",
    "query_file",
    "read_corpus_layout",
    "samples_to_batch",
    "text_key",
]

CORPUS_FILE = "corpus.parquet"
BANNED = -1  # the id a document gets when it is an evaluation text: never written, dropped where it occurs
MISSING = -2  # KeyIndex.lookup: a key not seen before
CORPUS_SCHEMA = pa.schema([("doc_id", pa.int32()), ("text", pa.string())])
QUERY_SCHEMA = pa.schema(
    [
        ("query", pa.string()),
        ("positive_id", pa.int32()),
        ("negative_ids", pa.list_(pa.int32())),
        ("task", pa.string()),
        ("source", pa.string()),
        ("instruction", pa.string()),
    ]
)


def query_file(folder: str | Path, source: str) -> Path:
    """``<folder>/<source>_query.parquet`` (F2LLM-v2's name for a source's rows)."""
    return Path(folder) / f"{source}_query.parquet"


def is_corpus_layout(folder: str | Path) -> bool:
    """True when ``folder``'s manifest says ``"layout": "corpus"`` (the inline form has no such key)."""
    manifest = Path(folder) / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("layout") == "corpus"


def text_key(text: str) -> int:
    """An 8-byte digest of the exact text (XXH3 of its UTF-8 bytes): a document's identity in the corpus."""
    return xxhash.xxh3_64_intdigest(text.encode("utf-8"))


def utf8_keys(texts: pa.Array, rows: np.ndarray) -> np.ndarray:
    """:func:`text_key` of ``texts[rows]`` (non-null), hashed straight from the Arrow buffer's UTF-8 bytes:
    no Python string is made (the import's hottest loop: every distinct text of every batch).

    >>> utf8_keys(pa.array(["a", None, "b"]), np.array([0, 2])).tolist() == [text_key("a"), text_key("b")]
    True
    """
    if not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.string())
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buffer, data = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[texts.offset : texts.offset + len(texts) + 1]
    data = memoryview(data if data is not None else b"")
    pieces = (data[a:b] for a, b in zip(offsets[rows].tolist(), offsets[rows + 1].tolist()))
    return np.fromiter(map(xxhash.xxh3_64_intdigest, pieces), np.uint64, len(rows))


class KeyIndex:
    """8-byte keys -> ids, as sorted numpy arrays: 12 bytes per key where a dict of Python ints takes ~100.

    Two sorted runs, a large one and a recent one; new keys are inserted into the recent run, which is
    merged into the large one when it passes a quarter of it, so an insert copies the small run, not all.

    >>> index = KeyIndex(); index.add(np.array([7, 3], np.uint64), np.array([0, 1]))
    >>> index.lookup(np.array([3, 5, 7], np.uint64)).tolist()
    [1, -2, 0]
    """

    def __init__(self) -> None:
        empty = (np.zeros(0, np.uint64), np.zeros(0, np.int32))
        self.large, self.recent = empty, empty

    def __len__(self) -> int:
        return len(self.large[0]) + len(self.recent[0])

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The id of each key, :data:`MISSING` where it was never added."""
        found = np.full(len(keys), MISSING, dtype=np.int64)
        for run_keys, run_ids in (self.large, self.recent):
            if len(run_keys):
                at = np.searchsorted(run_keys, keys).clip(max=len(run_keys) - 1)
                hit = run_keys[at] == keys
                found[hit] = run_ids[at[hit]]
        return found

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add keys not in the index yet (distinct), with their ids."""
        order = np.argsort(keys, kind="stable")
        self.recent = _insert(self.recent, keys[order], ids[order])
        if len(self.recent[0]) > max(1 << 16, len(self.large[0]) // 4):
            self.large, self.recent = _insert(self.large, *self.recent), (self.recent[0][:0], self.recent[1][:0])


def _insert(run: tuple[np.ndarray, np.ndarray], keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``keys`` (with ``ids``) inserted into the sorted ``run``."""
    at = np.searchsorted(run[0], keys)
    return np.insert(run[0], at, keys), np.insert(run[1], at, ids.astype(np.int32))


class CorpusWriter:
    """Streams documents into ``corpus.parquet`` and rows into ``{source}_query.parquet``, in batches.

    :meth:`document_ids` turns a batch of document texts into ids, writing each new text once; a
    text whose normalised hash is in ``banned`` (the evaluation texts, ``data/dedup.py``) gets
    :data:`BANNED` and is not written. Memory: per distinct document its 8-byte key and id
    (:class:`KeyIndex`), its normalised hash and its length in characters (for the stats); no text is
    kept once written.
    """

    def __init__(self, folder: str | Path, banned: set[str] | frozenset[str] = frozenset(), buffer_docs: int = 20_000):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.banned = banned
        self._index = KeyIndex()  # text key -> doc id (BANNED for eval texts)
        self.norm_hash: array = array("q")  # doc id -> 8 bytes of its normalised hash (repeats of pairs)
        self.doc_chars: array = array("i")  # doc id -> characters
        self._pending: list[str] = []
        self._buffer_docs = buffer_docs
        self._corpus = pq.ParquetWriter(self.folder / CORPUS_FILE, CORPUS_SCHEMA)
        self._queries: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {}
        self.occurrences = 0  # document references seen (positives + negatives), repeats included
        self.banned_documents = 0  # distinct documents that were evaluation texts

    @property
    def num_documents(self) -> int:
        return len(self.doc_chars)

    def document_ids(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Ids of ``texts`` (strings; a chunked array is one dictionary over all its chunks), new ones written.

        >>> import tempfile; w = CorpusWriter(tempfile.mkdtemp())
        >>> w.document_ids(pa.array(["a", "b", "a"])).tolist(), w.document_ids(pa.array(["b", "c"])).tolist()
        ([0, 1, 0], [1, 2])
        """
        return self.dictionary_ids(*dictionary_indices(texts))

    def dictionary_ids(self, dictionary: pa.Array, indices: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
        """Ids of ``dictionary[indices]``: the work is per distinct text (one hash call each), the lookups are
        numpy's. Entries marked in ``skip`` (blank texts) get :data:`BANNED` and are not written."""
        self.occurrences += len(indices)
        lookup = np.full(len(dictionary), BANNED, dtype=np.int64)
        wanted = np.arange(len(dictionary)) if skip is None else np.flatnonzero(~skip)
        keys = utf8_keys(dictionary, wanted)
        found = self._index.lookup(keys)
        new = np.flatnonzero(found == MISSING)
        if len(new):
            texts = np.asarray(dictionary.take(pa.array(wanted[new])).to_pylist(), dtype=object)
            found[new] = self._add(texts, keys[new])
        lookup[wanted] = found
        return lookup[indices]

    def _add(self, texts: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Ids for texts not seen before, in order of first appearance (an evaluation text gets
        :data:`BANNED`); the others are queued for ``corpus.parquet`` in order of their ids."""
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)  # a hash collision: one id
        order = np.argsort(first)  # the distinct keys in order of appearance
        texts, keys = texts[first[order]], unique[order]
        digests = [text_hash(t) for t in texts]
        banned = np.fromiter((d in self.banned for d in digests), bool, len(digests))
        ids = np.full(len(texts), BANNED, dtype=np.int64)
        ids[~banned] = self.num_documents + np.arange(int((~banned).sum()))
        self.banned_documents += int(banned.sum())
        kept = texts[~banned].tolist()
        norm = [int(d[:16], 16) - (1 << 63) for d, b in zip(digests, banned, strict=True) if not b]
        self.norm_hash.frombytes(np.asarray(norm, dtype=np.int64).tobytes())
        self.doc_chars.frombytes(np.fromiter(map(len, kept), np.int32, len(kept)).tobytes())
        self._index.add(keys, ids)
        self._pending.extend(kept)
        if len(self._pending) >= self._buffer_docs:
            self._flush_corpus()
        by_key = np.empty_like(ids)
        by_key[order] = ids  # np.unique's inverse indexes the sorted keys
        return by_key[inverse.reshape(-1)]

    def _flush_corpus(self) -> None:
        start = self.num_documents - len(self._pending)
        ids = pa.array(np.arange(start, self.num_documents, dtype=np.int32))
        self._corpus.write_table(pa.table([ids, pa.array(self._pending, pa.string())], schema=CORPUS_SCHEMA))
        self._pending = []

    def write_rows(self, source: str, batch: pa.Table) -> None:
        """Append a batch of rows (:data:`QUERY_SCHEMA`) to ``source``'s query file."""
        if source not in self._queries:
            self._queries[source] = pq.ParquetWriter(query_file(self.folder, source), QUERY_SCHEMA)
            self.rows[source] = 0
        self._queries[source].write_table(batch.select(QUERY_SCHEMA.names).cast(QUERY_SCHEMA))
        self.rows[source] += len(batch)

    def write_samples(self, source: str, samples: list[Sample]) -> None:
        """Already de-duplicated samples (the small sources of ``data/unify.py``) into the layout."""
        for start in range(0, len(samples), 10_000):
            self.write_rows(source, samples_to_batch(samples[start : start + 10_000], self))

    def close(self, manifest: dict[str, Any]) -> Path:
        """Finish every file and write ``manifest.json`` (row counts, documents, sha256 of each file)."""
        if self._pending:
            self._flush_corpus()
        self._corpus.close()
        for writer in self._queries.values():
            writer.close()
        files = {s: query_file(self.folder, s) for s in self.rows} | {"corpus": self.folder / CORPUS_FILE}
        record = {
            "layout": "corpus",
            "sources": dict(self.rows),
            "documents": {
                "distinct": self.num_documents,
                "references": self.occurrences,
                "evaluation_texts_dropped": self.banned_documents,
            },
            "fingerprints": {name: file_sha256(path) for name, path in files.items()},
            **manifest,
        }
        (self.folder / "manifest.json").write_text(json.dumps(record, indent=2))
        return self.folder


def dictionary_indices(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """``(distinct texts, index of each text among them)``, by Arrow's dictionary encoding (no Python per row).

    >>> d, i = dictionary_indices(pa.chunked_array([["x", "y"], ["x"]]))
    >>> d.to_pylist(), i.tolist()
    (['x', 'y'], [0, 1, 0])
    """
    encoded = texts if pa.types.is_dictionary(texts.type) else pc.dictionary_encode(texts)
    if isinstance(encoded, pa.ChunkedArray):  # the chunks share one dictionary
        if encoded.num_chunks == 0:
            return pa.array([], pa.string()), np.zeros(0, dtype=np.int64)
        parts = [c.indices.fill_null(0).to_numpy(zero_copy_only=False) for c in encoded.chunks]
        return encoded.chunk(0).dictionary, np.concatenate(parts).astype(np.int64)  # a null text: index 0
    return encoded.dictionary, encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def inline_to_corpus(inline_dir: str | Path, folder: str | Path, rows_per_batch: int = 10_000) -> Path:
    """A folder in the inline form (``schema.write_unified``: ``minif2 unify`` or ``minif2 mine``'s output)
    rewritten in the corpus layout, source by source in batches of rows (its datasets are memory-mapped).
    Mined negatives come from the same corpus as the positives, so each document is written once here where
    the inline form repeats it in every row that uses it. Training reads either form with the same batches."""
    data = read_unified(inline_dir)
    fields = ("query", "positive", "negatives", "task", "source", "instruction")
    with staged_folder(folder) as staged:  # a failed conversion leaves a previous ``folder`` as it was
        writer = CorpusWriter(staged)
        for source, rows in data.items():
            for start in range(0, len(rows), rows_per_batch):
                chunk = rows[start : start + rows_per_batch]  # a dict of columns
                writer.write_samples(source, [Sample(*values) for values in zip(*(chunk[f] for f in fields))])
        writer.close({"converted_from": str(inline_dir)})
    return Path(folder)


def samples_to_batch(samples: list[Sample], writer: CorpusWriter) -> pa.Table:
    """Samples -> a :data:`QUERY_SCHEMA` table, their documents given ids by ``writer``.

    No eval check here: the samples were de-duplicated already (``dedup.dedup_samples``).
    """
    counts = [len(s.negatives) for s in samples]
    ids = writer.document_ids(pa.array([s.positive for s in samples] + [n for s in samples for n in s.negatives]))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    columns = {
        "query": pa.array([s.query for s in samples], pa.string()),
        "positive_id": pa.array(ids[: len(samples)], pa.int32()),
        "negative_ids": pa.ListArray.from_arrays(offsets, pa.array(ids[len(samples) :], pa.int32())),
        "task": pa.array([s.task for s in samples], pa.string()),
        "source": pa.array([s.source for s in samples], pa.string()),
        "instruction": pa.array([s.instruction for s in samples], pa.string()),
    }
    return pa.table(columns, schema=QUERY_SCHEMA)


@dataclass
class CorpusData:
    """A corpus-layout folder read for training: per-source row tables and the documents, memory-mapped."""

    rows: dict[str, pa.Table]  # source -> its query file (query text, ids of positive and negatives)
    text: pa.Array  # doc id -> text
    input_ids: pa.Array | None  # doc id -> token ids (EOS included) when pre-tokenized, else None
    tokenized: dict[str, Any] | None  # how the ids were made (data/pretokenize.py), None if not

    def texts(self, ids: Any) -> list[str]:
        """The texts of documents ``ids`` (this batch's only: no list of all texts is made)."""
        return self.text.take(pa.array(ids, pa.int32())).to_pylist()

    def token_ids(self, ids: Any) -> list[list[int]]:
        if self.input_ids is None:
            raise ValueError("this corpus is not pre-tokenized: run `minif2 tokenize` first")
        return self.input_ids.take(pa.array(ids, pa.int32())).to_pylist()


def read_corpus_layout(folder: str | Path) -> CorpusData:
    """Read a folder written by :class:`CorpusWriter` with ``pq.read_table(memory_map=True)``.

    Raises ``MissingInputError`` naming the file when one is missing, and ``ValueError`` when the
    corpus's ``doc_id`` is not its row number (the kit writes it so; F2LLM's ids are mapped on import).
    """
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = {}
    for source in manifest["sources"]:
        path = query_file(folder, source)
        if not path.is_file():
            raise MissingInputError(f"{path} is listed in {folder / 'manifest.json'} but missing")
        rows[source] = pq.read_table(path, memory_map=True)
    path = folder / CORPUS_FILE
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: a corpus-layout folder needs it (run `minif2 unify`)")
    corpus = pq.read_table(path, memory_map=True)
    doc_id = corpus["doc_id"]
    if len(doc_id) and not pc.all(pc.equal(doc_id, pa.array(np.arange(len(doc_id), dtype=np.int32)))).as_py():
        raise ValueError(f"{path}: column 'doc_id' must be the row number 0..{len(doc_id) - 1}; rewrite it with unify")
    ids = corpus["input_ids"].combine_chunks() if "input_ids" in corpus.column_names else None
    return CorpusData(rows, corpus["text"].combine_chunks(), ids, manifest.get("tokenized"))
