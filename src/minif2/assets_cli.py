"""``minif2 assets``: list the offline models, or print the local folder of one."""

from __future__ import annotations

import argparse

from .assets import list_assets, resolve_model


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minif2 assets", description=__doc__)
    parser.add_argument("name", nargs="?", help="asset name, hub id or folder to resolve (prints its local path)")
    args = parser.parse_args(argv)
    if args.name is None:
        for name, description in list_assets().items():
            print(f"{name:<14} {description}")
    else:
        print(resolve_model(args.name))
    return 0
