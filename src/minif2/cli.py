"""``minif2 <command>``: the pipeline's steps from the command line.

Each command lives in the module of its step, as ``cli(argv) -> int``; this file only
lists them, so ``minif2 --help`` works even when a step's heavy imports would not.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from minif2.assets import AssetError, list_assets, resolve_model
from minif2.config import InputError

__all__ = ["COMMANDS", "main"]

# command -> (module that implements ``cli(argv)``, or "module:function"; one-line help), in pipeline order
COMMANDS: dict[str, tuple[str, str]] = {
    "assets": ("minif2.cli:assets_cli", "list the offline models and materialise one (00)"),
    "unify": ("minif2.data", "turn raw sources into (query, positive, negatives) samples (01)"),
    "tokenize": ("minif2.data.pretokenize", "store token ids once per document of a corpus-layout folder (01)"),
    "mine": ("minif2.mining", "add margin-based hard negatives with a teacher model (02)"),
    "prune": ("minif2.training.prune", "keep some of a decoder's layers: a smaller base model (03, F2LLM-v2)"),
    "train": (
        "minif2.planning.dryrun:train_cli",
        "contrastive fine-tuning: single process, LoRA/QLoRA or DeepSpeed; --dry-run checks a profile (03)",
    ),
    "merge": ("minif2.training.merge", "average or slerp checkpoints, or mix one with its base (03, LM-Cocktail)"),
    "plan": ("minif2.planning.dryrun:plan_cli", "memory per GPU of the training profiles for Qwen3 0.6B-4B (03)"),
    "eval": ("minif2.evaluation", "score an embedder with mteb on offline or hub tasks (04)"),
    "doctor": ("minif2.evaluation.doctor", "why a score differs: re-score with one setting changed at a time (04)"),
    "analyze": ("minif2.analysis", "Procrustes instruction-shift analysis across models (05)"),
    "run": ("minif2.pipeline", "your own data end to end: unify, mine, train, eval base vs trained, one table (06)"),
}


DRY_RUN = "minif2.planning:train_cli"  # `minif2 train --dry-run ...`


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minif2",
        description="minif2: turn a foundation LLM into an embedding model (the F2LLM recipe).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
        + "\n\nRun `minif2 <command> --help` for a command's options.",
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="command", help="one of: " + ", ".join(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def assets_cli(argv: list[str] | None = None) -> int:
    """``minif2 assets [NAME]``: list the offline models, or print the local folder of one."""
    parser = argparse.ArgumentParser(
        prog="minif2 assets", description="List the offline models, or print the local folder of one."
    )
    parser.add_argument("name", nargs="?", help="asset name, hub id or folder to resolve (prints its local path)")
    args = parser.parse_args(argv)
    if args.name is None:
        for name, description in list_assets().items():
            print(f"{name:<14} {description}")
    else:
        print(resolve_model(args.name))
    return 0


# errors in what the user gave: config, data and task files (InputError: ConfigError, UnifyError,
# TaskFormatError, MissingInputError, CheckpointError), model names (AssetError); their messages name the
# file and field. Any other exception, a bare FileNotFoundError included, is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (InputError, AssetError)


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error prints its message alone (exit code 2); anything else keeps its traceback."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    target, _ = COMMANDS[args.command]
    if args.command == "train" and "--dry-run" in args.args:
        target = DRY_RUN  # planning reads the trainer; the trainer does not read planning
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name)  # imported on demand: `minif2 --help` stays light
    try:
        return int(getattr(module, function or "cli")(args.args) or 0)
    except USER_ERRORS as err:
        print(f"minif2 {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
