"""Sentences per second of ``Embedder.encode`` vs ``SentenceTransformer.encode``, same model, same texts.

Both run in this one process, alternating, so the machine's load affects them alike.
Prints a table and saves the figures as JSON (default: benchmarks/results/encode.json).

    python benchmarks/encode.py --model minilm --num-texts 2000 --batch-size 64
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import machine_info, save_result  # benchmarks/_common.py (the script folder is on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def texts_for_benchmark(n: int, seed: int = 0) -> list[str]:
    """``n`` real docstrings of the standard library (first paragraph), cycled if needed."""
    import ast
    import random
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs: list[str] = []
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and (doc := ast.get_docstring(node)):
                docs.append(doc.split("\n\n")[0])
        if len(docs) >= n:
            break
    random.Random(seed).shuffle(docs)
    return (docs * (n // max(len(docs), 1) + 1))[:n]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="asset name or folder (default: minilm)")
    parser.add_argument("--num-texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "encode.json"))
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    from minif2 import Embedder
    from minif2.assets import resolve_model

    texts = texts_for_benchmark(args.num_texts)
    ours = Embedder.from_pretrained(args.model)
    reference = SentenceTransformer(resolve_model(args.model), device="cpu")
    reference.max_seq_length = min(reference.max_seq_length or 512, ours.config.max_length_tokens)
    runs = {
        "minif2.Embedder.encode": lambda: ours.encode(texts, batch_size=args.batch_size, show_progress_bar=False),
        "SentenceTransformer.encode": lambda: reference.encode(
            texts, batch_size=args.batch_size, show_progress_bar=False
        ),
    }
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(ts) for name, ts in times.items()}
    result = {
        "model": args.model,
        "num_texts": len(texts),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "sentences_per_s": {name: len(texts) / t for name, t in best.items()},
        "best_time_s": best,
        "ratio_minif2_over_st": best["SentenceTransformer.encode"] / best["minif2.Embedder.encode"],
        "machine": machine_info(),
    }
    for name, rate in result["sentences_per_s"].items():
        print(f"{name:<28} {rate:9.1f} sentences/s  (best of {args.repeats}: {best[name]:.2f} s)")
    print(f"speed ratio (minif2 / sentence-transformers): {result['ratio_minif2_over_st']:.2f}x")
    save_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
