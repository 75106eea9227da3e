"""Is a gain general or a lucky draw? The offline suite's tasks over several mteb seeds (issue 17).

Notebook 04 scores each task once, at mteb's seed 42, on 50 rows: a few-shot classifier (8 examples per
label) and k-means on 50 posts move by several points with the seed alone. This scores the same models on
the same task folders at ``--seeds`` (each seed draws other rows, training examples and bootstraps) and
reports every score with the mean per task, so that a difference can be told from noise. The sentiment
and newsgroup tasks are text that no training source resembles: gains there are general ones.

    python benchmarks/general_check.py --run runs/latest --models smollm2-4l runs/latest/checkpoints/final
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from minif2.config import load_config, profile_path
    from minif2.evaluation import EvalConfig, evaluate_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/latest", help="a run folder with data/eval_tasks")
    parser.add_argument("--models", nargs="+", required=True, help="asset names or model folders")
    parser.add_argument("--labels", nargs="+", help="display names (default: the model arguments)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2, 3, 4])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "general_check.json"))
    args = parser.parse_args(argv)
    labels = args.labels or args.models
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        cfg = load_config(
            EvalConfig,
            profile_path("tiny", "eval"),
            out_dir=str(Path(args.run) / "general_check"),
            cache_dir=str(Path(args.run) / "general_check" / "mteb_cache"),
            seed=seed,
            plot=False,
        )
        scores = evaluate_models(args.models, str(Path(args.run) / "data" / "eval_tasks"), labels, cfg)
        rows += [
            {"seed": seed, "model": r.model, "task": r.task, "score": round(float(r.main_score), 4)}
            for r in scores.itertuples()
        ]
        print(f"seed {seed}:", {(r.model, r.task): round(float(r.main_score), 3) for r in scores.itertuples()})
    tasks = sorted({r["task"] for r in rows})
    mean = {
        label: {
            t: round(sum(r["score"] for r in rows if r["model"] == label and r["task"] == t) / len(args.seeds), 4)
            for t in tasks
        }
        for label in labels
    }
    result = {
        "machine": machine_info(),
        "models": dict(zip(labels, args.models)),
        "seeds": args.seeds,
        "scores": rows,
        "mean": mean,
    }
    save_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
