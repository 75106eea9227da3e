"""Datasets into samples: a hub id or local parquet/jsonl files, including F2LLM's published layout.

:func:`load_hub_source` loads any dataset with ``datasets.load_dataset`` (a hub id, or local
files: offline, point it at parquet or jsonl) and adapts it through the shape adapters
(``adapters.py``), validating every row as a jsonl import is validated. F2LLM's own files
(docs/recipe.md §1a: one parquet per source, ``query``, ``passage``, ``negative_1..N``) are read
by :func:`_f2llm_samples`; each source gets its family from the released code's lists
(``schema.F2LLM_FAMILIES``) unless the import sets ``task``. ``HUB_SOURCES`` names a few hub
datasets with the settings they need. Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import datasets

from minif2.data.adapters import SHAPES, _adapt_rows
from minif2.data.validation import SkipReport, UnifyError, check_record
from minif2.instructions import instruction_for, split_instruction
from minif2.schema import Sample, f2llm_family

__all__ = ["HUB_SOURCES", "load_hub_source"]


# name -> keyword arguments of load_hub_source (hub ids as published; not verified offline)
HUB_SOURCES: dict[str, dict[str, Any]] = {
    "f2llm": {"path": "codefuse-ai/F2LLM", "shape": "f2llm"},  # F2LLM's 6M samples, one parquet per source
    "stsbenchmark": {"path": "sentence-transformers/stsb", "shape": "sts", "threshold": 0.8},  # scores in [0, 1]
    "all_nli": {"path": "sentence-transformers/all-nli", "config_name": "pair-class", "shape": "nli"},  # SNLI + MNLI
    "banking77": {"path": "mteb/banking77", "shape": "classification_labels", "label_field": "label_text"},
}


_NEGATIVE = re.compile(r"^negative_(\d+)$")


def _local_builder(path: str, data_files: Any) -> tuple[str, Any]:
    """A local file or folder of files -> (``json`` | ``parquet``, data_files), else unchanged."""
    p = Path(path)
    if p.is_file():
        return ("parquet" if p.suffix == ".parquet" else "json"), str(p)
    if p.is_dir() and data_files is None:
        files = sorted(str(f) for f in p.glob("*.parquet")) or sorted(str(f) for f in p.glob("*.jsonl"))
        if files:
            return ("parquet" if files[0].endswith(".parquet") else "json"), files
    return path, data_files


def _f2llm_samples(
    rows: Any, source: str, task: str | None, where: str, lenient: bool, report: SkipReport
) -> list[Sample]:
    """F2LLM parquet rows -> samples: passage -> positive, negative_1..N -> negatives (in order);
    a ``negatives`` column holding a list of texts is read the same way (one or the other).

    The family is ``task`` if given, else F2LLM's list entry for ``source`` (``schema.f2llm_family``);
    a query that already carries ``Instruct: ...\\nQuery: `` keeps that instruction (``split_instruction``).
    """
    negative_columns = sorted((c for c in rows.column_names if _NEGATIVE.match(c)), key=lambda c: int(c.split("_")[1]))
    if negative_columns and "negatives" in rows.column_names:
        raise UnifyError(
            where, None, "negatives", "ambiguous negatives: both a `negatives` list and negative_N columns"
        )
    listed = "negatives" in rows.column_names
    if task is None:  # a listed column counts like negative_1..N for the shape fallback
        one = listed and {len(n or []) for n in rows["negatives"]} == {1}
        task = f2llm_family(source, ["negative_1"] if one else negative_columns or ["negative_1", "negative_2"])
    instruction = instruction_for(source, task)
    schema = {"query": str, "passage": str, **{c: str for c in negative_columns}}
    schema.update({"negatives": list} if listed else {})
    out = []
    for number, row in enumerate(rows, start=1):
        try:
            check_record(row, schema, where, number)
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
            continue
        own, query = split_instruction(row["query"])
        negatives = list(row["negatives"]) if listed else [row[c] for c in negative_columns]
        out.append(Sample(query, row["passage"], negatives, task, source, instruction if own is None else own))
    return out


def load_hub_source(
    path: str,
    shape: str,
    source: str,
    split: str = "train",
    data_files: Any = None,
    config_name: str | None = None,
    columns: dict[str, str] | None = None,
    task: str | None = None,
    lenient: bool = False,
    report: SkipReport | None = None,
    **adapter_kwargs: Any,
) -> list[Sample]:
    """Load a dataset (hub id, or a local parquet/jsonl file or folder) and adapt it to samples.

    ``shape`` is ``f2llm`` or one of :data:`SHAPES`; ``columns`` renames columns first
    (e.g. ``{"title": "query", "body": "positive"}``). Rows are validated like a jsonl import:
    errors name the dataset, split, row number and field.
    """

    report = report if report is not None else SkipReport()
    builder, files = _local_builder(path, data_files)
    try:
        rows = datasets.load_dataset(builder, config_name, data_files=files, split=split)
    except Exception as err:  # noqa: BLE001 - datasets raises many types; say what to do
        hint = "check the id/path and split; offline, point `path` at local parquet or jsonl files"
        raise UnifyError(path, None, None, f"cannot load dataset: {type(err).__name__}: {err}", hint) from err
    if columns:
        rows = rows.rename_columns(columns)
    where = f"{path} [{split}]"
    if shape == "f2llm":
        return _f2llm_samples(rows, source, task, where, lenient, report)
    if shape not in SHAPES:
        raise ValueError(f"unknown shape '{shape}' for {path}: expected 'f2llm' or one of {sorted(SHAPES)}")
    return _adapt_rows(shape, enumerate(rows, start=1), where, source, lenient, report, adapter_kwargs)
