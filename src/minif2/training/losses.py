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
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from minif2.config import TRAINING_4B
from minif2.schema import training_family

__all__ = [
    "GatherMode",
    "distillation_loss",
    "f2llm_loss",
    "gather",
    "hard_negative_loss",
    "in_batch_loss",
    "matryoshka_dims",
    "similarity_distillation_loss",
]

GatherMode = Literal["autograd", "no_grad", "detached"]
TEMPERATURE = TRAINING_4B["temperature"]  # docs/recipe.md §1: tau = 0.05, i.e. sentence-transformers' scale = 20


def hard_negative_loss(
    query: Tensor, positive: Tensor, negatives: Tensor | None, temperature: float = TEMPERATURE
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
        logits = torch.cat([pos, neg], dim=1)  # (b, 1 + n)
    labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits / temperature, labels)


def in_batch_loss(query: Tensor, documents: Tensor, temperature: float = TEMPERATURE, offset: int = 0) -> Tensor:
    """Mean cross-entropy of each query against ALL documents; query i's positive is ``documents[offset + i]``.

    Every other positive of the global batch serves as a negative (docs/recipe.md §1, retrieval only).

    Args:
        query: ``(b, d)`` this rank's query embeddings.
        documents: ``(B, d)`` the global batch's positives in rank order (from :func:`gather`).
        temperature: tau; logits are cosine / tau.
        offset: index of this rank's first positive in ``documents`` (rank * b).

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
    logits = query @ documents.T / temperature  # (b, B)
    labels = torch.arange(offset, offset + query.shape[0], device=query.device)
    return F.cross_entropy(logits, labels)


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


def gather(t: Tensor, mode: GatherMode = "autograd") -> tuple[Tensor, int]:
    """All ranks' ``t`` concatenated in rank order, and this rank's offset into it.

    Returns ``(t, 0)`` when torch.distributed is not initialised (one process). Ranks may hold
    different batch sizes (the sampler's last partial batch with ``drop_last=False``).

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
) -> dict[str, Tensor]:
    """F2LLM's training loss for one micro-batch from ONE source (docs/recipe.md §1a).

    Args:
        query, positive: ``(b, d)``; negatives: ``(b, n, d)`` (the step's sampled negatives).
        family: the batch's training family or task type (``retrieval``, ``sts``, ``nli``, ...
            count as retrieval; ``classification``, ``clustering`` do not; see
            :func:`minif2.schema.training_family`).
        temperature: tau (0.05 in F2LLM).
        gather_mode: how other ranks' positives join the in-batch loss (:func:`gather`).

    Returns:
        ``{"loss": hard + in_batch, "hard": ..., "in_batch": ...}``; ``"in_batch"`` is ABSENT
        (not zero) for classification and clustering batches, so logs never average in fake zeros.

    Example:
        >>> q = torch.eye(2)
        >>> sorted(f2llm_loss(q, q, None, "clustering"))
        ['hard', 'loss']
    """
    out = {"hard": hard_negative_loss(query, positive, negatives, temperature)}
    if training_family(family) == "retrieval":
        documents, offset = gather(positive, gather_mode)
        out["in_batch"] = in_batch_loss(query, documents, temperature, offset)
    out["loss"] = sum(out.values())  # type: ignore[assignment]
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


def distillation_loss(
    student: tuple[Tensor, Tensor, Tensor | None],
    teacher: tuple[Tensor, Tensor, Tensor | None],
) -> Tensor:
    """F2LLM-v2's knowledge-distillation term: MSE(student, teacher) on queries + positives + negatives.

    Each of the three is ``F.mse_loss`` (mean over every coordinate) between the student's
    embedding and the teacher's cut to the student's dimension (``teacher[..., :d]``); the
    negatives' term is skipped when either side has none. The trainer adds ``kd_weight`` times
    this to the contrastive losses (docs/recipe.md §1b).

    Args:
        student: ``(query (b, d), positive (b, d), negatives (b, n, d) or None)``.
        teacher: the same three from the frozen teacher, with dimension ``D >= d``.

    References:
        F2LLM-v2 (arXiv 2603.19223); released code ``F2LLM/utils.py`` v2 (docs/recipe.md §1b).

    Example:
        >>> s = (torch.zeros(1, 2), torch.zeros(1, 2), None)
        >>> t = (torch.ones(1, 3), torch.zeros(1, 3), None)  # only the first 2 teacher coordinates count
        >>> distillation_loss(s, t).item()
        1.0
    """
    d = student[0].shape[-1]
    if teacher[0].shape[-1] < d:
        raise ValueError(
            f"distillation_loss: the teacher's dimension {teacher[0].shape[-1]} is smaller than the student's {d}; "
            "use similarity_distillation_loss"
        )
    total = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        if s is None or t is None or s.numel() == 0:
            continue
        total = total + F.mse_loss(s, t[..., :d].to(s.dtype))
    return total


def similarity_distillation_loss(
    query: Tensor, documents: Tensor, teacher_query: Tensor, teacher_documents: Tensor
) -> Tensor:
    """The kit's KD for a teacher of ANOTHER width: MSE between the two models' query-document cosine matrices.

    F2LLM-v2's rule (:func:`distillation_loss`) cuts the teacher's vector to the student's width,
    which needs a teacher at least as wide (in v2 the teacher is a larger F2LLM). The CPU course
    distils all-MiniLM-L6-v2 (384-d) into SmolLM2 (576-d), so it matches what does not depend on
    the width: the ``(b, m)`` matrix of cosine similarities between the batch's queries and all its
    documents (positives and negatives), as in relational / similarity-preserving distillation.
    No extra parameters, and the student keeps its own space. Inputs are L2-normalised.

    Args:
        query: ``(b, d)`` student queries; documents: ``(m, d)`` student documents.
        teacher_query: ``(b, D)``; teacher_documents: ``(m, D)`` (any D).

    Example:
        >>> q = torch.eye(2)
        >>> similarity_distillation_loss(q, q, torch.eye(3)[:2], torch.eye(3)[:2]).item()  # same geometry
        0.0
    """
    student_sim = query @ documents.T
    teacher_sim = (teacher_query @ teacher_documents.T).to(student_sim.dtype)
    return F.mse_loss(student_sim, teacher_sim)
