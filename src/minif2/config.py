"""Typed configuration: dataclasses with commented defaults, loadable from YAML.

Each pipeline stage keeps its defaults in ONE dataclass in its own module
(``EmbedderConfig`` in ``model.py``, ``MiningConfig`` in ``mining/mine.py``, ...), with
the papers' numbers as defaults (docs/recipe.md). Named profiles are small YAML
files under ``configs/<profile>/<stage>.yaml`` that override only what differs
(``tiny`` for a CPU, ``small-gpu`` for QLoRA on one GPU, ``paper`` for F2LLM).

This module does not know any stage; it only turns YAML/dicts into dataclasses,
reporting unknown keys with the file and key at fault.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = [
    "ConfigError",
    "DATA_MIX_MILLIONS",
    "MINING",
    "MTEB_ENG_V2",
    "MTEB_F2LLM_4B_BY_TYPE",
    "PROFILES",
    "TRAINING_4B",
    "config_to_dict",
    "from_dict",
    "load_config",
    "profile_path",
    "repo_root",
    "save_config",
]


T = TypeVar("T")
PROFILES = ("tiny", "small-gpu", "paper")


def repo_root() -> Path:
    """The checkout this package is installed from (an editable install), else the current folder.

    The one place the kit finds its repository: profiles (``configs/``), the course's run folders,
    the notebooks' solutions and the harvest cache (``data/cache``) are all found from here.
    """
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "configs").is_dir():
            return parent
    return Path.cwd()


CONFIG_ROOT = repo_root() / "configs"


class ConfigError(ValueError):
    """A configuration file or dict does not match its dataclass."""


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Build nested dataclasses; leave scalars and containers as YAML gave them."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value, where)  # type: ignore[arg-type]
    if tp is tuple or origin is tuple:
        return tuple(value) if isinstance(value, list) else value
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "<dict>") -> T:
    """``cls(**data)`` with nested dataclasses, failing on unknown keys with their location."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}:{k}") for k, v in data.items()}
    return cls(**kwargs)


def profile_path(profile: str, stage: str) -> Path:
    """``configs/<profile>/<stage>.yaml`` in the repository."""
    return CONFIG_ROOT / profile / f"{stage}.yaml"


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Defaults of ``cls`` <- YAML file at ``path`` (if any) <- keyword overrides."""
    data: dict[str, Any] = {}
    where = "<defaults>"
    if path is not None:
        where = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError as err:
            raise ConfigError(f"config file not found: {path}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data, where)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON/YAML-safe dict of a (nested) dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config next to a run or checkpoint, so the run can be repeated."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    return path


# 6M open-source, non-synthetic samples (docs/recipe.md §1)
DATA_MIX_MILLIONS = {"retrieval": 4.9, "classification": 0.2, "clustering": 0.8}

# margin-based hard-negative mining (docs/recipe.md §1): teacher Qwen3-Embedding-0.6B
MINING = {
    "teacher": "Qwen/Qwen3-Embedding-0.6B",
    "top_k": 100,  # passages retrieved per query
    "skip_top": 5,  # ranks 1-5 dropped: likely false negatives
    "max_score": 0.8,  # keep score < 0.8 ...
    "relative_margin": 0.95,  # ... and score < 95% of the positive's score
    "num_negatives": {"retrieval": 24, "clustering": 24, "classification": 1},
    "negatives_per_step": 7,  # docs/recipe.md §1a: 7 of the 24 are sampled per micro-batch
}

# the 4B run of the released code (docs/recipe.md §1a); 0.6B / 1.7B values are not published
TRAINING_4B = {
    "optimizer": "AdamW",
    "lr": 8e-6,
    "betas": (0.9, 0.98),
    "weight_decay": 0.01,
    "warmup_steps": 500,
    "schedule": "cosine",
    "min_lr": 1e-7,
    "epochs": 2,
    "batch_per_gpu": 16,
    "gpus": 32,
    "global_batch": 512,
    "max_length_tokens": 1024,
    "grad_clip": 1.0,
    "eval_every_steps": 5000,  # the released configs/config.json: validation and checkpoints every 5000 steps
    "save_every_steps": 5000,
    "temperature": 0.05,
    "zero_stage": 2,
    "precision": "bf16",
    "attention": "flash_attention_2",
    "gradient_checkpointing": True,
}

# MTEB(eng, v2): (mean over tasks, mean over task types), recomputed from the public results (docs/recipe.md §1a)
MTEB_ENG_V2 = {
    "F2LLM-0.6B": (70.03, 63.29),
    "F2LLM-1.7B": (72.01, 65.67),
    "F2LLM-4B": (73.67, 67.29),
    "Qwen3-Embedding-0.6B": (70.47, 64.72),
}

# F2LLM-4B per task type on MTEB(eng, v2) (docs/recipe.md §1a)
MTEB_F2LLM_4B_BY_TYPE = {
    "classification": 91.68,
    "clustering": 68.54,
    "pair_classification": 83.75,
    "reranking": 50.05,
    "retrieval": 59.63,
    "sts": 84.20,
    "summarization": 33.19,
}
