"""Which attention kernel a backbone loads with: FlashAttention 2 where it can run, else transformers' default.

F2LLM loads its backbone with ``attn_implementation="flash_attention_2"`` (``F2LLM/model.py``,
docs/recipe.md §1a). That needs the ``flash-attn`` package and a CUDA GPU of the Ampere
generation or newer, so the kit's profiles ask for ``"auto"``: FlashAttention 2 when both are
there, otherwise transformers' default (``sdpa`` for the kit's backbones), and the choice is logged.

Bidirectional attention (QZhou, docs/recipe.md §2) is given to the backbone as a 4-D mask, which
``sdpa`` and ``eager`` honour and FlashAttention 2 cannot take (it runs causal or padding-only
masks), so a bidirectional embedder never gets FlashAttention 2: ``auto`` picks ``sdpa`` and an
explicit request falls back to ``sdpa`` with a warning. Used by ``model.Embedder.from_pretrained``.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from typing import Literal, get_args

import torch

__all__ = ["ATTENTION_CHOICES", "Attention", "bidirectional_mask", "choose_attention", "flash_attention_usable"]

Attention = Literal["auto", "flash_attention_2", "sdpa", "eager"]  # or None: transformers' own choice
ATTENTION_CHOICES = get_args(Attention)
FLASH = "flash_attention_2"
log = logging.getLogger(__name__)


def flash_attention_usable() -> bool:
    """``flash-attn`` is importable and a CUDA device of compute capability 8.0 or more is present."""
    if importlib.util.find_spec("flash_attn") is None or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability() >= (8, 0)


def choose_attention(requested: str | None, bidirectional: bool = False) -> str | None:
    """The ``attn_implementation`` to load with; ``None`` leaves the choice to transformers.

    >>> choose_attention("sdpa"), choose_attention(None)
    ('sdpa', None)
    """
    if requested is not None and requested not in ATTENTION_CHOICES:
        raise ValueError(f"attn_implementation must be one of {ATTENTION_CHOICES} or None, got {requested!r}")
    if requested == "auto":
        if bidirectional:
            chosen = "sdpa"
            why = "bidirectional attention needs a 4-D mask, which FlashAttention 2 cannot take"
        elif flash_attention_usable():
            chosen, why = FLASH, "flash-attn is installed and the CUDA device supports it"
        else:
            chosen, why = None, "no flash-attn package or no CUDA device of compute capability >= 8.0"
        log.info("attention: %s (%s)", chosen or "transformers' default (sdpa where supported)", why)
        return chosen
    if requested == FLASH and bidirectional:
        warnings.warn(
            "attn_implementation='flash_attention_2' cannot run bidirectional attention (it takes no 4-D mask); "
            "using 'sdpa' instead",
            stacklevel=2,
        )
        return "sdpa"
    return requested


def bidirectional_mask(attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """QZhou's bidirectional attention as the additive 4-D mask a decoder takes: (batch, 1, seq, seq), 0 where a
    query token may attend, the dtype's minimum where it may not.

    Every query token sees every real key token (``attention_mask`` > 0) in both directions, as in an encoder;
    padding stays hidden. Without it, transformers builds the causal mask: token i sees keys 0..i only.

    >>> bidirectional_mask(torch.tensor([[1, 1, 0]]))[0, 0].eq(0).int().tolist()
    [[1, 1, 0], [1, 1, 0], [1, 1, 0]]
    """
    keys = attention_mask[:, None, None, :] > 0  # (batch, 1, 1, seq)
    full = keys.expand(-1, 1, attention_mask.shape[1], -1)
    return torch.zeros(full.shape, dtype=dtype, device=attention_mask.device).masked_fill(~full, torch.finfo(dtype).min)
