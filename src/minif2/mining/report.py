"""Looking at what mining did: score summaries, plots, a sample to eyeball, and the
sentence-transformers reference.

``mine.main`` writes ``mining_report.json`` (per-filter removal counts, shortfall
counts, score summaries) and ``mining_scores/<source>.parquet`` (each mined row's
positive score, negative scores and ranks). The functions here read them back:

- :func:`score_summary` -> count / mean / std / quantiles, as in the report.
- :func:`show` prints a query, its positive and its negatives with teacher scores and
  ranks, to catch false negatives by eye (a "negative" that actually answers the query).
- :func:`plot_scores`, :func:`plot_removals`, :func:`plot_rank_profile` draw the
  notebook's figures; :func:`hardness_table` compares random, mined and skipped negatives.
- :func:`st_kwargs` / :func:`sentence_transformers_negatives` run
  ``sentence_transformers.util.mine_hard_negatives`` on the settings where its rule and
  F2LLM's coincide, for tests, the benchmark and the notebook's side-by-side.

Taught in ``notebooks/02_hard_negative_mining.ipynb``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from datasets import Dataset

from minif2.model import DEFAULT_QUERY_TEMPLATE
from minif2.schema import read_unified, training_family

__all__ = [
    "hardness_table",
    "load_report",
    "load_scores",
    "plot_rank_profile",
    "plot_removals",
    "plot_scores",
    "score_summary",
    "sentence_transformers_negatives",
    "show",
    "st_kwargs",
]


def score_summary(values: Sequence[float]) -> dict[str, float]:
    """count, mean, std, min, 25%, median, 75%, max of a list of scores (count 0 when empty)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"count": 0}
    q = np.quantile(x, [0.25, 0.5, 0.75])
    return {
        "count": int(x.size),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        "p25": float(q[0]),
        "median": float(q[1]),
        "p75": float(q[2]),
        "max": float(x.max()),
    }


def load_report(mined_dir: str | Path) -> dict[str, Any]:
    """``mining_report.json`` of a mined folder."""
    return json.loads((Path(mined_dir) / "mining_report.json").read_text())


def load_scores(mined_dir: str | Path) -> dict[str, Any]:
    """``{source: pandas.DataFrame}`` of per-row teacher scores (row, positive_score, negative_scores,
    negative_ranks)."""

    folder = Path(mined_dir) / "mining_scores"
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def show(mined_dir: str | Path, source: str, row: int = 0, max_chars: int = 160) -> str:
    """A mined sample as text: query, positive and each negative with its teacher score and rank."""

    sample = read_unified(mined_dir)[source][row]
    scores = load_scores(mined_dir)[source]
    match = scores[scores["row"] == row]

    def cut(text: str) -> str:
        return textwrap.shorten(" ".join(text.split()), max_chars, placeholder=" ...")

    lines = [
        f"[{source}] row {row}  task={sample['task']}  instruction={sample['instruction']!r}",
        f"QUERY            {cut(sample['query'])}",
    ]
    if match.empty:
        lines.append(f"POSITIVE         {cut(sample['positive'])}")
        lines += [f"NEG (given)      {cut(n)}" for n in sample["negatives"]]
        return "\n".join(lines)
    found = match.iloc[0]
    lines.append(f"POSITIVE (s={found['positive_score']:.3f})  {cut(sample['positive'])}")
    for j, (neg, s, r) in enumerate(zip(sample["negatives"], found["negative_scores"], found["negative_ranks"]), 1):
        lines.append(f"NEG {j:>2} rank {r:>3} (s={s:.3f})  {cut(neg)}")
    return "\n".join(lines)


def plot_scores(mined_dir: str | Path, max_score: float | None = 0.8, ax: Any = None) -> Any:
    """Histogram of positive and mined-negative teacher scores over all sources."""

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    tables = load_scores(mined_dir).values()
    pos = np.concatenate([t["positive_score"].to_numpy() for t in tables]) if tables else np.array([])
    neg = (
        np.concatenate([np.concatenate(t["negative_scores"].to_numpy()) for t in tables if len(t)])
        if tables
        else np.array([])
    )
    bins = np.linspace(min(pos.min(initial=0), neg.min(initial=0)), 1.0, 41)
    ax.hist(pos, bins=bins, alpha=0.6, density=True, label=f"positive (n={pos.size})")
    ax.hist(neg, bins=bins, alpha=0.6, density=True, label=f"mined negatives (n={neg.size})")
    if max_score is not None:
        ax.axvline(max_score, color="k", linestyle="--", label=f"max_score = {max_score}")
    ax.set(
        title="Teacher scores: positives vs mined hard negatives",
        xlabel="cosine similarity to the query (teacher)",
        ylabel="density (each histogram has area 1)",
    )
    ax.legend()
    return ax


def plot_removals(report: dict[str, Any], ax: Any = None) -> Any:
    """Bar chart: how many candidates each filter removed, summed over sources."""

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    totals: dict[str, int] = {}
    for src in report["sources"].values():
        for name, count in src.get("removed", {}).items():
            totals[name] = totals.get(name, 0) + count
    bars = ax.bar(list(totals), list(totals.values()), color="tab:red")
    ax.bar_label(bars)
    ax.set(
        title="Candidates removed by each filter (in order applied)",
        xlabel="filter",
        ylabel="candidates removed (count)",
    )
    ax.tick_params(axis="x", rotation=20)
    return ax


def plot_rank_profile(
    scores: np.ndarray,
    positive_score: float,
    skip_top: int = 5,
    max_score: float | None = 0.8,
    relative_margin: float | None = 0.95,
    ax: Any = None,
    label: str = "",
) -> Any:
    """One query's candidate scores by rank (positive removed), with the rule's three cuts drawn in."""

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    ranks = np.arange(1, len(scores) + 1)
    ax.plot(ranks, scores, marker=".", label=label or "candidates")
    ax.axvspan(0.5, skip_top + 0.5, color="grey", alpha=0.25, label=f"skipped ranks 1-{skip_top}")
    if max_score is not None:
        ax.axhline(max_score, color="k", linestyle="--", label=f"max_score {max_score}")
    if relative_margin is not None:
        ax.axhline(
            positive_score - (1 - relative_margin) * abs(positive_score),
            color="tab:red",
            linestyle=":",
            label=f"{relative_margin} x positive ({positive_score:.2f})",
        )
    ax.set(
        title="Teacher score by rank for one query",
        xlabel="rank among non-positive candidates",
        ylabel="cosine similarity (teacher)",
    )
    ax.legend(fontsize=8)
    return ax


def hardness_table(
    query_emb: np.ndarray,
    corpus_emb: np.ndarray,
    corpus: Sequence[str],
    rows: Sequence[Any],
    indices: np.ndarray,
    mined: dict[tuple[str, str], list[str]],
    num: int = 7,
    skip_top: int = 5,
    seed: int = 0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Any:
    """Mean negative score (and ``loss_fn``'s loss) for three choices of ``num`` negatives.

    ``loss_fn(query, positive, negatives)`` is the loss the negatives will feed, e.g.
    ``minif2.training.hard_negative_loss`` (F2LLM's, tau 0.05); mining does not import
    training, so the caller passes it (notebook 02 does).

    ``random``: documents drawn at random (never the positive nor the skipped top ranks,
    which a random draw from a small corpus would often hit); ``mined``: the first
    ``num`` mined negatives; ``skipped top ranks``: ranks 1..``skip_top`` of the teacher's
    retrieval (``indices``, best first), the candidates the rule drops as likely false
    negatives. Only rows with at least ``num`` mined negatives are used; embeddings
    are the teacher's (cached), so nothing is encoded.
    """

    position = {text: j for j, text in enumerate(corpus)}
    rng = np.random.default_rng(seed)
    used, sets = [], {"random": [], "mined": [], f"skipped top ranks 1-{skip_top}": []}
    for i, row in enumerate(rows):
        negatives, pid = mined.get((row["query"], row["positive"]), []), position[row["positive"]]
        ranked = [int(j) for j in indices[i] if j != pid]
        if len(negatives) < num or len(ranked) < skip_top:
            continue
        used.append(i)
        others = np.setdiff1d(
            np.arange(len(corpus)), [pid, *ranked[:skip_top]]
        )  # a fair draw: outside the skipped ranks
        sets["random"].append(rng.choice(others, num, replace=False))
        sets["mined"].append([position[t] for t in negatives[:num]])
        sets[f"skipped top ranks 1-{skip_top}"].append(ranked[:skip_top])
    q = torch.from_numpy(query_emb[used])  # (n, d)
    p = torch.from_numpy(corpus_emb[[position[rows[i]["positive"]] for i in used]])  # (n, d)
    table = {}
    for name, ids in sets.items():
        n = torch.from_numpy(corpus_emb[np.array(ids, dtype=np.int64)])  # (n, num, d)
        table[name] = {
            "queries": len(used),
            "negatives each": n.shape[1],
            "mean negative score": float(torch.einsum("nd,nkd->nk", q, n).mean()),
            **({"hard-negative loss": float(loss_fn(q, p, n))} if loss_fn is not None else {}),
        }
    return pd.DataFrame(table).T


def st_kwargs(cfg: Any, family: str = "retrieval", strict: bool = True) -> dict[str, Any]:
    """``mine_hard_negatives`` keyword arguments for a :class:`~minif2.mining.MiningConfig`.

    sentence-transformers drops ``range_min`` candidates AFTER removing those above
    ``max_score`` or inside the margin (``skip_order="survivors"``); the kit's default drops
    ranks 1-5 BEFORE. Both are the same rule when ``skip_top == 0`` or both score filters are
    off; ``strict`` raises for the default order otherwise. ST's ``relative_margin`` m drops
    ``score > pos - |pos| m``: m = 1 - 0.95.
    Its ``n-tuple`` output drops samples short of ``num_negatives``: ``on_shortfall="drop"``.
    """
    filters_on = cfg.max_score is not None or cfg.relative_margin is not None
    if strict and cfg.skip_top and filters_on and cfg.skip_order == "ranks":
        raise ValueError(
            f"MiningConfig: skip_top={cfg.skip_top} with score filters on, skipping retrieval ranks first "
            "(skip_order='ranks'), is not sentence-transformers' order: set skip_order='survivors', skip_top=0 "
            "or max_score=relative_margin=None to compare."
        )
    if strict and cfg.on_shortfall != "drop":
        raise ValueError(
            f"MiningConfig: on_shortfall={cfg.on_shortfall!r}; sentence-transformers drops short samples: use 'drop'."
        )
    margin = None if cfg.relative_margin is None else round(1.0 - cfg.relative_margin, 12)
    return {
        "range_min": cfg.skip_top,
        "range_max": cfg.top_k,
        "max_score": cfg.max_score,
        "relative_margin": margin,
        "num_negatives": cfg.num_negatives[family],
        "sampling_strategy": "top",
        "output_format": "n-tuple",
        "use_faiss": False,
        "verbose": False,
    }


def sentence_transformers_negatives(
    samples: Sequence[Any],
    model: Any,
    cfg: Any,
    instruction: str | None = None,
    strict: bool = True,
    extra_corpus: Sequence[str] = (),
    **extra: Any,
) -> dict[tuple[str, str], list[str]]:
    """``{(query, positive): negatives}`` from ``mine_hard_negatives`` on one source's samples.

    ``samples``: :class:`~minif2.schema.Sample` or dicts; their existing negatives and
    ``extra_corpus`` join the corpus, as in :func:`minif2.mining.mine_source`. ``model``: a SentenceTransformer
    or a folder. ``instruction`` becomes ST's ``query_prompt`` in the kit's template.
    """

    rows = [s.to_dict() if hasattr(s, "to_dict") else dict(s) for s in samples]
    # sentence-transformers (1.3 s to import, with peft and bitsandbytes) only when a comparison is asked for
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    from sentence_transformers.util import mine_hard_negatives  # noqa: PLC0415

    model = model if isinstance(model, SentenceTransformer) else SentenceTransformer(str(model), device="cpu")
    dataset = Dataset.from_dict({"query": [r["query"] for r in rows], "positive": [r["positive"] for r in rows]})
    corpus = list(dict.fromkeys([n for r in rows for n in r["negatives"]] + list(extra_corpus))) or None
    prompt = DEFAULT_QUERY_TEMPLATE.split("{text}")[0].format(instruction=instruction) if instruction else None
    kwargs = {**st_kwargs(cfg, training_family(rows[0]["task"]), strict=strict), **extra}
    out = mine_hard_negatives(
        dataset,
        model,
        anchor_column_name="query",
        positive_column_name="positive",
        corpus=corpus,
        query_prompt=prompt,
        **kwargs,
    )
    negative_columns = [c for c in out.column_names if c.startswith("negative_")]
    return {(r["query"], r["positive"]): [r[c] for c in negative_columns] for r in out}
