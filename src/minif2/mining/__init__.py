"""Step 02: margin-based hard-negative mining with a teacher.

Modules, in the order the step runs:

- ``retrieve``: Encode a corpus once, then find each query's top-k documents: the retrieval half of mining.
- ``chunked``: Mining a corpus larger than memory: float16 embeddings on disk, searched chunk by chunk.
- ``rule``: F2LLM's margin rule on retrieved candidates (docs/recipe.md §1), as three small functions.
- ``mine``: Margin-based hard-negative mining, F2LLM's rule (docs/recipe.md §1), as a few small functions.
- ``report``: Looking at what mining did: score summaries, plots, a sample to eyeball, and the

Everything a notebook needs is importable from here (``from minif2.mining import ...``);
taught in ``notebooks/02_hard_negative_mining.ipynb``.
"""

from __future__ import annotations

from minif2.mining.chunked import block_search, disk_path, encode_to_disk, merge_top_k
from minif2.mining.mine import MinedSource, MiningConfig, cli, load_teacher, main, mine_source, uses_instructions
from minif2.mining.report import (
    hardness_table,
    load_report,
    load_scores,
    plot_rank_profile,
    plot_removals,
    plot_scores,
    score_summary,
    sentence_transformers_negatives,
    show,
    st_kwargs,
)
from minif2.mining.retrieve import (
    encode_cached,
    encode_queries,
    exact_search,
    faiss_available,
    faiss_search,
    search,
    teacher_fingerprint,
    texts_hash,
)
from minif2.mining.rule import RuleResult, apply_rule, exclusion_masks, select_negatives, source_corpus

__all__ = [
    "MinedSource",
    "MiningConfig",
    "RuleResult",
    "apply_rule",
    "block_search",
    "cli",
    "disk_path",
    "encode_cached",
    "encode_queries",
    "encode_to_disk",
    "exact_search",
    "exclusion_masks",
    "faiss_available",
    "faiss_search",
    "hardness_table",
    "load_report",
    "load_scores",
    "load_teacher",
    "main",
    "merge_top_k",
    "mine_source",
    "plot_rank_profile",
    "plot_removals",
    "plot_scores",
    "score_summary",
    "search",
    "select_negatives",
    "sentence_transformers_negatives",
    "show",
    "source_corpus",
    "st_kwargs",
    "teacher_fingerprint",
    "texts_hash",
    "uses_instructions",
]
