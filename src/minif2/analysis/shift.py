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
from dataclasses import dataclass, field, replace
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
    "ModelInfo",
    "DEFAULT_INSTRUCTIONS",
    "analyze",
    "describe_findings",
    "findings",
    "mean_displacement_resampled",
    "point_distances",
    "project",
    "reduce_models",
    "robustness",
]


Embeddings = dict[str, dict[str, np.ndarray]]  # model label -> condition -> (N, d)


@dataclass
class ModelInfo:
    """What the findings know of a model besides its embeddings (``study.embed_models`` fills it in)."""

    family: str  # the study's "family": here the backbone's architecture and vocabulary, e.g. "llama/vocab 49152"
    num_params: int = 0  # the backbone's parameters (a Dense head is not size); 0: unknown
    kit_trained: bool = False  # a checkpoint minif2 trained (its folder holds the kit's embedder settings)
    pool_instruction: bool = True  # False: mean pooling leaves a query's instruction tokens out of the mean


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
    controls: list[str] = field(
        default_factory=lambda: ["tiny-qwen3"]
    )  # kit's choice: random models, drawn on the map but left out of the findings (no family, no size)
    families: dict[str, str] = field(
        default_factory=dict
    )  # model label -> family; default: the backbone's architecture and vocabulary (e.g. "llama/vocab 49152")
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
    info: dict[str, ModelInfo] = field(default_factory=dict)  # family and size of each model, where known

    @property
    def num_params(self) -> dict[str, int]:
        return {m: i.num_params for m, i in self.info.items()}


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


def _points_kept(points: list[tuple[str, str]], dist: np.ndarray, controls: tuple[str, ...]):
    keep = [i for i, (m, _) in enumerate(points) if m not in controls]
    return [points[i] for i in keep], dist[np.ix_(keep, keep)]


def _family_clustering(points: list[tuple[str, str]], dist: np.ndarray, family: dict[str, str]) -> dict:
    """Finding 1: are points of one family closer to each other than points of one task across families?"""
    models = np.array([m for m, _ in points])
    fams, conds = np.array([family[m] for m in models]), np.array([c for _, c in points])
    off = ~np.eye(len(points), dtype=bool)
    same_fam, same_cond = fams[:, None] == fams[None, :], conds[:, None] == conds[None, :]
    nearest = np.where(off, dist, np.inf).argmin(axis=1)
    within = float(dist[same_fam & off].mean()) if (same_fam & off).any() else float("nan")
    across = same_cond & ~same_fam
    across_mean = float(dist[across].mean()) if across.any() else float("nan")
    return {
        "nearest_is_same_model": float(np.mean(models[nearest] == models)),
        "nearest_is_same_family": float(np.mean(fams[nearest] == fams)),
        "mean_distance_within_family": within,
        "mean_distance_same_condition_across_families": across_mean,
        "models_cluster_by_family": bool(within < across_mean) if across.any() else None,
    }


def mean_displacement_resampled(space: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A model's mean displacement over its instructions, recomputed on resampled queries.

    ``space`` is its (C, N, k) stack (Base first), ``rows`` an (R, N) array of query indices; returns (R,). The
    displacement of a condition is the cosine distance between the flattened Base and instructed matrices, so on
    rows ``r`` it is ``1 - sum_i <b_i, e_i> / sqrt(sum_i |b_i|^2 * sum_i |e_i|^2)``, summed over the drawn rows."""
    base = space[0]
    dots = np.einsum("cnk,nk->cn", space[1:], base)[:, rows]  # (C-1, R, N)
    base_sq, inst_sq = (base**2).sum(-1)[rows], (space[1:] ** 2).sum(-1)[:, rows]
    cos = dots.sum(-1) / np.sqrt(base_sq.sum(-1)[None] * inst_sq.sum(-1))
    return (1.0 - cos).mean(axis=0)


def _size_within_family(
    mean_move: pd.Series,
    info: dict[str, ModelInfo],
    spaces: dict[str, np.ndarray] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """Finding 3's pairs: two models of one family and one kind (both released or both kit-trained) whose
    backbones differ in size, with each one's mean displacement and, given the PCA ``spaces``, a paired
    bootstrap interval of (larger - smaller) over the queries (the same resampled queries for both)."""
    known = [m for m in mean_move.index if m in info and info[m].num_params]
    pairs = []
    for i, a in enumerate(known):
        for b in known[i + 1 :]:
            ia, ib = info[a], info[b]
            if ia.family != ib.family or ia.kit_trained != ib.kit_trained or ia.num_params == ib.num_params:
                continue
            small, large = (a, b) if ia.num_params < ib.num_params else (b, a)
            pair = {"family": ia.family, "smaller": small, "larger": large}
            pair |= {"smaller_moves": float(mean_move[small]), "larger_moves": float(mean_move[large])}
            low = high = pair["larger_moves"] - pair["smaller_moves"]
            if spaces is not None and small in spaces and large in spaces:
                n = spaces[small].shape[1]
                rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
                diff = mean_displacement_resampled(spaces[large], rows) - mean_displacement_resampled(
                    spaces[small], rows
                )
                low, high = (float(q) for q in np.percentile(diff, [2.5, 97.5]))
            pair |= {"difference_ci": [low, high], "larger_moves_further": bool(low > 0)}
            pair["verdict"] = "further" if low > 0 else "less" if high < 0 else "tie"
            pairs.append(pair)
    return pairs


def _training_effect(mean_move: pd.Series, info: dict[str, ModelInfo]) -> list[dict]:
    """Each kit-trained model against the released model of its family and size (its untrained base)."""
    rows = []
    for m in mean_move.index:
        if m not in info or not info[m].kit_trained:
            continue
        for base in mean_move.index:
            b = info.get(base)
            if b and not b.kit_trained and b.family == info[m].family and b.num_params == info[m].num_params:
                rows.append(
                    {
                        "trained": m,
                        "base": base,
                        "trained_moves": float(mean_move[m]),
                        "base_moves": float(mean_move[base]),
                        "pool_instruction": info[m].pool_instruction,
                    }
                )
    return rows


def findings(
    points: list[tuple[str, str]],
    dist: np.ndarray,
    displacement: pd.DataFrame,
    info: dict[str, ModelInfo] | None = None,
    controls: tuple[str, ...] = (),
    spaces: dict[str, np.ndarray] | None = None,
) -> dict:
    """The study's three findings (docs/recipe.md §3), measured on every model except the ``controls``
    (random models: they have no family to cluster by and no size to compare):

    1. models cluster by family, not by task (a model without ``info`` is a family of its own);
    2. STS, classification and clustering instructions move queries further than retrieval and reranking;
    3. a larger model does not move further, judged within a family (``size_within_family``), plus what
       the kit's training did to its base's displacements (``training_effect``). With the PCA ``spaces``,
       each size pair carries a paired bootstrap interval over the queries; "further" only when it is above 0."""
    info = info or {}
    present = {m for m, _ in points}
    points, dist = _points_kept(points, dist, controls)
    family = {m: info[m].family if m in info else m for m, _ in points}
    displacement = displacement[~displacement["model"].isin(controls)]
    pivot = displacement.pivot(index="model", columns="condition", values="displacement")
    strong = [c for c in ("STS", "Classification", "Clustering") if c in pivot]
    weak = [c for c in ("Retrieval", "Reranking") if c in pivot]
    order = (
        {m: bool(pivot.loc[m, strong].mean() > pivot.loc[m, weak].mean()) for m in pivot.index}
        if strong and weak
        else {}
    )
    mean_move = pivot.mean(axis=1)
    pairs = _size_within_family(mean_move, info, spaces)
    return {
        "controls_left_out": [c for c in controls if c in present],
        "families": family,
        **_family_clustering(points, dist, family),
        "mean_displacement_per_model": mean_move.to_dict(),
        "mean_displacement_per_task": pivot.mean(axis=0).sort_values().to_dict(),
        "sts_cls_clu_move_more_than_retrieval_reranking": order,
        "size_within_family": pairs,
        "larger_moves_further_within_family": any(p["larger_moves_further"] for p in pairs) if pairs else None,
        "training_effect": _training_effect(mean_move, info),
    }


def robustness(
    spaces: dict[str, np.ndarray],
    conditions: list[str],
    embeddings: Embeddings,
    reference: str,
    method: ProcrustesMethod = "svd",
    info: dict[str, ModelInfo] | None = None,
    controls: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Repeat steps 3-4 with every model as the reference; compare with ``reference``'s picture."""
    _, base_dist = point_distances(project(spaces, reference, method), conditions)
    upper = np.triu_indices(base_dist.shape[0], k=1)
    rows = []
    for ref in spaces:
        points, dist = point_distances(project(spaces, ref, method), conditions)
        found = findings(points, dist, displacement_table(embeddings, points, dist), info, controls)
        rows.append(
            {
                "reference": ref,
                "spearman_vs_chosen_reference": float(spearmanr(dist[upper], base_dist[upper]).statistic),
                "nearest_is_same_family": found["nearest_is_same_family"],
                "models_cluster_by_family": found["models_cluster_by_family"],
                "task_order_holds_for": sum(found["sts_cls_clu_move_more_than_retrieval_reranking"].values()),
            }
        )
    return pd.DataFrame(rows)


def analyze(
    embeddings: Embeddings, cfg: AnalysisConfig | None = None, info: dict[str, ModelInfo] | None = None
) -> AnalysisResult:
    """Steps 2-4 on precomputed embeddings (``{model: {condition: (N, d)}}``, Base first); ``info`` tells the
    findings each model's family and size (``study.embed_models``), ``cfg.families`` overrides the family."""
    cfg = cfg or AnalysisConfig()
    info = {m: replace(i, family=cfg.families.get(m, i.family)) for m, i in (info or {}).items()}
    info |= {m: ModelInfo(family=f) for m, f in cfg.families.items() if m not in info}
    controls = tuple(cfg.controls)
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
            findings=findings(points, pdist, table, info, controls, spaces),
            robustness=robustness(spaces, conditions, embeddings, reference, cfg.procrustes_method, info, controls),
            info=info,
        )


# ------------------------------------------------------ 5. findings in words
def _millions(n: int) -> str:
    return f"{n / 1e6:.0f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def describe_findings(result: AnalysisResult) -> list[str]:
    """The study's findings as sentences computed from this run's numbers (notebook 05 prints them instead
    of prose written in advance), one per finding, then what training did and which model sits nearest."""
    f, lines = result.findings, []
    if f["controls_left_out"]:
        lines.append(f"Left out of the findings as controls (random weights): {', '.join(f['controls_left_out'])}.")
    families = sorted(set(f["families"].values()))
    verdict = {True: "HOLDS", False: "does NOT hold", None: "cannot be judged (one family only)"}
    lines.append(
        f"1. Models cluster by family, not by task: {verdict[f['models_cluster_by_family']]} over "
        f"{len(families)} families ({'; '.join(families)}): mean distance within a family "
        f"{f['mean_distance_within_family']:.2f}, the same task across families "
        f"{f['mean_distance_same_condition_across_families']:.2f}; {f['nearest_is_same_family']:.0%} of the points "
        f"have their nearest neighbour in their own family ({f['nearest_is_same_model']:.0%} in their own model)."
    )
    order = f["sts_cls_clu_move_more_than_retrieval_reranking"]
    holds = [m for m, v in order.items() if v]
    lines.append(
        f"2. STS, classification and clustering instructions move queries further than retrieval and reranking for "
        f"{len(holds)} of {len(order)} models" + (f" ({', '.join(holds)})" if holds else "") + "."
    )
    pairs = f["size_within_family"]
    if not pairs:
        lines.append("3. A larger model does not move further: cannot be judged here, no family has two sizes.")
    for p in pairs:
        size = {m: _millions(result.info[m].num_params) for m in (p["smaller"], p["larger"])}
        low, high = p["difference_ci"]
        reading = {"further": "does NOT hold", "less": "HOLDS", "tie": "HOLDS (a tie)"}[p["verdict"]]
        lines.append(
            f"3. A larger model does not move further: {reading} in the {p['family']} family: {p['larger']} "
            f"({size[p['larger']]} parameters) moves its queries by {p['larger_moves']:.3f} on average, "
            f"{p['smaller']} ({size[p['smaller']]}) by {p['smaller_moves']:.3f}; difference "
            f"{p['larger_moves'] - p['smaller_moves']:+.3f} [{low:+.3f}, {high:+.3f}] over resampled queries."
        )
    for t in f["training_effect"]:
        way = "less" if t["trained_moves"] < t["base_moves"] else "more"
        lines.append(
            f"Training: {t['trained']} moves its queries {way} than its untrained base {t['base']} "
            f"({t['trained_moves']:.3f} against {t['base_moves']:.3f})"
            + (
                "; its mean leaves the instruction's tokens out (pool_instruction: false)."
                if not t["pool_instruction"]
                else "."
            )
        )
        lines.append(_nearest_model(result, t["trained"]))
    return lines


def _nearest_model(result: AnalysisResult, model: str) -> str:
    """Which other model's Base space is closest to ``model``'s (the Procrustes distance matrix's row)."""
    i = result.labels.index(model)
    others = [(result.distances[i, j], label) for j, label in enumerate(result.labels) if j != i]
    distance, nearest = min(others)
    return f"{model}'s nearest model on the Base condition: {nearest} (Procrustes distance {distance:.2f})."
