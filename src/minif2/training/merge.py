"""Checkpoint merging (``minif2 merge``): one embedder from several checkpoints, by weight arithmetic.

Three ways, each from a released recipe:

- ``average``: the uniform or weighted mean of N checkpoints of ONE run. F2LLM-v2's released loop
  saves a checkpoint at step 5 and every 500 steps within the last 2500 steps, "for ckpt merging"
  (codefuse-ai/CodeFuse-Embeddings @1c52915, ``F2LLM/utils.py:263``; docs/recipe.md §1c); the merge
  itself is not in that code. Keep them with ``save_every_steps`` and ``keep_checkpoints``.
- ``slerp``: spherical interpolation of TWO checkpoints, tensor by tensor, as Qwen3-Embedding merges
  its checkpoints (arXiv 2506.05176, training section). ``t = 0`` gives the first, ``t = 1`` the second;
  in between, each flattened tensor moves along the great circle between the two (the formula of
  mergekit's ``mergekit/merge_methods/slerp.py``), which keeps its norm where a straight mean shrinks it.
- ``mix``: a fine-tuned model mixed with its base, ``w * fine_tuned + (1 - w) * base``: LM-Cocktail
  (arXiv 2311.13534; FlagOpen/FlagEmbedding ``research/LM_Cocktail/LM_Cocktail/cocktail.py``,
  ``mix_models``) keeps general ability that fine-tuning on a few tasks wore away.

A checkpoint is an Embedder folder (``final/``, ``step-N/embedder/``) or a trainer checkpoint folder
(``step-N/``). A LoRA / QLoRA checkpoint (``step-N/adapter/``) is first merged into its base model
(peft's ``merge_and_unload``), so every input is a full set of weights. Inputs of different
architectures or shapes are refused, naming the folder. The output is an ordinary Embedder folder
(``Embedder.save``) with the settings of the first checkpoint and a ``merge.yaml`` record.

This module does not choose WHICH checkpoints to keep (``training/trainer.py``). Described in
docs/recipe.md §1c; taught in ``notebooks/06_beyond_f2llm.ipynb`` (merged checkpoints and base mixes scored
against the last checkpoint, paired).
"""

from __future__ import annotations

import argparse
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import yaml

from minif2.config import InputError, config_to_dict, load_config
from minif2.model import Embedder

__all__ = ["MergeConfig", "MergeError", "cli", "load_checkpoint", "main", "merge_states", "slerp"]

State = dict[str, torch.Tensor]
Method = Literal["average", "slerp", "mix"]
METHODS = get_args(Method)


class MergeError(InputError):
    """Checkpoints that cannot be merged; the message names the folder."""


@dataclass
class MergeConfig:
    """What to merge and how (module docstring). Defaults: the uniform average of the given checkpoints."""

    checkpoints: list[str] = field(default_factory=list)  # Embedder or trainer checkpoint folders, one run
    out_dir: str = "runs/latest/checkpoints/merged"
    method: Method = "average"  # average (F2LLM-v2's checkpoints) | slerp (Qwen3-Embedding) | mix (LM-Cocktail)
    weights: list[float] | None = None  # average: one per checkpoint, normalised to sum 1; None: uniform
    t: float = 0.5  # slerp: 0 = first checkpoint, 1 = second
    base_model: str | None = None  # mix: the base model (asset, folder, hub id); the checkpoint is the fine-tuned
    fine_tuned_weight: float = 0.5  # mix: w in w * fine_tuned + (1 - w) * base (LM-Cocktail's example: 0.5)


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of two tensors of one shape, flattened (mergekit's formula).

    The angle is that between the two tensors as unit vectors; the result is
    ``sin((1-t) a) / sin a * v0 + sin(t a) / sin a * v1``, a straight line (lerp) when they are
    (nearly) parallel.

    >>> slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
    tensor([0.7071, 0.7071])
    """
    a, b = v0.double().flatten(), v1.double().flatten()
    cos = torch.dot(a / a.norm().clamp(min=eps), b / b.norm().clamp(min=eps)).clamp(-1.0, 1.0)
    if 1 - abs(float(cos)) < eps:
        mixed = (1 - t) * a + t * b
    else:
        angle = math.acos(float(cos))
        mixed = (math.sin((1 - t) * angle) * a + math.sin(t * angle) * b) / math.sin(angle)
    return mixed.reshape(v0.shape).to(v0.dtype)


def merge_states(states: list[State], weights: list[float]) -> State:
    """The weighted sum of state dicts (weights as given); integer tensors are taken from the first.

    >>> merge_states([{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}], [0.5, 0.5])
    {'w': tensor([2., 4.])}
    """
    total = _scaled(states[0], weights[0])
    for state, weight in zip(states[1:], weights[1:], strict=True):
        _add(total, state, weight)
    return total


def _scaled(state: State, weight: float) -> State:
    return {k: weight * v.float() if v.is_floating_point() else v.clone() for k, v in state.items()}


def _add(total: State, state: State, weight: float) -> None:
    """``total += weight * state`` in place, on the floating-point tensors (one model in memory at a time)."""
    for name, value in state.items():
        if value.is_floating_point():
            total[name].add_(value.float(), alpha=weight)


def _train_settings(folder: Path) -> dict[str, Any]:
    """A trainer checkpoint's ``train.yaml``, flattened, or {} when there is none."""
    path = folder / "train.yaml"
    if not path.is_file():
        return {}
    flat: dict[str, Any] = {}
    for key, value in (yaml.safe_load(path.read_text()) or {}).items():
        flat.update(value if isinstance(value, dict) and key != "num_negatives" else {key: value})
    return flat


def _load_lora(folder: Path) -> Embedder:
    """A LoRA / QLoRA checkpoint: its base model with the adapter merged in (full precision)."""
    from peft import PeftModel  # noqa: PLC0415 - peft imports bitsandbytes: only for LoRA checkpoints

    settings = _train_settings(folder)
    if settings.get("mode") == "qlora":
        warnings.warn(
            f"{folder}: a QLoRA adapter was trained on a 4-bit base; it is merged into the full-precision base, "
            "so vectors differ slightly from those seen in training",
            stacklevel=3,
        )
    base = settings.get("model") or _adapter_base(folder / "adapter")
    overrides = {k: settings.get(k) for k in ("max_length_tokens", "pool_instruction", "instruction_tasks")}
    embedder = Embedder.from_pretrained(base, torch_dtype="float32", **overrides)
    embedder.backbone = PeftModel.from_pretrained(embedder.backbone, str(folder / "adapter"))
    embedder.backbone = embedder.merged_backbone()
    return embedder


def _adapter_base(adapter: Path) -> str:
    config = yaml.safe_load((adapter / "adapter_config.json").read_text())  # JSON is YAML
    if not config.get("base_model_name_or_path"):
        raise MergeError(f"{adapter}: adapter_config.json names no base model and no train.yaml lies beside it")
    return str(config["base_model_name_or_path"])


def load_checkpoint(folder: str | Path) -> Embedder:
    """An Embedder folder, a full fine-tuning checkpoint (``embedder/``) or a LoRA one (``adapter/``), in float32."""
    folder = Path(folder)
    if (folder / "embedder" / "config.json").is_file():
        folder = folder / "embedder"
    elif (folder / "adapter" / "adapter_config.json").is_file():
        return _load_lora(folder)
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise MergeError(f"{folder}: neither an Embedder folder (no config.json) nor a training checkpoint")
    return Embedder.from_pretrained(str(folder), torch_dtype="float32")  # also an asset name or hub id (mix)


def _check_same_shape(reference: tuple[str, Embedder], other: tuple[str, Embedder]) -> None:
    (ref_name, ref), (name, emb) = reference, other
    ref_arch, arch = ref.backbone.config.model_type, emb.backbone.config.model_type
    if ref_arch != arch:
        raise MergeError(
            f"{name}: architecture {arch} differs from {ref_name}'s {ref_arch}; merge one run's checkpoints"
        )
    a, b = ref.backbone.state_dict(), emb.backbone.state_dict()
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b or a[key].shape != b[key].shape:
            shapes = (
                f"{tuple(a[key].shape) if key in a else 'absent'} vs {tuple(b[key].shape) if key in b else 'absent'}"
            )
            raise MergeError(f"{name}: weight {key} has another shape than in {ref_name} ({shapes}); not one model")


def _plan(cfg: MergeConfig) -> tuple[list[str], list[float]]:
    """The folders to load and the weight of each, after checking ``cfg`` (slerp's are [1 - t, t])."""
    if cfg.method not in METHODS:
        raise MergeError(f"merge config field 'method': {cfg.method!r} is not one of {list(METHODS)}")
    folders = list(cfg.checkpoints)
    if cfg.method == "mix":
        if len(folders) != 1 or not cfg.base_model:
            raise MergeError("method 'mix' takes one fine-tuned checkpoint and base_model (--base-model)")
        if not 0 <= cfg.fine_tuned_weight <= 1:
            raise MergeError(f"merge config field 'fine_tuned_weight': {cfg.fine_tuned_weight} is not in [0, 1]")
        return [folders[0], cfg.base_model], [cfg.fine_tuned_weight, 1 - cfg.fine_tuned_weight]
    if cfg.method == "slerp":
        if len(folders) != 2 or not 0 <= cfg.t <= 1:
            raise MergeError(f"method 'slerp' takes exactly 2 checkpoints and t in [0, 1]; got {len(folders)}, {cfg.t}")
        return folders, [1 - cfg.t, cfg.t]
    if not folders:
        raise MergeError("merge: no checkpoints given (--checkpoint, repeatable)")
    weights = cfg.weights or [1.0] * len(folders)
    if len(weights) != len(folders) or min(weights) < 0 or sum(weights) <= 0:
        raise MergeError(f"merge config field 'weights': need {len(folders)} non-negative numbers, got {weights}")
    return folders, [w / sum(weights) for w in weights]


def main(cfg: MergeConfig) -> Path:
    """Merge ``cfg.checkpoints`` as ``cfg.method`` says; write the Embedder folder ``cfg.out_dir``.

    Averages load one checkpoint at a time (a running weighted sum in float32); slerp holds two.
    """
    folders, weights = _plan(cfg)
    first = (folders[0], load_checkpoint(folders[0]))
    target, state = first[1], first[1].backbone.state_dict()
    merged = _scaled(state, weights[0])
    for name, weight in zip(folders[1:], weights[1:], strict=True):
        other = load_checkpoint(name)
        _check_same_shape(first, (name, other))
        if cfg.method == "slerp":
            ends = other.backbone.state_dict()
            merged = {k: slerp(v, ends[k], cfg.t) if v.is_floating_point() else v for k, v in state.items()}
        else:
            _add(merged, other.backbone.state_dict(), weight)
        del other
    target.backbone.load_state_dict(merged)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {**config_to_dict(cfg), "checkpoints": folders, "weights": weights}
    (out / "merge.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    return target.save(out)  # after merge.yaml, so the model card records the merge


def cli(argv: list[str] | None = None) -> int:
    """``minif2 merge --checkpoint A --checkpoint B [--method average|slerp|mix] --out-dir DIR``."""
    parser = argparse.ArgumentParser(prog="minif2 merge", description="Merge checkpoints into one embedder.")
    parser.add_argument("--config", help="YAML file with MergeConfig fields")
    parser.add_argument("--checkpoint", action="append", dest="checkpoints", help="checkpoint folder (repeatable)")
    parser.add_argument("--method", choices=METHODS, help="average (default) | slerp (2 checkpoints) | mix (with base)")
    parser.add_argument("--weight", action="append", type=float, dest="weights", help="average: one per checkpoint")
    parser.add_argument("--t", type=float, help="slerp: 0 = first checkpoint, 1 = second (default 0.5)")
    parser.add_argument("--base-model", dest="base_model", help="mix: the base model the checkpoint was trained from")
    parser.add_argument("--fine-tuned-weight", dest="fine_tuned_weight", type=float, help="mix: w (default 0.5)")
    parser.add_argument("--out-dir", dest="out_dir")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "config"}
    print(f"merged embedder: {main(load_config(MergeConfig, args.config, **overrides))}")
    return 0
