"""The instruction-shift study's inputs: instructions, queries, model names (SPEC §3).

- ``DEFAULT_INSTRUCTIONS``: the study's five task instructions, in English (SPEC §3).
- ``load_queries``: the kit's 200 neutral noun phrases (``resources/analysis_queries.txt``,
  written for the kit so that every instruction reads naturally on them, e.g. "the
  boiling point of water at sea level"), or your own list (.txt one per line, or .jsonl).
- ``parse_model_spec``: "minilm", "some/folder" or "label=some/folder" -> (label, source).

This module does no maths; see ``procrustes.py`` and ``analysis.py``.
Taught in ``notebooks/05_instruction_shift.ipynb``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .assets import MODEL_ASSETS

__all__ = ["BASE", "DEFAULT_INSTRUCTIONS", "DEFAULT_QUERIES_FILE", "load_queries", "parse_model_spec"]

BASE = "Base"  # the condition without any instruction
DEFAULT_INSTRUCTIONS: dict[str, str] = {  # SPEC §3, English renderings of the study's
    "Retrieval": "Given a query, retrieve passages that answer the query.",
    "Reranking": "Given a query, retrieve passages relevant to the query.",
    "STS": "Given a query, find the passage most semantically similar to it.",
    "Classification": "Classify the given query into the appropriate category.",
    "Clustering": "Identify the topic of the given query.",
}
DEFAULT_QUERIES_FILE = "analysis_queries.txt"


def _read_lines(text: str) -> list[str]:
    """Non-empty lines of a .txt; '#' starts a comment line."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _read_jsonl(text: str, where: str) -> list[str]:
    """The "query" (or "text") field of each JSON line, with the line number on any error."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}, line {lineno}: not valid JSON ({err.msg}); expected {{\"query\": \"...\"}}") from err
        value = row.get("query", row.get("text")) if isinstance(row, dict) else row if isinstance(row, str) else None
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}, line {lineno}: needs a non-empty string field \"query\" (or \"text\"); got {line[:80]!r}")
        out.append(value.strip())
    return out


def load_queries(path: str | Path | None = None, num_queries: int | None = None) -> list[str]:
    """The analysis queries, in file order, duplicates removed (with a count), first ``num_queries``.

    ``path=None`` reads the kit's 200 phrases. ``.jsonl`` files take the "query" or "text"
    field of each row; anything else is one query per line.
    """
    if path is None:
        where = f"minif2/resources/{DEFAULT_QUERIES_FILE}"
        text = resources.files("minif2").joinpath("resources", DEFAULT_QUERIES_FILE).read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError as err:
            raise FileNotFoundError(f"queries file not found: {path} (AnalysisConfig.queries_file)") from err
    queries = _read_jsonl(text, where) if where.endswith(".jsonl") else _read_lines(text)
    unique = list(dict.fromkeys(queries))
    if len(unique) < len(queries):
        print(f"load_queries: {where}: dropped {len(queries) - len(unique)} duplicate queries, kept {len(unique)}")
    if num_queries is not None:
        if num_queries < 2:
            raise ValueError(f"num_queries must be >= 2 (Procrustes needs several points); got {num_queries}")
        if num_queries > len(unique):
            print(f"load_queries: asked for {num_queries} queries but {where} has {len(unique)}; using all")
        unique = unique[:num_queries]
    if len(unique) < 2:
        raise ValueError(f"{where}: found {len(unique)} queries; the analysis needs at least 2 (the study uses 200)")
    return unique


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``"label=source"`` -> (label, source); a bare asset name or hub id labels itself,
    a bare folder takes its last two path parts (``runs/a/checkpoints/final`` -> ``checkpoints/final``)."""
    if "=" in spec:
        label, source = (part.strip() for part in spec.split("=", 1))
        if not label or not source:
            raise ValueError(f"model spec '{spec}': expected 'label=path' with both parts non-empty")
        return label, source
    if spec in MODEL_ASSETS or not Path(spec).exists():
        return spec, spec
    parts = Path(spec).resolve().parts
    return "/".join(parts[-2:]), spec
