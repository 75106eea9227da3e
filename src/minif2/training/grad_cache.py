"""Gradient caching: a large contrastive batch on small memory, with the SAME loss and gradients.

A contrastive loss needs every embedding of the batch at once, so a plain step keeps the
activations of every text for the backward pass: memory grows with the batch. Gradient
caching (Gao et al., "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup", arXiv 2101.06983, "GradCache"; sentence-transformers' ``CachedMultipleNegativesRankingLoss``,
the loss of the study in docs/recipe.md §3) splits the step in three:

1. embed the batch chunk by chunk WITHOUT a graph (no activations kept);
2. compute the loss on those embeddings and its gradient with respect to them;
3. embed each chunk again WITH a graph and back-propagate that chunk's slice of the
   gradient into the weights, one chunk at a time.

The chain rule makes the weight gradient exactly the uncached one; only one chunk's
activations live at a time, for one extra forward pass. :func:`cached_embed` packs steps 1
and 3 into an autograd function (as ``torch.utils.checkpoint`` does), so the trainer's usual
``loss.backward()`` runs step 3 itself. Each chunk's random state is recorded in step 1 and
replayed in step 3, so dropout draws the same masks twice (as sentence-transformers' ``RandContext``).

:class:`SavedTensorMeter` measures what the technique saves on any device: the peak bytes of
tensors autograd holds for the backward. This module does not compute losses (``training/losses.py``).
Taught in ``notebooks/06_beyond_f2llm.ipynb``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["SavedTensorMeter", "cached_embed"]

Forward = Callable[[Tensor, Tensor], Tensor]


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


class _CachedEmbed(torch.autograd.Function):
    """Forward: chunked embedding without a graph. Backward: chunked re-embedding with one, back-propagated."""

    @staticmethod
    def forward(ctx, forward: Forward, chunks: list[tuple[Tensor, Tensor]], anchor: Tensor) -> Tensor:  # type: ignore[override]
        ctx.forward_fn, ctx.chunks, ctx.states = forward, chunks, []
        outputs = []
        for ids, mask in chunks:
            ctx.states.append(_rng_state(ids.device))
            outputs.append(forward(ids, mask).detach())
        ctx.device = outputs[0].device
        return torch.cat(outputs)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, None]:  # type: ignore[override]
        start = 0
        cuda = [ctx.device] if ctx.device.type == "cuda" else []
        for (ids, mask), (cpu_state, cuda_state) in zip(ctx.chunks, ctx.states):
            with torch.random.fork_rng(devices=cuda):  # replay step 1's random state, then restore the global one
                torch.set_rng_state(cpu_state)
                if cuda_state is not None:
                    torch.cuda.set_rng_state(cuda_state, ctx.device)
                with torch.enable_grad():
                    out = ctx.forward_fn(ids, mask)
            out.backward(grad[start : start + out.shape[0]].to(out.dtype))
            start += out.shape[0]
        return None, None, None


def _chunks(input_ids: Tensor, attention_mask: Tensor, size: int) -> list[tuple[Tensor, Tensor]]:
    """Rows in chunks of ``size``; trailing columns that are padding in the whole chunk are dropped.

    Only TRAILING padding is cut, so token positions never move (left-padded batches keep their width).
    """
    out = []
    for start in range(0, input_ids.shape[0], size):
        ids, mask = input_ids[start : start + size], attention_mask[start : start + size]
        used = mask.any(0).nonzero()
        width = int(used.max()) + 1 if used.numel() else mask.shape[1]
        out.append((ids[:, :width], mask[:, :width]))
    return out


def cached_embed(forward: Forward, input_ids: Tensor, attention_mask: Tensor, chunk_size: int) -> Tensor:
    """``forward(input_ids, attention_mask)`` computed ``chunk_size`` rows at a time, with cached gradients.

    The result has the uncached value; back-propagating through it re-runs ``forward`` per chunk
    and gives the weights of ``forward`` the uncached gradient. ``chunk_size <= 0`` or a batch that
    fits in one chunk is an ordinary call.

    Args:
        forward: the embedding function, e.g. a training backend's ``forward``; it must be
            deterministic given the random state (dropout is replayed, see the module docstring).
        input_ids, attention_mask: ``(n, L)`` token ids and mask.
        chunk_size: rows per forward pass.

    Example:
        >>> lin = torch.nn.Linear(3, 2)
        >>> f = lambda ids, mask: lin(ids.float())
        >>> x = torch.arange(12.0).reshape(4, 3)
        >>> cached_embed(f, x, torch.ones(4, 3), 2).sum().backward()
        >>> torch.allclose(lin.weight.grad, x.sum(0).expand(2, 3))
        True
    """
    if chunk_size <= 0 or input_ids.shape[0] <= chunk_size:
        return forward(input_ids, attention_mask)
    anchor = torch.empty(0, requires_grad=True)  # puts the function in the graph; its gradient is unused
    return _CachedEmbed.apply(forward, _chunks(input_ids, attention_mask, chunk_size), anchor)


class SavedTensorMeter:
    """Context manager: peak bytes of the tensors autograd keeps for the backward pass (activations).

    Counts every tensor saved by an operation while the context is open, including those saved
    by :func:`cached_embed`'s re-forward inside the backward, until autograd frees it; the same view
    saved twice counts once (its own bytes, not its whole storage's). On a GPU,
    ``torch.cuda.max_memory_allocated`` tells the same story with the weights and the optimiser
    on top; on a CPU there is no such counter.

    Example:
        >>> w = torch.ones(100, 100, requires_grad=True)
        >>> with SavedTensorMeter() as meter:
        ...     (torch.ones(10, 100) @ w).relu().sum().backward()
        >>> meter.peak_bytes  # the input of the matmul (its weight is not a saved activation) and relu's output
        8000
    """

    def __init__(self) -> None:
        self.live: dict[Any, list[int]] = {}  # storage key -> [bytes, references]
        self.current = self.peak_bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _key(self, t: Tensor) -> Any:
        return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())

    def _pack(self, t: Tensor) -> Any:
        if t.requires_grad and t.grad_fn is None:  # a leaf parameter, not an activation
            return t
        key = self._key(t)
        entry = self.live.setdefault(key, [t.numel() * t.element_size(), 0])
        if entry[1] == 0:
            self.current += entry[0]
            self.peak_bytes = max(self.peak_bytes, self.current)
        entry[1] += 1
        return _Held(t, key, self)

    @staticmethod
    def _unpack(held: Any) -> Tensor:
        return held.tensor if isinstance(held, _Held) else held

    def _release(self, key: Any) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)


class _Held:
    """A saved tensor; tells its meter when autograd lets go of it."""

    def __init__(self, tensor: Tensor, key: Any, meter: SavedTensorMeter) -> None:
        self.tensor, self.key, self.meter = tensor, key, meter

    def __del__(self) -> None:
        self.meter._release(self.key)
