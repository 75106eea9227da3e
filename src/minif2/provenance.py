"""Where a run's numbers came from: the environment, the lock, and fingerprints of the data.

minif2 is a reproduction kit, so every stage records what would make two runs differ
(docs/recipe.md §5): the Python version, the hash of ``requirements.lock`` (the exact package
set, installed by ``scripts/bootstrap.sh``), the versions of the packages that compute the
numbers (torch, transformers, sentence-transformers, mteb, datasets), and a sha256 of every
data file. Two runs with equal records and the same seed give the same numbers on the same
machine; when the records differ, the difference says why the numbers may.

Used by ``minif2 unify`` (the manifest), the trainer and mteb scoring (their summaries) and
``scripts/run_course.py`` (``course.json``); shown in ``notebooks/00_overview.ipynb``.
This module reads files and package metadata only; it changes nothing.
"""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from minif2.config import repo_root

__all__ = ["KEY_PACKAGES", "environment_record", "file_sha256", "folder_fingerprint", "lock_sha256", "versions"]

# The packages whose version changes the kit's numbers; every record names them.
KEY_PACKAGES = ("torch", "transformers", "sentence-transformers", "mteb", "datasets", "numpy", "scikit-learn")


def _update(digest: Any, path: Path) -> None:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of one file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    _update(digest, Path(path))
    return digest.hexdigest()


def folder_fingerprint(folder: str | Path, length: int = 16) -> str:
    """A short sha256 of every file under ``folder`` (relative paths and bytes, in sorted order).

    It changes when any file's name or content changes, and only then; mteb records it as a
    local task's dataset revision (``evaluation/mteb_tasks.py``).
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        _update(digest, path)
    return digest.hexdigest()[:length]


def versions(packages: tuple[str, ...] | list[str] = KEY_PACKAGES) -> dict[str, str]:
    """``{package: installed version}``; ``"not installed"`` for a missing one.

    >>> versions(["surely-not-a-package"])
    {'surely-not-a-package': 'not installed'}
    """
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def lock_sha256() -> str | None:
    """sha256 (16 hex digits) of the checkout's ``requirements.lock``; None outside a checkout."""
    lock = repo_root() / "requirements.lock"
    return file_sha256(lock)[:16] if lock.is_file() else None


def environment_record() -> dict[str, Any]:
    """Python, the lock's hash and the key packages' versions: what every run summary carries."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "requirements_lock_sha256": lock_sha256(),
        "versions": versions(),
    }
