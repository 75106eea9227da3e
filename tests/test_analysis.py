"""minif2.analysis: queries, the study on planted synthetic embeddings, main() and the CLI on real models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from minif2.analysis.procrustes import random_rotation
from minif2.analysis.shift import AnalysisConfig, analyze, mean_displacement_resampled, reduce_models
from minif2.analysis.study import load_embeddings, load_queries, main, parse_model_spec
from minif2.instructions import BASE, DEFAULT_INSTRUCTIONS

TASKS = list(DEFAULT_INSTRUCTIONS)


# ------------------------------------------------------------------- queries
def test_default_queries_are_200_distinct_short_phrases():
    queries = load_queries()
    assert len(queries) == 200 and len(set(queries)) == 200
    assert all(3 <= len(q.split()) <= 14 and not q.endswith("?") for q in queries)
    assert queries[0] == "the boiling point of water at sea level"  # file order, reproducible
    assert load_queries(num_queries=10) == queries[:10]


def test_own_queries_txt_and_jsonl(tmp_path, capsys):
    txt = tmp_path / "q.txt"
    txt.write_text("# my queries\nthe colour of the sky\n\nthe colour of the sky\na recipe for soup\n")
    assert load_queries(txt) == ["the colour of the sky", "a recipe for soup"]
    assert "dropped 1 duplicate" in capsys.readouterr().out
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"query": "a map of Paris"}\n{"text": "the age of a tree"}\n')
    assert load_queries(jsonl) == ["a map of Paris", "the age of a tree"]
    jsonl.write_text('{"query": "a map of Paris"}\n{"title": "no query here"}\n')
    with pytest.raises(ValueError, match=r"q\.jsonl, line 2: .*\"query\""):
        load_queries(jsonl)
    with pytest.raises(FileNotFoundError, match="queries_file"):
        load_queries(tmp_path / "missing.txt")


def test_parse_model_spec(tmp_path):
    folder = tmp_path / "run" / "checkpoints" / "final"
    folder.mkdir(parents=True)
    assert parse_model_spec("minilm") == ("minilm", "minilm")
    assert parse_model_spec("Qwen/Qwen3-Embedding-0.6B") == ("Qwen/Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-0.6B")
    assert parse_model_spec(f"trained={folder}") == ("trained", str(folder))
    assert parse_model_spec(str(folder)) == ("checkpoints/final", str(folder))


# ---------------------------------------------------------- planted synthetic
SHIFT = {"Retrieval": 0.2, "Reranking": 0.25, "STS": 0.8, "Classification": 0.6, "Clustering": 0.7}


def _planted(n: int = 60, latent: int = 12, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Two models share one latent space (b = a rotated into more dimensions + small noise),
    a third is unrelated; every instruction adds its own offset of planted size."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent))
    offsets = {t: s * np.sqrt(latent) * random_rotation(latent, seed=7)[i] for i, (t, s) in enumerate(SHIFT.items())}
    lift_b = np.linalg.qr(rng.standard_normal((20, latent)))[0].T  # (latent, 20) orthonormal rows
    out: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}, "random": {}}
    noise_b, unrelated = 0.05 * rng.standard_normal((n, latent)), rng.standard_normal((n, 16))
    for cond in [BASE, *SHIFT]:
        zc = z + (offsets[cond] if cond != BASE else 0)
        out["a"][cond] = zc
        out["b"][cond] = (zc + noise_b) @ lift_b
        out["random"][cond] = unrelated + (0.3 * rng.standard_normal(16) if cond != BASE else 0)
    return out


def test_planted_study_recovers_families_tasks_and_reference():
    result = analyze(_planted(), AnalysisConfig(pca_dim=200))
    assert result.k == 12 and "'a'" in result.k_message  # min(6*60, 12) for model a
    assert result.reference in {"a", "b"}  # the unrelated model is not the centre
    d = pd.DataFrame(result.distances, index=result.labels, columns=result.labels)
    assert d.loc["a", "b"] < 0.01 and d.loc["a", "random"] > 0.5  # b is a (nearly) rotated copy of a
    np.testing.assert_allclose(result.distances, result.distances.T, atol=1e-9)  # unit_norm makes D symmetric
    assert np.allclose(np.diag(result.point_distance), 0) and np.allclose(
        result.point_distance, result.point_distance.T
    )
    assert result.mds.shape == (18, 2)
    # the planted task order comes back for the two related models
    pivot = result.displacement.pivot(index="model", columns="condition", values="displacement")
    for model in ("a", "b"):
        assert list(pivot.loc[model].sort_values().index) == sorted(SHIFT, key=SHIFT.get)
    # b is a's twin: each point of a has b's point of the same condition as its nearest neighbour
    index = {p: i for i, p in enumerate(result.points)}
    for cond in result.conditions:
        row = result.point_distance[index[("a", cond)]].copy()
        row[index[("a", cond)]] = np.inf
        assert result.points[int(row.argmin())] == ("b", cond)
    assert result.findings["models_cluster_by_family"]  # the unrelated model sits apart from both
    assert all(result.findings["sts_cls_clu_move_more_than_retrieval_reranking"][m] for m in ("a", "b"))


def test_findings_judge_families_leave_controls_out_and_compare_sizes_within_a_family():
    """Finding 1 is tested by family (two twins form one), the random control is left out of every finding,
    and finding 3 compares only models of one family and one kind (issue 26)."""
    from minif2.analysis import ModelInfo, describe_findings

    embeddings = _planted(seed=3)
    embeddings["other"] = _planted(seed=4)["random"]  # a second unrelated model, of its own family
    info = {
        "a": ModelInfo("F", num_params=100),
        "b": ModelInfo("F", num_params=300),
        "other": ModelInfo("G", num_params=50),
        "random": ModelInfo("R", num_params=10),
    }
    result = analyze(embeddings, AnalysisConfig(controls=["random"]), info)
    f = result.findings
    assert f["controls_left_out"] == ["random"] and "random" not in f["families"]
    assert "random" not in f["sts_cls_clu_move_more_than_retrieval_reranking"]
    assert f["models_cluster_by_family"] and f["nearest_is_same_family"] == 1.0
    assert f["mean_distance_within_family"] < f["mean_distance_same_condition_across_families"]
    move = f["mean_displacement_per_model"]
    assert [(p["smaller"], p["larger"]) for p in f["size_within_family"]] == [("a", "b")]  # not F against G
    (pair,) = f["size_within_family"]
    low, high = pair["difference_ci"]
    assert low <= move["b"] - move["a"] <= high and pair["verdict"] == (
        "further" if low > 0 else "less" if high < 0 else "tie"
    )
    assert f["larger_moves_further_within_family"] == (low > 0)
    # the resampled displacement on the drawn rows 0..N-1 is the displacement itself
    spaces, _, _ = reduce_models(embeddings, 200)
    every_row = np.arange(spaces["a"].shape[1])[None]
    assert mean_displacement_resampled(spaces["a"], every_row)[0] == pytest.approx(move["a"], abs=1e-9)
    text = describe_findings(result)
    assert any(line.startswith("1. ") and "HOLDS over 2 families" in line for line in text)
    (size_line,) = [line for line in text if line.startswith("3. ")]
    assert f"b (0k parameters) moves its queries by {move['b']:.3f}" in size_line and f"by {move['a']:.3f}" in size_line
    # families set by the config override the backbone's: with a and b apart, finding 1 has 3 families
    apart = analyze(embeddings, AnalysisConfig(controls=["random"], families={"b": "H"}), info).findings
    assert apart["size_within_family"] == [] and apart["larger_moves_further_within_family"] is None


def test_training_effect_pairs_a_kit_trained_model_with_its_base():
    from minif2.analysis import ModelInfo, describe_findings

    embeddings = _planted(seed=5)
    for cond in TASKS:  # "b" is "a" whose instructions were trained to move nothing
        embeddings["b"][cond] = embeddings["b"][BASE] + 0.01 * (embeddings["b"][cond] - embeddings["b"][BASE])
    info = {
        "a": ModelInfo("F", num_params=100),
        "b": ModelInfo("F", num_params=100, kit_trained=True, pool_instruction=False),
        "random": ModelInfo("R", num_params=10),
    }
    result = analyze(embeddings, AnalysisConfig(controls=["random"]), info)
    (effect,) = result.findings["training_effect"]
    assert (effect["trained"], effect["base"]) == ("b", "a") and effect["trained_moves"] < effect["base_moves"]
    assert result.findings["size_within_family"] == []  # same size: training is not size
    text = " ".join(describe_findings(result))
    assert "b moves its queries less than its untrained base a" in text and "pool_instruction: false" in text
    assert "b's nearest model on the Base condition: a" in text


def test_displacement_does_not_depend_on_the_reference():
    embeddings = _planted(seed=1)
    tables = [analyze(embeddings, AnalysisConfig(reference=ref)).displacement for ref in ("a", "b", "random")]
    for other in tables[1:]:
        np.testing.assert_allclose(other["displacement"], tables[0]["displacement"], atol=1e-9)
    robust = analyze(embeddings).robustness
    assert list(robust["reference"]) == ["a", "b", "random"]
    assert robust["spearman_vs_chosen_reference"].between(-1, 1).all()
    assert robust["spearman_vs_chosen_reference"].max() == pytest.approx(1.0)  # the chosen reference itself


def test_an_instruction_that_changes_nothing_has_zero_displacement():
    embeddings = _planted(seed=2)
    for conds in embeddings.values():
        conds["Retrieval"] = conds[BASE].copy()
    table = analyze(embeddings).displacement.set_index(["model", "condition"])
    for model in embeddings:
        assert table.loc[(model, "Retrieval"), "displacement"] == pytest.approx(0.0, abs=1e-9)
        assert table.loc[(model, "Retrieval"), "mean_query_shift"] == pytest.approx(0.0, abs=1e-6)


def test_bad_inputs_are_explained():
    embeddings = _planted()
    with pytest.raises(ValueError, match="reference='nope'"):
        analyze(embeddings, AnalysisConfig(reference="nope"))
    del embeddings["b"]["STS"]
    with pytest.raises(ValueError, match="same conditions"):
        analyze(embeddings)


# ------------------------------------------------------------- real models
def test_main_writes_figures_and_tables_and_matches_sentence_transformers(tmp_path, minilm_path, tiny_qwen3_path):
    from sentence_transformers import SentenceTransformer

    cfg = AnalysisConfig(models=["minilm", f"toy={tiny_qwen3_path}"], num_queries=8, out_dir=str(tmp_path / "out"))
    out = main(cfg)
    for name in (
        "mds.png",
        "procrustes_heatmap.png",
        "displacement.png",
        "procrustes_distance.csv",
        "point_distance.csv",
        "mds.csv",
        "displacement.csv",
        "robustness.csv",
        "summary.json",
        "config.yaml",
        "embeddings.npz",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    # k is bounded by the 8 Base rows (queries) the Procrustes rotation is fitted on
    assert summary["k"] == 8 and summary["models"] == ["minilm", "toy"]
    assert len(pd.read_csv(out / "displacement.csv")) == 2 * 5
    # re-analysing the saved embeddings gives the written tables
    again = analyze(load_embeddings(out / "embeddings.npz"), cfg)
    np.testing.assert_allclose(
        pd.read_csv(out / "displacement.csv")["displacement"], again.displacement["displacement"], atol=1e-9
    )
    # the embeddings are sentence-transformers' own, with the instruction on the query only
    queries = load_queries(num_queries=8)
    st = SentenceTransformer(str(minilm_path), device="cpu")
    saved = np.load(out / "embeddings.npz")
    np.testing.assert_allclose(saved["minilm|Base"], st.encode(queries, normalize_embeddings=True), atol=1e-5)
    prompted = [f"Instruct: {DEFAULT_INSTRUCTIONS['STS']}\nQuery: {q}" for q in queries]
    np.testing.assert_allclose(saved["minilm|STS"], st.encode(prompted, normalize_embeddings=True), atol=1e-5)


def test_cli_two_copies_of_one_model_are_at_distance_zero(tmp_path, tiny_qwen3_path):
    from minif2.cli import main as minif2

    out = tmp_path / "cli"
    assert (
        minif2(
            ["analyze", "--models", "tiny-qwen3", f"copy={tiny_qwen3_path}", "--out", str(out), "--num-queries", "6"]
        )
        == 0
    )
    d = pd.read_csv(out / "procrustes_distance.csv", index_col=0)
    assert d.loc["tiny-qwen3", "copy"] == pytest.approx(0.0, abs=1e-8)
    points = pd.read_csv(out / "point_distance.csv", index_col=0)
    assert points.loc["tiny-qwen3/STS", "copy/STS"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("profile", ["tiny", "small-gpu", "paper"])
def test_profiles_load(profile):
    from minif2.config import load_config, profile_path

    cfg = load_config(AnalysisConfig, profile_path(profile, "analyze"))
    assert cfg.models and cfg.pca_dim == 200 and cfg.num_queries in (100, 200)
