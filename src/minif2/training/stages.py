"""Multi-stage training (QZhou's schedule, docs/recipe.md §2) and source selection for one run.

QZhou-Embedding trains in two stages: a retrieval-focused stage first, then all task types
(docs/recipe.md §2; the instruction-shift study's recipe, §3, does the same with pairs then
instructed triples). The kit expresses that as ONE config: ``TrainConfig.stages`` is a list of
dicts of TrainConfig fields that change in that stage, for example::

    stages:
      - {name: retrieval, sources: [retrieval], max_steps: 30}   # stage 1: retrieval sources only
      - {name: all, max_steps: 30}                               # stage 2: every source

Stage i is an ordinary run in ``<out_dir>/stage-<i>-<name>/`` that starts from stage i-1's
final weights, with its own optimiser, warm-up and schedule (as two runs would be); the last
stage's ``final/`` is copied to ``<out_dir>/final``. Resuming skips every stage whose
``final/`` exists and resumes the first unfinished one from its newest checkpoint, so a run
killed anywhere, the stage boundary included, ends with the weights of an uninterrupted run.

``sources`` (a stage field, or a TrainConfig field of a one-stage run) keeps the named sources
and/or whole training families (``retrieval``, ``classification``, ``clustering``). This
module does not train (``training/trainer.py``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from minif2.config import ConfigError
from minif2.training.sampler import TrainingData

__all__ = ["FAMILIES", "plan_stages", "select_sources"]

FAMILIES = ("retrieval", "classification", "clustering")
FIXED = ("stages", "out_dir", "resume")  # set by the plan, not by a stage


def select_sources(data: TrainingData, wanted: list[str] | None) -> TrainingData:
    """``data`` restricted to the sources named in ``wanted`` or belonging to a family named there.

    Example:
        >>> d = TrainingData({"a": [1], "b": [2]}, {}, {"a": "retrieval", "b": "clustering"}, {"a": 1, "b": 1})
        >>> sorted(select_sources(d, ["retrieval"]).train)
        ['a']
    """
    if not wanted:
        return data
    unknown = [w for w in wanted if w not in data.family and w not in FAMILIES]
    if unknown:
        raise ValueError(
            f"train config 'sources': {unknown} are neither sources of the data ({sorted(data.family)}) "
            f"nor training families {FAMILIES}"
        )
    keep = [s for s in data.family if s in wanted or data.family[s] in wanted]
    if not keep:
        raise ValueError(f"train config 'sources': {wanted} selects no source of {sorted(data.family)}")
    pick = lambda table: {s: v for s, v in table.items() if s in keep}  # noqa: E731
    report = {**data.report, "selected_sources": keep}
    return TrainingData(
        pick(data.train), pick(data.validation), pick(data.family), pick(data.negatives_available), report
    )


def plan_stages(cfg: Any) -> list[tuple[Path, Any]]:
    """``[(stage folder, stage config)]`` for ``cfg.stages``: each stage's overrides applied to ``cfg``.

    Stage i > 1 reads its ``model`` from stage i-1's ``final/`` unless it names one itself. A key
    that is not a TrainConfig field, or one of ``stages``, ``out_dir``, ``resume``, is an error.

    Example:
        >>> from minif2.training.trainer import TrainConfig
        >>> cfg = TrainConfig(out_dir="run", stages=[{"sources": ["retrieval"], "max_steps": 3}, {"name": "all"}])
        >>> [(str(p), c.sources, c.max_steps, c.model) for p, c in plan_stages(cfg)]  # doctest: +NORMALIZE_WHITESPACE
        [('run/stage-1', ['retrieval'], 3, 'Qwen/Qwen3-4B'),
         ('run/stage-2-all', None, None, 'run/stage-1/final')]
    """
    fields = {f.name for f in dataclasses.fields(cfg)}
    plan: list[tuple[Path, Any]] = []
    previous: Path | None = None
    for i, stage in enumerate(cfg.stages or [], start=1):
        if not isinstance(stage, dict):
            raise ConfigError(
                f"train config 'stages'[{i - 1}]: expected a mapping of TrainConfig fields, got {stage!r}"
            )
        overrides = dict(stage)
        name = str(overrides.pop("name", ""))
        bad = sorted(k for k in overrides if k not in fields or k in FIXED)
        if bad:
            raise ConfigError(
                f"train config 'stages'[{i - 1}]: {bad} cannot be set per stage (known TrainConfig fields, "
                f"except {list(FIXED)})"
            )
        folder = Path(cfg.out_dir) / (f"stage-{i}-{_slug(name)}" if name else f"stage-{i}")
        if previous is not None:
            overrides.setdefault("model", str(previous / "final"))
        plan.append((folder, dataclasses.replace(cfg, stages=None, out_dir=str(folder), **overrides)))
        previous = folder
    return plan


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "stage"
