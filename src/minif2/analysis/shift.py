"""How far does a task instruction move a query? The instruction-shift study (docs/recipe.md §3).

The analysis, in the order it runs (``analyze``; ``study.main`` embeds the models first):

1. N neutral queries embedded under six conditions (Base + five task instructions) by
   every model (``study.embed_models``);
2. PCA each model to a common k, fit orthogonal Procrustes on the Base condition, and
   pick the reference model with the smallest mean Procrustes distance
   (``reduce_models``, ``procrustes.distance_matrix``, ``procrustes.select_reference``);
3. rotate every model into the reference space, take the cosine distance between all
   (model x condition) points, and lay them out with MDS (``project``, ``point_distances``);
4. measure the displacement Base -> instructed per model and task, check the study's
   findings, and repeat them with every other model as reference (``findings``, ``robustness``).

A (model, condition) "point" is the whole (N x k) matrix of that model's queries under
that condition, rotated into the reference space and flattened; its cosine distance to
another point compares the two clouds query by query. Because a rotation preserves
cosines, a model's own displacements do not depend on the reference; only the
cross-model distances (and so the MDS map) do, which is what the robustness check probes.

The math lives in ``analysis/procrustes.py``, the figures in ``analysis/plots.py``; this module
does not train or evaluate. Taught in ``notebooks/05_instruction_shift.ipynb``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.manifold import MDS
from threadpoolctl import threadpool_limits

from minif2.analysis.procrustes import (
    ProcrustesMethod,
    common_pca_dim,
    distance_matrix,
    fit_rotation,
    pca_reduce,
    select_reference,
)
from minif2.instructions import BASE, DEFAULT_INSTRUCTIONS

__all__ = [
    "AnalysisConfig",
    "AnalysisResult",
    "BASE",
    "DEFAULT_INSTRUCTIONS",
    "analyze",
    "findings",
    "point_distances",
    "project",
    "reduce_models",
    "robustness",
]


Embeddings = dict[str, dict[str, np.ndarray]]  # model label -> condition -> (N, d)


@dataclass
class AnalysisConfig:
    """The instruction-shift study. Defaults are the study's (docs/recipe.md §3) where it has one."""

    models: list[str] = field(
        default_factory=lambda: ["minilm", "smollm2-135m", "tiny-qwen3"]
    )  # names, folders, hub ids; "label=path" names one
    queries_file: str | None = (
        None  # one query per line (.txt) or jsonl with "query"/"text"; None: the kit's 200 noun phrases
    )
    num_queries: int | None = None  # None: all (docs/recipe.md §3: 200); fewer for smoke runs
    instructions: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_INSTRUCTIONS)
    )  # task -> instruction (docs/recipe.md §3)
    pca_dim: int = 200  # docs/recipe.md §3: common k = 200; shrinks to the data's rank with a message
    pca_fit_on: Literal["all", "base"] = (
        "all"  # kit's choice: fit each model's PCA on all its conditions (one frame for all)
    )
    unit_norm: bool = (
        True  # kit's choice: scale each model so its Base matrix has Frobenius norm 1 (D becomes symmetric)
    )
    reference: str | None = None  # None: smallest mean Procrustes distance (docs/recipe.md §3)
    procrustes_method: ProcrustesMethod = "svd"  # "svd" (the kit's) or "scipy"; equal to 1e-10
    batch_size: int = 32
    max_length_tokens: int = 128  # the queries are short noun phrases plus an instruction
    seed: int = 0  # PCA solver and MDS initialisation
    out_dir: str = "runs/latest/analysis"


@dataclass
class AnalysisResult:
    """Everything the figures and tables need; all matrices are numpy arrays."""

    labels: list[str]  # models, in the order given
    conditions: list[str]  # "Base" first, then the tasks
    k: int  # the PCA dimension used
    k_message: str | None  # why k shrank, if it did
    distances: np.ndarray  # (models, models) normalised Procrustes distance, row moved onto column
    reference: str
    points: list[tuple[str, str]]  # (model, condition) for each row of point_distance
    point_distance: np.ndarray  # (P, P) cosine distance in the reference space
    mds: np.ndarray  # (P, 2)
    displacement: pd.DataFrame  # model, condition, displacement, mean_query_shift
    findings: dict
    robustness: pd.DataFrame
    num_params: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------- 2. PCA and Procrustes
def reduce_models(
    embeddings: Embeddings, k: int = 200, fit_on: str = "all", unit_norm: bool = True, seed: int = 0
) -> tuple[dict[str, np.ndarray], int, str | None]:
    """Each model's (C, N, d) stack -> (C, N, k) PCA scores with one common k (docs/recipe.md §3 step 1).

    Returns ``(spaces, k_used, message)``; ``spaces[m][0]`` is the Base condition.
    """
    stacks = {m: np.stack([np.asarray(v, np.float64) for v in conds.values()]) for m, conds in embeddings.items()}
    shapes = {m: (s.shape[0] * s.shape[1] if fit_on == "all" else s.shape[1], s.shape[2]) for m, s in stacks.items()}
    num_queries = next(iter(stacks.values())).shape[1]  # Base rows: what the rotation is fitted on
    k_used, message = common_pca_dim(shapes, k, rotation_rows=num_queries)
    spaces: dict[str, np.ndarray] = {}
    for m, stack in stacks.items():
        c, n, d = stack.shape
        fit_rows = None if fit_on == "all" else np.arange(n)  # Base rows come first
        scores = pca_reduce(stack.reshape(c * n, d), k_used, seed, fit_rows).reshape(c, n, k_used)
        if unit_norm:
            scores = scores / np.linalg.norm(scores[0])
        spaces[m] = scores
    return spaces, k_used, message


def project(spaces: dict[str, np.ndarray], reference: str, method: ProcrustesMethod = "svd") -> dict[str, np.ndarray]:
    """Rotate every model's conditions by the Q that maps its Base onto the reference's Base (step 4)."""
    ref_base = spaces[reference][0]
    return {m: s @ fit_rotation(s[0], ref_base, method) for m, s in spaces.items()}


def point_distances(
    projected: dict[str, np.ndarray], conditions: list[str]
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Cosine distance between the flattened (N x k) matrices of all (model, condition) pairs."""
    points = [(m, c) for m in projected for c in conditions]
    flat = np.stack([projected[m][i].ravel() for m in projected for i in range(len(conditions))])  # (P, N*k)
    flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    dist = np.clip(1.0 - flat @ flat.T, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    return points, dist


def run_mds(dist: np.ndarray, seed: int = 0) -> np.ndarray:
    """(P, P) distances -> (P, 2) coordinates by metric MDS (scikit-learn), reproducible via ``seed``."""

    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8 renamed the arguments
        mds = MDS(n_components=2, metric="precomputed", metric_mds=True, init="classical_mds", random_state=seed)
    else:
        mds = MDS(n_components=2, dissimilarity="precomputed", n_init=4, random_state=seed)
    return mds.fit_transform(dist)


# --------------------------------------------------- 3. displacement, findings
def displacement_table(embeddings: Embeddings, points: list[tuple[str, str]], dist: np.ndarray) -> pd.DataFrame:
    """Per model and task: cosine distance Base -> instructed in the shared space, and the
    mean per-query cosine shift in the model's own (raw) space, for comparison."""
    index = {p: i for i, p in enumerate(points)}
    rows = []
    for model, conds in embeddings.items():
        base = conds[BASE]
        for cond, emb in conds.items():
            if cond == BASE:
                continue
            cos = np.sum(base * emb, axis=1) / (np.linalg.norm(base, axis=1) * np.linalg.norm(emb, axis=1))
            rows.append(
                {
                    "model": model,
                    "condition": cond,
                    "displacement": float(dist[index[(model, BASE)], index[(model, cond)]]),
                    "mean_query_shift": float(np.mean(1.0 - cos)),
                }
            )
    return pd.DataFrame(rows)


def findings(
    points: list[tuple[str, str]],
    dist: np.ndarray,
    displacement: pd.DataFrame,
    num_params: dict[str, int] | None = None,
) -> dict:
    """The study's three findings, measured (docs/recipe.md §3): family clustering, task order, size."""
    models = np.array([m for m, _ in points])
    conds = np.array([c for _, c in points])
    off = ~np.eye(len(points), dtype=bool)
    same_model, same_cond = models[:, None] == models[None, :], conds[:, None] == conds[None, :]
    nearest = np.where(off, dist, np.inf).argmin(axis=1)
    within_model = float(dist[same_model & off].mean())
    across = same_cond & ~same_model
    within_condition = float(dist[across].mean()) if across.any() else float("nan")
    pivot = displacement.pivot(index="model", columns="condition", values="displacement")
    strong = [c for c in ("STS", "Classification", "Clustering") if c in pivot]
    weak = [c for c in ("Retrieval", "Reranking") if c in pivot]
    order = (
        {m: bool(pivot.loc[m, strong].mean() > pivot.loc[m, weak].mean()) for m in pivot.index}
        if strong and weak
        else {}
    )
    out = {
        "nearest_is_same_model": float(np.mean(models[nearest] == models)),
        "mean_distance_within_model": within_model,
        "mean_distance_same_condition_across_models": within_condition,
        "models_cluster_by_family": bool(within_model < within_condition),
        "mean_displacement_per_task": pivot.mean(axis=0).sort_values().to_dict(),
        "sts_cls_clu_move_more_than_retrieval_reranking": order,
    }
    if num_params and len(num_params) > 1:
        mean_disp = pivot.mean(axis=1)
        names = [m for m in mean_disp.index if m in num_params]
        sizes, moves = [num_params[m] for m in names], [mean_disp[m] for m in names]
        varies = len(set(sizes)) > 1 and np.ptp(moves) > 0
        largest = max(names, key=num_params.__getitem__)
        out["size_vs_displacement_spearman"] = float(spearmanr(sizes, moves).statistic) if varies else None
        out["largest_model_moves_most"] = bool(mean_disp.idxmax() == largest)
    return out


def robustness(
    spaces: dict[str, np.ndarray],
    conditions: list[str],
    embeddings: Embeddings,
    reference: str,
    method: ProcrustesMethod = "svd",
) -> pd.DataFrame:
    """Repeat steps 3-4 with every model as the reference; compare with ``reference``'s picture."""
    _, base_dist = point_distances(project(spaces, reference, method), conditions)
    upper = np.triu_indices(base_dist.shape[0], k=1)
    rows = []
    for ref in spaces:
        points, dist = point_distances(project(spaces, ref, method), conditions)
        found = findings(points, dist, displacement_table(embeddings, points, dist))
        rows.append(
            {
                "reference": ref,
                "spearman_vs_chosen_reference": float(spearmanr(dist[upper], base_dist[upper]).statistic),
                "nearest_is_same_model": found["nearest_is_same_model"],
                "models_cluster_by_family": found["models_cluster_by_family"],
                "task_order_holds_for": sum(found["sts_cls_clu_move_more_than_retrieval_reranking"].values()),
            }
        )
    return pd.DataFrame(rows)


def analyze(
    embeddings: Embeddings, cfg: AnalysisConfig | None = None, num_params: dict[str, int] | None = None
) -> AnalysisResult:
    """Steps 2-4 on precomputed embeddings (``{model: {condition: (N, d)}}``, Base first)."""
    cfg = cfg or AnalysisConfig()
    conditions = list(next(iter(embeddings.values())))
    if conditions[0] != BASE or any(list(c) != conditions for c in embeddings.values()):
        raise ValueError(
            f"every model needs the same conditions with '{BASE}' first; got "
            + "; ".join(f"{m}: {list(c)}" for m, c in embeddings.items())
        )
    # The matrices are small (at most 6 x 200 rows); one BLAS thread avoids the 10-100x slow-down
    # that multi-threaded OpenBLAS suffers on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        spaces, k, message = reduce_models(embeddings, cfg.pca_dim, cfg.pca_fit_on, cfg.unit_norm, cfg.seed)
        labels, dist = distance_matrix({m: s[0] for m, s in spaces.items()}, cfg.procrustes_method)
        reference = cfg.reference or select_reference(labels, dist)
        if reference not in spaces:
            raise ValueError(f"AnalysisConfig.reference='{reference}' is not one of the models {labels}")
        points, pdist = point_distances(project(spaces, reference, cfg.procrustes_method), conditions)
        table = displacement_table(embeddings, points, pdist)
        return AnalysisResult(
            labels=labels,
            conditions=conditions,
            k=k,
            k_message=message,
            distances=dist,
            reference=reference,
            points=points,
            point_distance=pdist,
            mds=run_mds(pdist, cfg.seed),
            displacement=table,
            findings=findings(points, pdist, table, num_params),
            robustness=robustness(spaces, conditions, embeddings, reference, cfg.procrustes_method),
            num_params=dict(num_params or {}),
        )
