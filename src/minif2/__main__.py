"""``python -m minif2`` = ``minif2``."""

from minif2.cli import main

raise SystemExit(main())
