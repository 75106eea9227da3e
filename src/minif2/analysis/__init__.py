"""Step 05: how far an instruction moves a query (orthogonal Procrustes + MDS).

Modules, in the order the step runs:

- ``procrustes``: Orthogonal Procrustes: compare embedding spaces of different models (docs/recipe.md §3, steps 1-3).
- ``shift``: How far does a task instruction move a query? The instruction-shift study (docs/recipe.md §3).
- ``plots``: Figures of the instruction-shift study (docs/recipe.md §3) and of notebook 05's 2-D Procrustes toy.
- ``study``: The instruction-shift study as a command: its inputs, the models' embeddings, tables and figures.

Everything a notebook needs is importable from here (``from minif2.analysis import ...``);
taught in ``notebooks/05_instruction_shift.ipynb``.
"""

from __future__ import annotations

from minif2.analysis.plots import plot_displacement, plot_distance_heatmap, plot_mds, plot_procrustes_toy, save_figures
from minif2.analysis.procrustes import (
    ProcrustesMethod,
    common_pca_dim,
    distance_matrix,
    fit_rotation,
    orthogonal_procrustes,
    pca_reduce,
    procrustes_distance,
    random_rotation,
    select_reference,
)
from minif2.analysis.shift import (
    BASE,
    DEFAULT_INSTRUCTIONS,
    AnalysisConfig,
    AnalysisResult,
    ModelInfo,
    analyze,
    describe_findings,
    findings,
    point_distances,
    project,
    reduce_models,
    robustness,
)
from minif2.analysis.study import (
    DEFAULT_QUERIES_FILE,
    cli,
    embed_conditions,
    embed_models,
    load_embeddings,
    load_queries,
    main,
    parse_model_spec,
    run,
    write_tables,
)

__all__ = [
    "AnalysisConfig",
    "AnalysisResult",
    "BASE",
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_QUERIES_FILE",
    "ModelInfo",
    "ProcrustesMethod",
    "analyze",
    "cli",
    "common_pca_dim",
    "describe_findings",
    "distance_matrix",
    "embed_conditions",
    "embed_models",
    "findings",
    "fit_rotation",
    "load_embeddings",
    "load_queries",
    "main",
    "orthogonal_procrustes",
    "parse_model_spec",
    "pca_reduce",
    "plot_displacement",
    "plot_distance_heatmap",
    "plot_mds",
    "plot_procrustes_toy",
    "point_distances",
    "procrustes_distance",
    "project",
    "random_rotation",
    "reduce_models",
    "robustness",
    "run",
    "save_figures",
    "select_reference",
    "write_tables",
]
