"""The course's run folder: where each notebook finds the previous step's artifacts.

``<run_dir>/data/unified`` (01), ``data/eval_tasks`` (01), ``data/mined`` (02),
``checkpoints/final`` (03), ``eval`` (04), ``analysis`` (05). A relative ``run_dir`` is
taken from the repository root, so a notebook opened in JupyterLab (cwd ``notebooks/``)
and one run by ``scripts/run_course.py`` (cwd the root) share the same folder.

This module only names places; the steps themselves live in their modules.
"""

from __future__ import annotations

import math
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minif2.config import repo_root

__all__ = ["RunPaths", "check", "load_solutions", "run_paths"]


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


def _equal(answer: Any, expected: Any, rel_tol: float) -> bool:
    if isinstance(expected, float) or isinstance(answer, float):
        try:
            return math.isclose(float(answer), float(expected), rel_tol=rel_tol, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, (list, tuple)) and isinstance(answer, (list, tuple)):
        return len(answer) == len(expected) and all(
            _equal(a, e, rel_tol) for a, e in zip(answer, expected, strict=True)
        )
    if isinstance(expected, str) and isinstance(answer, str):
        return answer.strip().lower() == expected.strip().lower()
    return bool(answer == expected)


def check(name: str, answer: Any, expected: Any, hint: str = "", rel_tol: float = 1e-3) -> bool:
    """Print whether ``answer`` matches ``expected`` (floats to ``rel_tol``); return the verdict."""
    if answer is None:
        print(f"{name}: not answered yet. {hint}".rstrip())
        return False
    ok = _equal(answer, expected, rel_tol)
    print(f"{name}: {'correct' if ok else 'not quite'}" + ("" if ok or not hint else f". Hint: {hint}"))
    return ok


def load_solutions(notebook: str) -> dict[str, Any]:
    """The ``answer_*`` variables of ``notebooks/solutions/<notebook>.py`` (teachers' copy)."""
    path = repo_root() / "notebooks" / "solutions" / f"{notebook}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no solutions for {notebook}: {path} is missing")
    return {k: v for k, v in runpy.run_path(str(path)).items() if k.startswith("answer_")}
