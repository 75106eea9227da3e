"""Intervals: mteb's main score recomputed from its own predictions, the bootstrap on textbook cases,
and paired comparisons on the same rows (evaluation/intervals.py)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from test_evaluation import _make_tasks

from minif2.evaluation.evaluate import EvalConfig, evaluate_models, main, paired_gains
from minif2.evaluation.intervals import RowScores, bootstrap_interval, paired_interval, verdict


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, tiny_qwen3_path) -> pd.DataFrame:
    root = _make_tasks(tmp_path_factory.mktemp("tasks"))
    cfg = EvalConfig(out_dir=str(tmp_path_factory.mktemp("eval")), use_cache=False)
    return evaluate_models(["minilm", str(tiny_qwen3_path)], str(root), labels=["minilm", "tiny"], cfg=cfg)


def test_rows_recompute_mtebs_main_score_for_every_type(scored: pd.DataFrame) -> None:
    assert set(scored["type"]) == {"Retrieval", "STS", "Classification", "Clustering", "PairClassification"}
    for row in scored.itertuples():
        rows = scored.attrs["row_scores"][(row.model, row.task)]
        assert rows.statistic() == pytest.approx(row.main_score, abs=1e-4), row.task  # mteb rounds to 5 decimals
        assert row.ci_low <= row.main_score <= row.ci_high and row.ci_high - row.ci_low > 0.01, row.task
    assert scored.set_index(["model", "task"]).loc[("minilm", "ToySTS"), "rows"] == 30


@pytest.mark.parametrize("kind", ["mean", "spearman", "ap"])
def test_resamples_scored_at_once_equal_one_at_a_time(kind: str) -> None:
    """``statistics`` (numpy, all resamples) = ``statistic`` (scipy / sklearn, one resample), ties and a
    constant resample included, in blocks smaller than the resamples too."""
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, 40).astype(float)  # many ties
    gold = rng.integers(0, 2, 40) if kind == "ap" else rng.integers(0, 6, 40).astype(float)
    scores = RowScores("T", kind, values, None if kind == "mean" else gold)
    idx = np.vstack([rng.integers(0, 40, (300, 40)), np.full((1, 40), 3)])  # the last: one row repeated
    expected = np.array([scores.statistic(i) for i in idx])
    np.testing.assert_allclose(scores.statistics(idx), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores.statistics(np.repeat(idx, 1000, axis=1)[:60]), expected[:60], atol=1e-12)


def test_bootstrap_of_a_proportion_matches_the_normal_formula() -> None:
    """Textbook case: 240 of 400 right; the 95 % interval is p +- 1.96 sqrt(p (1 - p) / n) = 0.6 +- 0.048."""
    rows = RowScores("t", "mean", np.array([1.0] * 240 + [0.0] * 160))
    low, high = bootstrap_interval(rows, seed=0)
    half = 1.96 * math.sqrt(0.6 * 0.4 / 400)
    assert low == pytest.approx(0.6 - half, abs=0.01) and high == pytest.approx(0.6 + half, abs=0.01)
    assert bootstrap_interval(RowScores("t", "mean", np.full(50, 0.7)), seed=0) == pytest.approx((0.7, 0.7))


def test_pairing_sees_a_small_gain_that_separate_intervals_cannot() -> None:
    """Each row's difficulty is shared by both models; the second is better by 0.02 on every row."""
    difficulty = np.random.default_rng(0).uniform(0, 1, 200)
    base, better = RowScores("t", "mean", difficulty), RowScores("t", "mean", difficulty + 0.02)
    base_low, base_high = bootstrap_interval(base)
    better_low, _ = bootstrap_interval(better)
    assert better_low < base_high  # the two intervals overlap: apart, they say nothing
    gain, low, high = paired_interval(base, better)
    assert gain == pytest.approx(0.02) and low == pytest.approx(0.02) and verdict(low, high) == "gain"
    assert verdict(*paired_interval(base, base)[1:]) == "tie"
    with pytest.raises(ValueError, match="not the same rows"):
        paired_interval(base, RowScores("t", "mean", difficulty[:100]))


def test_paired_gains_over_the_base(scored: pd.DataFrame) -> None:
    gains = paired_gains(scored, "minilm")
    assert list(gains["model"].unique()) == ["tiny"] and len(gains) == scored["task"].nunique()
    table = scored.set_index(["model", "task"])["main_score"]
    for row in gains.itertuples():
        assert row.gain == pytest.approx(table[("tiny", row.task)] - table[("minilm", row.task)], abs=1e-4)
        assert row.gain_low <= row.gain <= row.gain_high and row.verdict == verdict(row.gain_low, row.gain_high)
    with pytest.raises(ValueError, match="not one of the scored models"):
        paired_gains(scored, "nobody")


def test_main_writes_intervals_and_gains(tmp_path, tiny_qwen3_path) -> None:
    root = _make_tasks(tmp_path / "tasks")
    for name in ("ret", "cls", "cls2", "clu", "pair"):  # one task is enough here
        shutil.rmtree(root / name)
    cfg = EvalConfig(models=["minilm", str(tiny_qwen3_path)], labels=["a", "b"], tasks=str(root), base="a")
    cfg.out_dir = str(tmp_path / "eval")
    out = main(cfg)
    results = pd.read_csv(out / "results.csv")
    assert {"ci_low", "ci_high", "rows"} <= set(results.columns) and results["ci_low"].notna().all()
    gains = pd.read_csv(out / "gains.csv")
    assert list(gains.columns) == ["task", "type", "model", "base", "gain", "gain_low", "gain_high", "verdict"]
    again = pd.read_csv(main(cfg) / "results.csv")  # from mteb's cache: the same intervals
    pd.testing.assert_frame_equal(results, again)


def test_answer_key_04_4_agrees_with_the_library_bootstrap() -> None:
    import runpy

    from minif2.config import repo_root

    key = runpy.run_path(str(repo_root() / "teachers" / "solutions" / "04_mteb_scoring.py"))["answer_4"]
    low, high = bootstrap_interval(RowScores("t", "mean", np.array([1.0] * 28 + [0.0] * 22)))
    assert key == pytest.approx((high - low) / 2, abs=0.01)
