"""The real Qwen3 architectures, offline: random models of the exact shapes (issue 16).

``configs/models/<name>/config.json`` keeps the Hub's ``config.json`` of Qwen3-0.6B / 1.7B / 4B
and of the mining teacher Qwen3-Embedding-0.6B (architecture only; sources in
``configs/models/README.md``). :func:`build_shape` turns one into a randomly initialised model
folder that :class:`minif2.model.Embedder`, transformers and sentence-transformers load, so the
GPU profiles can be dry-run, planned and timed with no Hub and no GPU. Shapes, memory and FLOPs
are the real model's; the weights are random and the tokenizer is the ``tiny-qwen3`` asset's
(SmolLM2 BPE, EOS != PAD as in Qwen3, every id inside the real embedding).

This module does not train; ``planning/dryrun.py`` and ``planning/memory.py`` use it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, Qwen3ForCausalLM

from minif2.assets import cache_dir, resolve_model
from minif2.config import CONFIG_ROOT, MissingInputError, staged_folder

__all__ = ["MODEL_SHAPES", "build_shape", "shape_config", "shape_for_model"]

MODELS_ROOT = CONFIG_ROOT / "models"
# Hub id -> folder under configs/models
MODEL_SHAPES: dict[str, str] = {
    "Qwen/Qwen3-0.6B": "qwen3-0.6b",
    "Qwen/Qwen3-1.7B": "qwen3-1.7b",
    "Qwen/Qwen3-4B": "qwen3-4b",
    "Qwen/Qwen3-Embedding-0.6B": "qwen3-embedding-0.6b",
}


def shape_for_model(model: str) -> str | None:
    """The ``configs/models`` folder name of a hub id (or of a folder name), else None.

    >>> shape_for_model("Qwen/Qwen3-0.6B"), shape_for_model("qwen3-4b"), shape_for_model("tiny-qwen3")
    ('qwen3-0.6b', 'qwen3-4b', None)
    """
    if model in MODEL_SHAPES:
        return MODEL_SHAPES[model]
    return model if model in MODEL_SHAPES.values() else None


def shape_config(name: str, **overrides: object) -> PretrainedConfig:
    """The transformers config of ``configs/models/<name>`` (a hub id works too), with ``overrides``.

    >>> shape_config("Qwen/Qwen3-0.6B").hidden_size
    1024
    """
    folder = shape_for_model(name) or name
    path = MODELS_ROOT / folder
    if not (path / "config.json").is_file():
        known = ", ".join(sorted(MODEL_SHAPES.values()))
        raise MissingInputError(f"no architecture '{name}' under {MODELS_ROOT} (known: {known})")
    fields = {**json.loads((path / "config.json").read_text()), **overrides}
    fields.pop("layer_types", None)  # derived from num_hidden_layers
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def build_shape(
    name: str,
    root: Path | None = None,
    num_hidden_layers: int | None = None,
    dtype: str = "bfloat16",
    seed: int = 0,
    **overrides: object,
) -> Path:
    """Materialise a random model of the shape ``name`` into ``<root>/shapes/<name>[-L<n>][-<hash>]`` (cached).

    ``num_hidden_layers`` keeps every layer's real shape but fewer layers (for a CPU that cannot hold
    the full depth); other ``overrides`` change config fields (CPU-sized models for the memory test).
    Weights are saved in ``dtype`` (bf16: half the disk; loaders upcast as asked).
    """
    folder_name = shape_for_model(name) or name
    suffix = (f"-L{num_hidden_layers}" if num_hidden_layers else "") + (f"-{dtype}" if dtype != "bfloat16" else "")
    if overrides:
        suffix += "-" + hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
    folder = (root or cache_dir()) / "shapes" / (folder_name + suffix)
    marker = folder / "minif2_shape.json"
    if marker.is_file() and (folder / "model.safetensors").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("tiny-qwen3"))  # EOS <|im_end|> != PAD <|endoftext|>
    overrides |= {
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }
    if num_hidden_layers:
        overrides |= {"num_hidden_layers": num_hidden_layers, "max_window_layers": num_hidden_layers}
    config = shape_config(folder_name, **overrides)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} ids, more than the model's {config.vocab_size} rows")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config).to(getattr(torch, dtype))
    with staged_folder(folder) as tmp:  # a crash mid-write leaves no half model in the cache
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        source = {"shape": folder_name, "config": str(MODELS_ROOT / folder_name / "config.json"), "seed": seed}
        (tmp / marker.name).write_text(json.dumps({**source, "num_hidden_layers": config.num_hidden_layers}, indent=2))
    return folder
