"""Depth pruning (``minif2 prune``) and F2LLM-v2's knowledge distillation (issues 15 and 17).

The KD loss is checked against a reimplementation of the released ``F2LLM/utils.py`` (v2) formula
(docs/recipe.md §1b); the pruned folder against transformers and sentence-transformers.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from minif2.model import Embedder, format_query
from minif2.schema import Sample, write_unified
from minif2.training.checkpoint import read_metrics
from minif2.training.distill import Teacher, distillation_loss, kd_loss, similarity_distillation_loss
from minif2.training.prune import PruneConfig, cli, main, prune_layers, train_top_layers
from minif2.training.trainer import train

TEXTS = ["Return the sum of the array elements.", "tensor", "How do I reverse a list in Python?"]


def _released_kd(q, p, n, tq, tp, tn):
    """The released v2 rule (docs/recipe.md §1b): three MSEs, teacher vectors cut to the student's width."""
    d = q.size(-1)
    loss = F.mse_loss(q, tq[..., :d]) + F.mse_loss(p, tp[..., :d])
    if n is not None:
        loss = loss + F.mse_loss(n, tn[..., :d])
    return loss


def test_distillation_loss_matches_released_formula():
    g = torch.Generator().manual_seed(0)
    q, p, n = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g), torch.randn(4, 3, 8, generator=g)
    tq, tp, tn = torch.randn(4, 12, generator=g), torch.randn(4, 12, generator=g), torch.randn(4, 3, 12, generator=g)
    ours = distillation_loss((q, p, n), (tq, tp, tn))
    torch.testing.assert_close(ours, _released_kd(q, p, n, tq, tp, tn), rtol=1e-6, atol=1e-6)
    no_negatives = distillation_loss((q, p, None), (tq, tp, None))
    torch.testing.assert_close(no_negatives, _released_kd(q, p, None, tq, tp, None), rtol=1e-6, atol=1e-6)
    by_hand = ((q - tq[:, :8]) ** 2).mean() + ((p - tp[:, :8]) ** 2).mean() + ((n - tn[..., :8]) ** 2).mean()
    torch.testing.assert_close(ours, by_hand, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="smaller than the student"):
        distillation_loss((tq, tp, None), (q, p, None))


def test_similarity_distillation_is_width_free_and_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    docs = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]])
    tq = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    tdocs = torch.eye(3)
    student = q @ docs.T  # [[0.6, 1, 0], [0.8, 0, 1]]
    teacher = tq @ tdocs.T  # [[1, 0, 0], [0, 0, 1]]
    expected = ((student - teacher) ** 2).mean()
    torch.testing.assert_close(similarity_distillation_loss(q, docs, tq, tdocs), expected)
    # kd_loss picks the similarity form for a narrower teacher, the released one for a wider
    n = torch.zeros(2, 0, 2)
    auto = kd_loss((q, docs[:2], n), (torch.eye(2), torch.eye(2), torch.zeros(2, 0, 2)))
    torch.testing.assert_close(auto, distillation_loss((q, docs[:2], None), (torch.eye(2), torch.eye(2), None)))
    narrow = kd_loss((torch.eye(3)[:2], torch.eye(3)[:2], torch.zeros(2, 0, 3)), (q, q, n))
    torch.testing.assert_close(narrow, similarity_distillation_loss(torch.eye(3)[:2], torch.eye(3)[:2], q, q))


def test_teacher_caches_each_text_once():
    teacher = Teacher("tiny-qwen3", max_length_tokens=16)
    first = teacher.embed(TEXTS)
    calls = []
    original = teacher.embedder.encode
    teacher.embedder.encode = lambda texts, **kw: calls.append(list(texts)) or original(texts, **kw)
    again = teacher.embed(TEXTS[::-1] + ["a new text"])
    assert calls == [["a new text"]]
    torch.testing.assert_close(again[:3], first.flip(0))
    np.testing.assert_allclose(first.numpy(), teacher.embedder.encode(TEXTS), atol=1e-5)


def test_teacher_without_instructions_reads_the_plain_query():
    """MiniLM takes no instructions: it embeds the query text without the student's instruction prefix."""
    teacher = Teacher("tiny-qwen3", max_length_tokens=32)
    teacher.embedder.config.uses_instructions = False
    query = format_query("sort a list", "Find the code.")
    np.testing.assert_allclose(teacher.embed([query]).numpy(), teacher.embedder.encode(["sort a list"]), atol=1e-6)
    teacher.embedder.config.uses_instructions = True  # a teacher that takes instructions sees what the student sees
    teacher.cache.clear()
    np.testing.assert_allclose(teacher.embed([query]).numpy(), teacher.embedder.encode([query]), atol=1e-6)


def test_prune_keeps_chosen_layers_and_loads_everywhere(tmp_path, tiny_qwen3_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    out = tmp_path / "pruned"
    assert cli(["--model", "tiny-qwen3", "--keep-layers", "1", "--out-dir", str(out), "--pooling", "mean"]) == 0
    full = AutoModel.from_pretrained(tiny_qwen3_path)
    pruned = AutoModel.from_pretrained(out)
    assert pruned.config.num_hidden_layers == 1 and len(pruned.layers) == 1
    assert len(pruned.config.layer_types) == 1
    for name, value in full.layers[1].state_dict().items():  # layer 1 became layer 0, weights untouched
        torch.testing.assert_close(pruned.layers[0].state_dict()[name], value)
    torch.testing.assert_close(pruned.embed_tokens.weight, full.embed_tokens.weight)
    assert set(load_file(out / "model.safetensors")) == {f"{k}" for k in pruned.state_dict()}

    ours = Embedder.from_pretrained(out)
    assert ours.pooling == "mean"
    reference = SentenceTransformer(str(out), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(ours.encode(TEXTS), reference, atol=1e-5)
    # the pruned model computes what the full model's first layers compute (here: layer 1 alone on the embeddings)
    ids = ours.tokenize(TEXTS[:1])
    hidden = full.embed_tokens(ids["input_ids"])
    positions = torch.arange(ids["input_ids"].shape[1])[None]
    with torch.no_grad():
        out_pruned = pruned(**ids).last_hidden_state
        rope = full.rotary_emb(hidden, positions)
        x = full.layers[1](hidden, attention_mask=None, position_ids=positions, position_embeddings=rope)
        x = x[0] if isinstance(x, tuple) else x
        torch.testing.assert_close(out_pruned, full.norm(x), rtol=1e-4, atol=1e-4)


def test_prune_rejects_bad_indices(tmp_path):
    with pytest.raises(ValueError, match="distinct indices"):
        main(PruneConfig(model="tiny-qwen3", keep_layers=[0, 0], out_dir=str(tmp_path / "x")))
    with pytest.raises(ValueError, match="distinct indices"):
        prune_layers(Embedder.from_pretrained("tiny-qwen3").backbone, [5])


def test_train_top_layers_and_kd_in_the_trainer(tmp_path, word_samples, train_config):
    """KD to MiniLM (narrower: the similarity form) with only the top layer trained: only it and the norm change."""
    samples = word_samples(random.Random(0), "ret", 16, "retrieval", 1)
    unmined = [Sample(s.query, s.positive, [], s.task, "plain", s.instruction) for s in samples]  # k = 0 rows
    data = write_unified({"ret": samples, "plain": unmined}, tmp_path / "data")
    base = Embedder.from_pretrained("tiny-qwen3").backbone.state_dict()
    cfg = train_config(data, tmp_path / "run", max_steps=6, lr=1e-2, warmup_steps=0, num_negatives=1)
    cfg = replace(cfg, max_length_tokens=16, validation_fraction=0.0, train_layers=1, teacher_model_path="minilm")
    cfg = replace(cfg, kd_weight=2.0)
    final = train(cfg)
    rows = [r for r in read_metrics(Path(cfg.out_dir) / "metrics.jsonl") if r.get("split") == "train"]
    assert all("kd" in r and r["kd"] > 0 for r in rows)
    for r in rows:  # the total is F2LLM's two losses plus kd_weight x KD
        assert r["loss"] == pytest.approx(r["hard"] + r["in_batch"] + 2.0 * r["kd"], rel=1e-4)
    trained = Embedder.from_pretrained(final).backbone.state_dict()
    changed = {k for k in base if not torch.equal(base[k], trained[k])}
    assert changed and all(k.startswith(("layers.1.", "norm.")) for k in changed)


def test_train_top_layers_freezes_all_but_the_top():
    backbone = Embedder.from_pretrained("tiny-qwen3").backbone
    train_top_layers(backbone, 1)
    trainable = {name for name, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("layers.1.", "norm.")) for name in trainable)
    with pytest.raises(ValueError):
        train_top_layers(backbone, 3)


def test_course_base_asset_is_smollm2s_first_four_layers(smollm2_path):
    """``smollm2-4l`` (configs/tiny/train.yaml's base) = SmolLM2-135M's layers 0-3, unchanged, with mean pooling."""
    from transformers import AutoModel

    from minif2.assets import resolve_model

    pruned = AutoModel.from_pretrained(resolve_model("smollm2-4l"))
    full = AutoModel.from_pretrained(smollm2_path)
    assert pruned.config.num_hidden_layers == 4 and len(full.layers) == 30
    for name, value in full.layers[3].state_dict().items():
        torch.testing.assert_close(pruned.layers[3].state_dict()[name], value)
    torch.testing.assert_close(pruned.norm.weight, full.norm.weight)
    assert Embedder.from_pretrained("smollm2-4l").pooling == "mean"


def test_an_mll_exit_is_the_model_pruned_to_that_layer(tmp_path, tiny_qwen3_path):
    """ML-Embed's exit at layer k (its states through the final norm, pooled) is what `minif2 prune --num-layers k`
    makes of the same weights: so an MLL-trained model is cut at an exit without retraining."""
    full = Embedder.from_pretrained(str(tiny_qwen3_path), pooling="mean")
    main(PruneConfig(model=str(tiny_qwen3_path), out_dir=str(tmp_path / "cut"), num_layers=1, pooling="mean"))
    cut = Embedder.from_pretrained(str(tmp_path / "cut"))
    ids = full.tokenize(TEXTS)
    full.exit_layers = [2, 1]
    with torch.no_grad():
        exits = full(ids["input_ids"], ids["attention_mask"])  # (batch, exits, dim)
        whole = full.encode(TEXTS, convert_to_tensor=True)  # encode ignores the exits: the full model
        alone = cut(ids["input_ids"], ids["attention_mask"])
    assert exits.shape == (len(TEXTS), 2, full.dim) and full.exit_layers == [2, 1]
    torch.testing.assert_close(exits[:, 0], whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(exits[:, 1], alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(exits[:, 0], exits[:, 1], atol=1e-3)  # two different models
