"""The Embedder as an ``mteb`` model: instructions on queries only, one cache identity per checkpoint.

F2LLM is evaluated with ``mteb`` through its registry entry (docs/recipe.md §1a): queries get
``Instruct: {task instruction}\\nQuery: `` with the instruction looked up by task
name in F2LLM's own table (``F2LLM_PROMPTS``, imported from mteb's registry entry
``codefuse-ai/F2LLM-*``), else the task's own prompt (a local task's ``task.json``
instruction), else mteb's default for the task type. Documents (``PromptType.document``)
get nothing. Symmetric tasks (STS, classification, clustering, pair classification)
encode every text as a query, so every text gets the instruction, as F2LLM does.

mteb caches results under ``<model name>/<revision>/<task>.json``. The wrapper's
revision is a hash of the weights AND of everything that changes the vectors (pooling,
max length, query template, whether instructions are used, the dimension), so one checkpoint's
cached scores can never be handed to another.

``dim`` scores a Matryoshka prefix (F2LLM-v2, docs/recipe.md §1b): each vector is cut to its
first ``dim`` coordinates and L2-normalised again, as the v2 losses do in training.

This module does not load tasks (``evaluation/mteb_tasks.py``) or write reports (``evaluation/evaluate.py``).
Taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mteb.models.abs_encoder import AbsEncoder, PromptSource
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from minif2.instructions import mteb_instructions
from minif2.model import Embedder
from minif2.schema import MTEB_TASK_TYPES

__all__ = ["F2LLM_PROMPTS", "MtebEmbedder", "model_revision", "truncate_embeddings"]

# F2LLM's instruction per MTEB(eng, v2) task name, exactly as its mteb registry entry uses them.
F2LLM_PROMPTS: dict[str, str] = mteb_instructions()


_KIT_TYPES = {mteb_name: kit for kit, mteb_name in MTEB_TASK_TYPES.items()}  # "Retrieval" -> "retrieval"


def model_revision(embedder: Embedder, instructions: bool, dim: int | None = None) -> str:
    """sha256 (16 hex digits) of every parameter and of the settings that change the vectors.

    Hashing the loaded tensors (not a file) also covers a model that was never saved,
    e.g. one just trained in a notebook. ~1 s per 500 MB of weights.
    """
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(embedder.config).items() if k not in ("model", "prompts", "trust_remote_code")}
    settings["instructions"] = instructions
    if dim is not None:  # absent for full vectors, so earlier revisions stay valid
        settings["dim"] = dim
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    state = dict(embedder.backbone.state_dict())
    if embedder.head is not None:  # absent without a head, so earlier revisions stay valid
        state.update({f"head.{k}": v for k, v in embedder.head.state_dict().items()})
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        data = tensor.detach().cpu().contiguous()
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "model"


class MtebEmbedder(AbsEncoder):
    """An :class:`~minif2.Embedder` behind mteb's ``EncoderProtocol``.

    Args:
        embedder: the model, or anything :meth:`Embedder.from_pretrained` accepts.
        label: display name (the ``model`` column of results); defaults to the model name.
        instructions: put task instructions on queries; ``None``: ``embedder.takes_instructions``.
        prompts: task name -> instruction, looked up before a task's own prompt (F2LLM's table).
        dim: score the first ``dim`` coordinates, re-normalised (Matryoshka); None = all.
        memo: a dict shared by wrappers of the SAME model at different ``dim``: full vectors are
            encoded once per text list and cut for each dimension.

    Example::

        model = MtebEmbedder("minilm")
        mteb.evaluate(model, tasks, cache=None)
    """

    # F2LLM's order: its table by task name, then the task's own prompt (then mteb's type default)
    prompt_priority = (PromptSource.CUSTOM_PROMPT, PromptSource.DEFAULT_TASK_PROMPT)

    def __init__(
        self,
        embedder: Embedder | str | Path,
        label: str | None = None,
        instructions: bool | None = None,
        prompts: dict[str, str] | None = None,
        dim: int | None = None,
        memo: dict[Any, np.ndarray] | None = None,
        **embedder_overrides: Any,
    ) -> None:
        if not isinstance(embedder, Embedder):
            embedder = Embedder.from_pretrained(embedder, **embedder_overrides)
        self.model = embedder
        self.label = label or embedder.config.model
        self.instructions = embedder.takes_instructions if instructions is None else instructions
        self.prompts_dict = dict(F2LLM_PROMPTS if prompts is None else prompts)
        if dim is not None and not 0 < dim <= embedder.dim:
            raise ValueError(f"MtebEmbedder: dim must be in 1..{embedder.dim} for this model, got {dim}")
        self.dim, self.memo = dim, memo
        self.revision = model_revision(embedder, self.instructions, dim)
        n_params = sum(p.numel() for p in embedder.backbone.parameters())
        self.mteb_model_meta = ModelMeta(
            loader=None,
            name=f"minif2/{_slug(self.label)}",
            revision=self.revision,
            release_date=None,
            languages=["eng-Latn"],
            n_parameters=n_params,
            memory_usage_mb=None,
            max_tokens=embedder.config.max_length_tokens,
            embed_dim=dim or embedder.dim,
            license=None,
            open_weights=True,
            public_training_code=None,
            public_training_data=None,
            framework=["PyTorch"],
            reference=None,
            similarity_fn_name="cosine",
            use_instructions=self.instructions,
            training_datasets=None,
        )

    def instruction(self, task_metadata: Any, prompt_type: PromptType | None) -> str | None:
        """The raw instruction for these texts, or None (documents, or instructions off)."""
        if not self.instructions or prompt_type == PromptType.document:
            return None
        kit_type = _KIT_TYPES.get(task_metadata.type, str(task_metadata.type).lower())
        if self.model.config.instruction_tasks is not None and kit_type not in self.model.config.instruction_tasks:
            return None  # the model was trained without instructions on this task type (EmbedderConfig)
        return self.get_instruction(task_metadata, prompt_type) or None

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """mteb's batches of ``{"text": [...]}`` -> float32 (n, dim), in input order."""
        texts = [text for batch in inputs for text in batch["text"]]
        instruction = self.instruction(task_metadata, prompt_type)
        key = (instruction, tuple(texts))
        if self.memo is not None and key in self.memo:
            vectors = self.memo[key]
        else:
            vectors = self.model.encode(
                texts,
                batch_size=int(kwargs.get("batch_size", 32)),
                instruction=instruction,
                show_progress_bar=bool(kwargs.get("show_progress_bar", False)),
            )
            if self.memo is not None:
                self.memo[key] = vectors
        return vectors if self.dim is None else truncate_embeddings(vectors, self.dim)


def truncate_embeddings(vectors: np.ndarray, dim: int) -> np.ndarray:
    """The first ``dim`` coordinates of each row, L2-normalised again (Matryoshka, docs/recipe.md §1b).

    >>> truncate_embeddings(np.array([[3.0, 4.0, 12.0]]), 2)
    array([[0.6, 0.8]])
    """
    cut = vectors[:, :dim]
    return cut / np.clip(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12, None)
