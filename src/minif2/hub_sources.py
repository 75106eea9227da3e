"""Hub sources by name: F2LLM's published training data and MTEB-style training sets.

For users with the Hugging Face Hub. Every source is read with
``datasets.load_dataset`` and passed through the same validation and adapters as the
offline data; pointing ``path`` at local parquet/json files uses the very same code,
which is how the test suite exercises it without network.

F2LLM's released data (SPEC §1a) is one parquet per source with columns ``query``,
``passage``, ``negative_1 ... negative_24`` (classification: ``negative_1`` only);
:func:`load_hub_source` with ``shape="f2llm"`` maps it to the kit's schema. The hub
ids in ``HUB_SOURCES`` are those published at the time of writing and are not
checked offline. Taught in ``notebooks/01_data_unification.ipynb``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .adapters import SHAPES
from .instructions import instruction_for
from .schema import Sample
from .validation import SkipReport, UnifyError, check_record

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


def _f2llm_samples(rows: Any, source: str, task: str | None, where: str, lenient: bool, report: SkipReport) -> list[Sample]:
    """F2LLM parquet rows -> samples: passage -> positive, negative_1..N -> negatives (in order)."""
    negative_columns = sorted((c for c in rows.column_names if _NEGATIVE.match(c)), key=lambda c: int(c.split("_")[1]))
    if task is None:  # F2LLM stores one negative for classification and 24 otherwise
        task = "classification" if negative_columns == ["negative_1"] else "retrieval"
    instruction = instruction_for(source, task)
    schema = {"query": str, "passage": str, **{c: str for c in negative_columns}}
    out = []
    for number, row in enumerate(rows, start=1):
        try:
            check_record(row, schema, where, number)
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
            continue
        out.append(Sample(row["query"], row["passage"], [row[c] for c in negative_columns], task, source, instruction))
    return out


def load_hub_source(path: str, shape: str, source: str, split: str = "train", data_files: Any = None,
                    config_name: str | None = None, columns: dict[str, str] | None = None, task: str | None = None,
                    lenient: bool = False, report: SkipReport | None = None, **adapter_kwargs: Any) -> list[Sample]:
    """Load a dataset (hub id, or a local parquet/jsonl file or folder) and adapt it to samples.

    ``shape`` is ``f2llm`` or one of ``adapters.SHAPES``; ``columns`` renames columns first
    (e.g. ``{"title": "query", "body": "positive"}``). Rows are validated like a jsonl import:
    errors name the dataset, split, row number and field.
    """
    import datasets

    report = report if report is not None else SkipReport()
    builder, files = _local_builder(path, data_files)
    try:
        rows = datasets.load_dataset(builder, config_name, data_files=files, split=split)
    except Exception as err:  # noqa: BLE001 - datasets raises many types; say what to do
        raise UnifyError(path, None, None, f"cannot load dataset: {type(err).__name__}: {err}",
                         "check the id/path and split; offline, point `path` at local parquet or jsonl files") from err
    if columns:
        rows = rows.rename_columns(columns)
    where = f"{path} [{split}]"
    if shape == "f2llm":
        return _f2llm_samples(rows, source, task, where, lenient, report)
    if shape not in SHAPES:
        raise ValueError(f"unknown shape '{shape}' for {path}: expected 'f2llm' or one of {sorted(SHAPES)}")
    adapter, schema = SHAPES[shape]
    if shape == "pairs":
        schema = {adapter_kwargs.get("query_field", "query"): str, adapter_kwargs.get("positive_field", "positive"): str}
    valid = []
    for number, row in enumerate(rows, start=1):
        try:
            valid.append(check_record(row, schema, where, number))
        except UnifyError as err:
            if not lenient:
                raise
            report.add(err)
    return adapter(valid, source, **adapter_kwargs)
