"""F2LLM's two contrastive losses, as pure functions of embeddings (docs/recipe.md §1, §1a; notebook 03).

F2LLM trains on (query, positive, hard negatives) with cosine similarity and a
temperature tau = 0.05 (sentence-transformers' convention: ``scale = 1 / temperature``,
so 20 = tau 0.05). Its released code sums two SEPARATE softmaxes (docs/recipe.md §1a):

- :func:`hard_negative_loss`: each query against [its positive, its own negatives];
- :func:`in_batch_loss`: each query against every positive of the GLOBAL batch,
  applied to retrieval sources only (:func:`f2llm_loss` decides from the task family).

sentence-transformers' ``MultipleNegativesRankingLoss`` instead puts the hard negatives
and the in-batch documents into ONE softmax; the two agree only where one of the two
sets is empty (tests/test_losses.py checks both cases).

Across processes the in-batch documents come from :func:`gather`. Its default,
``"autograd"``, lets the gradient of every rank's loss flow back to the rank that
produced each document, so 2 processes of batch b match 1 process of batch 2b (the
kit's improvement over F2LLM's code; ``"no_grad"`` and ``"detached"`` reproduce the
code's choices). This module does not embed text, pick negatives (``training/sampler.py``) or
step an optimiser (``training/trainer.py``); every input is an L2-normalised float tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from minif2.config import TRAINING_4B
from minif2.schema import training_family

__all__ = [
    "GatherMode",
    "LossForm",
    "DUPLICATE_COSINE",
    "f2llm_loss",
    "false_negatives",
    "gather",
    "hard_negative_loss",
    "in_batch_loss",
    "matryoshka_dims",
    "single_softmax_loss",
    "training_loss",
    "F2LLMLoss",
    "LayerMatryoshka",
    "MLL_EXITS",
    "Matryoshka",
    "SingleSoftmaxLoss",
    "make_loss",
    "mll_exit_layers",
]

GatherMode = Literal["autograd", "no_grad", "detached"]
TEMPERATURE = TRAINING_4B["temperature"]  # docs/recipe.md §1: tau = 0.05, i.e. sentence-transformers' scale = 20


DUPLICATE_COSINE = 1.0 - 1e-5  # two documents this close are one text (the kit's stand-in for Qwen3's text equality)


def false_negatives(scores: Tensor, positive_score: Tensor, doc_vs_positive: Tensor, margin: float) -> Tensor:
    """Which candidates to mask as false negatives (Qwen3-Embedding's rule; docs/recipe.md §4).

    A candidate is masked when the query scores it more than ``margin`` above its own positive
    (``scores > positive_score + margin``) or when it is the positive's text again; the kit, which sees
    vectors, not texts, takes a cosine with the positive of at least :data:`DUPLICATE_COSINE` as the same text.

    Args:
        scores: ``(b, m)`` query-candidate cosines; positive_score: ``(b, 1)``.
        doc_vs_positive: ``(b, m)`` cosines between each candidate and the query's positive.

    Example:
        >>> false_negatives(torch.tensor([[0.9, 0.5]]), torch.tensor([[0.6]]), torch.tensor([[0.2, 1.0]]), 0.1)
        tensor([[True, True]])
    """
    return (scores > positive_score + margin) | (doc_vs_positive >= DUPLICATE_COSINE)


def hard_negative_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    temperature: float = TEMPERATURE,
    margin: float | None = None,
    masked: dict[str, int] | None = None,
) -> Tensor:
    """Mean over the batch of the cross-entropy of each query over [its positive, its own negatives].

    ``l_hard = -log( e^{s(q,d+)/tau} / (e^{s(q,d+)/tau} + sum_j e^{s(q,d-_j)/tau}) )`` with s
    the cosine similarity (a dot product: inputs are L2-normalised). Query i never sees
    query k's negatives: that is the in-batch loss's job, and only for retrieval.

    Args:
        query: ``(b, d)`` query embeddings (with the task instruction applied).
        positive: ``(b, d)`` embeddings of each query's positive document.
        negatives: ``(b, n, d)`` embeddings of each query's n hard negatives; n may be 0
            (or ``None``), and then the loss is exactly 0.
        temperature: tau; logits are cosine / tau.
        margin: with a number, mask false negatives (:func:`false_negatives`); ``None`` (F2LLM) masks none.
        masked: a dict whose ``"hard"`` count this call increases by the negatives it masked.

    References:
        F2LLM (arXiv 2510.02294) §3; released code ``F2LLM/utils.py::hard_loss`` (docs/recipe.md §1a).

    Inputs:
        +------------------------------------------+-----------------+
        | Inputs                                   | Labels          |
        +==========================================+=================+
        | (query, positive, negative_1..negative_n) | none (label 0) |
        +------------------------------------------+-----------------+

    Relations:
        With b = 1 it equals sentence-transformers' ``MultipleNegativesRankingLoss(scale=1/tau)``
        on (anchor, positive, negative_1, ..., negative_n); with b > 1 MNRL also shows each
        query the OTHER queries' positives and negatives, this loss does not.

    Example:
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> p = torch.tensor([[0.6, 0.8]])  # cosine 0.6
        >>> n = torch.tensor([[[0.8, 0.6]]])  # cosine 0.8: a negative closer than the positive
        >>> round(hard_negative_loss(q, p, n).item(), 4)  # log(1 + e^{(0.8 - 0.6) / 0.05}) = log(1 + e^4)
        4.0181
    """
    pos = (query * positive).sum(-1, keepdim=True)  # (b, 1)
    if negatives is None or negatives.shape[1] == 0:
        logits = pos
    else:
        neg = torch.einsum("bd,bnd->bn", query, negatives)  # (b, n)
        if margin is not None:
            mask = false_negatives(neg, pos, torch.einsum("bd,bnd->bn", positive, negatives), margin)
            neg = neg.masked_fill(mask, float("-inf"))
            if masked is not None:
                masked["hard"] = masked.get("hard", 0) + int(mask.sum())
        logits = torch.cat([pos, neg], dim=1)  # (b, 1 + n)
    labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits / temperature, labels)


def in_batch_loss(
    query: Tensor,
    documents: Tensor,
    temperature: float = TEMPERATURE,
    offset: int = 0,
    margin: float | None = None,
    masked: dict[str, int] | None = None,
) -> Tensor:
    """Mean cross-entropy of each query against ALL documents; query i's positive is ``documents[offset + i]``.

    Every other positive of the global batch serves as a negative (docs/recipe.md §1, retrieval only).

    Args:
        query: ``(b, d)`` this rank's query embeddings.
        documents: ``(B, d)`` the global batch's positives in rank order (from :func:`gather`).
        temperature: tau; logits are cosine / tau.
        offset: index of this rank's first positive in ``documents`` (rank * b).
        margin, masked: false-negative masking, as in :func:`hard_negative_loss` (count key ``"in_batch"``);
            the query's own positive is never masked.

    References:
        F2LLM §3; released code ``F2LLM/utils.py::inbatch_loss`` (labels = arange(b) + b * rank).

    Inputs:
        +-------------------------------------+------------------------+
        | Inputs                              | Labels                 |
        +=====================================+========================+
        | (query, all positives of the batch) | offset + row index     |
        +-------------------------------------+------------------------+

    Relations:
        On one process (offset 0, B = b) it equals ``MultipleNegativesRankingLoss(scale=1/tau)``
        on (anchor, positive) pairs; MNRL's ``gather_across_devices=True`` is the multi-process twin.

    Example:
        >>> q = torch.eye(2)
        >>> round(in_batch_loss(q, q).item(), 6)  # -log(e^20 / (e^20 + e^0))
        0.0
    """
    if documents.shape[0] < offset + query.shape[0]:
        raise ValueError(
            f"in_batch_loss: {documents.shape[0]} documents cannot hold positives "
            f"{offset}..{offset + query.shape[0] - 1}"
        )
    labels = torch.arange(offset, offset + query.shape[0], device=query.device)
    scores = query @ documents.T  # (b, B)
    if margin is not None:
        own = documents[labels]  # (b, d): each query's positive
        mask = false_negatives(scores, scores.gather(1, labels[:, None]), own @ documents.T, margin)
        mask[torch.arange(len(labels)), labels] = False
        scores = scores.masked_fill(mask, float("-inf"))
        if masked is not None:
            masked["in_batch"] = masked.get("in_batch", 0) + int(mask.sum())
    return F.cross_entropy(scores / temperature, labels)


class _AllGather(torch.autograd.Function):
    """All-gather whose backward returns to each rank the SUM over ranks of the gradient of its own slice."""

    @staticmethod
    def forward(ctx, t: Tensor, sizes: list[int]) -> Tensor:  # type: ignore[override]
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        return _raw_gather(t, sizes)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # every rank's loss may use every rank's slice
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def _raw_gather(t: Tensor, sizes: list[int]) -> Tensor:
    """Concatenate every rank's ``t`` (sizes may differ along dim 0: padded to the largest, then cut)."""
    longest = max(sizes)
    padded = t.contiguous()
    if t.shape[0] < longest:
        padded = torch.cat([padded, padded.new_zeros(longest - t.shape[0], *t.shape[1:])])
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def gather(t: Tensor, mode: GatherMode | None = "autograd") -> tuple[Tensor, int]:
    """All ranks' ``t`` concatenated in rank order, and this rank's offset into it.

    Returns ``(t, 0)`` when torch.distributed is not initialised (one process). Ranks may hold
    different batch sizes (the kit's sampler gives every rank a full batch, as accelerate does, but the
    gather does not depend on it).

    Args:
        t: ``(b, ...)`` this rank's tensor.
        mode: ``"autograd"`` (default): gradients from every rank's loss flow back to the
            rank that owns each slice (backward = all-reduce SUM, then this rank's slice).
            Each rank's loss is a mean over its own b queries, and data-parallel engines
            (DDP, DeepSpeed) AVERAGE gradients over the W ranks, so the update equals that
            of one process on the global batch W*b: ``(1/W) sum_r d(sum_r' loss_r')/d(theta)
            = d(mean_r loss_r)/d(theta)``. With an engine that SUMS gradients, divide the
            loss by W. ``"no_grad"``: other ranks' slices are constants, this rank's own
            slice keeps its gradient (sentence-transformers' ``all_gather(with_grad=False)``).
            ``"detached"``: everything gathered is a constant, as ``accelerator.gather`` in
            F2LLM's v1 code on more than one process (there positives receive no gradient
            from the in-batch loss at all).

    Example:
        >>> gather(torch.ones(2, 3))[1]  # one process: identity, offset 0
        0
    """
    if mode is None:  # this process only (validation on the main process)
        return t, 0
    if mode not in ("autograd", "no_grad", "detached"):
        raise ValueError(f"gather: mode must be 'autograd', 'no_grad' or 'detached', got {mode!r}")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t, 0
    rank, world = dist.get_rank(), dist.get_world_size()
    size = torch.tensor([t.shape[0]], dtype=torch.long, device=t.device)
    all_sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(all_sizes, size)
    sizes = [int(s.item()) for s in all_sizes]
    offset = sum(sizes[:rank])
    if mode == "autograd":
        return _AllGather.apply(t, sizes), offset
    with torch.no_grad():
        gathered = _raw_gather(t.detach(), sizes)
    if mode == "detached":
        return gathered, offset
    return torch.cat([gathered[:offset], t, gathered[offset + t.shape[0] :]]), offset


def f2llm_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    family: str,
    temperature: float = TEMPERATURE,
    gather_mode: GatherMode = "autograd",
    margin: float | None = None,
) -> dict[str, Tensor]:
    """F2LLM's training loss for one micro-batch from ONE source (docs/recipe.md §1a).

    Args:
        query, positive: ``(b, d)``; negatives: ``(b, n, d)`` (the step's sampled negatives).
        family: the batch's training family or task type (``retrieval``, ``sts``, ``nli``, ...
            count as retrieval; ``classification``, ``clustering`` do not; see
            :func:`minif2.schema.training_family`).
        temperature: tau (0.05 in F2LLM).
        gather_mode: how other ranks' positives join the in-batch loss (:func:`gather`).
        margin: false-negative masking in both softmaxes (:func:`false_negatives`); ``None``: F2LLM's loss.

    Returns:
        ``{"loss": hard + in_batch, "hard": ..., "in_batch": ...}``; ``"in_batch"`` is ABSENT
        (not zero) for classification and clustering batches, so logs never average in fake zeros.
        With ``margin``, also ``"masked"``: the negatives masked in this micro-batch (both softmaxes).

    Example:
        >>> q = torch.eye(2)
        >>> sorted(f2llm_loss(q, q, None, "clustering"))
        ['hard', 'loss']
    """
    masked: dict[str, int] = {}
    out = {"hard": hard_negative_loss(query, positive, negatives, temperature, margin, masked)}
    if training_family(family) == "retrieval":
        documents, offset = gather(positive, gather_mode)
        out["in_batch"] = in_batch_loss(query, documents, temperature, offset, margin, masked)
    out["loss"] = sum(out.values())  # type: ignore[assignment]
    if margin is not None:
        out["masked"] = torch.tensor(float(sum(masked.values())))
    return out


def matryoshka_dims(dim: int, min_dim: int = 8) -> list[tuple[int, float]]:
    """``[(d_k, weight_k)]``: full ``dim``, then the powers of two below it down to ``min_dim`` (docs/recipe.md §1b).

    F2LLM-v2 also computes the losses on the first ``d_k`` dimensions (re-normalised), each
    term weighted ``1 / (n * sqrt(dim / d_k))`` for the n-th dimension counted from the largest.

    Example:
        >>> [(d, round(w, 3)) for d, w in matryoshka_dims(32)]
        [(32, 1.0), (16, 0.354), (8, 0.167)]
    """
    if dim < min_dim:
        raise ValueError(f"matryoshka_dims: dim {dim} is smaller than min_dim {min_dim}")
    dims = [dim] + [2**k for k in range(int(math.log2(dim)), -1, -1) if min_dim <= 2**k < dim]
    return [(d, 1.0 / (n * math.sqrt(dim / d))) for n, d in enumerate(dims, start=1)]


# -- Beyond F2LLM v1 (issue 15): one softmax (QZhou / sentence-transformers) and Matryoshka (F2LLM-v2) --------

LossForm = Literal["f2llm", "single"]


def single_softmax_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    temperature: float = TEMPERATURE,
    in_batch: bool = True,
    gather_mode: GatherMode = "autograd",
    margin: float | None = None,
    masked: dict[str, int] | None = None,
) -> Tensor:
    """ONE cross-entropy per query over its positive, the hard negatives AND the batch's other documents.

    This is sentence-transformers' ``MultipleNegativesRankingLoss`` form, the loss of the
    instruction-shift study and of QZhou-style training (docs/recipe.md §2, §3), offered beside
    F2LLM's two separate softmaxes (:func:`f2llm_loss`). The candidates of query i are every
    positive and every hard negative of the GLOBAL batch (other ranks' through :func:`gather`);
    its label is its own positive. With ``in_batch=False`` only its own [positive, negatives]
    compete, which is :func:`hard_negative_loss`.

    Args:
        query, positive: ``(b, d)``; negatives: ``(b, n, d)`` or ``None``.
        temperature: tau (sentence-transformers' ``scale = 1 / tau``).
        in_batch: let the other queries' documents compete (the trainer turns it off for
            classification and clustering, whose shared label documents would be false negatives).
        gather_mode: how other ranks' documents join (:func:`gather`).

    Relations:
        On one process equal to ``MultipleNegativesRankingLoss(scale=1/tau)`` on
        (anchor, positive, negative_1, ..., negative_n) for any b (tests/test_losses.py).

    Example:
        >>> q = torch.eye(2)
        >>> round(single_softmax_loss(q, q, None).item(), 6)  # no negatives: the in-batch loss
        0.0
    """
    if not in_batch:
        return hard_negative_loss(query, positive, negatives, temperature, margin, masked)
    documents = positive
    if negatives is not None and negatives.shape[1] > 0:
        documents = torch.cat([positive, negatives.reshape(-1, negatives.shape[-1])])  # (b + b*n, d)
    gathered, offset = gather(documents, gather_mode)
    return in_batch_loss(query, gathered, temperature, offset, margin, masked)


def _truncate(t: Tensor | None, dim: int) -> Tensor | None:
    """The first ``dim`` coordinates, L2-normalised again (F2LLM-v2 ``utils.py``: slice, then ``F.normalize``)."""
    return None if t is None else F.normalize(t[..., :dim], p=2, dim=-1)


def training_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    family: str,
    temperature: float = TEMPERATURE,
    gather_mode: GatherMode = "autograd",
    form: LossForm = "f2llm",
    mrl_dims: list[tuple[int, float]] | None = None,
) -> dict[str, Tensor]:
    """The trainer's contrastive loss as one function: :func:`make_loss` built and applied once.

    ``form="f2llm"`` is :func:`f2llm_loss` (keys ``loss``, ``hard`` and, for retrieval,
    ``in_batch``); ``form="single"`` is :func:`single_softmax_loss` (key ``loss`` only), with
    the in-batch documents for retrieval families only, as F2LLM gates its in-batch loss.
    With ``mrl_dims`` the parts are Matryoshka-weighted sums (:class:`Matryoshka`).

    Example:
        >>> q = torch.eye(16)[:1]
        >>> parts = training_loss(q, q, None, "clustering", mrl_dims=matryoshka_dims(16))
        >>> sorted(parts), round(parts["loss"].item(), 6)
        (['hard', 'loss', 'mrl'], 0.0)
    """
    return make_loss(form, temperature, gather_mode, mrl_dims)(query, positive, negatives, family)


# -- The losses as objects (sentence-transformers' style): built once from the config, called per micro-batch --
#
# Every loss maps one micro-batch's embeddings to a dict of named parts whose ``"loss"`` is the number
# to minimise; the trainer logs every part, and validation calls the SAME object (``local()``: no
# all-gather, since only the main process validates), so both report the same loss for the same batch.


@dataclass(frozen=True)
class F2LLMLoss:
    """F2LLM's two separate softmaxes, hard + in-batch (:func:`f2llm_loss`; docs/recipe.md §1a).

    Example:
        >>> q = torch.eye(2)
        >>> sorted(F2LLMLoss()(q, q, None, "retrieval"))
        ['hard', 'in_batch', 'loss']
    """

    temperature: float = TEMPERATURE
    gather_mode: GatherMode | None = "autograd"  # None: this process only (validation)
    false_negative_margin: float | None = None  # Qwen3-Embedding's masking; None: F2LLM's loss

    def __call__(self, query: Tensor, positive: Tensor, negatives: Tensor | None, family: str, batch: Any = None):
        margin = self.false_negative_margin
        return f2llm_loss(query, positive, negatives, family, self.temperature, self.gather_mode, margin)  # type: ignore[arg-type]

    def local(self) -> F2LLMLoss:
        """The same loss on this process's batch alone (validation runs on the main process only)."""
        return replace(self, gather_mode=None)


@dataclass(frozen=True)
class SingleSoftmaxLoss:
    """One softmax over positive, hard negatives and (retrieval only) in-batch documents (:func:`single_softmax_loss`).

    Example:
        >>> q = torch.eye(2)
        >>> sorted(SingleSoftmaxLoss()(q, q, None, "clustering"))
        ['loss']
    """

    temperature: float = TEMPERATURE
    gather_mode: GatherMode | None = "autograd"
    false_negative_margin: float | None = None  # Qwen3-Embedding's masking; None: no mask

    def __call__(self, query: Tensor, positive: Tensor, negatives: Tensor | None, family: str, batch: Any = None):
        retrieval, masked = training_family(family) == "retrieval", {}
        margin = self.false_negative_margin
        loss = single_softmax_loss(
            query, positive, negatives, self.temperature, retrieval, self.gather_mode, margin, masked
        )  # type: ignore[arg-type]
        return {"loss": loss} if margin is None else {"loss": loss, "masked": torch.tensor(float(sum(masked.values())))}

    def local(self) -> SingleSoftmaxLoss:
        return replace(self, gather_mode=None)


@dataclass(frozen=True)
class Matryoshka:
    """F2LLM-v2's ``use_mrl`` around any loss: ``base`` again on the first d_k dimensions, re-normalised.

    Each part is the weighted sum over ``dims`` (:func:`matryoshka_dims`: weight ``1 / (n * sqrt(d / d_k))``,
    the full dimension first with weight 1), as v2's ``hard_loss`` / ``inbatch_loss`` with ``use_mrl``
    (docs/recipe.md §1b), NOT divided by their number. ``"mrl"`` is the share of ``"loss"`` that the
    truncated dimensions add (``loss`` minus the full-dimension loss), logged so the two can be told apart.
    ``dims=None``: computed from the embedding width and ``min_dim`` at each call.

    Example:
        >>> q = torch.eye(16)[:1]
        >>> round(Matryoshka(F2LLMLoss())(q, q, None, "clustering")["mrl"].item(), 6)
        0.0
    """

    base: Any
    min_dim: int = 8
    dims: tuple[tuple[int, float], ...] | None = None

    def __call__(self, query: Tensor, positive: Tensor, negatives: Tensor | None, family: str, batch: Any = None):
        dims = self.dims or matryoshka_dims(query.shape[-1], self.min_dim)
        out: dict[str, Tensor] = {}
        for n, (dim, weight) in enumerate(dims):
            cut = (_truncate(query, dim), _truncate(positive, dim), _truncate(negatives, dim))
            parts = self.base(*cut, family, batch)  # type: ignore[misc]
            for name, value in parts.items():
                if name == "masked":  # a count, not a loss: the full dimension's
                    out.setdefault(name, value)
                    continue
                out[name] = out[name] + weight * value if name in out else weight * value
            if n == 0:  # the full dimension (weight 1): what the truncated ones add is counted from here
                full = out["loss"].detach()
        out["mrl"] = out["loss"].detach() - full
        return out

    def local(self) -> Matryoshka:
        return replace(self, base=self.base.local())


MLL_EXITS = (1, 2, 4, 8, 16, 24, 32, 40, 48)  # ML-Embed/model.py: the exit layers (0 is the token embeddings)


def mll_exit_layers(num_layers: int) -> list[int]:
    """ML-Embed's exit layers for a model of ``num_layers`` blocks: those of :data:`MLL_EXITS` within the
    model, and the last; the last first, as the released code orders them (``ML-Embed/model.py``).

    Example:
        >>> mll_exit_layers(30), mll_exit_layers(4), mll_exit_layers(1)
        ([30, 24, 16, 8, 4, 2, 1], [4, 2, 1], [1])
    """
    exits = [k for k in MLL_EXITS if k <= num_layers]
    return (exits if num_layers in exits else [*exits, num_layers])[::-1]


@dataclass(frozen=True)
class LayerMatryoshka:
    """ML-Embed's ``use_mll`` around any loss (arXiv 2605.15081; ``ML-Embed/utils.py``): ``base`` at every exit layer.

    The embeddings come as ``(batch, exits, dim)`` (``(batch, k, exits, dim)`` for negatives; ``Embedder.exit_layers``
    makes the model return them); each part is the MEAN over exits of the base's part, as the released loop divides
    ``loss + loss_hard + kd_weight * loss_kd`` by the number of exits (equal weights). Counts (``masked``) are summed.
    With one exit it is the base loss exactly.

    Example:
        >>> q = torch.nn.functional.normalize(torch.randn(2, 1, 8), dim=-1)
        >>> float(LayerMatryoshka(F2LLMLoss())(q, q, None, "retrieval")["loss"]) == float(
        ...     F2LLMLoss()(q[:, 0], q[:, 0], None, "retrieval")["loss"])
        True
    """

    base: Any

    def __call__(self, query: Tensor, positive: Tensor, negatives: Tensor | None, family: str, batch: Any = None):
        exits = query.shape[1]
        per_exit = [
            self.base(query[:, e], positive[:, e], None if negatives is None else negatives[:, :, e], family, batch)
            for e in range(exits)
        ]
        return {
            name: sum(p[name] for p in per_exit) / (1 if name == "masked" else exits)  # type: ignore[misc]
            for name in per_exit[0]
        }

    def local(self) -> LayerMatryoshka:
        return replace(self, base=self.base.local())


def make_loss(
    form: LossForm = "f2llm",
    temperature: float = TEMPERATURE,
    gather_mode: GatherMode = "autograd",
    mrl_dims: list[tuple[int, float]] | None = None,
    use_mrl: bool = False,
    mrl_min_dim: int = 8,
    false_negative_margin: float | None = None,
) -> Any:
    """The contrastive loss object of a configuration: the form, wrapped in :class:`Matryoshka` when asked.

    Example:
        >>> make_loss("single", use_mrl=True)  # doctest: +ELLIPSIS
        Matryoshka(base=SingleSoftmaxLoss(temperature=0.05, gather_mode='autograd', ...), min_dim=8, dims=None)
    """
    if form not in ("f2llm", "single"):
        raise ValueError(f"training_loss: form must be 'f2llm' or 'single', got {form!r}")
    base = (F2LLMLoss if form == "f2llm" else SingleSoftmaxLoss)(temperature, gather_mode, false_negative_margin)
    if mrl_dims or use_mrl:
        return Matryoshka(base, mrl_min_dim, tuple(mrl_dims) if mrl_dims else None)
    return base
