"""The Dense head (training/head.py, issue 23): identity at the start, trained on cached features to the teacher's
cosines without touching the transformer, saved so that sentence-transformers gives the same vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minif2 import Embedder
from minif2.evaluation.mteb_model import model_revision
from minif2.training.distill import Teacher, similarity_distillation_loss
from minif2.training.head import head_texts, pooled_features, train_head
from minif2.training.train_config import TrainConfig, check_config

TEXTS = [
    "The cat sat on the mat.",
    "A dog barked at the postman.",
    "Stock markets fell sharply on Monday.",
    "The central bank raised interest rates.",
    "Rain is expected over the weekend.",
    "The new phone has a larger screen.",
    "She plays the violin in an orchestra.",
    "Volcanoes release gas and ash.",
]


@pytest.fixture()
def student(tiny_qwen3_path) -> Embedder:
    return Embedder.from_pretrained(str(tiny_qwen3_path), pooling="mean")


def test_identity_head_changes_nothing_and_saves_as_a_dense_module(student, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    before = student.encode(TEXTS)
    student.add_head()
    np.testing.assert_allclose(student.encode(TEXTS), before, atol=1e-6)
    with torch.no_grad():
        student.head.weight.add_(0.2 * torch.randn_like(student.head.weight))
    after = student.encode(TEXTS)
    assert np.abs(after - before).max() > 1e-3
    folder = student.save(tmp_path / "headed")
    np.testing.assert_allclose(Embedder.from_pretrained(str(folder)).encode(TEXTS), after, atol=1e-6)
    reference = SentenceTransformer(str(folder), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(reference, after, atol=1e-5)


def test_train_head_moves_the_cosines_toward_the_teacher_and_leaves_the_transformer(student) -> None:
    teacher = Teacher("minilm")
    weights = {k: v.clone() for k, v in student.backbone.state_dict().items()}
    plain = torch.nn.functional.normalize(pooled_features(student, TEXTS), dim=-1)
    target = teacher.embed(TEXTS)
    before = similarity_distillation_loss(plain, plain, target, target).item()
    revision = model_revision(student, instructions=False)
    report = train_head(student, teacher, TEXTS, steps=300, batch_size=8, lr=1e-2)
    vectors = student.encode(TEXTS, convert_to_tensor=True)
    after = similarity_distillation_loss(vectors, vectors, target, target).item()
    assert after < 0.5 * before and report.loss_last < report.loss_first
    assert all(torch.equal(weights[k], v) for k, v in student.backbone.state_dict().items())
    assert model_revision(student, instructions=False) != revision  # the head is part of the cache identity


def test_head_needs_a_teacher() -> None:
    with pytest.raises(ValueError, match="head_steps.*teacher_model_path"):
        check_config(TrainConfig(head_steps=10, teacher_model_path=None))
    assert head_texts(["One two three. Four five six.", "One two three."], 1, seed=0) in (
        ["One two three."],
        ["Four five six."],
    )


def test_train_head_refuses_no_texts(student) -> None:
    with pytest.raises(ValueError, match="no texts to distil"):
        train_head(student, None, [], steps=1)  # type: ignore[arg-type]
