"""``minif2 <command>``: the pipeline's steps from the command line.

Each command lives in the module of its step, as ``cli(argv) -> int``; this file only
lists them, so ``minif2 --help`` works even when a step's heavy imports would not.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "main"]

# command -> (module that implements ``cli(argv)``, one-line help), in pipeline order
COMMANDS: dict[str, tuple[str, str]] = {
    "assets": ("minif2.assets_cli", "list the offline models and materialise one (00)"),
    "unify": ("minif2.unify", "turn raw sources into (query, positive, negatives) samples (01)"),
    "mine": ("minif2.mining", "add margin-based hard negatives with a teacher model (02)"),
    "train": ("minif2.trainer", "contrastive fine-tuning: single process, LoRA/QLoRA or DeepSpeed (03)"),
    "eval": ("minif2.evaluation", "score an embedder with mteb on offline or hub tasks (04)"),
    "analyze": ("minif2.analysis", "Procrustes instruction-shift analysis across models (05)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minif2",
        description="minif2: turn a foundation LLM into an embedding model (the F2LLM recipe).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
        + "\n\nRun `minif2 <command> --help` for a command's options.",
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="command", help="one of: " + ", ".join(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    module_name, _ = COMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            print(f"minif2 {args.command}: not implemented yet ({module_name} is missing)", file=sys.stderr)
            return 2
        raise
    return int(module.cli(args.args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
