"""``python -m minif2`` = ``minif2``."""

from .cli import main

raise SystemExit(main())
