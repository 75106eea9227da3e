"""MTEB scoring of any Embedder, offline (local task folders) or on the hub (MTEB(eng, v2)).

The paper's yardstick is MTEB (docs/recipe.md §1, §1a), run with the ``mteb`` package itself so
that every number is mteb's own:

- ``evaluation/mteb_tasks.py`` turns plain files (BEIR folders, jsonl) into real mteb task objects;
- ``evaluation/mteb_model.py`` wraps the Embedder: F2LLM's instructions on queries only, and a
  revision per checkpoint so mteb's result cache never mixes models;
- this module runs models x tasks through ``mteb.evaluate`` and writes one tidy
  table (task, type, main_score, model), category averages, the paper's numbers
  beside them, and a base-vs-fine-tuned plot (``evaluation/report.py``).

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
import os
import shutil
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
from minif2.evaluation.mteb_model import MtebEmbedder
from minif2.evaluation.mteb_tasks import load_local_tasks
from minif2.evaluation.report import RESULT_COLUMNS, category_averages, paper_comparison, plot_scores
from minif2.model import Embedder

__all__ = ["FAST_SUITE", "EvalConfig", "cli", "evaluate_models", "main", "model_label", "resolve_tasks"]

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
        "runs/latest/data/eval_tasks"  # task folder(s), "MTEB(eng, v2)" (the paper's 41 tasks), "fast", or "A,B,C"
    )
    out_dir: str = "runs/latest/eval"
    batch_size: int = 32  # texts per forward pass
    instructions: bool | None = (
        None  # queries get task instructions; None: on for decoders and kit checkpoints (evaluation/mteb_model.py)
    )
    max_length_tokens: int | None = None  # None: the model's own (F2LLM trains at 1024; its mteb entry allows 8192)
    torch_dtype: str | None = None  # None: the Embedder's default (float32); "bfloat16" on a GPU, as F2LLM
    use_cache: bool = True  # mteb's result cache, keyed by model name + weights-hash revision, one folder per seed
    cache_dir: str | None = None  # None: <out_dir>/mteb_cache (results go to <cache_dir>/seed-<seed>)
    seed: int = 42  # mteb's task seed (classification few-shot draws, clustering bootstraps)
    max_rows_per_task: int | None = None  # local tasks only: a seeded sample of test rows / queries (quick looks)
    plot: bool = True


def model_label(model: str) -> str:
    """A short display name: the asset name, hub id, or the last folder names of a path.

    >>> model_label("runs/latest/checkpoints/final")
    'checkpoints/final'
    """
    path = Path(model)
    return "/".join(path.parts[-2:]) if path.is_dir() or len(path.parts) > 2 else model


def resolve_tasks(spec: str, seed: int = 42, max_rows: int | None = None) -> list[Any]:
    """A task spec -> FRESH mteb task objects (build them again for every model: mteb seeds tasks once)."""

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


def _cache(cfg: EvalConfig) -> Any:
    """mteb's result cache in ``<cache_dir>/seed-<seed>``: mteb keys cached scores by model and task but
    not by the evaluation seed, so a changed seed must not get the old score back."""
    if not cfg.use_cache:
        return None
    return mteb.ResultCache(cache_path=Path(cfg.cache_dir or Path(cfg.out_dir) / "mteb_cache") / f"seed-{cfg.seed}")


def _run_one(model: MtebEmbedder, task: Any, cache: Any, batch_size: int) -> Any:
    """One model on one task through ``mteb.evaluate``; re-run when the task's files changed since caching."""

    strategy = "only-missing"
    if cache is not None:
        cached = cache.load_task_result(task.metadata.name, model.mteb_model_meta)
        if cached is not None and cached.dataset_revision != task.metadata.revision:
            logger.info(
                "task %s changed since it was cached (%s -> %s): re-running",
                task.metadata.name,
                cached.dataset_revision,
                task.metadata.revision,
            )
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


def evaluate_models(
    models: list[str | Embedder | MtebEmbedder],
    tasks: str,
    labels: list[str] | None = None,
    cfg: EvalConfig | None = None,
) -> pd.DataFrame:
    """Score each model on each task -> tidy table (task, type, main_score, metric, model, revision).

    ``main_score`` is on mteb's scale (0-1). Tasks are rebuilt for each model so that
    every model sees the same few-shot samples and bootstraps.
    """
    cfg = cfg or EvalConfig()
    cache = _cache(cfg)
    overrides = {"max_length_tokens": cfg.max_length_tokens, "torch_dtype": cfg.torch_dtype}
    rows = []
    for i, model in enumerate(models):
        label = labels[i] if labels and i < len(labels) else None
        if not isinstance(model, MtebEmbedder):
            label = label or (model.config.model if isinstance(model, Embedder) else model_label(str(model)))
            model = MtebEmbedder(model, label=label, instructions=cfg.instructions, **overrides)
        task_list = resolve_tasks(tasks, seed=cfg.seed, max_rows=cfg.max_rows_per_task)
        for task in tqdm(task_list, desc=f"mteb {model.label}", unit="task"):
            result = _run_one(model, task, cache, cfg.batch_size)
            rows.append(
                {
                    "task": task.metadata.name,
                    "type": task.metadata.type,
                    "main_score": float(result.get_score()),
                    "metric": task.metadata.main_score,
                    "model": model.label,
                    "revision": model.revision,
                }
            )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def main(cfg: EvalConfig) -> Path:
    """Score ``cfg.models`` on ``cfg.tasks``; write results.csv/.json, category averages, the paper's numbers,
    a plot."""
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
    (out / "results.json").write_text(json.dumps(results.to_dict("records"), indent=2))
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
    args = parser.parse_args(argv)
    path = args.config or (profile_path(args.profile, "eval") if args.profile else None)
    overrides = {k: v for k, v in vars(args).items() if k not in ("config", "profile", "instructions")}
    cfg = load_config(EvalConfig, path, **overrides)
    if args.instructions:
        cfg.instructions = {"on": True, "off": False, "auto": None}[args.instructions]
    main(cfg)
    return 0
