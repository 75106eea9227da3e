"""The model card (``README.md``) that :meth:`minif2.Embedder.save` writes into every saved folder.

sentence-transformers writes a card for each model it trains (its ``model_card.py``): metadata for
the Hub in YAML front matter, then the base model, the training data and the scores. minif2 does the
same from what it can read, and says so where it cannot:

- the embedder's own settings (pooling, instructions, maximum length), always known;
- the recipe: the resolved ``train.yaml`` the trainer writes into its ``out_dir``, looked for in the
  folder and the two folders above it (``checkpoints/final`` -> ``checkpoints/train.yaml``); each
  setting that differs from F2LLM's released 4B run (docs/recipe.md §1a) is listed as a departure;
- the data: ``run_summary.json`` beside that ``train.yaml`` (rows per source, written by the trainer);
- a merge: ``merge.yaml`` from ``minif2 merge`` (the checkpoints and their weights);
- scores: only when given (:func:`write_model_card` with ``results``, e.g. after ``minif2 eval``),
  with their intervals (``ci_low`` / ``ci_high`` columns) and task list when the table has them.

A folder with none of these (a plain save of an untrained model) gets a card that says no training
record was found, never an invented one. This module reads files and writes text; it runs no model.
Described in docs/recipe.md §1c; not yet taught in a notebook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from minif2.assets import is_hub_id
from minif2.config import TRAINING_4B

__all__ = ["F2LLM_RUN", "CardFacts", "build_card", "collect_facts", "departures", "write_model_card"]

CARD_FILE = "README.md"
# train.yaml field -> F2LLM's released 4B run (docs/recipe.md §1a); a run's other values are departures
F2LLM_RUN: dict[str, Any] = {
    "mode": "full",
    "lr": TRAINING_4B["lr"],
    "betas": list(TRAINING_4B["betas"]),
    "weight_decay": TRAINING_4B["weight_decay"],
    "warmup_steps": TRAINING_4B["warmup_steps"],
    "min_lr": TRAINING_4B["min_lr"],
    "num_epochs": TRAINING_4B["epochs"],
    "batch_size": TRAINING_4B["batch_per_gpu"],
    "max_length_tokens": TRAINING_4B["max_length_tokens"],
    "max_grad_norm": TRAINING_4B["grad_clip"],
    "temperature": TRAINING_4B["temperature"],
    "gradient_checkpointing": TRAINING_4B["gradient_checkpointing"],
    "loss": "f2llm",
}


@dataclass
class CardFacts:
    """What a card can say, each ``None`` where it is not known (the card then says so)."""

    embedder: dict[str, Any]  # the saved EmbedderConfig (minif2_embedder.json)
    base_model: str | None = None  # train.yaml's model, else what the Embedder was loaded from
    recipe: dict[str, Any] | None = None  # train.yaml, flattened to field -> value
    recipe_file: str | None = None  # where it was found, relative to the card's folder
    data: dict[str, dict[str, Any]] | None = None  # source -> {rows, train, validation, family}
    merge: dict[str, Any] | None = None  # merge.yaml
    scores: list[dict[str, Any]] | None = None  # tidy rows: task, type, main_score[, ci_low, ci_high, ...]
    notes: list[str] = field(default_factory=list)


def _flatten(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Nested config groups -> their leaf fields (``{"optim": {"lr": 1}}`` -> ``{"lr": 1}``).

    >>> _flatten({"model": "m", "optim": {"lr": 0.1, "betas": [0.9, 0.98]}})
    {'model': 'm', 'lr': 0.1, 'betas': [0.9, 0.98]}
    """
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        out.update(_flatten(value) if isinstance(value, Mapping) and key != "num_negatives" else {key: value})
    return out


def departures(recipe: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """field -> (this run's value, F2LLM's) for each recipe value that differs from F2LLM's 4B run.

    >>> departures({"lr": 5e-4, "temperature": 0.05, "seed": 0})
    {'lr': (0.0005, 8e-06)}
    """
    out = {}
    for name, paper in F2LLM_RUN.items():
        if name in recipe and _plain(recipe[name]) != _plain(paper):
            out[name] = (recipe[name], paper)
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _find_near(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder`` or one of the two folders above it (a trainer's ``out_dir``)."""
    for place in (folder, folder.parent, folder.parent.parent):
        if (place / name).is_file():
            return place / name
    return None


def _relative(path: Path, folder: Path) -> str:
    ups = {folder: "", folder.parent: "../", folder.parent.parent: "../../"}
    return ups.get(path.parent, str(path.parent) + "/") + path.name


def collect_facts(folder: str | Path, embedder: Mapping[str, Any], loaded_from: str | None = None) -> CardFacts:
    """Everything a card can say about the saved ``folder``, from the files beside it (module docstring)."""
    folder = Path(folder)
    facts = CardFacts(embedder=dict(embedder), base_model=loaded_from)
    recipe_path = _find_near(folder, "train.yaml")
    if recipe_path is not None:
        facts.recipe = _flatten(yaml.safe_load(recipe_path.read_text()) or {})
        facts.recipe_file = _relative(recipe_path, folder)
        facts.base_model = str(facts.recipe.get("model") or loaded_from)
        summary = recipe_path.parent / "run_summary.json"
        if summary.is_file():
            facts.data = json.loads(summary.read_text()).get("data", {}).get("sources")
    if (folder / "merge.yaml").is_file():
        facts.merge = yaml.safe_load((folder / "merge.yaml").read_text())
    return facts


def _front_matter(facts: CardFacts) -> str:
    meta: dict[str, Any] = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "feature-extraction", "sentence-similarity", "minif2"],
    }
    if facts.base_model and is_hub_id(facts.base_model):  # the Hub links only hub ids
        meta["base_model"] = facts.base_model
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _embedder_section(settings: Mapping[str, Any]) -> list[str]:
    keys = ("pooling", "normalize", "max_length_tokens", "append_eos", "bidirectional", "padding_side")
    keys += ("query_template", "pool_instruction", "instruction_tasks", "torch_dtype")
    lines = ["## How it embeds", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| `{k}` | `{json.dumps(settings.get(k))}` |" for k in keys if k in settings]
    if settings.get("uses_instructions") is False:
        return [*lines, "", "This model takes no instructions."]
    which = ", ".join(settings.get("instruction_tasks") or []) or "every task type"
    return [*lines, "", f"Queries ({which}) carry the instruction template; documents none (F2LLM, arXiv 2510.02294)."]


def _recipe_section(facts: CardFacts) -> list[str]:
    if facts.recipe is None and facts.merge:
        return [
            "## Training",
            "",
            "Made by merging checkpoints (below); each checkpoint's own card says how it was trained.",
        ]
    if facts.recipe is None:
        return [
            "## Training",
            "",
            "No training record (`train.yaml`) was found beside this folder: this card",
            "cannot say how the model was trained. If it was saved straight after loading, its weights are",
            f"those of `{facts.base_model}`.",
        ]
    source = f"`{facts.recipe_file}`"
    lines = ["## Training", "", f"Recipe: F2LLM's contrastive fine-tuning (arXiv 2510.02294), settings from {source}."]
    gone = departures(facts.recipe)
    if gone:
        lines += [
            "",
            "Departures from F2LLM's released 4B run:",
            "",
            "| field | this run | F2LLM |",
            "| --- | --- | --- |",
        ]
        lines += [f"| `{k}` | `{ours}` | `{paper}` |" for k, (ours, paper) in gone.items()]
    else:
        lines += ["", "No departures from F2LLM's released 4B run in the fields this card compares."]
    return lines + ["", *_data_section(facts.data)]


def _data_section(data: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    if not data:
        return ["Data: not recorded (no `run_summary.json` beside the training record)."]
    lines = ["| source | family | rows | train | validation |", "| --- | --- | --- | --- | --- |"]
    for name, row in data.items():
        cells = [row.get(k, "") for k in ("family", "rows", "train", "validation")]
        lines.append(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
    total = sum(int(row.get("rows", 0)) for row in data.values())
    return [f"Data: {len(data)} sources, {total} rows.", "", *lines]


def _merge_section(merge: Mapping[str, Any] | None) -> list[str]:
    if not merge:
        return []
    lines = ["## Merge", "", f"Method: `{merge.get('method')}` (`minif2 merge`).", ""]
    lines += ["| checkpoint | weight |", "| --- | --- |"]
    lines += [
        f"| `{c}` | {w:.4g} |" for c, w in zip(merge.get("checkpoints", []), merge.get("weights", []), strict=False)
    ]
    return lines + [""]


def _scores_section(scores: Sequence[Mapping[str, Any]] | None) -> list[str]:
    if not scores:
        return [
            "## Scores",
            "",
            "Not scored when this card was written (`write_model_card(folder, results=...)` adds scores).",
        ]
    extra = [c for c in ("ci_low", "ci_high") if all(c in row for row in scores)]
    several = len({row.get("model") for row in scores}) > 1
    head = (["model"] if several else []) + ["task", "type", "metric", "main_score"] + extra
    intervals = ", with their intervals" if extra else "; no intervals were computed"
    lines = ["## Scores", "", f"mteb main scores (0-1){intervals}:", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in scores:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in head) + " |")
    tasks = sorted({str(row.get("task")) for row in scores})
    return [*lines, "", f"Task list ({len(tasks)}): " + ", ".join(tasks) + "."]


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def build_card(facts: CardFacts, title: str = "minif2 embedder") -> str:
    """The card's Markdown text (front matter, usage, settings, training, merge, scores)."""
    usage = [
        "## Use",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/folder")',
        'vectors = model.encode(["a text"])',
        "```",
        "",
        "or `minif2.Embedder.from_pretrained(folder)` (it also restores bidirectional attention).",
    ]
    base = f"Base model: `{facts.base_model}`." if facts.base_model else "Base model: not recorded."
    body = [f"# {title}", "", "A text-embedding model saved by minif2.", "", base, "", *usage, ""]
    body += [*_embedder_section(facts.embedder), "", *_recipe_section(facts), "", *_merge_section(facts.merge)]
    body += [*_scores_section(facts.scores), *[f"\nNote: {n}" for n in facts.notes]]
    return _front_matter(facts) + "\n" + "\n".join(body) + "\n"


def _result_rows(results: Any) -> list[dict[str, Any]] | None:
    """A results table (DataFrame, list of dicts, or a results.csv / .json path) -> rows."""
    if results is None:
        return None
    if isinstance(results, str | Path):
        path = Path(results)
        if path.suffix == ".json":
            return list(json.loads(path.read_text()))
        import pandas as pd  # noqa: PLC0415 - only for a CSV path

        return pd.read_csv(path).to_dict("records")
    return results.to_dict("records") if hasattr(results, "to_dict") else [dict(r) for r in results]


def write_model_card(
    folder: str | Path,
    embedder: Mapping[str, Any] | None = None,
    loaded_from: str | None = None,
    results: Any = None,
) -> Path:
    """Write ``<folder>/README.md``; ``embedder`` defaults to the folder's ``minif2_embedder.json``.

    ``results``: evaluation rows for this model (``evaluate_models``' table, or its results.csv):
    call again after scoring to add them.
    """
    folder = Path(folder)
    if embedder is None:
        settings_file = folder / "minif2_embedder.json"
        if not settings_file.is_file():
            raise FileNotFoundError(f"{settings_file} is missing: {folder} is not a saved minif2 Embedder")
        embedder = json.loads(settings_file.read_text())
    facts = collect_facts(folder, embedder, loaded_from)
    facts.scores = _result_rows(results)
    path = folder / CARD_FILE
    path.write_text(build_card(facts, title=folder.name))
    return path
