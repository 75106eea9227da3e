"""The published numbers of F2LLM (SPEC §1 and §1a), in one place, for notebooks and reports.

Everything here is a fact of the paper or of its released code, not a setting of the kit;
the kit's defaults (``TrainConfig``, ``MiningConfig``) use these values. Taught in
``notebooks/00_overview.ipynb``; the MTEB figures are shown beside the user's in notebook 04.
"""

from __future__ import annotations

__all__ = ["DATA_MIX_MILLIONS", "MINING", "MTEB_ENG_V2", "MTEB_F2LLM_4B_BY_TYPE", "TRAINING_4B"]

# 6M open-source, non-synthetic samples (SPEC §1)
DATA_MIX_MILLIONS = {"retrieval": 4.9, "classification": 0.2, "clustering": 0.8}

# margin-based hard-negative mining (SPEC §1): teacher Qwen3-Embedding-0.6B
MINING = {
    "teacher": "Qwen/Qwen3-Embedding-0.6B",
    "top_k": 100,  # passages retrieved per query
    "skip_top": 5,  # ranks 1-5 dropped: likely false negatives
    "max_score": 0.8,  # keep score < 0.8 ...
    "relative_margin": 0.95,  # ... and score < 95% of the positive's score
    "num_negatives": {"retrieval": 24, "clustering": 24, "classification": 1},
    "negatives_per_step": 7,  # SPEC §1a: 7 of the 24 are sampled per micro-batch
}

# the 4B run of the released code (SPEC §1a); 0.6B / 1.7B values are not published
TRAINING_4B = {
    "optimizer": "AdamW", "lr": 8e-6, "betas": (0.9, 0.98), "weight_decay": 0.01,
    "warmup_steps": 500, "schedule": "cosine", "min_lr": 1e-7, "epochs": 2,
    "batch_per_gpu": 16, "gpus": 32, "global_batch": 512, "max_length_tokens": 1024,
    "grad_clip": 1.0, "temperature": 0.05, "zero_stage": 2, "precision": "bf16",
    "attention": "flash_attention_2", "gradient_checkpointing": True,
}

# MTEB(eng, v2): (mean over tasks, mean over task types), recomputed from the public results (SPEC §1a)
MTEB_ENG_V2 = {
    "F2LLM-0.6B": (70.03, 63.29),
    "F2LLM-1.7B": (72.01, 65.67),
    "F2LLM-4B": (73.67, 67.29),
    "Qwen3-Embedding-0.6B": (70.47, 64.72),
}

# F2LLM-4B per task type on MTEB(eng, v2) (SPEC §1a)
MTEB_F2LLM_4B_BY_TYPE = {
    "classification": 91.68, "clustering": 68.54, "pair_classification": 83.75, "reranking": 50.05,
    "retrieval": 59.63, "sts": 84.20, "summarization": 33.19,
}
