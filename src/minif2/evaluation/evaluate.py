"""MTEB scoring of any Embedder, offline (local task folders) or on the hub (MTEB(eng, v2)).

The paper's yardstick is MTEB (docs/recipe.md §1, §1a), run with the ``mteb`` package itself so
that every number is mteb's own:

- ``evaluation/mteb_tasks.py`` turns plain files (BEIR folders, jsonl) into real mteb task objects;
- ``evaluation/mteb_model.py`` wraps the Embedder: F2LLM's instructions on queries only, and a
  revision per checkpoint so mteb's result cache never mixes models;
- this module runs models x tasks through ``mteb.evaluate`` and writes one tidy
  table (task, type, main_score, model), category averages, the released models' MTEB(eng, v2)
  numbers (recomputed from the public MTEB results) beside them, and a base-vs-fine-tuned plot
  (``evaluation/report.py``).

``tasks`` names a folder of task folders (the kit's held-out suite, written by
``minif2 unify`` to ``<run_dir>/data/eval_tasks``), one task folder, an mteb benchmark
("MTEB(eng, v2)"), ``"fast"`` (a small subset of it), or comma-separated mteb task
names. Hub tasks need the Hugging Face Hub.

This module does not build the held-out tasks (``data/unify.py``, notebook 01) or train
(``training/trainer.py``). Taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import matplotlib.pyplot as plt
import mteb
import pandas as pd
from tqdm.auto import tqdm

from minif2.config import PROFILES, load_config, profile_path, save_config, staged_folder
from minif2.evaluation.intervals import RowScores, bootstrap_interval, paired_interval, row_scores, verdict
from minif2.evaluation.mteb_model import MtebEmbedder
from minif2.evaluation.mteb_tasks import load_local_tasks
from minif2.evaluation.report import GAIN_COLUMNS, RESULT_COLUMNS, category_averages, paper_comparison, plot_scores
from minif2.model import Embedder, TorchDtype
from minif2.provenance import environment_record

__all__ = [
    "FAST_SUITE",
    "EvalConfig",
    "cli",
    "evaluate_models",
    "main",
    "model_label",
    "paired_gains",
    "resolve_tasks",
    "scores_by_dimension",
]

logger = logging.getLogger(__name__)

# A quick slice of MTEB(eng, v2), one or two small tasks per type (for users with the hub).
FAST_SUITE = (
    "STSBenchmark",
    "SICK-R",
    "Banking77Classification",
    "TwentyNewsgroupsClustering.v2",
    "SprintDuplicateQuestions",
    "AskUbuntuDupQuestions",
    "ArguAna",
    "SummEvalSummarization.v2",
)


@dataclass
class EvalConfig:
    """What to score on what. Defaults: the kit's fine-tuned checkpoint on its offline held-out suite."""

    models: list[str] = field(
        default_factory=lambda: ["runs/latest/checkpoints/final"]
    )  # asset names, folders, hub ids
    labels: list[str] = field(default_factory=list)  # display names in the same order; empty = from the model names
    tasks: str = (
        "runs/latest/data/eval_tasks"  # task folder(s), "dirA,dirB", "MTEB(eng, v2)" (the paper's 41), "fast", "A,B,C"
    )
    out_dir: str = "runs/latest/eval"
    batch_size: int = 32  # texts per forward pass
    instructions: bool | None = (
        None  # queries get task instructions; None: on for decoders and kit checkpoints (evaluation/mteb_model.py)
    )
    max_length_tokens: int | None = None  # None: the model's own (F2LLM trains at 1024; its mteb entry allows 8192)
    torch_dtype: TorchDtype | None = None  # None: the Embedder's default (float32); "bfloat16" on a GPU, as F2LLM
    use_cache: bool = True  # mteb's result cache, keyed by model name + weights-hash revision (+ seed, see _cache)
    cache_dir: str | None = None  # None: <out_dir>/mteb_cache
    seed: int = 42  # mteb's task seed (MTEB_SEED) (classification few-shot draws, clustering bootstraps)
    max_rows_per_task: int | None = None  # local tasks only: a seeded sample of test rows / queries (quick looks)
    plot: bool = True
    base: str | None = None  # a label (or model name): gains.csv holds every other model's paired gain over it
    dim: int | None = (
        None  # score the first `dim` coordinates, re-normalised (F2LLM-v2 Matryoshka, recipe §1b); None: all
    )


def model_label(model: str) -> str:
    """A short display name: the asset name, hub id, or the last folder names of a path.

    >>> model_label("runs/latest/checkpoints/final")
    'checkpoints/final'
    """
    path = Path(model)
    return "/".join(path.parts[-2:]) if path.is_dir() or len(path.parts) > 2 else model


def resolve_tasks(spec: str, seed: int = 42, max_rows: int | None = None) -> list[Any]:
    """A task spec -> FRESH mteb task objects (build them again for every model: mteb seeds tasks once).

    ``spec``: a task folder or a folder of task folders; several such folders joined by commas; ``fast``;
    an mteb benchmark name; or mteb task names joined by commas.
    """
    folders = [part.strip() for part in spec.split(",")]
    if len(folders) > 1 and all(Path(folder).exists() for folder in folders):
        return [task for folder in folders for task in load_local_tasks(folder, seed=seed, max_rows=max_rows)]
    if Path(spec).exists() or os.sep in spec:
        return load_local_tasks(spec, seed=seed, max_rows=max_rows)
    if spec == "fast":
        return list(mteb.get_tasks(tasks=list(FAST_SUITE)))
    if spec in {b.name for b in mteb.get_benchmarks()}:
        return list(mteb.get_benchmark(spec).tasks)
    names = [name.strip() for name in spec.split(",") if name.strip()]
    try:
        return list(mteb.get_tasks(tasks=names))
    except KeyError as err:
        raise ValueError(
            f"tasks='{spec}' is not an existing folder, a benchmark (e.g. 'MTEB(eng, v2)'), 'fast', "
            f"or a list of mteb task names: {err}"
        ) from None


MTEB_SEED = 42  # mteb's own task seed


def _cache(cfg: EvalConfig) -> Any:
    """mteb's result cache: ``<cache_dir>`` for mteb's own seed (42), ``<cache_dir>/seed-<seed>`` for any other.

    mteb keys cached scores by model and task but not by the evaluation seed, so without this a
    changed seed would get the old score back.
    """
    if not cfg.use_cache:
        return None
    root = Path(cfg.cache_dir or Path(cfg.out_dir) / "mteb_cache")
    return mteb.ResultCache(cache_path=root if cfg.seed == MTEB_SEED else root / f"seed-{cfg.seed}")


def _predictions_folder(root: Path, model: MtebEmbedder, task: Any) -> Path:
    """Where mteb saves one model's predictions on one task: keyed by both revisions, never mixed."""
    return root / "predictions" / model.revision / task.metadata.revision


def _run_one(model: MtebEmbedder, task: Any, cache: Any, batch_size: int, predictions: Path) -> Any:
    """One model on one task through ``mteb.evaluate``, saving mteb's predictions in ``predictions``;
    re-run when the task's files changed since caching, or when the cached result has no predictions."""

    strategy = "only-missing"
    if cache is not None:
        cached = cache.load_task_result(task.metadata.name, model.mteb_model_meta)
        saved = (predictions / f"{task.metadata.name}_predictions.json").is_file()
        if cached is not None and (cached.dataset_revision != task.metadata.revision or not saved):
            logger.info("task %s: cached result is stale or has no predictions: re-running", task.metadata.name)
            strategy = "always"
    quiet = not datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # mteb's per-task dataset maps would print a bar each
    try:
        with warnings.catch_warnings():
            # a weak model that predicts one class makes sklearn warn about precision; accuracy is unaffected
            warnings.filterwarnings("ignore", message=".*ill-defined.*")
            result = mteb.evaluate(
                model,
                task,
                cache=cache,
                overwrite_strategy=strategy,
                prediction_folder=predictions,
                show_progress_bar=False,
                encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            )
    except Exception as err:
        if os.environ.get("HF_HUB_OFFLINE") == "1" and not hasattr(task, "folder"):
            raise RuntimeError(
                f"hub task {task.metadata.name} could not be loaded offline (HF_HUB_OFFLINE=1): "
                f"unset it and connect to the Hub, or score local task folders. ({err})"
            ) from err
        raise
    finally:
        if not quiet:
            datasets.enable_progress_bars()
    return result.task_results[0]


def _row_scores(task: Any, result: Any, predictions: Path) -> RowScores | None:
    """The per-row material for intervals from mteb's saved predictions (None where mteb saved none)."""
    path = predictions / f"{task.metadata.name}_predictions.json"
    if not path.is_file() or "test" not in result.scores:
        return None
    saved = json.loads(path.read_text())
    subset = next(iter(k for k in saved if k != "mteb_model_meta"))
    return row_scores(task, saved[subset]["test"], result.scores["test"][0])


def evaluate_models(
    models: list[str | Embedder | MtebEmbedder],
    tasks: str,
    labels: list[str] | None = None,
    cfg: EvalConfig | None = None,
) -> pd.DataFrame:
    """Score each model on each task -> tidy table (task, type, main_score, ci_low, ci_high, rows, metric,
    model, revision).

    ``main_score`` is mteb's, on its scale (0-1); ``ci_low``/``ci_high`` its 95 % bootstrap interval over
    the task's ``rows`` (``evaluation/intervals.py``). Tasks are rebuilt for each model so that every model
    sees the same rows, few-shot samples and bootstraps. The per-row material is kept in
    ``table.attrs["row_scores"]`` (``{(model, task): RowScores}``) for :func:`paired_gains`.
    """
    cfg = cfg or EvalConfig()
    cache = _cache(cfg)
    overrides = {"max_length_tokens": cfg.max_length_tokens, "torch_dtype": cfg.torch_dtype}
    scratch = tempfile.TemporaryDirectory(prefix="minif2-predictions-") if cache is None else None
    root = Path(scratch.name) if scratch is not None else Path(cache.cache_path)
    rows, kept = [], {}
    for i, model in enumerate(models):
        label = labels[i] if labels and i < len(labels) else None
        if not isinstance(model, MtebEmbedder):
            label = label or (model.config.model if isinstance(model, Embedder) else model_label(str(model)))
            model = MtebEmbedder(model, label=label, instructions=cfg.instructions, dim=cfg.dim, **overrides)
        task_list = resolve_tasks(tasks, seed=cfg.seed, max_rows=cfg.max_rows_per_task)
        for task in tqdm(task_list, desc=f"mteb {model.label}", unit="task", disable=len(task_list) < 2):
            where = _predictions_folder(root, model, task)
            result = _run_one(model, task, cache, cfg.batch_size, where)
            per_row = _row_scores(task, result, where)
            low, high = bootstrap_interval(per_row, seed=cfg.seed) if per_row is not None else (math.nan, math.nan)
            kept[(model.label, task.metadata.name)] = per_row
            rows.append(
                {
                    "task": task.metadata.name,
                    "type": task.metadata.type,
                    "main_score": float(result.get_score()),
                    "ci_low": low,
                    "ci_high": high,
                    "rows": per_row.scored if per_row is not None else None,
                    "metric": task.metadata.main_score,
                    "model": model.label,
                    "revision": model.revision,
                }
            )
    if scratch is not None:
        scratch.cleanup()
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    table.attrs["row_scores"] = kept
    return table


def paired_gains(results: pd.DataFrame, base: str, seed: int = 42) -> pd.DataFrame:
    """Every other model's gain over ``base`` (a model label) on each task, paired on the same rows.

    Columns: task, type, model, base, gain, gain_low, gain_high (the 95 % paired-bootstrap interval),
    verdict (``gain``: the interval is above zero; ``loss``: below; ``tie``: it holds zero).
    """
    kept = results.attrs.get("row_scores", {})
    if base not in set(results["model"]):
        raise ValueError(f"paired_gains: base {base!r} is not one of the scored models {sorted(set(results['model']))}")
    out = []
    for row in results[results["model"] != base].itertuples():
        ref, other = kept.get((base, row.task)), kept.get((row.model, row.task))
        gain, low, high = paired_interval(ref, other, seed) if ref and other else (math.nan,) * 3
        if ref is None or other is None:
            gain = row.main_score - float(
                results[(results.model == base) & (results.task == row.task)].main_score.iloc[0]
            )
        out.append(
            {
                "task": row.task,
                "type": row.type,
                "model": row.model,
                "base": base,
                "gain": gain,
                "gain_low": low,
                "gain_high": high,
                "verdict": verdict(low, high) if ref and other else "no interval",
            }
        )
    return pd.DataFrame(out, columns=GAIN_COLUMNS)


def scores_by_dimension(
    models: list[str | Embedder],
    tasks: str,
    dims: list[int],
    labels: list[str] | None = None,
    cfg: EvalConfig | None = None,
) -> pd.DataFrame:
    """Each model scored at each Matryoshka dimension: the tidy table of :func:`evaluate_models` plus ``dim``.

    A model is encoded once per text list (full vectors are memoised and cut for each dimension).
    Plot with :func:`minif2.evaluation.report.plot_scores_by_dimension`.
    """
    cfg = cfg or EvalConfig()
    overrides = {"max_length_tokens": cfg.max_length_tokens, "torch_dtype": cfg.torch_dtype}
    tables = []
    for i, model in enumerate(models):
        embedder = model if isinstance(model, Embedder) else Embedder.from_pretrained(model, **overrides)
        label = labels[i] if labels and i < len(labels) else model_label(str(model)) if isinstance(model, str) else None
        memo: dict[Any, Any] = {}
        for dim in dims:
            wrapped = MtebEmbedder(embedder, label=label, instructions=cfg.instructions, dim=dim, memo=memo)
            tables.append(evaluate_models([wrapped], tasks, cfg=cfg).assign(dim=dim))
    return pd.concat(tables, ignore_index=True)


def main(cfg: EvalConfig) -> Path:
    """Score ``cfg.models`` on ``cfg.tasks``; write results.csv/.json, category averages, the released
    models' MTEB numbers (recomputed from the public results), a plot."""
    with staged_folder(cfg.out_dir) as staged:  # a failed rerun leaves the previous results as they were
        _write_results(cfg, staged)
    return Path(cfg.out_dir)


def _write_results(cfg: EvalConfig, out: Path) -> None:
    """Score and write everything into ``out`` (the staged folder); the previous cache is carried over."""
    save_config(cfg, out / "eval_config.yaml")
    run_cfg = cfg
    if cfg.cache_dir is None and cfg.use_cache:
        if (Path(cfg.out_dir) / "mteb_cache").is_dir():
            shutil.copytree(Path(cfg.out_dir) / "mteb_cache", out / "mteb_cache")
        run_cfg = replace(cfg, cache_dir=str(out / "mteb_cache"))
    results = evaluate_models(list(cfg.models), cfg.tasks, labels=cfg.labels or None, cfg=run_cfg)
    results.to_csv(out / "results.csv", index=False)
    record = {"environment": environment_record(), "tasks": cfg.tasks, "seed": cfg.seed}
    (out / "run_record.json").write_text(json.dumps(record, indent=2))
    (out / "results.json").write_text(json.dumps(results.to_dict("records"), indent=2))
    if cfg.base is not None:
        gains = paired_gains(results, cfg.base, seed=cfg.seed)
        gains.to_csv(out / "gains.csv", index=False)
        print(gains.round(3).to_string(index=False))
    averages = category_averages(results)
    averages.to_csv(out / "category_averages.csv", index=False)
    paper_comparison(averages).to_csv(out / "paper_comparison.csv", index=False)
    if cfg.plot:
        plt.close(plot_scores(results, out / "scores.png", title=f"MTEB main score per task ({cfg.tasks})"))
    print(f"scored {results['model'].nunique()} model(s) on {results['task'].nunique()} task(s) -> {cfg.out_dir}")
    print(averages.round(2).to_string(index=False))


def cli(argv: list[str] | None = None) -> int:
    """``minif2 eval --profile tiny --model minilm --model runs/latest/checkpoints/final --tasks DIR``."""
    parser = argparse.ArgumentParser(prog="minif2 eval", description="Score embedders with mteb (notebook 04).")
    parser.add_argument("--config", help="YAML file with EvalConfig fields")
    parser.add_argument("--profile", choices=PROFILES, help="use configs/<profile>/eval.yaml")
    parser.add_argument("--model", action="append", dest="models", help="asset name, folder or hub id (repeatable)")
    parser.add_argument("--label", action="append", dest="labels", help="display name per --model (repeatable)")
    parser.add_argument("--tasks", help="task folder(s), 'MTEB(eng, v2)', 'fast', or comma-separated mteb task names")
    parser.add_argument("--out-dir", dest="out_dir")
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument(
        "--instructions", choices=["on", "off", "auto"], help="task instructions on queries (default auto)"
    )
    parser.add_argument(
        "--no-cache", dest="use_cache", action="store_false", default=None, help="ignore mteb's result cache"
    )
    parser.add_argument("--max-length", dest="max_length_tokens", type=int, help="tokens per text (as trained)")
    parser.add_argument("--max-rows", dest="max_rows_per_task", type=int, help="a seeded sample of rows per task")
    parser.add_argument("--dtype", dest="torch_dtype", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--seed", type=int, help="mteb's task seed (few-shot draws, clustering samples, bootstrap)")
    parser.add_argument("--base", help="label of the model every other one is compared with, paired (gains.csv)")
    parser.add_argument("--cache-dir", dest="cache_dir", help="mteb's result cache (default <out-dir>/mteb_cache)")
    parser.add_argument("--no-plot", dest="plot", action="store_false", default=None, help="skip scores.png")
    parser.add_argument(
        "--dim",
        type=int,
        help="score the first DIM coordinates of each vector, re-normalised (F2LLM-v2 Matryoshka, docs/recipe.md §1b)",
    )
    args = parser.parse_args(argv)
    path = args.config or (profile_path(args.profile, "eval") if args.profile else None)
    overrides = {k: v for k, v in vars(args).items() if k not in ("config", "profile", "instructions")}
    cfg = load_config(EvalConfig, path, **overrides)
    if args.instructions:
        cfg.instructions = {"on": True, "off": False, "auto": None}[args.instructions]
    main(cfg)
    return 0
