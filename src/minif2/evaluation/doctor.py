"""``minif2 doctor``: why doesn't my score match? Re-score a model with ONE setting changed at a time.

The most-reported evaluation problem is a score far from the leaderboard's, and the causes are
settings, not weights: F2LLM scores that would not reproduce (mteb issue #4693), Qwen3-Embedding
and EmbeddingGemma scored without their task prompts (0.306 against 0.715, mteb issue #2867),
batch size and bf16 moving scores (llm2vec issue #122). F2LLM's own settings (docs/recipe.md §1a):
instructions on queries only, right padding, EOS appended after truncation, last-token pooling.

The doctor scores the model as ``minif2 eval`` would (the baseline row: ``evaluate_models`` with
the same settings), then once per changed setting:

- ``instructions``: ``queries`` (F2LLM) | ``off`` | ``both`` (documents get the query's instruction too);
- ``padding_side``: ``right`` | ``left``;  ``append_eos``: true | false (the tokenizer's EOS removed);
- ``pooling``: ``last`` | ``mean`` | ``mean-text`` (mean over the text without its instruction, GritLM);
- ``max_length_tokens``, ``torch_dtype`` (``float32`` | ``bfloat16``), ``batch_size``.

It prints one row per (setting, value, task): the score, its change from the baseline with the
95 % paired-bootstrap interval of that change (same rows, ``delta_low`` / ``delta_high``), and a
``*`` where the value differs from the model's saved configuration (``minif2_embedder.json``; for
a folder without one, what :meth:`Embedder.from_pretrained` chooses). Extra columns of the
results table (e.g. confidence intervals) pass through. mteb's result cache is off: a batch-size
variant has the baseline's cache identity, so a cache would hand it the baseline's score.

This module changes no model and trains nothing. Described in docs/recipe.md §1c; taught in
``notebooks/04_mteb_scoring.ipynb`` (section 9).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd
from mteb.types import PromptType
from tokenizers import processors

from minif2.config import InputError, load_config
from minif2.evaluation.evaluate import EvalConfig, evaluate_models, model_label
from minif2.evaluation.intervals import paired_interval
from minif2.evaluation.mteb_model import MtebEmbedder
from minif2.evaluation.report import RESULT_COLUMNS
from minif2.model import Embedder, TorchDtype

__all__ = [
    "CHECKS",
    "DoctorConfig",
    "Variant",
    "cli",
    "describe_changes",
    "diagnose",
    "format_table",
    "main",
    "plot_changes",
    "variants",
]

Check = Literal[
    "instructions", "padding_side", "append_eos", "pooling", "max_length_tokens", "torch_dtype", "batch_size"
]
CHECKS = get_args(Check)
DOCTOR_COLUMNS = ["setting", "value", "saved", "main_score", "delta", "delta_low", "delta_high", "differs_from_saved"]


@dataclass
class DoctorConfig:
    """The model, the task(s), and the settings it was scored with (as ``EvalConfig``'s fields)."""

    model: str = "runs/latest/checkpoints/final"  # asset name, folder or hub id
    tasks: str = "runs/latest/data/eval_tasks"  # one task is the usual question; any EvalConfig.tasks works
    out_dir: str | None = "runs/latest/doctor"  # doctor.csv goes here; None: print only
    batch_size: int = 32  # the baseline's, as EvalConfig
    instructions: bool | None = None  # the baseline's: None = the model's own (takes_instructions)
    max_length_tokens: int | None = None  # the baseline's: None = the model's own
    torch_dtype: TorchDtype | None = None  # the baseline's: None = the model's own
    seed: int = 42
    max_rows_per_task: int | None = None  # local tasks: a seeded sample of rows (a quicker, noisier look)
    checks: list[Check] = field(default_factory=lambda: list(CHECKS))  # which settings to vary
    max_lengths_tokens: list[int] = field(default_factory=lambda: [512, 8192])  # F2LLM trains 1024; mteb allows 8192
    batch_sizes: list[int] = field(default_factory=lambda: [1, 128])


@dataclass(frozen=True)
class Variant:
    """One setting changed from the baseline: ``setting`` takes ``value``."""

    setting: str
    value: Any


def _settings(embedder: Embedder, instructions: bool, batch_size: int) -> dict[str, Any]:
    """An embedder's values of the settings the doctor varies."""
    c = embedder.config
    pooling = "mean-text" if c.pooling == "mean" and not c.pool_instruction else c.pooling
    return {
        "instructions": "queries" if instructions else "off",
        "padding_side": c.padding_side,
        "append_eos": bool(c.append_eos),
        "pooling": pooling,
        "max_length_tokens": c.max_length_tokens,
        "torch_dtype": c.torch_dtype,
        "batch_size": batch_size,
    }


def variants(evaluated: dict[str, Any], cfg: DoctorConfig) -> list[Variant]:
    """Every other value of each checked setting.

    >>> base = {"instructions": "queries", "padding_side": "right", "pooling": "last", "batch_size": 32}
    >>> [v.value for v in variants(base, DoctorConfig(checks=["instructions", "pooling"]))]
    ['off', 'both', 'mean', 'mean-text']
    """
    unknown = sorted(set(cfg.checks) - set(CHECKS))
    if unknown:
        raise InputError(f"doctor config field 'checks': unknown {unknown}; use some of {list(CHECKS)}")
    values = {
        "instructions": ["queries", "off", "both"],
        "padding_side": ["right", "left"],
        "append_eos": [True, False],
        "pooling": ["last", "mean", "mean-text"],
        "max_length_tokens": cfg.max_lengths_tokens,
        "torch_dtype": ["float32", "bfloat16"],
        "batch_size": cfg.batch_sizes,
    }
    return [Variant(s, v) for s in CHECKS if s in cfg.checks for v in values[s] if v != evaluated.get(s)]


class _BothSides(MtebEmbedder):
    """Documents get the query's instruction too (a common mistake with asymmetric models)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.revision += "-both"

    def instruction(self, task_metadata: Any, prompt_type: PromptType | None) -> str | None:
        return super().instruction(task_metadata, PromptType.query)


def _strip_eos(tokenizer: Any) -> None:
    """Make the tokenizer stop appending EOS (the inverse of the Embedder's post-processor)."""
    eos_id = tokenizer.eos_token_id
    if tokenizer("a")["input_ids"][-1:] == [eos_id]:
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1")
    if tokenizer("a")["input_ids"][-1:] == [eos_id]:
        raise RuntimeError(f"could not make {type(tokenizer).__name__} stop appending EOS")


def _overrides(evaluated: dict[str, Any], variant: Variant) -> dict[str, Any]:
    """``Embedder.from_pretrained`` keywords: the baseline's settings, with the variant's one changed."""
    settings = {**evaluated, variant.setting: variant.value}
    pooling = settings["pooling"]
    return {
        "padding_side": settings["padding_side"],
        "append_eos": settings["append_eos"],
        "pooling": "mean" if pooling == "mean-text" else pooling,
        "pool_instruction": pooling != "mean-text",
        "max_length_tokens": settings["max_length_tokens"],
        "torch_dtype": settings["torch_dtype"],
    }


def build_model(model: str, evaluated: dict[str, Any], variant: Variant, label: str | None = None) -> MtebEmbedder:
    """The model loaded and wrapped as the baseline, except for ``variant``'s one setting."""
    embedder = Embedder.from_pretrained(model, **_overrides(evaluated, variant))
    if variant.setting == "append_eos" and variant.value is False:
        _strip_eos(embedder.tokenizer)
    instructions = {**evaluated, variant.setting: variant.value}["instructions"]
    wrapper = _BothSides if instructions == "both" else MtebEmbedder
    return wrapper(embedder, label=label or model_label(model), instructions=instructions != "off")


def _eval_config(cfg: DoctorConfig, batch_size: int | None = None) -> EvalConfig:
    return EvalConfig(
        batch_size=batch_size or cfg.batch_size,
        instructions=cfg.instructions,
        max_length_tokens=cfg.max_length_tokens,
        torch_dtype=cfg.torch_dtype,
        use_cache=False,
        seed=cfg.seed,
        max_rows_per_task=cfg.max_rows_per_task,
        plot=False,
    )


def _rows(table: pd.DataFrame, setting: str, value: Any, saved: Any, differs: bool) -> pd.DataFrame:
    return table.assign(setting=setting, value=str(value), saved=str(saved), differs_from_saved=differs)


def _paired_deltas(baseline: pd.DataFrame, table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``table`` with the 95 % paired-bootstrap interval of each task's change from the baseline
    (``delta_low``, ``delta_high``): both scored on the same rows, so a row's difficulty cancels."""
    ref = {task: rows for (_, task), rows in baseline.attrs.get("row_scores", {}).items()}
    own = {task: rows for (_, task), rows in table.attrs.get("row_scores", {}).items()}
    bounds = [
        paired_interval(ref[t], own[t], seed)[1:] if ref.get(t) and own.get(t) else (math.nan, math.nan)
        for t in table["task"]
    ]
    return table.assign(delta_low=[b[0] for b in bounds], delta_high=[b[1] for b in bounds])


def diagnose(cfg: DoctorConfig) -> pd.DataFrame:
    """The doctor's table: the baseline (``evaluate_models`` as configured), then one row per variant and task."""
    saved_model = Embedder.from_pretrained(cfg.model)
    saved = _settings(saved_model, saved_model.takes_instructions, cfg.batch_size)
    del saved_model
    overrides = {"max_length_tokens": cfg.max_length_tokens, "torch_dtype": cfg.torch_dtype}
    wrapped = MtebEmbedder(cfg.model, label=model_label(cfg.model), instructions=cfg.instructions, **overrides)
    evaluated = _settings(wrapped.model, wrapped.instructions, cfg.batch_size)
    baseline = evaluate_models([wrapped], cfg.tasks, cfg=_eval_config(cfg))  # exactly what `minif2 eval` does
    del wrapped
    changed = [f"{k}={evaluated[k]}" for k in CHECKS if evaluated[k] != saved[k] and k != "batch_size"]
    tables = [
        _rows(
            baseline.assign(delta_low=0.0, delta_high=0.0),
            "baseline",
            ", ".join(changed) or "as saved",
            "",
            bool(changed),
        )
    ]
    for variant in variants(evaluated, cfg):
        model = build_model(cfg.model, evaluated, variant)
        batch = variant.value if variant.setting == "batch_size" else None
        table = evaluate_models([model], cfg.tasks, cfg=_eval_config(cfg, batch))
        shown = variant.value
        if variant.setting == "max_length_tokens" and model.model.config.max_length_tokens != variant.value:
            shown = f"{variant.value} (capped at {model.model.config.max_length_tokens})"  # the model's positions
        differs = variant.value != saved[variant.setting] and variant.setting != "batch_size"
        table = _paired_deltas(baseline, table, cfg.seed)
        tables.append(_rows(table, variant.setting, shown, saved[variant.setting], differs))
    out = pd.concat(tables, ignore_index=True)
    reference = baseline.set_index("task")["main_score"]
    out["delta"] = out["main_score"] - out["task"].map(reference)
    extra = [c for c in out.columns if c not in DOCTOR_COLUMNS + RESULT_COLUMNS]
    return out[
        ["task", *DOCTOR_COLUMNS, *extra, *[c for c in RESULT_COLUMNS if c not in ("task", "main_score") and c in out]]
    ]


def format_table(table: pd.DataFrame) -> str:
    """The table as printed: scores to 4 places, ``*`` on settings that differ from the saved ones.

    Columns the doctor does not know (an interval's ``ci_low`` / ``ci_high``) are printed after its own.
    """
    shown = table.drop(columns=["metric", "model", "revision", "type"], errors="ignore").copy()
    shown["differs_from_saved"] = shown["differs_from_saved"].map({True: "*", False: ""})
    shown = shown.rename(columns={"differs_from_saved": "not saved"})
    numeric = shown.select_dtypes("number").columns
    shown[numeric] = shown[numeric].round(4)
    return shown.to_string(index=False)


def describe_changes(table: pd.DataFrame) -> str:
    """The doctor's verdict in words, computed from its table: per task, the settings whose change moved
    the score beyond its paired interval (largest first), and how many stayed within noise.

    >>> t = pd.DataFrame({"task": ["T"] * 3, "setting": ["baseline", "instructions", "batch_size"],
    ...                   "value": ["as saved", "off", "1"], "delta": [0.0, -0.2, 0.001],
    ...                   "delta_low": [0.0, -0.25, -0.002], "delta_high": [0.0, -0.15, 0.004]})
    >>> print(describe_changes(t))
    T: instructions=off moves the score -0.200 [-0.250, -0.150]; 1 other setting within noise (interval holds 0)
    """
    lines = []
    for task, rows in table[table["setting"] != "baseline"].groupby("task", sort=False):
        moved = rows[(rows["delta_low"] > 0) | (rows["delta_high"] < 0)]
        moved = moved.reindex(moved["delta"].abs().sort_values(ascending=False).index)
        said = "; ".join(
            f"{r.setting}={r.value} moves the score {r.delta:+.3f} [{r.delta_low:+.3f}, {r.delta_high:+.3f}]"
            for r in moved.itertuples()
        )
        rest = len(rows) - len(moved)
        noise = f"{rest} other setting{'s' if rest != 1 else ''} within noise (interval holds 0)"
        lines.append(f"{task}: {said + '; ' if said else 'no setting moves the score beyond noise; '}{noise}")
    return "\n".join(lines)


def plot_changes(table: pd.DataFrame, task: str | None = None) -> Any:
    """One task's changes from the baseline as horizontal bars with their paired 95 % intervals."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - plotting only when asked

    task = task or table["task"].iloc[0]
    rows = table[(table["task"] == task) & (table["setting"] != "baseline")].iloc[::-1]
    labels = [f"{r.setting}={r.value}" for r in rows.itertuples()]
    errors = [(rows["delta"] - rows["delta_low"]).clip(lower=0), (rows["delta_high"] - rows["delta"]).clip(lower=0)]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(rows) + 1.4))
    colors = [
        "tab:red" if h < 0 else "tab:green" if lo > 0 else "tab:gray"
        for lo, h in zip(rows["delta_low"], rows["delta_high"])
    ]
    ax.barh(labels, rows["delta"], xerr=errors, color=colors, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change in main score from the baseline (95 % paired interval)")
    ax.set_title(f"minif2 doctor: {task}, one setting changed at a time")
    fig.tight_layout()
    return fig


def main(cfg: DoctorConfig) -> pd.DataFrame:
    """Run :func:`diagnose`, print the table, write ``<out_dir>/doctor.csv``."""
    table = diagnose(cfg)
    print(format_table(table))
    print("* = differs from the model's saved configuration; delta = score - baseline score (mteb scale 0-1)")
    print(describe_changes(table))
    if cfg.out_dir:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(cfg.out_dir) / "doctor.csv", index=False)
    return table


def cli(argv: list[str] | None = None) -> int:
    """``minif2 doctor --model FOLDER --tasks TASK [--check pooling --check instructions]``."""
    parser = argparse.ArgumentParser(prog="minif2 doctor", description="Re-score with one setting changed at a time.")
    parser.add_argument("--config", help="YAML file with DoctorConfig fields")
    parser.add_argument("--model", help="asset name, folder or hub id")
    parser.add_argument("--tasks", help="a task folder, or mteb task names (as minif2 eval)")
    parser.add_argument("--out-dir", dest="out_dir")
    parser.add_argument("--batch-size", dest="batch_size", type=int, help="the baseline's batch size")
    parser.add_argument("--max-rows-per-task", dest="max_rows_per_task", type=int)
    parser.add_argument("--check", action="append", dest="checks", choices=CHECKS, help="vary only these (repeatable)")
    parser.add_argument("--instructions", choices=["on", "off", "auto"], help="the baseline's (default auto)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in ("config", "instructions")}
    cfg = load_config(DoctorConfig, args.config, **overrides)
    if args.instructions:
        cfg.instructions = {"on": True, "off": False, "auto": None}[args.instructions]
    main(cfg)
    return 0
