"""``minif2 run``: your own data end to end, unify -> mine -> train -> eval, ending with one table.

The four steps of the course on a user's config (issue 27), each as its own command would run it:

1. unify (``data/unify.py``): the config's ``imports:`` with a held-out split of each
   (``holdout``, default 0.1; ``data/holdout.py``) written as a task under ``data/eval_tasks/``
   BEFORE the training data is de-duplicated against it; with ``general`` (the default) the kit's
   offline held-out suite is written beside it, to ask "did it forget general text?";
2. mine (``mining/mine.py``): hard negatives for the training samples;
3. train (``training/trainer.py``): the profile's training, from its base model;
4. eval (``evaluation/evaluate.py``): the base and the trained model on every task of
   ``data/eval_tasks/``, paired on the same rows (``gains.csv``).

Everything the config does not set comes from ``configs/<profile>/<stage>.yaml``: the same config
moves from a CPU (``tiny``, ``smoke``) to a GPU (``small-gpu``, ``paper``) by changing the profile.
Stage folders live under one ``out_dir`` (``data/unified``, ``data/eval_tasks``, ``data/mined``,
``checkpoints/final``, ``eval/``; the same names as the course's run folder, ``course.py``). A stage
whose output exists is skipped, unless ``force`` or an earlier stage ran again; each stage stages its
own folder (``config.staged_folder``), so a failed rerun keeps the previous output. The table,
``summary.csv``: each task, whether it is held out from your data, the base's and the trained
model's scores with 95 % intervals, and the paired gain with its interval and verdict.

This module only orchestrates; no stage imports it. The README's "Train on your own data" and
``notebooks/06_beyond_f2llm.ipynb`` (last section) teach it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from minif2.config import PROFILES, load_config, profile_path
from minif2.data import UnifyConfig
from minif2.data import main as unify
from minif2.evaluation import EvalConfig, describe_gains
from minif2.evaluation import main as evaluate
from minif2.mining import MiningConfig
from minif2.mining import main as mine
from minif2.model import EMBEDDER_FILE
from minif2.training import TrainConfig, train

__all__ = ["SUMMARY_COLUMNS", "PipelineConfig", "cli", "main", "summary_table"]

BASE, TRAINED = "base", "trained"  # the two models' labels in results.csv, gains.csv and the table
SUMMARY_COLUMNS = ["task", "type", "held_out", "rows", "base", "base_low", "base_high", "trained"]
SUMMARY_COLUMNS += ["trained_low", "trained_high", "gain", "gain_low", "gain_high", "verdict"]


@dataclass
class PipelineConfig:
    """One run on your data. Defaults: the tiny CPU profile, 10 % of every import held out."""

    config: str | None = None  # a unify YAML: `imports:` (your files) and any other UnifyConfig field
    profile: str = "tiny"  # configs/<profile>/{unify,mine,train,eval}.yaml: all the config does not set
    out_dir: str = "runs/own"  # data/, checkpoints/, eval/ and summary.csv go here
    seed: int = 0  # unify's and training's seed (splits, caps, draws, initialisation)
    holdout: float = 0.1  # every import's held-out fraction when the config sets none (globally or per import)
    general: bool = True  # also write and score the kit's offline held-out suite ("did it forget general text?")
    force: bool = False  # rerun every stage, even those whose output exists


def _paths(cfg: PipelineConfig) -> dict[str, Path]:
    root = Path(cfg.out_dir)
    data = root / "data"
    return {
        "data": data,
        "unified": data / "unified",
        "eval_tasks": data / "eval_tasks",
        "mined": data / "mined",
        "checkpoints": root / "checkpoints",
        "eval": root / "eval",
    }


def unify_config(cfg: PipelineConfig) -> UnifyConfig:
    """The profile's unify settings <- the keys written in ``cfg.config`` <- the run's folder and seed.

    Without any ``holdout`` in the config (global or per import), ``cfg.holdout`` applies to every import.
    """
    explicit: dict[str, Any] = {}
    if cfg.config is not None:
        from_file = load_config(UnifyConfig, cfg.config)  # validates, naming the file and key at fault
        explicit = {k: getattr(from_file, k) for k in yaml.safe_load(Path(cfg.config).read_text()) or {}}
    if "holdout" not in explicit and not any("holdout" in spec for spec in explicit.get("imports", [])):
        explicit["holdout"] = cfg.holdout
    explicit.setdefault("offline_eval_tasks", cfg.general)
    out = str(_paths(cfg)["data"])
    return load_config(
        UnifyConfig, profile_path(cfg.profile, "unify"), **{**explicit, "out_dir": out, "seed": cfg.seed}
    )


def stage_configs(cfg: PipelineConfig) -> tuple[UnifyConfig, MiningConfig, TrainConfig, EvalConfig]:
    """The four stages' configs: each profile's file, pointed at the run's folders."""
    p = _paths(cfg)
    mining = load_config(
        MiningConfig,
        profile_path(cfg.profile, "mine"),
        data_dir=str(p["unified"]),
        out_dir=str(p["mined"]),
        cache_dir=str(Path(cfg.out_dir) / "cache" / "embeddings"),
    )
    training = load_config(
        TrainConfig, profile_path(cfg.profile, "train"), data_dir=str(p["mined"]), out_dir=str(p["checkpoints"])
    )
    training.seed = cfg.seed
    evaluation = load_config(
        EvalConfig,
        profile_path(cfg.profile, "eval"),
        models=[training.model, str(p["checkpoints"] / "final")],
        labels=[BASE, TRAINED],
        base=BASE,
        tasks=str(p["eval_tasks"]),
        out_dir=str(p["eval"]),
        max_length_tokens=training.max_length_tokens,  # score at the length it was trained with
    )
    return unify_config(cfg), mining, training, evaluation


def main(cfg: PipelineConfig) -> pd.DataFrame:
    """Run (or resume) the four stages and return the summary table (also ``<out_dir>/summary.csv``)."""
    p = _paths(cfg)
    unify_cfg, mining_cfg, train_cfg, eval_cfg = stage_configs(cfg)
    stages = [
        ("unify", p["unified"] / "manifest.json", lambda: unify(unify_cfg)),
        ("mine", p["mined"] / "manifest.json", lambda: mine(mining_cfg)),
        ("train", p["checkpoints"] / "final" / EMBEDDER_FILE, lambda: train(train_cfg)),
        ("eval", p["eval"] / "gains.csv", lambda: evaluate(eval_cfg)),
    ]
    ran = False
    for name, output, run in stages:
        if output.is_file() and not (cfg.force or ran):
            print(f"minif2 run: {name}: {output} exists, skipped (--force reruns it)")
            continue
        print(f"minif2 run: {name} (profile {cfg.profile}) -> {output.parent}")
        run()
        ran = True
    table = summary_table(p["eval"], held_out_tasks(p["unified"]))
    table.to_csv(Path(cfg.out_dir) / "summary.csv", index=False)
    print(table.round(3).to_string(index=False))
    print(describe_gains(pd.read_csv(p["eval"] / "gains.csv")))
    return table


def held_out_tasks(unified: Path) -> set[str]:
    """Names of the tasks held out from the user's imports (the manifest's ``eval_tasks`` with ``held_out``)."""
    manifest = json.loads((unified / "manifest.json").read_text())
    return {name for name, entry in manifest.get("eval_tasks", {}).items() if "held_out" in entry}


def summary_table(eval_dir: Path, held_out: set[str]) -> pd.DataFrame:
    """results.csv + gains.csv -> one row per task: base and trained scores (95 % intervals), the paired gain."""
    results = pd.read_csv(eval_dir / "results.csv")
    gains = pd.read_csv(eval_dir / "gains.csv")
    rows = []
    for task, group in results.groupby("task", sort=False):
        by = {r.model: r for r in group.itertuples()}
        base, trained = by[BASE], by[TRAINED]
        gain = gains[(gains.task == task) & (gains.model == TRAINED)].iloc[0]
        rows.append(
            {
                "task": task,
                "type": base.type,
                "held_out": task in held_out,
                "rows": base.rows,
                **{"base": base.main_score, "base_low": base.ci_low, "base_high": base.ci_high},
                **{"trained": trained.main_score, "trained_low": trained.ci_low, "trained_high": trained.ci_high},
                **{k: gain[k] for k in ("gain", "gain_low", "gain_high", "verdict")},
            }
        )
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return table.sort_values(["held_out", "task"], ascending=[False, True], ignore_index=True)


def cli(argv: list[str] | None = None) -> int:
    """``minif2 run --config my.yaml [--profile tiny] [--out-dir runs/own] [--force]``."""
    parser = argparse.ArgumentParser(prog="minif2 run", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--config", help="a unify YAML with `imports:` (your data) and any UnifyConfig field")
    parser.add_argument("--profile", choices=PROFILES, help="configs/<profile>/*.yaml for the rest (default tiny)")
    parser.add_argument("--out-dir", dest="out_dir", help="the run's folder (default runs/own)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--holdout", type=float, help="held-out fraction of every import the config leaves unset")
    parser.add_argument("--no-general", dest="general", action="store_false", default=None, help="skip the kit suite")
    parser.add_argument("--force", action="store_true", default=None, help="rerun every stage")
    args = parser.parse_args(argv)
    main(load_config(PipelineConfig, None, **vars(args)))
    return 0
