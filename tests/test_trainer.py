"""Tests of the trainer (issue 5): schedule, split, resume, LoRA/QLoRA, DeepSpeed parity, saved folders.

All runs use tiny-qwen3 (random 2-layer Qwen3, 64-d) on ~40 synthetic samples under tmp_path.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minif2.config import load_config, profile_path, save_config
from minif2.schema import Sample, write_unified
from minif2.training.checkpoint import read_metrics
from minif2.training.sampler import load_training_data
from minif2.training.trainer import TrainConfig, cli, train

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "apple banana cherry dog elephant fox grape house island jungle kite lemon mango night "
    "ocean piano queen river sun tree"
).split()


def _samples(rng: random.Random, source: str, n: int, task: str, n_neg: int) -> list[Sample]:
    out = []
    for _ in range(n):
        words = rng.sample(WORDS, 3)
        out.append(
            Sample(
                query=" ".join(words),
                positive=" ".join(words + rng.sample(WORDS, 2)),
                negatives=[" ".join(rng.sample(WORDS, 4)) for _ in range(n_neg)],
                task=task,
                source=source,
                instruction="Find the matching text",
            )
        )
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mined unified folder: a retrieval source (24 negatives) and a classification source (1)."""
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("mined")
    return write_unified(
        {"ret": _samples(rng, "ret", 24, "retrieval", 24), "clf": _samples(rng, "clf", 12, "classification", 1)}, folder
    )


def _cfg(data_dir: Path, out_dir: Path, **kw) -> TrainConfig:
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
    base.update(kw)
    return TrainConfig(**base)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_schedule_is_transformers_cosine_with_floor() -> None:
    """Warm-up + cosine from transformers, then never below min_lr (docs/recipe.md §1a: 1e-7)."""
    from transformers import get_cosine_schedule_with_warmup

    from minif2.training.backends import build_optimizer

    cfg = TrainConfig(lr=1e-3, min_lr=1e-5, warmup_steps=3)
    ours_opt, ours = build_optimizer(torch.nn.Linear(2, 2), cfg, total_steps=10)
    ref_opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    ref = get_cosine_schedule_with_warmup(ref_opt, 3, 10)
    for _ in range(10):
        assert ours.get_last_lr()[0] == pytest.approx(max(ref.get_last_lr()[0], 1e-5), rel=1e-12)
        ours_opt.step(), ours.step(), ref_opt.step(), ref.step()
    assert ours.get_last_lr()[0] == pytest.approx(1e-5) and ref.get_last_lr()[0] == 0.0
    assert ours_opt.defaults["betas"] == (0.9, 0.98) and ours_opt.defaults["weight_decay"] == 0.01


def test_split_is_datasets_99_1_seed_0(data_dir: Path) -> None:
    from datasets import Dataset

    data = load_training_data(data_dir, validation_fraction=0.1, seed=0)
    ref = Dataset.from_parquet(str(data_dir / "ret.parquet")).train_test_split(test_size=0.1, seed=0)
    assert data.train["ret"]["query"] == ref["train"]["query"] and len(data.validation["ret"]) == 3  # ceil(2.4)
    assert data.family == {"ret": "retrieval", "clf": "classification"}
    assert data.negatives_available == {"ret": 24, "clf": 1}
    batch = data.batch("ret", [0, 1], [5, 2])
    rows = data.train["ret"].select([0, 1])
    assert batch.queries[0] == f"Instruct: Find the matching text\nQuery: {rows[0]['query']}"
    assert batch.negatives == [
        rows[0]["negatives"][5],
        rows[0]["negatives"][2],
        rows[1]["negatives"][5],
        rows[1]["negatives"][2],
    ]


def test_full_run_logs_and_saves_loadable_embedder(data_dir: Path, tmp_path: Path) -> None:
    """The final folder loads in minif2, transformers and sentence-transformers with the same vectors."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from minif2 import Embedder

    final = train(_cfg(data_dir, tmp_path / "run", eval_every_steps=3))
    assert final == tmp_path / "run" / "final"
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl", "train")
    # ceil(21 / 4) + ceil(10 / 4) = 9 single-source steps: F2LLM's loaders keep each source's partial batch
    assert [r["step"] for r in rows] == list(range(1, 10))
    assert all(("in_batch" in r) == (r["source"] == "ret") for r in rows)  # in-batch loss for retrieval only
    valid = read_metrics(tmp_path / "run" / "metrics.jsonl", "validation")
    assert {(r["step"], r["source"]) for r in valid} == {(s, src) for s in (3, 6, 9) for src in ("ret", "clf")}
    assert rows[-1]["lr"] == pytest.approx(1e-7)  # cosine reached its floor

    texts = ["a river in the jungle", "the queen plays piano at night"]
    ours = Embedder.load(final).encode(texts)
    st = SentenceTransformer(str(final), device="cpu").encode(texts)
    tok = AutoTokenizer.from_pretrained(final)
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(final)(**enc).last_hidden_state
    last = enc["attention_mask"].sum(1) - 1
    hf = torch.nn.functional.normalize(hidden[torch.arange(2), last], dim=-1).numpy()
    np.testing.assert_allclose(st, ours, atol=1e-5)
    np.testing.assert_allclose(hf, ours, atol=1e-5)
    base = Embedder.load("tiny-qwen3").encode(texts)
    assert np.abs(base - ours).max() > 1e-3  # it trained


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_kill_and_resume_gives_identical_weights(data_dir: Path, tmp_path: Path, mode: str) -> None:
    """Kill at step 5 (after the step-4 checkpoint); resume; the final weights equal an uninterrupted run's."""
    kw = dict(
        mode=mode, save_every_steps=2, keep_checkpoints=1, eval_every_steps=3, lora_r=4, lora_alpha=8, lora_dropout=0.1
    )
    straight = train(_cfg(data_dir, tmp_path / "straight", **kw))

    class Killed(Exception):
        pass

    def kill(step: int, *_: object) -> None:
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(_cfg(data_dir, tmp_path / "killed", **kw), callbacks=[kill])
    assert sorted(p.name for p in (tmp_path / "killed").glob("step-*")) == ["step-0000004"]  # pruned to 1
    resumed = train(_cfg(data_dir, tmp_path / "killed", resume=True, **kw))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    log_a = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    log_b = read_metrics(tmp_path / "killed" / "metrics.jsonl")
    assert [r["step"] for r in log_a] == [r["step"] for r in log_b]  # nothing lost or repeated
    assert [r.get("loss") for r in log_a] == [r.get("loss") for r in log_b]


def test_unmined_data_trains_on_in_batch_loss_alone(tmp_path: Path) -> None:
    """A unified folder without negatives (step 02 skipped): hard loss is exactly 0, in-batch loss carries it."""
    folder = write_unified({"ret": _samples(random.Random(1), "ret", 12, "retrieval", 0)}, tmp_path / "unmined")
    train(_cfg(folder, tmp_path / "run", max_steps=2, eval_every_steps=1))
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert all(r["hard"] == 0.0 and r["in_batch"] > 0 for r in rows)
    assert [r["split"] for r in rows] == ["train", "validation", "train", "validation"]


def test_lora_and_qlora_train_on_cpu(data_dir: Path, tmp_path: Path) -> None:
    """LoRA and QLoRA (nf4 base via bitsandbytes) lower the training loss on repeated data."""
    for mode in ("lora", "qlora"):
        cfg = _cfg(
            data_dir, tmp_path / mode, mode=mode, num_epochs=4, lr=3e-3, lora_r=8, lora_alpha=16, lora_dropout=0.0
        )
        final = train(cfg)
        rows = [r for r in read_metrics(tmp_path / mode / "metrics.jsonl", "train") if r["source"] == "ret"]
        first, last = np.mean([r["loss"] for r in rows[:5]]), np.mean([r["loss"] for r in rows[-5:]])
        assert last < 0.8 * first, (mode, first, last)
        assert not any("lora" in k for k in _weights(final))  # adapters merged into a plain backbone


def test_deepspeed_two_processes_match_single_process(data_dir: Path, tmp_path: Path) -> None:
    """2 CPU processes x batch 2 under DeepSpeed ZeRO-2 == 1 process x batch 4 (same global batch).

    Same sampler order and negatives by construction; the autograd all-gather makes the gradients
    equal, so the losses differ only by float reduction order: tolerance 1e-4 (relative) per step.
    """
    pytest.importorskip("deepspeed")
    # drop_last: with partial batches, one process keeps the short batch while two complete it (accelerate's rule)
    single = _cfg(data_dir, tmp_path / "single", max_steps=5, drop_last=True)
    train(single)
    ds = _cfg(data_dir, tmp_path / "ds", max_steps=5, batch_size=2, drop_last=True)
    save_config(ds, tmp_path / "ds.yaml")
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train_deepspeed.sh"), "--config", str(tmp_path / "ds.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a = read_metrics(tmp_path / "single" / "metrics.jsonl", "train")
    b = read_metrics(tmp_path / "ds" / "metrics.jsonl", "train")
    assert [r["source"] for r in a] == [r["source"] for r in b] and len(a) == 5
    for ra, rb in zip(a, b):
        for key in ("loss", "hard", "in_batch", "lr", "grad_norm"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-6), (ra["step"], key)
    assert (tmp_path / "ds" / "final" / "model.safetensors").is_file()


def test_profiles_load_and_cli_runs(data_dir: Path, tmp_path: Path) -> None:
    """Every train YAML is a valid TrainConfig; the CLI trains from a config file with overrides."""
    for path in sorted((REPO / "configs").glob("*/train*.yaml")):
        cfg = load_config(TrainConfig, path)
        assert cfg.temperature == 0.05, path
    paper = load_config(TrainConfig, profile_path("paper", "train"))
    assert (paper.lr, paper.betas, paper.warmup_steps, paper.min_lr, paper.batch_size) == (
        8e-6,
        (0.9, 0.98),
        500,
        1e-7,
        16,
    )
    save_config(_cfg(data_dir, tmp_path / "unused"), tmp_path / "cfg.yaml")
    assert cli(["--config", str(tmp_path / "cfg.yaml"), "--out-dir", str(tmp_path / "cli"), "--max-steps", "2"]) == 0
    assert len(read_metrics(tmp_path / "cli" / "metrics.jsonl", "train")) == 2
    assert json.loads((tmp_path / "cli" / "run_summary.json").read_text())["total_steps"] == 2
