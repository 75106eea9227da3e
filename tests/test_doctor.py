"""``minif2 doctor`` (issue 25): each changed setting really changes what the tiny model sees, and the
baseline row is ``evaluate_models``' own score on the same task."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from mteb.types import PromptType

from minif2 import Embedder
from minif2.config import InputError
from minif2.data.task_folders import write_task_folder
from minif2.evaluation import doctor
from minif2.evaluation.doctor import DoctorConfig, describe_changes, diagnose, format_table
from minif2.evaluation.evaluate import EvalConfig, evaluate_models
from minif2.evaluation.intervals import paired_interval
from minif2.evaluation.mteb_model import MtebEmbedder
from minif2.evaluation.mteb_tasks import load_local_task

TEXTS = ["rivers flow to the sea through green valleys", "a cat", "def add(a, b): return a + b", "rain"]
INSTRUCTION = "Given a topic, retrieve passages about it."


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    words = "river bank money tree leaf song drum code python error rain wind cat dog seed soil".split()
    docs = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choices(words, k=8))} for i in range(20)]
    queries = [{"_id": f"q{i}", "text": " ".join(rng.choices(words, k=3))} for i in range(8)]
    qrels = [(f"q{i}", f"d{j}", 1) for i in range(8) for j in (i, i + 8)]
    folder = tmp_path_factory.mktemp("doctor") / "ret"
    return write_task_folder(
        folder, "ToyRetrieval", "retrieval", INSTRUCTION, corpus=docs, queries=queries, qrels=qrels
    )


def test_baseline_row_equals_evaluate_models(task: Path, tiny_qwen3_path: Path, tmp_path: Path) -> None:
    cfg = DoctorConfig(model=str(tiny_qwen3_path), tasks=str(task), out_dir=str(tmp_path), checks=["instructions"])
    table = doctor.main(cfg)
    reference = evaluate_models([str(tiny_qwen3_path)], str(task), cfg=EvalConfig(use_cache=False, plot=False))
    baseline = table[table["setting"] == "baseline"].iloc[0]
    assert baseline["main_score"] == pytest.approx(reference["main_score"].iloc[0], abs=1e-9)
    assert baseline["value"] == "as saved" and not baseline["differs_from_saved"]
    assert list(table["value"]) == ["as saved", "off", "both"]  # the saved value (queries) is the baseline
    off = table[table["value"] == "off"].iloc[0]
    assert off["delta"] == pytest.approx(off["main_score"] - baseline["main_score"])
    assert off["main_score"] != baseline["main_score"]  # the instruction really reached the queries
    assert (tmp_path / "doctor.csv").is_file()
    # the change's interval is the paired bootstrap of the per-query scores, the same rows for both
    unprompted = evaluate_models(
        [str(tiny_qwen3_path)], str(task), cfg=EvalConfig(use_cache=False, plot=False, instructions=False)
    )
    (ref,), (other,) = reference.attrs["row_scores"].values(), unprompted.attrs["row_scores"].values()
    gain, low, high = paired_interval(ref, other, seed=42)
    assert (off["delta_low"], off["delta_high"]) == pytest.approx((low, high), abs=1e-9) and low < high
    assert off["delta"] == pytest.approx(gain, abs=1e-4)  # mteb rounds its main score to 5 places
    assert (baseline["delta_low"], baseline["delta_high"]) == (0.0, 0.0)
    assert describe_changes(table).startswith("ToyRetrieval: ")


def _forward_spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    original = Embedder.forward

    def spy(self: Embedder, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        dtype = next(self.backbone.parameters()).dtype
        seen.append({"ids": input_ids.clone(), "mask": attention_mask.clone(), "pooling": self.pooling, "dtype": dtype})
        return original(self, input_ids, attention_mask)

    monkeypatch.setattr(Embedder, "forward", spy)
    return seen


def test_each_setting_changes_what_the_model_sees(task: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """evaluate_models is replaced by a recorder: queries and documents go through each built model."""
    metadata = load_local_task(task).metadata
    seen = _forward_spy(monkeypatch)
    calls: list[dict[str, list[dict[str, Any]]]] = []

    def record(models: list[Any], tasks: str, labels: Any = None, cfg: EvalConfig | None = None) -> pd.DataFrame:
        model = models[0]
        assert isinstance(model, MtebEmbedder) and cfg is not None and not cfg.use_cache
        sides = {}
        for side in (PromptType.query, PromptType.document):
            seen.clear()
            model.encode([{"text": TEXTS}], task_metadata=metadata, hf_split="test", hf_subset="default",
                         prompt_type=side, batch_size=cfg.batch_size)  # fmt: skip
            sides[side.value] = list(seen)
        calls.append(sides)
        row = {"task": "ToyRetrieval", "type": "Retrieval", "main_score": 0.5 + 0.01 * len(calls)}
        row |= {"metric": "ndcg_at_10", "model": model.label, "revision": model.revision, "ci_low": 0.1}
        return pd.DataFrame([row])

    monkeypatch.setattr(doctor, "evaluate_models", record)
    cfg = DoctorConfig(model="tiny-qwen3", tasks=str(task), max_lengths_tokens=[6], batch_sizes=[2])
    table = diagnose(cfg)
    assert len(calls) == len(table)
    by_row = {(r.setting, str(r.value)): calls[i] for i, r in enumerate(table.itertuples())}
    base_q, base_d = by_row[("baseline", "as saved")]["query"], by_row[("baseline", "as saved")]["document"]
    eos = Embedder.from_pretrained("tiny-qwen3").tokenizer.eos_token_id

    def last_real(call: dict[str, Any]) -> list[int]:
        ids, mask = call["ids"], call["mask"]
        return [int(ids[i][mask[i] > 0][-1]) for i in range(len(ids))]

    assert not torch.equal(by_row[("instructions", "off")]["query"][0]["ids"], base_q[0]["ids"])
    assert torch.equal(by_row[("instructions", "off")]["document"][0]["ids"], base_d[0]["ids"])
    assert torch.equal(by_row[("instructions", "both")]["query"][0]["ids"], base_q[0]["ids"])
    assert not torch.equal(by_row[("instructions", "both")]["document"][0]["ids"], base_d[0]["ids"])
    assert base_d[0]["mask"][:, 0].all() and not by_row[("padding_side", "left")]["document"][0]["mask"][:, 0].all()
    assert set(last_real(base_d[0])) == {eos}
    assert eos not in last_real(by_row[("append_eos", "False")]["document"][0])
    assert by_row[("pooling", "mean")]["query"][0]["pooling"] == "mean" and base_q[0]["pooling"] == "last"
    assert (by_row[("pooling", "mean-text")]["query"][0]["mask"] == 2).any()  # instruction tokens not pooled
    assert not (by_row[("pooling", "mean")]["query"][0]["mask"] == 2).any()
    assert base_q[0]["ids"].shape[1] > 6 >= by_row[("max_length_tokens", "6")]["query"][0]["ids"].shape[1]
    assert by_row[("torch_dtype", "bfloat16")]["query"][0]["dtype"] == torch.bfloat16
    assert base_q[0]["dtype"] == torch.float32
    assert len(base_q) == 1 and len(by_row[("batch_size", "2")]["query"]) == 2  # 4 texts: 1 batch of 32, 2 of 2
    # the table: deltas from the baseline, flags on values that are not the saved ones, extra columns kept
    assert table["delta"].iloc[0] == 0 and table["delta"].iloc[1] == pytest.approx(0.01)
    assert table.loc[table["setting"] != "batch_size", "differs_from_saved"].iloc[1:].all()
    assert not table.loc[table["setting"] == "batch_size", "differs_from_saved"].any()
    assert "ci_low" in table.columns and "ci_low" in format_table(table)


def test_unknown_check_is_refused_by_name(task: Path) -> None:
    with pytest.raises(InputError, match="'checks'.*poolin"):
        doctor.variants({}, DoctorConfig(checks=["poolin"]))


def test_baseline_scored_away_from_the_saved_settings_is_flagged(task: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def constant(models: list[Any], tasks: str, labels: Any = None, cfg: EvalConfig | None = None) -> pd.DataFrame:
        row = {"task": "ToyRetrieval", "type": "Retrieval", "main_score": 0.5, "metric": "m", "model": "x"}
        return pd.DataFrame([{**row, "revision": models[0].revision}])

    monkeypatch.setattr(doctor, "evaluate_models", constant)
    table = diagnose(DoctorConfig(model="tiny-qwen3", tasks=str(task), torch_dtype="bfloat16", checks=["torch_dtype"]))
    assert list(table["value"]) == ["torch_dtype=bfloat16", "float32"]
    assert list(table["differs_from_saved"]) == [True, False]  # the float32 row restores the saved setting
