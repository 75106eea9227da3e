"""Step 04: MTEB scoring with instructions on queries only.

Modules, in the order the step runs:

- ``mteb_tasks``: Local evaluation tasks: plain files on disk -> real ``mteb`` task objects.
- ``mteb_model``: The Embedder as an ``mteb`` model: instructions on queries only, one cache identity per checkpoint.
- ``retrieval``: A quick before/after retrieval score on a held-out BEIR folder (notebook 03).
- ``report``: Results of an evaluation as the paper reports them: a tidy table, category averages, a plot.
- ``evaluate``: MTEB scoring of any Embedder, offline (local task folders) or on the hub (MTEB(eng, v2)).
- ``space``: See and touch the embedding space: cosine histograms, PCA, the misses, your own query.
- ``doctor``: Why a score differs: re-score with one setting changed at a time (``minif2 doctor``).

Everything a notebook needs is importable from here (``from minif2.evaluation import ...``);
taught in ``notebooks/04_mteb_scoring.ipynb``.
"""

from __future__ import annotations

from minif2.evaluation.doctor import DoctorConfig, describe_changes, diagnose, format_table, plot_changes
from minif2.evaluation.evaluate import (
    FAST_SUITE,
    EvalConfig,
    cli,
    evaluate_models,
    main,
    model_label,
    paired_gains,
    resolve_tasks,
    scores_by_dimension,
)
from minif2.evaluation.intervals import RowScores, bootstrap_interval, paired_interval, verdict
from minif2.evaluation.mteb_model import (
    F2LLM_PROMPTS,
    MtebEmbedder,
    model_revision,
    truncate_embeddings,
)
from minif2.evaluation.mteb_tasks import LOCAL_TASK_TYPES, MTEB_TYPE, load_local_task, load_local_tasks
from minif2.evaluation.report import (
    PAPER_MTEB_ENG_V2,
    RESULT_COLUMNS,
    category_averages,
    describe_gains,
    paper_comparison,
    plot_depth_and_width,
    plot_scores,
    plot_scores_by_dimension,
)
from minif2.evaluation.retrieval import RetrievalCurve, ndcg_at_k, retrieval_score, sts_score
from minif2.evaluation.space import (
    RetrievalView,
    labelled_texts,
    misses,
    pair_cosines,
    plot_cosine_histograms,
    plot_space,
    top_hits,
    view_retrieval,
)

__all__ = [
    "RetrievalView",
    "labelled_texts",
    "misses",
    "pair_cosines",
    "plot_cosine_histograms",
    "plot_space",
    "top_hits",
    "view_retrieval",
    "DoctorConfig",
    "EvalConfig",
    "F2LLM_PROMPTS",
    "FAST_SUITE",
    "LOCAL_TASK_TYPES",
    "MTEB_TYPE",
    "MtebEmbedder",
    "PAPER_MTEB_ENG_V2",
    "RESULT_COLUMNS",
    "RetrievalCurve",
    "RowScores",
    "bootstrap_interval",
    "category_averages",
    "describe_gains",
    "cli",
    "describe_changes",
    "diagnose",
    "format_table",
    "plot_changes",
    "evaluate_models",
    "load_local_task",
    "load_local_tasks",
    "main",
    "model_label",
    "model_revision",
    "ndcg_at_k",
    "paired_gains",
    "paired_interval",
    "paper_comparison",
    "plot_scores",
    "plot_depth_and_width",
    "plot_scores_by_dimension",
    "resolve_tasks",
    "retrieval_score",
    "scores_by_dimension",
    "sts_score",
    "truncate_embeddings",
    "verdict",
]
