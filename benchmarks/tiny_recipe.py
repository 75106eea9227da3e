"""The CPU course's training levers (issue 17): held-out code search and general similarity, per seed.

Each lever is a base model (SmolLM2-135M, optionally depth-pruned with ``minif2 prune``) and a set
of TrainConfig overrides on top of ``configs/tiny/train.yaml``; each runs for every ``--seeds`` on a
mined tiny run folder (``minif2 unify --profile tiny`` then ``minif2 mine --profile tiny``). Recorded:

- training CPU seconds (``time.process_time``, the learning-curve scoring subtracted) and wall seconds;
- the learning curve: held-out nDCG@10 every ``--curve-every`` steps (``RetrievalCurve``, 50 queries);
- the offline suite scored as notebook 04 does (``minif2.evaluation.evaluate_models`` with
  ``configs/tiny/eval.yaml``'s 64 tokens and 50 rows per task), for the trained model and its base.

CPU seconds, not wall time, compare runs on a shared machine; the load average is saved with them.
Saved as JSON (default: benchmarks/results/tiny_recipe.json).

    python benchmarks/tiny_recipe.py --run runs/latest --levers cpu_profile no_prose --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# lever -> TrainConfig overrides on configs/tiny/train.yaml (base: the smollm2-4l asset, SmolLM2's first 4 layers).
# The shipped profile trains on every mined source (code and, since issue 17, Wikipedia prose), pools the mean
# over a query's text without its instruction, gives instructions to retrieval queries only, and distils MiniLM.
NO_PROSE = ["code_search", "code_library", "code_modules", "lee_news", "word_similarity"]
LEVERS: dict[str, dict[str, Any]] = {
    "cpu_profile": {},  # configs/tiny/train.yaml as shipped
    "f2llm_instructions": {"pool_instruction": True, "instruction_tasks": None},  # instructions as F2LLM: all tasks,
    # pooled with the text (the profile before issue 17's last changes)
    "instructions_pooled": {"pool_instruction": True},  # retrieval-only instructions, but pooled with the text
    "instructions_everywhere": {"instruction_tasks": None},  # every task type's queries get one (not pooled)
    "no_prose": {"sources": NO_PROSE},  # without the Wikipedia sources (code, Lee news, word pairs)
    "prose_only": {"sources": ["wiki_paragraphs", "wiki_articles", "lee_news"]},  # no code at all
    "no_kd": {"teacher_model_path": None, "head_steps": 0},  # without F2LLM-v2 distillation from MiniLM (nor the head)
    "no_head": {"head_steps": 0},  # the 40 steps alone, without issue 23's distilled Dense head
    "head_all_sources": {"head_sources": None},  # the head distils every source's sentences, code included
    "lr1e-4": {"lr": 1e-4},  # a fifth of the learning rate (the first shipped value)
    "top2_kd": {"train_layers": 2, "teacher_model_path": "minilm", "lr": 2e-4},  # only the top 2 layers, + KD
    "bidirectional": {"bidirectional": True},  # QZhou's bidirectional attention on the decoder
    "lora_smollm2_30l": {"config": "tiny-lora"},  # the previous profile: all 30 layers + LoRA (slow)
}


_RECORDED = (
    "model",
    "train_layers",
    "teacher_model_path",
    "kd_weight",
    "lr",
    "pool_instruction",
    "instruction_tasks",
    "sources",
)


def run_lever(name: str, run: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from minif2.config import CONFIG_ROOT, load_config, profile_path
    from minif2.evaluation import EvalConfig, RetrievalCurve, evaluate_models
    from minif2.model import Embedder
    from minif2.training import TrainConfig, train

    overrides = dict(LEVERS[name])
    bidirectional = overrides.pop("bidirectional", False)
    profile = overrides.pop("config", "tiny")
    cfg = load_config(TrainConfig, CONFIG_ROOT / profile / "train.yaml")
    out = run / "bench" / f"{name}-seed{seed}"
    cfg = replace(
        cfg,
        **overrides,
        data_dir=str(run / "data" / "mined"),
        out_dir=str(out),
        seed=seed,
        progress=False,
        save_every_steps=0,
    )
    if args.max_steps:
        cfg.max_steps = args.max_steps
    task = run / "data" / "eval_tasks" / "CodeSearchHeldOut"
    curve = RetrievalCurve(task, every=args.curve_every, out=out / "curve.jsonl")
    if bidirectional:  # recorded in the base folder so that training and scoring both use it
        base_emb = Embedder.from_pretrained(cfg.model, bidirectional=True)
        cfg.model = str(base_emb.save(run / "models" / f"{Path(cfg.model).name}-bidirectional"))
    curve(0, Embedder.from_pretrained(cfg.model, max_length_tokens=cfg.max_length_tokens))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    final = train(cfg, callbacks=[curve])
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0 - curve.cpu_s
    eval_cfg = load_config(
        EvalConfig,
        profile_path("tiny", "eval"),
        out_dir=str(out / "eval"),
        cache_dir=str(run / "bench" / "mteb_cache"),  # the base is scored once for all seeds
        plot=False,
    )
    scores = evaluate_models([cfg.model, str(final)], str(run / "data" / "eval_tasks"), ["base", "trained"], eval_cfg)
    table = scores.pivot_table(index="task", columns="model", values="main_score")
    return {
        "lever": name,
        "seed": seed,
        "train_cpu_s": round(cpu, 1),
        "train_wall_s": round(wall, 1),
        "curve": curve.points,
        "suite": {task: {m: round(float(v), 4) for m, v in row.items()} for task, row in table.iterrows()},
        "config": {k: getattr(cfg, k) for k in _RECORDED},
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and worst held-out nDCG@10 (and the other tasks' mean) per lever over its seeds."""
    out: dict[str, Any] = {}
    for lever in dict.fromkeys(r["lever"] for r in rows):
        mine = [r for r in rows if r["lever"] == lever]
        held = [r["suite"]["CodeSearchHeldOut"]["trained"] for r in mine]
        tasks = mine[0]["suite"]
        out[lever] = {
            "seeds": [r["seed"] for r in mine],
            "heldout_ndcg10_mean": round(statistics.mean(held), 4),
            "heldout_ndcg10_worst": round(min(held), 4),
            "train_cpu_s_mean": round(statistics.mean(r["train_cpu_s"] for r in mine), 1),
            "suite_mean": {
                t: {m: round(statistics.mean(r["suite"][t][m] for r in mine), 4) for m in tasks[t]} for t in tasks
            },
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/latest", help="a run folder with data/mined and data/eval_tasks")
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, help="override the profile's max_steps (quick looks)")
    parser.add_argument("--curve-every", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "tiny_recipe.json"))
    args = parser.parse_args(argv)
    rows = []
    for lever in args.levers:
        for seed in args.seeds:
            rows.append(run_lever(lever, Path(args.run), seed, args))
            result = {"machine": machine_info(), "runs": rows, "summary": summarise(rows)}
            save_result(result, args.out)  # after every run: a long benchmark keeps what it measured
            print(lever, seed, rows[-1]["train_cpu_s"], rows[-1]["suite"]["CodeSearchHeldOut"], flush=True)
    return result


if __name__ == "__main__":
    main()
