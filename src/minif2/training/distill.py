"""Knowledge distillation from a frozen teacher embedder (F2LLM-v2, docs/recipe.md §1b; notebook 03).

F2LLM-v2 trains its small models with an extra term: ``kd_weight`` times the MSE between the
student's and a frozen teacher's embeddings of the same queries, positives and negatives
(:func:`~minif2.training.losses.distillation_loss`). The teacher never changes, so the kit
embeds each distinct text once and keeps the vector (:class:`Teacher`): over several epochs, or
when the same label text is a document again and again, the teacher's cost is paid once.

Two forms (``TrainConfig.kd_mode``):

- ``"embeddings"``: the released formula; the teacher must be at least as wide as the student
  (its vector is cut to the student's width).
- ``"similarity"``: the kit's variant for a narrower teacher (MiniLM 384-d -> SmolLM2 576-d):
  the MSE between the two models' query-document cosine matrices
  (:func:`~minif2.training.losses.similarity_distillation_loss`).
- ``"auto"``: ``"embeddings"`` when the teacher is wide enough, else ``"similarity"``.

The released code feeds the teacher the student's token ids (same tokenizer) and matches raw,
unnormalised states; the kit's teacher has its own tokenizer and both sides are the models'
normalised embeddings (departure, docs/recipe.md §4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from minif2.model import Embedder
from minif2.training.losses import distillation_loss, similarity_distillation_loss

__all__ = ["Teacher", "kd_loss"]


class Teacher:
    """A frozen embedder whose vectors are computed once per distinct text and cached."""

    def __init__(self, model: str, max_length_tokens: int | None = None, batch_size: int = 64) -> None:
        self.embedder = Embedder.from_pretrained(model, max_length_tokens=max_length_tokens)
        self.embedder.eval().requires_grad_(False)
        self.batch_size = batch_size
        self.cache: dict[str, Tensor] = {}

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed(self, texts: Sequence[str]) -> Tensor:
        """``(len(texts), dim)`` teacher embeddings; only texts not seen before are encoded."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            vectors = self.embedder.encode(missing, batch_size=self.batch_size, convert_to_tensor=True)
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
