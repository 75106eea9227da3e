"""minif2.analysis: rotations recovered, distances invariant, kit == scipy, PCA dimension rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes as scipy_procrustes
from sklearn.decomposition import PCA

from minif2.analysis.procrustes import (
    common_pca_dim,
    distance_matrix,
    fit_rotation,
    orthogonal_procrustes,
    pca_reduce,
    procrustes_distance,
    random_rotation,
    select_reference,
)


def _cloud(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, k))


def test_hand_worked_90_degree_turn():
    s_ref = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    r = np.array([[0.0, 1.0], [-1.0, 0.0]])  # a 90-degree rotation
    s_tgt = s_ref @ r  # [[0, 1], [-1, 0], [0, -1]]
    np.testing.assert_allclose(s_tgt, [[0, 1], [-1, 0], [0, -1]])
    np.testing.assert_allclose(fit_rotation(s_tgt, s_ref), r.T, atol=1e-12)
    assert procrustes_distance(s_tgt, s_ref) == pytest.approx(0.0, abs=1e-24)
    # without rotation the distance is ||s_tgt - s_ref||^2 / ||s_ref||^2 = (2 + 2 + 2) / 3 = 2
    assert np.sum((s_tgt - s_ref) ** 2) / np.sum(s_ref**2) == pytest.approx(2.0)


@pytest.mark.parametrize("method", ["svd", "scipy"])
def test_known_rotation_is_recovered_with_zero_distance(method):
    s_ref = _cloud(50, 8, seed=0)
    r = random_rotation(8, seed=1)
    s_tgt = s_ref @ r
    q = fit_rotation(s_tgt, s_ref, method)
    np.testing.assert_allclose(q, r.T, atol=1e-10)
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=1e-10)
    assert procrustes_distance(s_tgt, s_ref, method) < 1e-20


def test_distance_with_noise_is_the_noise_share():
    s_ref = _cloud(400, 6, seed=2)
    noise = 0.1 * _cloud(400, 6, seed=3)
    s_tgt = (s_ref + noise) @ random_rotation(6, seed=4)
    # the best rotation undoes R and cannot fit the noise much: D ~ ||noise||^2 / ||s_ref||^2 = 0.01
    assert procrustes_distance(s_tgt, s_ref) == pytest.approx(0.01, rel=0.15)


def test_distance_is_invariant_to_rotating_either_side():
    a, b = _cloud(30, 5, seed=5), _cloud(30, 5, seed=6)
    d = procrustes_distance(a, b)
    assert 0.5 < d < 2.5  # unrelated clouds are far apart
    for seed in range(3):
        r = random_rotation(5, seed=10 + seed)
        assert procrustes_distance(a, b @ r) == pytest.approx(d, rel=1e-10)
        assert procrustes_distance(a @ r, b) == pytest.approx(d, rel=1e-10)


@pytest.mark.parametrize(("n", "k"), [(40, 10), (7, 10), (10, 10)])
def test_kit_solution_equals_scipy(n, k):
    a, b = _cloud(n, k, seed=n), _cloud(n, k, seed=n + 100)
    ours, theirs = orthogonal_procrustes(a, b), scipy_procrustes(a, b)[0]
    # the objective is the same always; Q itself is unique only when a^T b has full rank
    assert np.sum((a @ ours - b) ** 2) == pytest.approx(np.sum((a @ theirs - b) ** 2), rel=1e-10)
    if n >= k:
        np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="same queries, same k"):
        orthogonal_procrustes(np.ones((5, 3)), np.ones((5, 4)))


def test_reference_selection_picks_the_planted_centre():
    centre = _cloud(60, 6, seed=7)
    spaces = {f"m{i}": (centre + 0.3 * _cloud(60, 6, seed=20 + i)) @ random_rotation(6, seed=40 + i) for i in range(5)}
    spaces["centre"] = centre @ random_rotation(6, seed=99)
    names = sorted(spaces)  # the centre is neither first nor last
    names, dist = distance_matrix({n: spaces[n] for n in names})
    assert select_reference(names, dist) == "centre"
    assert np.all(np.diag(dist) == 0)
    # each satellite is ~0.09 from the centre and ~0.18 from another satellite
    centre_row = dist[names.index("centre")]
    assert centre_row.sum() / 5 < dist[names.index("m0")].sum() / 5


def test_select_reference_on_a_hand_matrix():
    d = np.array([[0.0, 0.9, 0.8], [0.9, 0.0, 0.1], [0.8, 0.1, 0.0]])
    # mean distances: a 0.85, b 0.5, c 0.45
    assert select_reference(["a", "b", "c"], d) == "c"
    with pytest.raises(ValueError, match="does not match"):
        select_reference(["a", "b"], d)


def test_common_pca_dim_when_it_fits_and_when_it_must_shrink():
    assert common_pca_dim({"a": (1200, 384), "b": (1200, 576)}, k=200) == (200, None)
    k, message = common_pca_dim({"a": (1200, 384), "toy": (1200, 64)}, k=200)  # d < k
    assert k == 64 and "'toy'" in message and "64 dimensions" in message
    k, message = common_pca_dim({"a": (30, 384), "b": (30, 576)}, k=200)  # N < k
    assert k == 30 and "30 rows" in message and "k=200" in message


def test_pca_reduce_n_below_k_and_d_below_k():
    few_rows = _cloud(12, 50, seed=8)  # N = 12 < k = 20
    with pytest.raises(ValueError, match="at most 12 components"):
        pca_reduce(few_rows, 20)
    k, _ = common_pca_dim({"x": few_rows.shape}, 20)
    scores = pca_reduce(few_rows, k)
    assert scores.shape == (12, 12)
    # a full-rank PCA is a rotation of the centred data: all pairwise distances survive
    centred = few_rows - few_rows.mean(axis=0)
    np.testing.assert_allclose(scores @ scores.T, centred @ centred.T, atol=1e-9)
    narrow = _cloud(100, 6, seed=9)  # d = 6 < k = 20
    k, _ = common_pca_dim({"x": narrow.shape}, 20)
    assert pca_reduce(narrow, k).shape == (100, 6)


def test_pca_reduce_matches_sklearn_and_fit_rows():
    x = _cloud(80, 10, seed=11) * np.arange(1, 11)  # distinct variances, so components are well defined
    np.testing.assert_allclose(np.abs(pca_reduce(x, 4)), np.abs(PCA(4).fit_transform(x)), atol=1e-9)
    fitted_on_head = pca_reduce(x, 4, fit_rows=np.arange(40))
    reference = PCA(4, svd_solver="full").fit(x[:40]).transform(x)
    np.testing.assert_allclose(np.abs(fitted_on_head), np.abs(reference), atol=1e-9)
