"""Reading raw records with errors people can act on, and a strict or lenient mode.

Every import path of the unification step (``data/unify.py``, ``data/adapters.py``) reads its
records through :func:`read_jsonl` / :func:`read_tsv` / :func:`check_record`. A bad
record -- a malformed line, a missing field, an empty text, a value of the wrong
type -- raises :class:`UnifyError` naming the file, line and field and what to do.
In lenient mode the record is skipped instead, and :class:`SkipReport` counts every
skip by reason and keeps the first examples, so nothing is dropped silently.

This module does not know the sample schema; it only checks raw records. Taught in
``notebooks/01_data_unification.ipynb`` ("what bad input gets").
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minif2.config import InputError

__all__ = ["SkipReport", "UnifyError", "check_record", "read_jsonl", "read_tsv"]

# field -> expected Python type(s); "text" fields must also be non-empty after stripping
Schema = Mapping[str, type | tuple[type, ...]]


class UnifyError(InputError):
    """A raw record cannot be turned into a sample. The message names file, line and field."""

    def __init__(self, path: str | Path, line: int | None, field_name: str | None, reason: str, hint: str = ""):
        self.path, self.line, self.field, self.reason = str(path), line, field_name, reason
        where = (
            f"{path}"
            + (f", line {line}" if line is not None else "")
            + (f", field '{field_name}'" if field_name else "")
        )
        hint = hint or "Fix the record, or pass lenient=True (--lenient) to skip and count such records"
        super().__init__(f"{where}: {reason}. {hint}")


@dataclass
class SkipReport:
    """Counts of skipped records by reason (lenient mode), plus the first few in full."""

    counts: Counter = field(default_factory=Counter)  # reason -> number of records skipped
    examples: list[dict[str, Any]] = field(default_factory=list)  # first ``max_examples`` skips
    max_examples: int = 20

    def add(self, error: UnifyError) -> None:
        self.counts[error.reason.split(":")[0]] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append({"file": error.path, "line": error.line, "field": error.field, "reason": error.reason})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_reason": dict(self.counts), "examples": self.examples}


def check_record(
    record: Any, schema: Schema, path: str | Path, line: int | None, optional: Schema | None = None
) -> dict[str, Any]:
    """Return ``record`` if it is a mapping with every field of ``schema`` of the right type.

    Strings must be non-empty after stripping; a ``list`` field is a list of such strings (e.g.
    ``negatives``). ``bool`` is not accepted where a number, nor NaN/infinity where a float is.
    Fields of ``optional`` may be absent or null (an optional text may be empty: a BEIR title);
    when given they are checked the same way.

    >>> check_record({"text": "hi", "label": 1}, {"text": str, "label": (int, str)}, "x.jsonl", 3)
    {'text': 'hi', 'label': 1}
    """
    if not isinstance(record, dict):
        raise UnifyError(path, line, None, f"wrong type: expected a JSON object, got {type(record).__name__}")
    for name, types in schema.items():
        if name not in record:
            raise UnifyError(path, line, name, f"missing field: '{name}' is absent (fields present: {sorted(record)})")
        if record[name] is None:
            raise UnifyError(path, line, name, f"missing field: '{name}' is null")
        _check_value(record[name], types, path, line, name)
    for name, types in (optional or {}).items():
        if record.get(name) is not None:
            _check_value(record[name], types, path, line, name, allow_empty=True)
    return record


def _check_value(
    value: Any, types: type | tuple[type, ...], path: str | Path, line: int | None, name: str, allow_empty: bool = False
) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
    if not ok:
        wanted = "/".join(t.__name__ for t in _as_tuple(types))
        raise UnifyError(path, line, name, f"wrong type: expected {wanted}, got {type(value).__name__} {value!r:.40}")
    if isinstance(value, str) and not value.strip() and not allow_empty:
        raise UnifyError(path, line, name, "empty text: the value is empty or whitespace only")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnifyError(path, line, name, f"not a number: the value is {value}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise UnifyError(path, line, name, f"wrong type: item {i} must be a non-empty text, got {item!r:.40}")


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _decoded_lines(path: Path, lenient: bool, report: SkipReport, start: int = 1) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of a UTF-8 file, decoded line by line so that a line with bytes
    that are not UTF-8 is a :class:`UnifyError` naming the line (strict) or a counted skip (lenient)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=start):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                error = UnifyError(
                    path,
                    number,
                    None,
                    f"not UTF-8: byte {raw[err.start : err.start + 1]!r} at character {err.start} cannot be decoded",
                    "Re-save the file as UTF-8, or pass lenient=True (--lenient) to skip and count such lines",
                )
                if not lenient:
                    raise error from None
                report.add(error)


def read_jsonl(
    path: str | Path,
    schema: Schema,
    lenient: bool = False,
    report: SkipReport | None = None,
    optional: Schema | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each valid line of a JSON-lines file (1-based lines).

    ``optional`` fields may be absent or null, and are type-checked when given (:func:`check_record`).

    Blank lines are ignored. Strict mode raises :class:`UnifyError` on the first bad
    line; lenient mode skips it and records it in ``report``.
    """
    path = Path(path)
    if not path.is_file():
        raise UnifyError(path, None, None, "missing file: no such file", "Check the path in your config")
    report = report if report is not None else SkipReport()
    for number, raw in _decoded_lines(path, lenient, report):
        if not raw.strip():
            continue
        try:
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as err:
                raise UnifyError(
                    path, number, None, f"malformed line: not valid JSON ({err.msg} at character {err.pos})"
                ) from None
            yield number, check_record(record, schema, path, number, optional)
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)


def read_tsv(
    path: str | Path, columns: tuple[str, ...], lenient: bool = False, report: SkipReport | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` of a tab-separated file whose first line is a header.

    The header must contain ``columns`` (BEIR qrels: ``query-id corpus-id score``); a file with
    a header and no data line is an error (nothing to read is never a silent success).
    """
    path = Path(path)
    if not path.is_file():
        raise UnifyError(path, None, None, "missing file: no such file", "Check the path in your config")
    report = report if report is not None else SkipReport()
    lines = _decoded_lines(path, lenient, report)
    first = next(lines, None)
    header = next(csv.reader([first[1]], delimiter="\t", quoting=csv.QUOTE_NONE), None) if first else None
    if header is None or not set(columns) <= {h.strip() for h in header}:
        raise UnifyError(
            path,
            1,
            None,
            f"malformed header: expected columns {list(columns)}, got {header}",
            "BEIR qrels start with the line 'query-id<TAB>corpus-id<TAB>score'",
        )
    header = [h.strip() for h in header]
    data_lines = 0
    for number, text in lines:
        row = next(csv.reader([text], delimiter="\t", quoting=csv.QUOTE_NONE), [])
        if not row or not "".join(row).strip():
            continue
        data_lines += 1
        try:
            if len(row) != len(header):
                raise UnifyError(
                    path, number, None, f"malformed line: {len(row)} tab-separated values, header has {len(header)}"
                )
            record = dict(zip(header, (v.strip() for v in row), strict=True))
            for name in columns:
                if not record[name]:
                    raise UnifyError(path, number, name, "empty text: the value is empty")
            yield number, record
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
    if not data_lines:
        raise UnifyError(path, None, None, "no rows: the file has a header and no data line", "Add data lines")
