"""Samples/s and tokens/s of one training step of the kit, and its overhead over a bare forward+backward.

The kit's step is one micro-batch of ``trainer.train``: ``draw_batch`` (pick negatives, format
texts), ``embed_batch`` (tokenise, embed queries and documents), the loss object, and the backend's
``backward`` (clip, AdamW and schedule step). The bare step runs the
same Embedder forward on the same, already tokenised batch and a plain ``sum`` backward, with
no optimiser: ``overhead = kit step time / bare step time``. Both alternate in one process, so
the machine's load affects them alike; medians over ``--repeats``. Saved as JSON
(default: benchmarks/results/train_step.json).

    python benchmarks/train_step.py --model tiny-qwen3 --batch-size 16 --num-negatives 7
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def synthetic_mined(folder: Path, n: int, n_neg: int, seed: int = 0) -> Path:
    """A one-source retrieval set of ``n`` samples with ``n_neg`` negatives each (~30-word texts)."""
    from minif2.schema import Sample, write_unified

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(500)] + "the of a to in tensor model layer gradient loss".split()
    text = lambda m: " ".join(rng.choices(words, k=m))  # noqa: E731
    samples = [
        Sample(
            query=text(12),
            positive=text(30),
            negatives=[text(30) for _ in range(n_neg)],
            task="retrieval",
            source="bench",
            instruction="Given a query, retrieve passages that answer the query.",
        )
        for _ in range(n)
    ]
    return write_unified({"bench": samples}, folder)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-qwen3", help="asset name or folder (default: tiny-qwen3)")
    parser.add_argument("--mode", default="full", choices=["full", "lora", "qlora"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-negatives", type=int, default=7)
    parser.add_argument("--max-length-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_step.json"))
    args = parser.parse_args(argv)

    import torch

    from minif2.training.backends import build_embedder, make_backend
    from minif2.training.sampler import load_training_data
    from minif2.training.trainer import TrainConfig, build_loss, draw_batch, embed_batch

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="minif2-bench-"))
    cfg = TrainConfig(
        data_dir=str(synthetic_mined(tmp / "data", args.batch_size * (args.repeats + 2), 24)),
        out_dir=str(tmp / "out"),
        model=args.model,
        mode=args.mode,
        batch_size=args.batch_size,
        num_negatives=args.num_negatives,
        max_length_tokens=args.max_length_tokens,
        gradient_checkpointing=False,
        validation_fraction=0.0,
        warmup_steps=1,
    )
    data = load_training_data(cfg.data_dir, 0.0)
    embedder = build_embedder(cfg)
    backend = make_backend(embedder, cfg, total_steps=1000)
    loss = build_loss(cfg, embedder)
    embedder.train()
    n_neg = min(args.num_negatives, 24)
    batches = [list(range(i * args.batch_size, (i + 1) * args.batch_size)) for i in range(args.repeats + 1)]

    def kit(i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        batch = draw_batch(data, cfg, "bench", batches[i], i, embedder)
        q, p, n, tokens = embed_batch(backend.forward, embedder, batch)
        backend.backward(loss(q, p, n, batch.family, batch)["loss"], boundary=True)
        return time.perf_counter() - t0, tokens

    def bare(i: int) -> float:
        batch = data.batch("bench", batches[i], list(range(n_neg)), template=embedder.config.query_template)
        q_tok, d_tok = embedder.tokenize(batch.queries), embedder.tokenize(batch.positives + batch.negatives)
        t0 = time.perf_counter()
        loss = embedder(**q_tok).sum() + embedder(**d_tok).sum()
        loss.backward()
        embedder.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    kit(0), bare(0)  # warm-up
    kit_s, bare_s, tokens = [], [], []
    for i in range(1, args.repeats + 1):
        t, n = kit(i)
        kit_s.append(t), tokens.append(n), bare_s.append(bare(i))
    step_s, bare_step_s = statistics.median(kit_s), statistics.median(bare_s)
    result = {
        "model": args.model,
        "mode": args.mode,
        "batch_size": args.batch_size,
        "num_negatives": n_neg,
        "texts_per_step": args.batch_size * (2 + n_neg),
        "tokens_per_step": int(statistics.median(tokens)),
        "step_s": step_s,
        "bare_forward_backward_s": bare_step_s,
        "samples_per_s": args.batch_size / step_s,
        "tokens_per_s": statistics.median(tokens) / step_s,
        "overhead_ratio": step_s / bare_step_s,
        "repeats": args.repeats,
        "device": str(backend.device),
        "machine": machine_info(),
    }
    print(
        f"{args.model} ({args.mode}), batch {args.batch_size} x (query + positive + {n_neg} negatives), "
        f"{result['tokens_per_step']} tokens/step on {result['device']}:"
    )
    print(
        f"  kit step            {step_s:8.3f} s   {result['samples_per_s']:8.1f} samples/s   "
        f"{result['tokens_per_s']:9.0f} tokens/s"
    )
    print(f"  bare forward+backward {bare_step_s:6.3f} s   overhead ratio {result['overhead_ratio']:.2f}x")
    save_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
