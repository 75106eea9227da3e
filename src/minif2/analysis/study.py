"""The instruction-shift study as a command: its inputs, the models' embeddings, tables and figures.

``main`` runs the study end to end (docs/recipe.md §3): read the queries (the kit's 200
neutral noun phrases, ``resources/analysis_queries.txt``, or your own file), embed them
under the six conditions with every model (``embed_models``), analyse them
(``shift.analyze``), and write ``embeddings.npz``, the tables and the figures
(``plots.save_figures``) into the output folder. ``minif2 analyze`` is its command line.

This module does no maths (``shift.py``, ``procrustes.py``). Taught in
``notebooks/05_instruction_shift.ipynb``.
"""

from __future__ import annotations

import argparse
import gc
import json
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from minif2.analysis.plots import save_figures
from minif2.analysis.shift import AnalysisConfig, AnalysisResult, Embeddings, ModelInfo, analyze
from minif2.assets import MODEL_ASSETS
from minif2.config import PROFILES, MissingInputError, load_config, profile_path, save_config, staged_folder
from minif2.instructions import BASE
from minif2.model import EMBEDDER_FILE, Embedder

__all__ = [
    "DEFAULT_QUERIES_FILE",
    "cli",
    "embed_conditions",
    "embed_models",
    "load_embeddings",
    "load_queries",
    "main",
    "parse_model_spec",
    "run",
    "write_tables",
]


# --------------------------------------------------------------- 1. embedding
def embed_conditions(
    embedder, queries: list[str], instructions: dict[str, str], batch_size: int = 32
) -> dict[str, np.ndarray]:
    """{condition: (N, d)}: the queries plain (Base) and under each instruction, in query order."""
    out = {BASE: embedder.encode(queries, batch_size=batch_size, show_progress_bar=False)}
    for task, instruction in instructions.items():
        out[task] = embedder.encode(queries, batch_size=batch_size, instruction=instruction, show_progress_bar=False)
    return out


def embed_models(cfg: AnalysisConfig, queries: list[str]) -> tuple[Embeddings, dict[str, ModelInfo]]:
    """Load each model in turn (one in memory at a time) -> embeddings and what the findings need to know
    of it (:func:`model_info`)."""

    embeddings: Embeddings = {}
    info: dict[str, ModelInfo] = {}
    for spec in tqdm(cfg.models, desc="models", unit="model"):
        label, source = parse_model_spec(spec)
        if label in embeddings:
            raise ValueError(f"two models are labelled '{label}': name one with 'label=path' in AnalysisConfig.models")
        embedder = Embedder.from_pretrained(source, max_length_tokens=cfg.max_length_tokens)
        info[label] = model_info(embedder)
        embeddings[label] = embed_conditions(embedder, queries, cfg.instructions, cfg.batch_size)
        del embedder
        gc.collect()
    return embeddings, info


def model_info(embedder: Embedder) -> ModelInfo:
    """Family = the backbone's architecture and vocabulary (SmolLM2's 4-layer cut, its 30 layers and a model the
    kit trained from either are one family; so are Qwen3's sizes); size = the backbone's parameters (a Dense head
    is not counted); kit-trained = a folder minif2 saved."""
    config = embedder.backbone.config
    return ModelInfo(
        family=f"{config.model_type}/vocab {config.vocab_size}",
        num_params=sum(p.numel() for p in embedder.backbone.parameters()),
        kit_trained=(Path(str(embedder.source)) / EMBEDDER_FILE).is_file(),
        pool_instruction=embedder.config.pool_instruction or embedder.pooling != "mean",
    )


# ------------------------------------------------------------ outputs, main
def load_embeddings(path: str | Path) -> Embeddings:
    """Read back ``embeddings.npz`` written by :func:`run` (keys ``"model|condition"``), to re-analyse without
    re-embedding."""
    embeddings: Embeddings = {}
    with np.load(path) as saved:
        for key in saved.files:
            model, cond = key.split("|", 1)
            embeddings.setdefault(model, {})[cond] = saved[key]
    return embeddings


def write_tables(result: AnalysisResult, out_dir: Path) -> list[Path]:
    """CSV tables and a JSON summary of the findings."""
    paths = {
        name: out_dir / name
        for name in (
            "procrustes_distance.csv",
            "point_distance.csv",
            "mds.csv",
            "displacement.csv",
            "robustness.csv",
            "summary.json",
        )
    }
    pd.DataFrame(result.distances, index=result.labels, columns=result.labels).to_csv(paths["procrustes_distance.csv"])
    names = [f"{m}/{c}" for m, c in result.points]
    pd.DataFrame(result.point_distance, index=names, columns=names).to_csv(paths["point_distance.csv"])
    pd.DataFrame(
        {
            "model": [m for m, _ in result.points],
            "condition": [c for _, c in result.points],
            "x": result.mds[:, 0],
            "y": result.mds[:, 1],
        }
    ).to_csv(paths["mds.csv"], index=False)
    result.displacement.to_csv(paths["displacement.csv"], index=False)
    result.robustness.to_csv(paths["robustness.csv"], index=False)
    summary = {
        "reference": result.reference,
        "k": result.k,
        "k_message": result.k_message,
        "models": result.labels,
        "conditions": result.conditions,
        "models_info": {m: asdict(i) for m, i in result.info.items()},
        "findings": result.findings,
    }
    paths["summary.json"].write_text(json.dumps(summary, indent=2))
    return list(paths.values())


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
            raise ValueError(
                f'{where}, line {lineno}: not valid JSON ({err.msg}); expected {{"query": "..."}}'
            ) from err
        value = row.get("query", row.get("text")) if isinstance(row, dict) else row if isinstance(row, str) else None
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                f'{where}, line {lineno}: needs a non-empty string field "query" (or "text"); got {line[:80]!r}'
            )
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
            raise MissingInputError(f"queries file not found: {path} (AnalysisConfig.queries_file)") from err
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


def run(cfg: AnalysisConfig) -> AnalysisResult:
    """Embed, analyse, and write figures (PNG), tables (CSV/JSON) and embeddings.npz to ``cfg.out_dir``."""

    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.yaml")
    queries = load_queries(cfg.queries_file, cfg.num_queries)
    print(f"analysis: {len(queries)} queries x {1 + len(cfg.instructions)} conditions x {len(cfg.models)} models")
    embeddings, info = embed_models(cfg, queries)
    np.savez(out_dir / "embeddings.npz", **{f"{m}|{c}": e for m, conds in embeddings.items() for c, e in conds.items()})
    result = analyze(embeddings, cfg, info)
    if result.k_message:
        print(result.k_message)
    write_tables(result, out_dir)
    save_figures(result, out_dir)
    print(f"analysis: reference = {result.reference}, k = {result.k}; wrote {out_dir}")
    return result


def main(cfg: AnalysisConfig) -> Path:
    """The ``minif2 analyze`` stage: :func:`run` into a staged folder swapped in only on success (a failed
    rerun leaves the previous output as it was); returns the output folder."""
    with staged_folder(cfg.out_dir) as staged:
        run(replace(cfg, out_dir=str(staged)))
        save_config(cfg, staged / "config.yaml")  # the config as given, not the staged path
    return Path(cfg.out_dir)


def cli(argv: list[str] | None = None) -> int:
    """``minif2 analyze --models minilm tiny-qwen3 --out runs/x/analysis``."""
    parser = argparse.ArgumentParser(
        prog="minif2 analyze", description="Procrustes instruction-shift analysis (docs/recipe.md §3)."
    )
    parser.add_argument("--config", help="YAML file with AnalysisConfig fields")
    parser.add_argument("--profile", choices=PROFILES, help="use configs/<profile>/analyze.yaml")
    parser.add_argument("--models", nargs="+", help="asset names, folders or hub ids; 'label=path' names one")
    parser.add_argument("--out", dest="out_dir", help="output folder (figures, tables)")
    parser.add_argument("--queries", dest="queries_file", help="your own queries: .txt (one per line) or .jsonl")
    parser.add_argument("--num-queries", type=int, help="use the first N queries")
    parser.add_argument("--pca-dim", type=int, help="common PCA dimension k (default 200)")
    parser.add_argument("--reference", help="reference model label (default: smallest mean distance)")
    parser.add_argument("--seed", type=int)
    args = vars(parser.parse_args(argv))
    config, profile = args.pop("config"), args.pop("profile")
    path = config or (profile_path(profile, "analyze") if profile else None)
    cfg = load_config(AnalysisConfig, path, **args)
    main(cfg)
    return 0
