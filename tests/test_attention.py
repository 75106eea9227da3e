"""Attention choice (FlashAttention 2 when usable, else sdpa) and bidirectional embedders that survive a reload."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from transformers import AutoModel

from minif2 import attention
from minif2.attention import choose_attention
from minif2.config import load_config, profile_path
from minif2.model import Embedder
from minif2.training.trainer import TrainConfig

TEXTS = ["the cat sat on the mat", "a tensor is an array", "tea"]


@pytest.mark.parametrize(
    ("usable", "bidirectional", "expected"),
    [(True, False, "flash_attention_2"), (False, False, None), (True, True, "sdpa")],
)
def test_auto_picks_flash_attention_only_where_it_can_run(monkeypatch, caplog, usable, bidirectional, expected):
    monkeypatch.setattr(attention, "flash_attention_usable", lambda: usable)
    with caplog.at_level(logging.INFO, logger="minif2.attention"):
        assert choose_attention("auto", bidirectional) == expected
    assert "attention: " in caplog.text  # the choice is logged with its reason


def test_explicit_flash_attention_with_bidirectional_falls_back_to_sdpa():
    with pytest.warns(UserWarning, match="cannot run bidirectional"):
        assert choose_attention("flash_attention_2", bidirectional=True) == "sdpa"
    assert choose_attention("flash_attention_2") == "flash_attention_2"
    with pytest.raises(ValueError, match="attn_implementation"):
        choose_attention("flash")


def test_profiles_ask_for_auto_and_load_on_this_machine(tiny_qwen3_path):
    for profile in ("paper", "small-gpu"):
        assert load_config(TrainConfig, profile_path(profile, "train")).attn_implementation == "auto"
    emb = Embedder.from_pretrained(str(tiny_qwen3_path), attn_implementation="auto")
    expected = "flash_attention_2" if attention.flash_attention_usable() else "sdpa"
    assert emb.backbone.config._attn_implementation == expected


def test_bidirectional_embedder_reloads_bidirectional(tiny_qwen3_path, tmp_path):
    emb = Embedder.from_pretrained(str(tiny_qwen3_path), pooling="mean", bidirectional=True)
    ours = emb.encode(TEXTS)
    with pytest.warns(UserWarning, match="restored by minif2"):
        emb.save(tmp_path / "bi")
    again = Embedder.from_pretrained(str(tmp_path / "bi"))
    assert again.config.bidirectional and again.pooling == "mean"
    np.testing.assert_allclose(again.encode(TEXTS), ours, atol=1e-6)
    causal = Embedder.from_pretrained(str(tmp_path / "bi"), bidirectional=False).encode(TEXTS)
    assert np.abs(causal - ours).max() > 1e-4  # the flag matters: a causal reload gives other vectors

    # the README's recipe for AutoModel users: a 4-D mask that lets every token see every real token
    hf = AutoModel.from_pretrained(tmp_path / "bi", attn_implementation="sdpa")
    batch = again.tokenizer(TEXTS, padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    seen = mask[:, None, None, :].bool().expand(-1, 1, mask.shape[1], -1)
    mask_4d = torch.zeros(seen.shape).masked_fill(~seen, torch.finfo(torch.float32).min)
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
    with torch.no_grad():
        hidden = hf(input_ids=batch["input_ids"], attention_mask=mask_4d, position_ids=position_ids).last_hidden_state
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    np.testing.assert_allclose(torch.nn.functional.normalize(mean, dim=-1).numpy(), ours, atol=1e-5)


def test_a_folder_saved_with_flash_attention_reloads_where_there_is_none(tiny_qwen3_path, tmp_path, monkeypatch):
    monkeypatch.setattr(attention, "flash_attention_usable", lambda: False)
    emb = Embedder.from_pretrained(str(tiny_qwen3_path), attn_implementation="sdpa")
    emb.config.attn_implementation = "flash_attention_2"  # as if trained on a GPU that had it
    emb.save(tmp_path / "m")
    again = Embedder.from_pretrained(str(tmp_path / "m"))
    assert again.config.attn_implementation == "auto" and again.backbone.config._attn_implementation == "sdpa"


def test_the_causal_mask_by_hand_is_what_the_decoder_runs_and_bidirectional_differs(tiny_qwen3_path):
    """The two masks notebook 06 draws: a lower triangle over real keys reproduces the backbone's own causal run;
    ``bidirectional_mask`` lets every query see every real key (padding stays hidden) and changes the states."""
    emb = Embedder.from_pretrained(str(tiny_qwen3_path))
    batch = emb.tokenizer(TEXTS, padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    n = mask.shape[1]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))[None, None] & mask[:, None, None, :].bool()
    causal_4d = torch.zeros(causal.shape).masked_fill(~causal, torch.finfo(torch.float32).min)
    bidir = attention.bidirectional_mask(mask)
    assert torch.equal(bidir[0, 0] == 0, mask[0].bool().expand(n, n))
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
    with torch.no_grad():
        own = emb.backbone(input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids)
        by_hand = emb.backbone(input_ids=batch["input_ids"], attention_mask=causal_4d, position_ids=position_ids)
        both_ways = emb.backbone(input_ids=batch["input_ids"], attention_mask=bidir, position_ids=position_ids)
    real = mask.bool()
    own, by_hand, both_ways = (o.last_hidden_state[real] for o in (own, by_hand, both_ways))
    torch.testing.assert_close(by_hand, own, atol=1e-5, rtol=1e-5)
    assert (both_ways - own).abs().max() > 1e-3
