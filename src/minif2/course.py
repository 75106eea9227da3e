"""The course's run folder: where each notebook finds the previous step's artifacts.

``<run_dir>/data/unified`` (01), ``data/eval_tasks`` (01), ``data/mined`` (02),
``checkpoints/final`` (03), ``eval`` (04), ``analysis`` (05). A relative ``run_dir`` is
taken from the repository root, so a notebook opened in JupyterLab (cwd ``notebooks/``)
and one run by ``scripts/run_course.py`` (cwd the root) share the same folder.

This module only names places; the steps themselves live in their modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunPaths", "repo_root", "run_paths"]


def repo_root() -> Path:
    """The checkout this package is installed from (editable install), else the current folder."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "notebooks").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class RunPaths:
    """Every artifact of one course run."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def unified(self) -> Path:
        return self.data / "unified"

    @property
    def eval_tasks(self) -> Path:
        return self.data / "eval_tasks"

    @property
    def mined(self) -> Path:
        return self.data / "mined"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "final"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"


def run_paths(run_dir: str | Path = "runs/latest") -> RunPaths:
    """Resolve ``run_dir`` (relative to the repository root) and create it."""
    path = Path(run_dir).expanduser()
    if not path.is_absolute():
        path = repo_root() / path
    path.mkdir(parents=True, exist_ok=True)
    return RunPaths(path)
