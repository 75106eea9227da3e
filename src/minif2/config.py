"""Typed configuration: dataclasses with commented defaults, loadable from YAML.

Each pipeline stage keeps its defaults in ONE dataclass in its own module
(``EmbedderConfig`` in ``model.py``, ``MiningConfig`` in ``mining/mine.py``, ...), with
the papers' numbers as defaults (docs/recipe.md). Named profiles are small YAML
files under ``configs/<profile>/<stage>.yaml`` that override only what differs
(``tiny`` for a CPU, ``small-gpu`` for QLoRA on one GPU, ``paper`` for F2LLM).

This module does not know any stage; it only turns YAML/dicts into dataclasses,
type-checking every value and reporting a wrong or unknown key with the file and key at fault,
and gives every stage the same all-or-nothing output folder (:func:`staged_folder`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = [
    "ConfigError",
    "DATA_MIX_MILLIONS",
    "InputError",
    "MINING",
    "MTEB_ENG_V2",
    "MTEB_F2LLM_4B_BY_TYPE",
    "MissingInputError",
    "PROFILES",
    "TRAINING_4B",
    "config_to_dict",
    "from_dict",
    "load_config",
    "profile_path",
    "repo_root",
    "save_config",
    "staged_folder",
    "swap_in",
]


T = TypeVar("T")
# THE list of named profiles (configs/<profile>/): every command's --profile and scripts/run_course.py use it
PROFILES = ("tiny", "small-gpu", "paper", "smoke")  # smoke: tiny shrunk to a quick check (tests)


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


class InputError(ValueError):
    """A problem in what the user gave (a config, a data or task file, a model name): the command line
    prints its message alone, with exit code 2, instead of a traceback (``cli.main``)."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the user named (a data folder, a queries file, a model shape) does not exist.

    A ``FileNotFoundError`` too, so callers that catch that keep working; the command line prints
    it as a user error, while any OTHER ``FileNotFoundError`` (a bug, a file the kit itself should
    have written) keeps its traceback (``cli.main``)."""


class ConfigError(InputError):
    """A configuration file or dict does not match its dataclass."""


# a decimal number as YAML 1.2 writes it; PyYAML (YAML 1.1) reads ``1e-3`` (no dot) as a string
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _type_name(tp: Any) -> str:
    """``float``, ``int | None``, ``one of ['last', 'mean']``, ``list[str]``: the expected type in words."""
    if typing.get_origin(tp) is typing.Literal:
        return f"one of {list(typing.get_args(tp))}"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _bad(where: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{where}: got {value!r} ({type(value).__name__}), expected {_type_name(tp)}")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the field type ``tp`` and return it, converted where that is safe.

    Every field is checked when a config is loaded, so a wrong value fails here, naming the file,
    the field, the value and the expected type, not deep inside torch. The rules:

    - ``bool`` takes only true/false (``"no"`` is an error, not True); ``int`` takes integers only;
    - ``float`` takes integers and floats, and a string written as a decimal number (``"1e-3"``:
      PyYAML reads an exponent without a dot as a string, a common mistake), never ``nan``/``inf`` strings;
    - ``str`` takes strings and paths (turned into strings); ``Literal`` takes one of its values;
    - ``tuple``/``list`` take lists or tuples (each item checked), ``dict`` takes mappings (values checked);
    - ``X | None`` takes None; nested dataclasses take mappings; other types (``Any``) are not checked.

    >>> _coerce(float, "1e-3", "x.yaml, field 'lr'")
    0.001
    >>> _coerce(bool, "no", "x.yaml, field 'gradient_checkpointing'")
    Traceback (most recent call last):
    ...
    minif2.config.ConfigError: x.yaml, field 'gradient_checkpointing': got 'no' (str), expected bool
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or isinstance(tp, TypeVar):
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                continue
        raise _bad(where, value, tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # type: ignore[arg-type]
            return value
        if isinstance(value, dict):
            return from_dict(tp, value, where)  # type: ignore[arg-type]
        raise _bad(where, value, tp)
    if origin is typing.Literal:
        if value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args)):
            return value
        raise _bad(where, value, tp)
    if tp in (bool, int, float, str):
        return _coerce_scalar(tp, value, where)
    if tp in (tuple, list, dict) or origin in (tuple, list, dict):
        return _coerce_container(tp, value, where)
    return value


def _coerce_scalar(tp: type, value: Any, where: str) -> Any:
    """:func:`_coerce` for ``bool``, ``int``, ``float`` and ``str``."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _bad(where, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad(where, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value)
        raise _bad(where, value, tp)
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise _bad(where, value, tp)


def _coerce_container(tp: Any, value: Any, where: str) -> Any:
    """:func:`_coerce` for ``tuple``, ``list`` and ``dict``, bare or with item types (each item checked)."""
    kind, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if kind is dict:
        if not isinstance(value, dict):
            raise _bad(where, value, tp)
        return {k: _coerce(args[1], v, f"{where}[{k!r}]") if args else v for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise _bad(where, value, tp)
    if kind is list:
        return [_coerce(args[0], v, f"{where}[{i}]") if args else v for i, v in enumerate(value)]
    if not args:
        return tuple(value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise ConfigError(f"{where}: got {value!r} ({len(value)} items), expected {_type_name(tp)}")
    return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "<dict>") -> T:
    """``cls(**data)`` with every value type-checked (:func:`_coerce`), failing on unknown keys with their location.

    A class may rename its keys: its ``upgrade_old_keys(data, where)`` turns a mapping with old keys into
    one with the new ones (warning, with the file, which key to write instead) before anything is checked.
    A ``ValueError`` of the class's own checks (``__post_init__``) is reported with the location too.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    upgrade = getattr(cls, "upgrade_old_keys", None)
    if upgrade is not None:
        data = upgrade(data, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
    field_where = where[:-1] + "." if where.endswith("'") else where + ", field '"
    kwargs = {k: _coerce(hints[k], v, f"{field_where}{k}'") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from err


@contextmanager
def staged_folder(final: str | Path) -> Iterator[Path]:
    """Write a stage's output folder all or nothing: yield an empty temporary sibling of ``final``;
    when the block succeeds, swap it in place of ``final``; when it fails, delete it and leave
    ``final`` exactly as it was (a failed rerun never destroys the previous good output).

    Used by every stage that writes a folder (unify, mining, the trainer's ``final/``, evaluation,
    analysis, the planner's model shapes); checkpoints use its second half, :func:`swap_in`.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(tmp, final)


def swap_in(tmp: str | Path, final: str | Path) -> Path:
    """Put the finished folder ``tmp`` in place of ``final``: the old one is moved aside first and deleted
    only after the new one is in place, so at every moment one complete ``final`` exists (or its ``.old``
    twin, during the two renames). The second half of :func:`staged_folder`, for writers that cannot
    use a ``with`` block (a checkpoint written by several processes)."""
    tmp, final = Path(tmp), Path(final)
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


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
