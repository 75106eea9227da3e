"""Streaming import of F2LLM's released training files into the corpus layout (``data/corpus.py``).

Two layouts are read, batch by batch with ``pyarrow.parquet.ParquetFile.iter_batches`` (no step
holds all rows in Python):

- v1 (docs/recipe.md §1a): one ``{source}.parquet`` per source with ``query``, ``passage``,
  ``negative_1..N`` texts (24 negatives, or 1 for classification);
- v2 (docs/recipe.md §1b, ``F2LLM/tokenize_data_qwen.py``): ``corpus.parquet`` (``doc_id``, ``text``)
  and ``{source}_query.parquet`` with ``query`` and doc ids in ``passage_input_ids`` /
  ``negative_i_input_ids`` (F2LLM's column names). F2LLM-v2's own files keep token ids only
  (``input_ids``, ``query_input_ids``): given the tokenizer that made them (``f2llm_tokenizer``, Qwen3's),
  they are decoded back to text, since the kit tokenizes with its own model (``data/pretokenize.py``).

Per batch: an optional per-source cap (F2LLM-v2 keeps 80,000 rows per source, ``df.sample(n=80000)``
with seed 42; here a seeded choice of row numbers, the same rule but not the same rows), validation
(a null or empty text names file, row and column; lenient mode counts and skips), de-duplication
against the evaluation texts (``data/dedup.py``'s rule: a query or positive that is an eval text
drops the row, such a negative is dropped from its list, a repeated (query, positive) is dropped)
and the documents' ids (``CorpusWriter.document_ids``). Every drop is counted in :class:`ImportCounts`.
Each source gets its family from F2LLM's lists (``schema.f2llm_family``) unless ``task`` is given.
A held-out split of a streamed source is not made (``holdout`` is refused); it is described in
docs/recipe.md §1b and the README, not yet taught in a notebook.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from huggingface_hub import snapshot_download

from minif2.data.corpus import BANNED, CORPUS_FILE, QUERY_SCHEMA, CorpusWriter, dictionary_indices, utf8_keys
from minif2.data.validation import SkipReport, UnifyError
from minif2.instructions import instruction_for, split_instruction
from minif2.schema import f2llm_family, text_hash

__all__ = ["F2LLM_CAP", "ImportCounts", "download_f2llm", "f2llm_files", "import_f2llm_file", "import_f2llm_folder"]

F2LLM_CAP = 80_000  # rows per source in F2LLM-v2 (F2LLM/tokenize_data_qwen.py: n = 80000)
BATCH_ROWS = 4096  # rows per streamed batch (x 25 texts of ~500 characters: ~50 MB)
_NEGATIVE = re.compile(r"^negative_(\d+)$")
_NEGATIVE_ID = re.compile(r"^negative_(\d+)_input_ids$")
_MASK64 = (1 << 64) - 1


@dataclass
class ImportCounts:
    """What happened to one source's rows; every row read is counted exactly once below ``rows_read``."""

    rows_read: int = 0  # rows in the file
    capped_out: int = 0  # left out by the per-source cap
    skipped_invalid: int = 0  # lenient mode: a null or empty text
    removed_eval_overlap: int = 0  # query or positive is an evaluation text
    removed_repeats: int = 0  # repeated (query, positive)
    kept: int = 0
    dropped_negatives: int = 0  # negatives that were evaluation texts (the row stays)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def f2llm_files(folder: str | Path) -> dict[str, Path]:
    """``{source: file}`` of a local copy of F2LLM's data: v2 if it holds ``corpus.parquet`` (sources are
    the ``*_query.parquet`` files), else v1 (every ``*.parquet``). Sorted by source name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UnifyError(folder, None, None, "not a folder: expected a local copy of F2LLM's parquet files")
    if (folder / CORPUS_FILE).is_file():
        found = {p.name[: -len("_query.parquet")]: p for p in folder.glob("*_query.parquet")}
    else:  # a hub copy may keep its files in sub-folders (data/...): a source is a file name, wherever it is
        found = {p.stem: p for p in folder.glob("*.parquet")} or {p.stem: p for p in sorted(folder.rglob("*.parquet"))}
    if not found:
        raise UnifyError(folder, None, None, "no parquet files: expected F2LLM's {source}.parquet files")
    return dict(sorted(found.items()))


def download_f2llm(repo_id: str, revision: str | None = None) -> Path:
    """The parquet files of a hub dataset in F2LLM's layout (e.g. ``codefuse-ai/F2LLM``), as a local folder
    for :func:`f2llm_files`, through ``huggingface_hub.snapshot_download``'s cache: once downloaded, a run with
    ``HF_HUB_OFFLINE=1`` reads the cached copy and never reaches the network. Only ``*.parquet`` is fetched."""
    try:
        folder = snapshot_download(
            repo_id, repo_type="dataset", revision=revision, allow_patterns=["*.parquet", "**/*.parquet"]
        )
    except Exception as err:  # noqa: BLE001 - the hub raises many types; say what to do
        hint = "offline, download it once (huggingface-cli download --repo-type dataset ...) or give a local folder"
        raise UnifyError(repo_id, None, None, f"cannot fetch dataset: {type(err).__name__}: {err}", hint) from err
    return Path(folder)


def cap_mask(num_rows: int, cap: int | None, seed: int) -> np.ndarray | None:
    """A boolean mask choosing ``cap`` of ``num_rows`` rows (seeded), or None when all are kept.

    >>> cap_mask(5, 2, 0).sum(), cap_mask(5, None, 0), cap_mask(5, 9, 0)
    (np.int64(2), None, None)
    """
    if cap is None or num_rows <= cap:
        return None
    mask = np.zeros(num_rows, dtype=bool)
    mask[np.random.default_rng(seed).choice(num_rows, cap, replace=False)] = True
    return mask


class _SourceImport:
    """The per-batch steps of one source: cap, validate, de-duplicate, write."""

    def __init__(self, writer: CorpusWriter, source: str, task: str, where: str, lenient: bool, report: SkipReport):
        self.writer, self.source, self.task, self.where = writer, source, task, where
        self.lenient, self.report = lenient, report
        self.instruction = instruction_for(source, task)
        self.counts = ImportCounts()
        self.seen: set[int] = set()  # 8-byte keys of (query, positive) pairs kept so far
        self.query_chars: list[np.ndarray] = []  # per batch, for the stats
        self.positive_chars: list[np.ndarray] = []
        self.negatives_total = 0

    def valid(self, batch: pa.Table, rows: np.ndarray, fields: list[str]) -> tuple[pa.Table, np.ndarray]:
        """Drop rows with a null or empty text in ``fields`` (strict: raise naming file, row and column)."""
        bad = np.zeros(len(batch), dtype=bool)
        for name in fields:
            column = _one(batch[name])
            text_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            if not pa.types.is_string(text_type) and not pa.types.is_large_string(text_type):
                reason = f"wrong type: column '{name}' holds {column.type}, expected text"
                raise UnifyError(self.where, None, name, reason, "Give text columns")
            nulls = pc.is_null(column).to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(_blank(column) & ~bad):
                error = UnifyError(self.where, int(rows[i]), name, _blank_reason(nulls[i]))
                if not self.lenient:
                    raise error
                self.report.add(error)
                bad[i] = True
        self.counts.skipped_invalid += int(bad.sum())
        return batch.filter(pa.array(~bad)), rows[~bad]

    def blank_documents(self, documents: pa.ChunkedArray, rows: np.ndarray, columns: list[str]) -> tuple:
        """``(rows with a null or blank document, dictionary, indices, blank entries)``, each distinct text
        checked once; strict mode raises naming the first such row and column."""
        dictionary, indices = dictionary_indices(documents)
        if not pa.types.is_string(dictionary.type) and not pa.types.is_large_string(dictionary.type):
            raise UnifyError(
                self.where, None, columns[0], f"wrong type: documents hold {dictionary.type}, expected text"
            )
        blank_values = _blank(dictionary) if len(dictionary) else np.zeros(0, dtype=bool)
        nulls = pc.is_null(documents).to_numpy(zero_copy_only=False).reshape(len(columns), -1).T  # (b, 1 + k)
        bad = nulls | blank_values[indices].reshape(len(columns), -1).T
        for i in np.flatnonzero(bad.any(axis=1)):
            j = int(np.argmax(bad[i]))
            error = UnifyError(self.where, int(rows[i]), columns[j], _blank_reason(nulls[i, j]))
            if not self.lenient:
                raise error
            self.report.add(error)
        self.counts.skipped_invalid += int(bad.any(axis=1).sum())
        return bad.any(axis=1), dictionary, indices, blank_values

    def write(self, query: pa.Array, ids: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Rows of ``query`` texts and ``ids`` (b, 1 + k: positive, then negatives) after de-duplication;
        rows not ``valid`` (counted already) are left out."""
        if valid is not None and not valid.all():
            query, ids = query.filter(pa.array(valid)), ids[valid]
        keep = self._keep(query.to_pylist(), ids[:, 0])
        ids, query = ids[keep], query.filter(pa.array(keep))
        negatives = ids[:, 1:]
        allowed = negatives != BANNED
        self.counts.dropped_negatives += int((~allowed).sum())
        offsets = np.concatenate([[0], np.cumsum(allowed.sum(axis=1))]).astype(np.int32)
        negative_ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(negatives[allowed], pa.int32()))
        own, text = self._instructions(query)
        n = len(query)
        table = pa.table(
            [text, pa.array(ids[:, 0], pa.int32()), negative_ids, pa.array([self.task] * n, pa.string()),
             pa.array([self.source] * n, pa.string()), own],
            schema=QUERY_SCHEMA,
        )  # fmt: skip
        self.counts.kept += n
        self.query_chars.append(pc.utf8_length(text).to_numpy(zero_copy_only=False))
        self.positive_chars.append(np.frombuffer(self.writer.doc_chars, dtype=np.int32)[ids[:, 0]])
        self.negatives_total += int(allowed.sum())
        if n:
            self.writer.write_rows(self.source, table)

    def _keep(self, queries: list[str], positives: np.ndarray) -> np.ndarray:
        keep = np.ones(len(queries), dtype=bool)
        banned, norm = self.writer.banned, self.writer.norm_hash
        for i, (query, positive) in enumerate(zip(queries, positives.tolist(), strict=True)):
            digest = text_hash(query)
            if positive == BANNED or digest in banned:
                self.counts.removed_eval_overlap += 1
                keep[i] = False
                continue
            key = (int(digest[:16], 16) ^ (norm[positive] * 0x9E3779B97F4A7C15)) & _MASK64
            if key in self.seen:
                self.counts.removed_repeats += 1
                keep[i] = False
            self.seen.add(key)
        return keep

    def _instructions(self, query: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(instruction, query text): a query carrying ``Instruct: ...\\nQuery: `` keeps its own."""
        instructed = pc.starts_with(query, "Instruct: ").to_numpy(zero_copy_only=False)
        if not instructed.any():
            return pa.array([self.instruction] * len(query), pa.string()), query
        pairs = [split_instruction(q) if flag else (None, q) for q, flag in zip(query.to_pylist(), instructed)]
        own = [self.instruction if i is None else i for i, _ in pairs]
        return pa.array(own, pa.string()), pa.array([q for _, q in pairs], pa.string())

    def stats(self) -> dict[str, Any]:
        """The inline stats' fields (``unify.source_stats``), from counts kept per batch."""
        q, p = (np.concatenate(c) if c else np.zeros(1) for c in (self.query_chars, self.positive_chars))
        return {
            "source": self.source,
            "task": self.task,
            "samples": self.counts.kept,
            "negatives_mean": round(self.negatives_total / max(self.counts.kept, 1), 2),
            "query_chars_median": float(np.median(q)),
            "query_chars_mean": round(float(q.mean()), 1),
            "positive_chars_median": float(np.median(p)),
            "positive_chars_mean": round(float(p.mean()), 1),
        }


def _one(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array from a batch's column (a single chunk is not copied)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def _blank_reason(null: bool) -> str:
    """What a rejected text was: null, or empty / whitespace only (validation.py's wording)."""
    return "missing field: the value is null" if null else "empty text: the value is empty or whitespace only"


def _blank(column: pa.Array) -> np.ndarray:
    """Rows whose text is null, empty or whitespace only; a dictionary column is checked once per distinct text."""
    if pa.types.is_dictionary(column.type):
        blank_values = _blank(column.dictionary)
        indices = column.indices.to_numpy(zero_copy_only=False)
        nulls = pc.is_null(column.indices).to_numpy(zero_copy_only=False)
        return nulls | blank_values[np.where(nulls, 0, indices).astype(np.int64)] if len(blank_values) else nulls
    blank = pc.match_substring_regex(column, r"^\s*$").fill_null(True)
    return blank.to_numpy(zero_copy_only=False)


def _read_ahead(batches: Iterator[Any]) -> Iterator[Any]:
    """``batches``, each read in a worker thread while the caller works on the one before: pyarrow decodes
    parquet without holding the GIL, so reading overlaps the Python work (one batch more in memory)."""
    done = object()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, batches, done)
        while (batch := pending.result()) is not done:
            pending = pool.submit(next, batches, done)
            yield batch


def _batches(path: Path, columns: list[str], cap: int | None, seed: int) -> Iterator[tuple[pa.Table, np.ndarray, int]]:
    """``(rows, their 1-based row numbers, rows left out by the cap)`` of ``path``, streamed."""
    # a buffered stream without pre-buffering: a row group's bytes are not all held (measured: 0.3 GB, not 1.7 GB)
    file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    mask = cap_mask(file.metadata.num_rows, cap, seed)
    start = 0
    for record_batch in _read_ahead(file.iter_batches(batch_size=BATCH_ROWS, columns=columns)):
        batch, rows = pa.Table.from_batches([record_batch]), np.arange(start + 1, start + 1 + record_batch.num_rows)
        start += record_batch.num_rows
        if mask is None:
            yield batch, rows, 0
            continue
        chosen = mask[start - len(rows) : start]
        yield batch.filter(pa.array(chosen)), rows[chosen], int((~chosen).sum())


def _negative_columns(names: list[str], pattern: re.Pattern) -> list[str]:
    found = [(int(m.group(1)), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(found)]


def import_f2llm_file(
    path: str | Path, source: str, writer: CorpusWriter, task: str | None = None, cap: int | None = None,
    seed: int = 0, lenient: bool = False, report: SkipReport | None = None,
) -> _SourceImport:  # fmt: skip
    """Stream one v1 file (``query``, ``passage``, ``negative_1..N``) into ``writer``; returns its counts/stats."""
    path = Path(path)
    names = pq.ParquetFile(path).schema_arrow.names
    negatives = _negative_columns(names, _NEGATIVE)
    for needed in ("query", "passage"):
        if needed not in names:
            raise UnifyError(path, None, needed, f"missing field: no column '{needed}' (columns: {names})")
    task = task or f2llm_family(source, negatives == ["negative_1"])
    run = _SourceImport(writer, source, task, str(path), lenient, report or SkipReport())
    for batch, rows, capped in _batches(path, ["query", "passage", *negatives], cap, seed):
        run.counts.rows_read += len(rows) + capped
        run.counts.capped_out += capped
        batch, rows = run.valid(batch, rows, ["query"])
        documents = pa.chunked_array([_one(batch[c]) for c in ["passage", *negatives]])  # column after column
        blank, dictionary, indices, blank_texts = run.blank_documents(documents, rows, ["passage", *negatives])
        ids = writer.dictionary_ids(dictionary, indices, blank_texts).reshape(1 + len(negatives), -1).T  # (b, 1 + k)
        run.write(_one(batch["query"]).cast(pa.string()), ids, ~blank)
    return run


def decode_ids(column: pa.ChunkedArray | pa.Array, tokenizer: Any) -> pa.Array:
    """F2LLM-v2's token ids (a list column) back to text with the tokenizer that made them: the EOS that
    ``tokenize_data_qwen.py`` appends after truncation is removed; a document cut at 2047 tokens stays cut.
    A null row stays null (validation names it)."""
    eos = tokenizer.eos_token_id
    rows = [r[:-1] if r and r[-1] == eos else r for r in _one(column).to_pylist()]
    present = [r for r in rows if r is not None]
    decoded = iter(tokenizer.batch_decode(present, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    return pa.array([None if r is None else next(decoded) for r in rows], pa.string())


def _v2_documents(corpus: Path, writer: CorpusWriter, tokenizer: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Stream F2LLM-v2's ``corpus.parquet`` into ``writer``: (sorted keys of its doc ids, the kit's ids).
    Its documents are ``text``, or ``input_ids`` decoded with ``tokenizer`` (F2LLM-v2's release keeps only ids)."""
    names = pq.ParquetFile(corpus).schema_arrow.names
    column = "text" if "text" in names else "input_ids"
    if "doc_id" not in names or column not in names or (column == "input_ids" and tokenizer is None):
        hint = "F2LLM-v2 keeps only input_ids: set `f2llm_tokenizer` to the tokenizer that made them (Qwen3's)"
        why = f"missing field: needs 'doc_id' and 'text' (or 'input_ids' with f2llm_tokenizer); has {names}"
        raise UnifyError(corpus, None, "text", why, hint)
    keys, kit_ids = [], []
    for batch, _, _ in _batches(corpus, ["doc_id", column], None, 0):
        keys.append(_id_keys(batch["doc_id"]))
        texts = batch["text"] if column == "text" else decode_ids(batch["input_ids"], tokenizer)
        kit_ids.append(writer.document_ids(texts))
    keys_all, ids_all = np.concatenate(keys), np.concatenate(kit_ids)
    order = np.argsort(keys_all, kind="stable")
    return keys_all[order], ids_all[order]


def _id_keys(doc_ids: pa.ChunkedArray) -> np.ndarray:
    """F2LLM's doc ids (strings such as ``msmarco_12``, or integers) as 8-byte keys: each distinct id, as text,
    hashed like a document (``corpus.utf8_keys``)."""
    column = _one(doc_ids)
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    dictionary = encoded.dictionary.cast(pa.string())
    keys = utf8_keys(dictionary, np.arange(len(dictionary)))
    return keys[encoded.indices.to_numpy(zero_copy_only=False)]


def import_f2llm_v2(
    path: Path, source: str, writer: CorpusWriter, lookup: tuple[np.ndarray, np.ndarray], task: str | None = None,
    cap: int | None = None, seed: int = 0, lenient: bool = False, report: SkipReport | None = None,
    tokenizer: Any = None,
) -> _SourceImport:  # fmt: skip
    """Stream one v2 ``{source}_query.parquet`` into ``writer``; its doc ids are looked up in ``lookup``.
    The query is ``query``, or ``query_input_ids`` decoded with ``tokenizer`` (F2LLM-v2's own files)."""
    names = pq.ParquetFile(path).schema_arrow.names
    negatives = _negative_columns(names, _NEGATIVE_ID)
    query = "query" if "query" in names else "query_input_ids"
    if query not in names or "passage_input_ids" not in names or (query != "query" and tokenizer is None):
        hint = "F2LLM-v2 keeps only query_input_ids: set `f2llm_tokenizer` to the tokenizer that made them"
        why = "missing field: needs 'query' (or 'query_input_ids' with f2llm_tokenizer) and 'passage_input_ids'"
        raise UnifyError(path, None, "query", f"{why}; has {names}", hint)
    task = task or f2llm_family(source, negatives == ["negative_1_input_ids"])
    run = _SourceImport(writer, source, task, str(path), lenient, report or SkipReport())
    keys, kit_ids = lookup
    for batch, rows, capped in _batches(path, [query, "passage_input_ids", *negatives], cap, seed):
        run.counts.rows_read += len(rows) + capped
        run.counts.capped_out += capped
        if query != "query":
            batch = batch.append_column("query", decode_ids(batch[query], tokenizer))
        batch, rows = run.valid(batch, rows, ["query"])
        wanted = np.stack([_id_keys(batch[c]) for c in ["passage_input_ids", *negatives]], axis=1)
        at = np.searchsorted(keys, wanted).clip(max=len(keys) - 1)
        if not (keys[at] == wanted).all():
            row, col = np.argwhere(keys[at] != wanted)[0]
            column = ["passage_input_ids", *negatives][col]
            raise UnifyError(path, int(rows[row]), column, "unknown document: the id is not in corpus.parquet")
        run.write(_one(batch["query"]).cast(pa.string()), kit_ids[at])
    return run


def import_f2llm_folder(
    folder: str | Path, writer: CorpusWriter, cap: int | None = None, seed: int = 0, lenient: bool = False,
    report: SkipReport | None = None, tasks: dict[str, str] | None = None, tokenizer: Any = None,
) -> dict[str, _SourceImport]:  # fmt: skip
    """Every source of a local copy of F2LLM's data (``f2llm_files``), v1 or v2, into ``writer``; v2 files
    that hold token ids only are decoded with ``tokenizer`` (:func:`decode_ids`)."""
    files, tasks = f2llm_files(folder), tasks or {}
    report = report if report is not None else SkipReport()
    if (Path(folder) / CORPUS_FILE).is_file():
        lookup = _v2_documents(Path(folder) / CORPUS_FILE, writer, tokenizer)
        return {
            s: import_f2llm_v2(p, s, writer, lookup, tasks.get(s), cap, seed, lenient, report, tokenizer)
            for s, p in files.items()
        }
    return {s: import_f2llm_file(p, s, writer, tasks.get(s), cap, seed, lenient, report) for s, p in files.items()}
