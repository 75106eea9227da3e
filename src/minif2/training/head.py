"""After the contrastive steps: distil the teacher's similarity geometry into a Dense head (issue 23; notebook 03).

Why. On 2 cores the CPU course trains its 4-layer model for 40 steps, about 1,300 samples: enough to learn code
search, not enough to become a general embedder. On held-out general text the trained model lost to its own
untrained base (issue 23): a mean-pooled decoder's vectors start almost parallel (mean cosine 0.94), and 40 steps
do not spread them the way a good embedder does. Distillation needs no labels, so every sentence of the training
data is signal; but each extra transformer step costs seconds.

What. The transformer's pooled vectors of ``texts`` general sentences (every training text, split into sentences)
are computed ONCE; a Dense layer ``dim -> dim`` (``Embedder.add_head``, initialised to the identity) is then
trained for thousands of steps on the cached vectors, in seconds, to match the teacher's cosine matrices on
random batches (the kit's similarity distillation, ``distill.similarity_distillation_loss``; relational
distillation, Park et al. 2019, arXiv 1904.05068). A linear map can undo the shared direction and stretch the
axes that separate meanings (what BERT-whitening does by hand, Su et al. 2021, arXiv 2103.15316); the teacher
says which. The transformer keeps the layers it trained; the head is saved as sentence-transformers' ``Dense``
module, so the folder gives the same vectors in sentence-transformers and :class:`minif2.Embedder`.

A departure from F2LLM (one stage, no head): docs/recipe.md §4, ``configs/tiny/train.yaml``. Off by default
(``TrainConfig.head_steps: 0``). This module trains only the head; it does not load data or save models
(``training/trainer.py``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from minif2.model import Embedder
from minif2.schema import SENTENCE_END
from minif2.training.distill import Teacher, similarity_distillation_loss

__all__ = ["HeadReport", "head_texts", "pooled_features", "train_head"]


def head_texts(texts: Iterable[str], limit: int, seed: int, min_words: int = 3, max_words: int = 60) -> list[str]:
    """Distinct sentences of ``texts`` (each text split at sentence ends; short ones kept whole), a seeded
    sample of at most ``limit``.

    >>> head_texts(["Snow is white. Coal is black.", "Snow is white."], limit=10, seed=0)
    ['Coal is black.', 'Snow is white.']
    """
    found: dict[str, None] = {}
    for text in texts:
        for sentence in SENTENCE_END.split(" ".join(text.split())):
            if min_words <= len(sentence.split()) <= max_words:
                found.setdefault(sentence, None)
    sentences = sorted(found)
    random.Random(seed).shuffle(sentences)
    return sorted(sentences[:limit])


@torch.no_grad()
def pooled_features(embedder: Embedder, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """``(len(texts), hidden)`` pooled vectors before any head and before L2-normalisation: the head's input."""
    head, normalize = embedder.head, embedder.config.normalize
    embedder.head, embedder.config.normalize = None, False
    try:
        return embedder.encode(texts, batch_size=batch_size, convert_to_tensor=True)
    finally:
        embedder.head, embedder.config.normalize = head, normalize


@dataclass
class HeadReport:
    """What the head stage did: texts, steps, the distillation loss at the first and the last step."""

    texts: int
    steps: int
    loss_first: float
    loss_last: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train_head(
    embedder: Embedder,
    teacher: Teacher,
    texts: list[str],
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> HeadReport:
    """Add (or keep training) ``embedder``'s Dense head so its cosines on ``texts`` match ``teacher``'s.

    Each step draws ``batch_size`` cached texts (seeded) and takes one AdamW step on
    ``MSE(student cos matrix, teacher cos matrix)``; the transformer is not touched.
    """
    if not texts:
        raise ValueError("train_head: no texts to distil (give at least one sentence)")
    features = pooled_features(embedder, texts)  # (n, hidden)
    targets = teacher.embed(texts).to(features.device)  # (n, teacher dim), L2-normalised
    head = embedder.head if embedder.head is not None else embedder.add_head()
    head.train()
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        rows = torch.randint(0, len(texts), (min(batch_size, len(texts)),), generator=generator)
        student = F.normalize(head(features[rows]), dim=-1)  # (b, dim)
        loss = similarity_distillation_loss(student, student, targets[rows], targets[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    head.eval()
    return HeadReport(texts=len(texts), steps=steps, loss_first=losses[0], loss_last=losses[-1])
