"""Exercise checks for the notebooks, and the teacher's solutions kept out of the student's copy.

Each notebook ends with a few exercises: the student fills in ``answer_N``, and a check cell
calls :func:`check`, which says right or wrong (with a hint). Solutions live in
``notebooks/solutions/<notebook>.py`` as plain assignments (``answer_1 = ...``); a notebook run
with ``solutions=True`` loads them with :func:`load_solutions` before the checks.
"""

from __future__ import annotations

import math
import runpy
from typing import Any

from .course import repo_root

__all__ = ["check", "load_solutions"]


def _equal(answer: Any, expected: Any, rel_tol: float) -> bool:
    if isinstance(expected, float) or isinstance(answer, float):
        try:
            return math.isclose(float(answer), float(expected), rel_tol=rel_tol, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, (list, tuple)) and isinstance(answer, (list, tuple)):
        return len(answer) == len(expected) and all(_equal(a, e, rel_tol) for a, e in zip(answer, expected, strict=True))
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
