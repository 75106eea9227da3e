"""Knowledge distillation from a frozen teacher embedder (F2LLM-v2, docs/recipe.md §1b; notebook 03).

F2LLM-v2 trains its small models with an extra term: ``kd_weight`` times the MSE between the
student's and a frozen teacher's embeddings of the same queries, positives and negatives
(:func:`distillation_loss`; the trainer wraps its contrastive loss in :class:`Distillation`). The
teacher never changes, so the kit embeds each distinct text once and keeps the vector
(:class:`Teacher`): over several epochs, or when the same label text is a document again and
again, the teacher's cost is paid once.

Two forms (``TrainConfig.kd_mode``):

- ``"embeddings"``: the released formula; the teacher must be at least as wide as the student
  (its vector is cut to the student's width).
- ``"similarity"``: the kit's variant for a narrower teacher (MiniLM 384-d -> SmolLM2 576-d):
  the MSE between the two models' query-document cosine matrices
  (:func:`similarity_distillation_loss`).
- ``"auto"``: ``"embeddings"`` when the teacher is wide enough, else ``"similarity"``.

The released code feeds the teacher the student's token ids (same tokenizer) and matches raw,
unnormalised states; the kit's teacher has its own tokenizer and both sides are the models'
normalised embeddings (departure, docs/recipe.md §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from minif2.model import DEFAULT_QUERY_TEMPLATE, Embedder
from minif2.pooling import instruction_prefix

__all__ = ["Distillation", "Teacher", "distillation_loss", "kd_loss", "similarity_distillation_loss"]


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


class Teacher:
    """A frozen embedder whose vectors are computed once per distinct text and cached.

    A teacher that takes no instructions (MiniLM) sees a query without the student's instruction
    prefix, as it was trained; one that takes them (Qwen3-Embedding) sees the query as the student does.
    """

    def __init__(
        self,
        model: str,
        max_length_tokens: int | None = None,
        batch_size: int = 64,
        query_template: str = DEFAULT_QUERY_TEMPLATE,
    ) -> None:
        self.embedder = Embedder.from_pretrained(model, max_length_tokens=max_length_tokens)
        self.embedder.eval().requires_grad_(False)
        self.batch_size = batch_size
        self.query_template = query_template
        self.cache: dict[str, Tensor] = {}

    def teacher_text(self, text: str) -> str:
        """The text as the teacher should read it: without the instruction when it takes none."""
        if self.embedder.takes_instructions:
            return text
        prefix = instruction_prefix(text, self.query_template)
        return text if prefix is None else text[len(prefix) :]

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed(self, texts: Sequence[str]) -> Tensor:
        """``(len(texts), dim)`` teacher embeddings; only texts not seen before are encoded."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            plain = [self.teacher_text(t) for t in missing]
            vectors = self.embedder.encode(plain, batch_size=self.batch_size, convert_to_tensor=True)
            self.cache.update(zip(missing, vectors))
        if not texts:
            return torch.empty(0, self.dim)
        return torch.stack([self.cache[t] for t in texts])


def kd_loss(
    student: tuple[Tensor, Tensor, Tensor],
    teacher: tuple[Tensor, Tensor, Tensor],
    mode: str = "auto",
) -> Tensor:
    """The distillation term for one micro-batch: ``(q (b,d), p (b,d), n (b,k,d))`` of each model.

    Example:
        >>> q = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
        >>> n = torch.zeros(3, 0, 4)
        >>> kd_loss((q, q, n), (q, q, n)).item()  # a student equal to its teacher
        0.0
    """
    if mode == "auto":
        mode = "embeddings" if teacher[0].shape[-1] >= student[0].shape[-1] else "similarity"
    if mode == "embeddings":
        return distillation_loss(student, teacher)
    if mode != "similarity":
        raise ValueError(f"kd_mode must be 'auto', 'embeddings' or 'similarity', got {mode!r}")
    q, p, n = student
    tq, tp, tn = teacher
    docs = torch.cat([p, n.reshape(-1, p.shape[-1])])
    teacher_docs = torch.cat([tp, tn.reshape(-1, tp.shape[-1])]).to(docs.device)
    return similarity_distillation_loss(q, docs, tq.to(q.device), teacher_docs)


@dataclass(frozen=True)
class Distillation:
    """Any contrastive loss plus ``weight`` times the distillation term: F2LLM-v2's KD (docs/recipe.md §1b).

    Called with the micro-batch (its texts go to the teacher), it returns the base loss's parts,
    ``"kd"`` (the unweighted term, :func:`kd_loss`) and ``"loss" = base loss + weight * kd``.

    Example:
        >>> from minif2.training.losses import F2LLMLoss
        >>> class Batch: queries, positives, negatives = ["q"], ["p"], []
        >>> class Fixed:  # a teacher that knows the student's own vectors
        ...     dim = 2
        ...     def embed(self, texts): return torch.eye(2)[: len(texts)]
        >>> q, n = torch.eye(2)[:1], torch.zeros(1, 0, 2)
        >>> parts = Distillation(F2LLMLoss(), Fixed())(q, q, n, "clustering", Batch())
        >>> sorted(parts), parts["kd"].item()
        (['hard', 'kd', 'loss'], 0.0)
    """

    base: Any
    teacher: Any  # a Teacher (or anything with ``embed(texts)`` and ``dim``)
    weight: float = 1.0  # F2LLM-v2: 1.0
    mode: str = "auto"  # embeddings | similarity | auto (module docstring)

    def __call__(self, query: Tensor, positive: Tensor, negatives: Tensor, family: str, batch: Any = None):
        parts = dict(self.base(query, positive, negatives, family, batch))
        b, k = negatives.shape[0], negatives.shape[1]
        teacher_negatives = self.teacher.embed(batch.negatives).reshape(b, k, self.teacher.dim)
        targets = (self.teacher.embed(batch.queries), self.teacher.embed(batch.positives), teacher_negatives)
        parts["kd"] = kd_loss((query, positive, negatives), targets, self.mode)
        parts["loss"] = parts["loss"] + self.weight * parts["kd"]
        return parts

    def local(self) -> Distillation:
        return replace(self, base=self.base.local())
