"""Issue 24: the data path at 10k, 100k and 1M F2LLM-shaped rows -- time, rows/s, peak RSS and disk per step.

F2LLM-shaped data: four sources named from F2LLM's retrieval list, each row a ~60-character query, a
passage and 24 negatives (``negative_1..24``, F2LLM's v1 files, docs/recipe.md §1a), every document a
~500-character text drawn from ONE shared pool of ``rows // 10`` documents, so documents repeat as
F2LLM's mined negatives do. Steps, each in its own subprocess (its peak RSS from ``os.wait4``):

1. ``generate``: the v1 files, and the same rows in the kit's inline form (``schema.write_unified``'s
   columns, pyarrow's default writer as ``Dataset.to_parquet``) for the disk comparison;
2. ``unify``: ``minif2 unify`` with ``layout: corpus`` and a streamed ``hub: f2llm`` folder import
   (import, validation, de-dup, documents once, manifest: data/f2llm.py, data/corpus.py);
3. ``load``: ``training.load_training_data`` on the result (memory-mapped, counted with Arrow);
4. ``train_text`` / ``tokenize`` / ``train_ids``: ``--steps`` steps of tiny-qwen3 on the texts, then
   ``minif2 tokenize`` and the same steps on the stored ids (steps/s from metrics.jsonl's ``time_s``);
   ``batch_prep``: the one part of a step that differs, a micro-batch's tensors from texts or from ids,
   alternated in one process (separate training runs on a loaded machine differ by the load);
5. ``unify_inline`` (``--baseline-sizes``, default 10k only): today's path, every row a ``Sample``.

    python benchmarks/scale.py --sizes 10000 100000     # default: 10000 100000 1000000

Writes ``benchmarks/measured/scale_issue24.json`` and ``scale_issue24.png`` (log-log). Timings on a
shared machine are loaded: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SOURCES = ("msmarco", "hotpotqa", "fever", "natural_questions")
NEGATIVES = 24
MEASURED = Path(__file__).parent / "measured"
IMPORTS = {
    "unify": ["minif2.data.unify", "mteb"],  # mteb: instructions (instructions.py), a one-off import
    "unify_inline": ["minif2.data.unify", "mteb"],
    "load": ["minif2.training.sampler"],
    "tokenize": ["minif2.data.pretokenize", "minif2.model"],
    "train_text": ["minif2.training.trainer"],
    "train_ids": ["minif2.training.trainer"],
    "batch_prep": ["minif2.training.trainer"],
}


def _pool(size: int, seed: int) -> list[str]:
    """``size`` distinct ~500-character documents of random words."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i:04d}" for i in range(4000)] + "the of a to in and model data".split())
    picks = rng.integers(0, len(words), size=(size, 84))
    return [f"doc {i}: " + " ".join(words[row]) for i, row in enumerate(picks)]


def generate(rows: int, folder: Path, seed: int = 0) -> dict:
    """The v1 files under ``folder/raw`` and the inline form under ``folder/inline`` (bytes of each)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.arrow_writer import get_writer_batch_size_from_data_size

    pool = pa.array(_pool(max(1000, rows // 10), seed))
    rng = np.random.default_rng(seed + 1)
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    (folder / "inline").mkdir(parents=True, exist_ok=True)
    per_source, chunk = rows // len(SOURCES), 20_000
    # the inline form as Dataset.to_parquet writes it (schema.write_unified): row groups of ~100 MB uncompressed
    group = get_writer_batch_size_from_data_size(per_source, per_source * (60 + (1 + NEGATIVES) * 520))
    for source in SOURCES:
        v1_writer = inline_writer = None
        for start in range(0, per_source, chunk):
            n = min(chunk, per_source - start)
            docs = rng.integers(0, len(pool), size=(n, 1 + NEGATIVES))
            query = pa.array(
                [f"{source} question {start + i} about w{i % 997:04d} and w{i % 89:04d}" for i in range(n)]
            )
            columns = {"query": query, "passage": pool.take(pa.array(docs[:, 0]))}
            columns |= {f"negative_{j}": pool.take(pa.array(docs[:, j])) for j in range(1, 1 + NEGATIVES)}
            v1 = pa.table(columns)
            inline = _inline_table(query, columns["passage"], pool.take(pa.array(docs[:, 1:].reshape(-1))), source)
            v1_writer = v1_writer or pq.ParquetWriter(folder / "raw" / f"{source}.parquet", v1.schema)
            inline_writer = inline_writer or pq.ParquetWriter(folder / "inline" / f"{source}.parquet", inline.schema)
            v1_writer.write_table(v1)
            for at in range(0, n, group):
                inline_writer.write_table(inline.slice(at, group))
        v1_writer.close()
        inline_writer.close()
    os.sync()  # the files written back to disk now, not during the next step's timing (7.7 GB at 1M rows)
    return {"v1_bytes": _bytes(folder / "raw"), "inline_bytes": _bytes(folder / "inline"), "pool_documents": len(pool)}


def _inline_table(query, positive, negatives_flat, source: str):
    """The kit's inline form (``schema.features``): every row carries its 24 negative texts."""
    import numpy as np
    import pyarrow as pa

    n = len(query)
    offsets = pa.array(np.arange(0, n * NEGATIVES + 1, NEGATIVES, dtype=np.int32))
    return pa.table(
        {
            "query": query,
            "positive": positive,
            "negatives": pa.ListArray.from_arrays(offsets, negatives_flat),
            "task": pa.array(["retrieval"] * n),
            "source": pa.array([source] * n),
            "instruction": pa.array(["Given a question, retrieve passages that answer it."] * n),
        }
    )


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def unify(folder: Path, layout: str = "corpus") -> dict:
    from minif2.data.unify import UnifyConfig, main

    out = folder / f"data_{layout}"
    imports = [{"name": "f2llm", "shape": "f2llm", "hub": str(folder / "raw")}]
    main(UnifyConfig(out_dir=str(out), offline_sources=(), layout=layout, imports=imports))
    manifest = json.loads((out / "unified" / "manifest.json").read_text())
    return {"bytes": _bytes(out / "unified"), "rows": sum(manifest["sources"].values()),
            "documents": manifest.get("documents")}  # fmt: skip


def load(folder: Path) -> dict:
    from minif2.training.sampler import load_training_data

    data = load_training_data(folder / "data_corpus" / "unified", 0.01)
    return {"train_rows": sum(data.sizes.values()), "negatives_available": data.negatives_available}


def tokenize(folder: Path, max_length_tokens: int) -> dict:
    from minif2.data.pretokenize import PretokenizeConfig, main

    unified = folder / "data_corpus" / "unified"
    main(PretokenizeConfig(data_dir=str(unified), model="tiny-qwen3", max_length_tokens=max_length_tokens))
    return {"bytes": _bytes(unified)}


def train(folder: Path, steps: int, max_length_tokens: int, name: str) -> dict:
    """``steps`` steps of tiny-qwen3 (batch 16, 7 negatives); steps/s over the steps after the first."""
    from minif2.training import TrainConfig
    from minif2.training.trainer import train as run

    out = folder / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(data_dir=str(folder / "data_corpus" / "unified"), out_dir=str(out), model="tiny-qwen3",
                      batch_size=16, num_negatives=7, max_steps=steps, max_length_tokens=max_length_tokens,
                      eval_every_steps=0, save_every_steps=0, validation_fraction=0.01, progress=False,
                      gradient_checkpointing=False, seed=0)  # fmt: skip
    run(cfg)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    times = [r["time_s"] for r in rows if r.get("split") == "train"][1:]
    shutil.rmtree(out / "final", ignore_errors=True)
    return {"steps": steps, "steps_per_s": round(len(times) / sum(times), 2) if times else None}


def batch_prep(folder: Path, max_length_tokens: int, batches: int = 60) -> dict:
    """Milliseconds to make one micro-batch's tensors from texts (tokenize) and from stored ids (pad), alternated
    in one process so the machine's load hits both alike; the model's work is the same (identical tensors)."""
    import statistics

    from minif2.model import Embedder
    from minif2.training.sampler import SourceBatchSampler, load_training_data, negatives_for_step

    data = load_training_data(folder / "data_corpus" / "unified", 0.01)
    embedder = Embedder.from_pretrained("tiny-qwen3", max_length_tokens=max_length_tokens)
    times: dict[str, list[float]] = {"text": [], "ids": []}
    for step, (source, indices) in zip(range(batches), SourceBatchSampler(data.sizes, 16, seed=0)):
        negative_ids = negatives_for_step(step, data.negatives_available[source], 7)
        for name, use_ids in (("text", False), ("ids", True)):
            t0 = time.perf_counter()
            batch = data.batch(source, indices, negative_ids, "train", token_ids=use_ids)
            docs = batch.positives + batch.negatives
            embedder.tokenize(docs) if not use_ids else embedder.pad(batch.document_ids)
            times[name].append(1000 * (time.perf_counter() - t0))
    return {f"{k}_ms_median": round(statistics.median(v), 2) for k, v in times.items()} | {"batches": batches}


def _child(step: str, size: int, work: Path, args: argparse.Namespace) -> dict:
    """Run one step in a subprocess; its wall time and peak RSS (``ru_maxrss`` of that child)."""
    command = [sys.executable, __file__, "--child", step, "--sizes", str(size), "--work", str(work),
               "--steps", str(args.steps), "--max-length-tokens", str(args.max_length_tokens)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"step {step} at {size} rows failed (status {status}); output:\n{out[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    record = {"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024), **result}
    print(f"{size:>8} {step:<12} {wall:8.1f} s {record['peak_rss_mb']:>6} MB {result}", flush=True)
    return record


def _run_child(step: str, size: int, work: Path, args: argparse.Namespace) -> None:
    folder = work / str(size)
    steps = {
        "generate": lambda: generate(size, folder),
        "unify": lambda: unify(folder),
        "unify_inline": lambda: unify(folder, "inline"),
        "load": lambda: load(folder),
        "train_text": lambda: train(folder, args.steps, args.max_length_tokens, "train_text"),
        "tokenize": lambda: tokenize(folder, args.max_length_tokens),
        "train_ids": lambda: train(folder, args.steps, args.max_length_tokens, "train_ids"),
        "batch_prep": lambda: batch_prep(folder, args.max_length_tokens),
    }
    for module in IMPORTS.get(step, ()):  # imported before the clock starts: the step's own time only
        importlib.import_module(module)
    t0 = time.perf_counter()
    result = steps[step]()
    print(json.dumps({"step_s": round(time.perf_counter() - t0, 2), **result}))


def measure(size: int, work: Path, args: argparse.Namespace) -> dict:
    """Every step at ``size`` rows, with rows/s for the import and the disk ratio."""
    shutil.rmtree(work / str(size), ignore_errors=True)
    plan = ["generate", "unify", "load", "train_text", "tokenize", "train_ids", "batch_prep"]
    plan += ["unify_inline"] if size in args.baseline_sizes else []
    record = {step: _child(step, size, work, args) for step in plan}
    record["unify"]["rows_per_s"] = round(size / record["unify"]["step_s"])  # in-process: imports not counted
    record["disk_ratio_inline_to_corpus"] = round(record["generate"]["inline_bytes"] / record["unify"]["bytes"], 1)
    if not args.keep:
        shutil.rmtree(work / str(size), ignore_errors=True)
    return record


def plot(results: dict, path: Path) -> None:
    """Log-log: wall time, peak RSS and bytes on disk against rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in results)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for step in ("unify", "load", "tokenize", "train_ids"):
        axes[0].plot(sizes, [results[str(s)][step]["step_s"] for s in sizes], "o-", label=step)
        axes[1].plot(sizes, [results[str(s)][step]["peak_rss_mb"] for s in sizes], "o-", label=step)
    axes[2].plot(sizes, [results[str(s)]["generate"]["inline_bytes"] / 1e6 for s in sizes], "o-", label="inline form")
    axes[2].plot(sizes, [results[str(s)]["unify"]["bytes"] / 1e6 for s in sizes], "o-", label="corpus layout")
    for ax, label in zip(axes, ("time in the step (s)", "peak RSS (MB)", "disk (MB)"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="rows", ylabel=label)
        ax.legend()
    fig.suptitle("issue 24: F2LLM-shaped data, 2-core CPU shared with other work")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[10_000], help="sizes also run inline")
    parser.add_argument("--steps", type=int, default=100, help="training steps per run (fewer on a loaded CPU)")
    parser.add_argument("--max-length-tokens", type=int, default=64)
    parser.add_argument("--work", default="/tmp/minif2_scale", help="scratch folder (removed per size)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--out", default=str(MEASURED / "scale_issue24.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.work)
    if args.child:
        _run_child(args.child, args.sizes[0], work, args)
        return {}
    out = Path(args.out)
    results = json.loads(out.read_text())["sizes"] if out.is_file() else {}
    for size in args.sizes:
        results[str(size)] = measure(size, work, args)
        record = {"what": __doc__.splitlines()[0], "machine": machine_info(), "steps": args.steps,
                  "max_length_tokens": args.max_length_tokens, "sizes": results}  # fmt: skip
        save_result(record, out)
        plot(results, out.with_suffix(".png"))
    return results


if __name__ == "__main__":
    main()
