"""Orthogonal Procrustes: compare embedding spaces of different models (docs/recipe.md §3, steps 1-3).

Two models embed the same N queries; their vectors live in unrelated coordinates
(different sizes, different axes). To compare them, the instruction-shift study
(docs/recipe.md §3) first reduces every model to a common number of dimensions k with PCA,
then finds the rotation that best lays one model's points on the other's:

    Q* = argmin_Q || S_tgt Q - S_ref ||_F   subject to  Q^T Q = I
    with M = S_tgt^T S_ref = U Sigma V^T,  Q* = U V^T           (Schönemann, 1966)

and measures what no rotation can fix, the normalised Procrustes distance

    D(S_i, S_j) = || S_i Q*_{i->j} - S_j ||_F^2 / || S_j ||_F^2 .

Worked example (a 90-degree turn is undone exactly)::

    S_ref = [[1, 0], [0, 1], [-1, 0]];  R = [[0, 1], [-1, 0]];  S_tgt = S_ref @ R
    fit_rotation(S_tgt, S_ref) -> R.T  and  procrustes_distance(S_tgt, S_ref) -> 0.0

This module is pure numpy/scipy/sklearn on matrices; embedding texts and drawing
the study's figures live in ``analysis/shift.py``. Taught in
``notebooks/05_instruction_shift.ipynb``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from scipy.linalg import orthogonal_procrustes as scipy_orthogonal_procrustes
from sklearn.decomposition import PCA

__all__ = [
    "ProcrustesMethod",
    "common_pca_dim",
    "distance_matrix",
    "fit_rotation",
    "orthogonal_procrustes",
    "pca_reduce",
    "procrustes_distance",
    "random_rotation",
    "select_reference",
]

ProcrustesMethod = Literal["svd", "scipy"]


# ------------------------------------------------------------------ step 1: PCA
def common_pca_dim(
    shapes: Mapping[str, tuple[int, int]], k: int = 200, rotation_rows: int | None = None
) -> tuple[int, str | None]:
    """The k every model can be reduced to: ``min(k, rows, dim, rotation_rows)`` over all models.

    PCA of an (n x d) matrix has at most ``min(n, d)`` components, so a model with
    fewer dimensions than k (a 64-d toy model) or a study with fewer rows than k
    (a 20-query smoke run) forces a smaller common k. The rotation is fitted on the
    ``rotation_rows`` Base rows only (docs/recipe.md §3, step 2): with fewer rows than k,
    ``M = S_tgt^T S_ref`` has rank < k and the k x k rotation is not determined (its
    free part would follow floating-point noise), so k is also bounded by that count.
    Returns ``(k_used, message)``; ``message`` says what bounds k and why, or is None when k fits.

    >>> common_pca_dim({"a": (1200, 384), "b": (1200, 64)}, k=200)[0]
    64
    >>> common_pca_dim({"a": (36, 384)}, k=200, rotation_rows=6)[0]
    6
    """
    if k < 1:
        raise ValueError(f"pca_dim must be >= 1, got {k}")
    if not shapes:
        raise ValueError("common_pca_dim needs at least one model's embedding shape")
    limits = {name: min(rows, dim) for name, (rows, dim) in shapes.items()}
    bound_name = min(limits, key=limits.__getitem__)
    k_used = min(k, limits[bound_name], rotation_rows if rotation_rows is not None else k)
    if k_used == k:
        return k, None
    if rotation_rows is not None and k_used == rotation_rows and rotation_rows < limits[bound_name]:
        why = (
            f"the rotation is fitted on only {rotation_rows} Base rows (one per query), and a k x k rotation "
            f"needs at least k of them to be determined"
        )
        return k_used, (f"PCA dimension shrunk from k={k} to k={k_used}: {why}. Use more queries to keep k={k}.")
    rows, dim = shapes[bound_name]
    why = f"it has only {dim} dimensions" if dim <= rows else f"it has only {rows} rows (queries x conditions)"
    return k_used, (
        f"PCA dimension shrunk from k={k} to k={k_used}: model '{bound_name}' bounds it because {why}; "
        f"PCA of an (n x d) matrix has at most min(n, d) components. Use more queries or drop that model to keep k={k}."
    )


def pca_reduce(embeddings: np.ndarray, k: int, seed: int = 0, fit_rows: np.ndarray | None = None) -> np.ndarray:
    """(n, d) -> (n, k) principal-component scores (sklearn PCA, centred, not whitened).

    ``fit_rows`` (a boolean mask or index array) fits the components on a subset
    (e.g. the Base condition only) and projects every row with them, so all
    conditions of one model share one frame. Raises with the numbers when k is
    larger than the data allows; use :func:`common_pca_dim` to pick k.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    fit = embeddings if fit_rows is None else embeddings[fit_rows]
    if k > min(fit.shape):
        raise ValueError(
            f"cannot reduce to k={k}: PCA of a {fit.shape[0]} x {fit.shape[1]} matrix has at most "
            f"{min(fit.shape)} components; pick k with common_pca_dim()"
        )
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(fit)
    return pca.transform(embeddings)


# ------------------------------------------------------------ step 2: rotation
def orthogonal_procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The SVD solution: the orthogonal Q minimising ``||source @ Q - target||_F``.

    M = source^T target = U Sigma V^T and Q = U V^T: among orthogonal matrices,
    U V^T maximises trace(Q^T M), which is what the Frobenius objective reduces to
    (||A Q - B||^2 = ||A||^2 + ||B||^2 - 2 trace(Q^T A^T B)). Equal to
    ``scipy.linalg.orthogonal_procrustes(source, target)[0]`` (tests/test_procrustes.py).
    """
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if source.shape != target.shape:
        raise ValueError(
            f"Procrustes needs matrices of one shape (same queries, same k); got {source.shape} and {target.shape}"
        )
    u, _, vt = np.linalg.svd(source.T @ target)  # (k, k) each
    return u @ vt


def fit_rotation(source: np.ndarray, target: np.ndarray, method: ProcrustesMethod = "svd") -> np.ndarray:
    """Q with ``source @ Q ~ target``: the kit's SVD solution or scipy's (they agree)."""
    if method == "svd":
        return orthogonal_procrustes(source, target)
    if method == "scipy":
        return scipy_orthogonal_procrustes(np.asarray(source, np.float64), np.asarray(target, np.float64))[0]
    raise ValueError(f"unknown Procrustes method '{method}': use 'svd' or 'scipy'")


def random_rotation(k: int, seed: int = 0) -> np.ndarray:
    """A random k x k orthogonal matrix (QR of a Gaussian, signs fixed) for tests and the toy."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((k, k)))
    return q * np.sign(np.diag(r))


# ------------------------------------------------------------ step 3: distance
def procrustes_distance(source: np.ndarray, target: np.ndarray, method: ProcrustesMethod = "svd") -> float:
    """D(source, target) = ||source Q* - target||_F^2 / ||target||_F^2 (docs/recipe.md §3, step 3).

    0 when source is a rotation (or reflection) of target; not symmetric unless both
    have the same Frobenius norm (``analysis`` scales every model to norm 1 by default).
    """
    q = fit_rotation(source, target, method)
    target = np.asarray(target, dtype=np.float64)
    denom = float(np.sum(target**2))
    if denom == 0.0:
        raise ValueError("Procrustes distance to an all-zero target is undefined (did PCA remove everything?)")
    return float(np.sum((np.asarray(source, np.float64) @ q - target) ** 2) / denom)


def distance_matrix(spaces: Mapping[str, np.ndarray], method: ProcrustesMethod = "svd") -> tuple[list[str], np.ndarray]:
    """All ordered pairs: ``D[i, j] = procrustes_distance(S_i, S_j)`` (row = moved model, column = fixed).

    Returns ``(names, D)`` with D of shape (m, m) and a zero diagonal.
    """
    names = list(spaces)
    out = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                out[i, j] = procrustes_distance(spaces[a], spaces[b], method)
    return names, out


def select_reference(names: list[str], distances: np.ndarray) -> str:
    """The model with the smallest mean distance to all others (docs/recipe.md §3: the reference space).

    The mean runs over both directions (moving it and moving the others onto it),
    so the choice does not depend on the asymmetry of D; ties go to the first name.
    """
    m = len(names)
    if distances.shape != (m, m):
        raise ValueError(f"distance matrix of shape {distances.shape} does not match {m} names")
    if m == 1:
        return names[0]
    mean = (distances.sum(axis=0) + distances.sum(axis=1)) / (2 * (m - 1))  # the diagonal is 0
    return names[int(np.argmin(mean))]
