"""What the notebooks share: the run folder, rebuilding missing steps, and the exercise checks.

- :func:`run_paths`: ``<run_dir>/data/unified`` (01), ``data/eval_tasks`` (01), ``data/mined``
  (02), ``checkpoints/final`` (03), ``eval`` (04), ``analysis`` (05). A relative ``run_dir`` is
  taken from the repository root, so a notebook opened in JupyterLab (cwd ``notebooks/``)
  and one run by ``scripts/run_course.py`` (cwd the root) share the same folder.
- :func:`ensure_step`: builds what an earlier notebook would have left in the run folder,
  so that any notebook runs alone (one call instead of a pasted block per notebook).
- :func:`check` / :func:`load_solutions`: the exercises' convention (below).
- :func:`measured`: a figure from another run (``benchmarks/measured/``), for cells that label it as such.
- :func:`explore`: sliders (ipywidgets) in a live notebook, one static figure in a headless run.

Exercises, the same in every notebook: the set-up cell sets ``answer_1 = answer_2 = ... = None``
(and, with ``solutions=True``, loads the teacher's answers); the student writes ``answer_N = ...``
in the exercise cell; the check cell calls ``check("NN.N", answer_N, hint=...)``, which says
"correct", "not quite" (with the hint, which points at the idea) or "not answered yet", and never
shows the expected answer: the key is the teacher's copy, ``teachers/solutions/NN_*.py``, and
``tests/test_course.py`` recomputes every key with the library.

This module orchestrates the stages for the notebooks; no stage imports it.
"""

from __future__ import annotations

import json
import math
import runpy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minif2.config import load_config, profile_path, repo_root
from minif2.data import UnifyConfig
from minif2.data import main as unify
from minif2.mining import MiningConfig
from minif2.mining import main as mine
from minif2.model import EMBEDDER_FILE
from minif2.training import TrainConfig, train

__all__ = ["STEPS", "RunPaths", "check", "ensure_step", "explore", "load_solutions", "measured", "run_paths"]


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


def measured(name: str) -> dict[str, Any] | None:
    """A figure measured on another run: ``benchmarks/measured/<name>`` (JSON) of the repository, or None
    (with a line saying so) where the clone does not have it. Notebooks print these labelled as another run's."""
    path = repo_root() / "benchmarks" / "measured" / name
    if not path.is_file():
        print(f"(not in this copy of the kit: {path})")
        return None
    return json.loads(path.read_text())


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


def _solutions_file(prefix: str) -> Path:
    """``teachers/solutions/<prefix>_*.py``: the teacher's answers to one notebook's exercises."""
    found = sorted((repo_root() / "teachers" / "solutions").glob(f"{prefix}_*.py"))
    if not found:
        raise FileNotFoundError(f"no solutions file teachers/solutions/{prefix}_*.py")
    return found[0]


def explore(draw: Callable[..., Any], interactive: bool, **sliders: Any) -> None:
    """Call ``draw`` with sliders for its keyword arguments: ipywidgets' ``interact`` in a live notebook, or, with
    ``interactive=False`` (papermill, ``scripts/run_course.py``), once at each slider's starting value, so a
    headless run keeps a static figure instead of a widget it cannot show.

    >>> from ipywidgets import FloatSlider
    >>> explore(lambda tau: print(f"tau = {tau}"), False, tau=FloatSlider(value=0.05, min=0.01, max=1.0))
    tau = 0.05
    """
    if interactive:
        import ipywidgets  # noqa: PLC0415 - only a live notebook needs it

        ipywidgets.interact(draw, **sliders)
    else:
        draw(**{name: getattr(slider, "value", slider) for name, slider in sliders.items()})


def check(exercise: str, answer: Any, hint: str = "", rel_tol: float = 1e-2) -> None:
    """Print whether ``answer`` to exercise ``"NN.N"`` is right (floats to ``rel_tol``), without showing the key.

    The hint is printed only after a wrong answer, so it cannot give the answer away before a first try; a right
    answer gets the key's one-line explanation (``explain_N`` beside ``answer_N``) of why it is right. Nothing
    is returned, so a notebook cell ending in ``check(...)`` prints one line and no stray ``True``/``False``.

    >>> check("00.2", None, hint="think of the scale")
    00.2: not answered yet
    """
    if answer is None:
        print(f"{exercise}: not answered yet")
        return
    prefix, _, number = exercise.partition(".")
    key = runpy.run_path(str(_solutions_file(prefix)))
    if _equal(answer, key[f"answer_{number}"], rel_tol):
        explanation = key.get(f"explain_{number}")
        print(f"{exercise}: correct" + (f". {explanation}" if explanation else ""))
    else:
        print(f"{exercise}: not quite" + (f". Hint: {hint}" if hint else ""))


def load_solutions(notebook: str) -> dict[str, Any]:
    """The ``answer_*`` variables of ``teachers/solutions/<notebook>.py`` (teachers' copy)."""
    path = repo_root() / "teachers" / "solutions" / f"{notebook}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no solutions for {notebook}: {path} is missing")
    return {k: v for k, v in runpy.run_path(str(path)).items() if k.startswith("answer_")}


STEPS = ("unified", "mined", "checkpoint")  # what notebooks 01, 02 and 03 leave in the run folder


def ensure_step(paths: RunPaths, step: str, profile: str = "tiny", seed: int = 0) -> Path:
    """Build ``step`` (and the steps before it) in ``paths`` if a notebook before this one has not.

    ``unified``: step 01 (``minif2.data.main``), which also writes ``data/eval_tasks``;
    ``mined``: step 02; ``checkpoint``: step 03. Each uses ``configs/<profile>/<stage>.yaml``, so a
    notebook run alone gets what the course would have given it. Returns the step's folder.

    >>> ensure_step(run_paths("runs/doctest"), "evaluated")
    Traceback (most recent call last):
    ...
    ValueError: unknown step 'evaluated': expected one of ('unified', 'mined', 'checkpoint')
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: expected one of {STEPS}")
    wanted = STEPS[: STEPS.index(step) + 1]
    if not (paths.unified / "manifest.json").is_file():
        print(f"ensure_step: {paths.unified} is missing: running step 01 (profile {profile})")
        unify(load_config(UnifyConfig, profile_path(profile, "unify"), out_dir=str(paths.data), seed=seed))
    if "mined" in wanted and not (paths.mined / "manifest.json").is_file():
        print(f"ensure_step: {paths.mined} is missing: running step 02 (profile {profile})")
        cache = str(paths.root / "cache" / "embeddings")
        mine(
            load_config(
                MiningConfig,
                profile_path(profile, "mine"),
                data_dir=str(paths.unified),
                out_dir=str(paths.mined),
                cache_dir=cache,
            )
        )
    if "checkpoint" in wanted and not (paths.checkpoint / EMBEDDER_FILE).is_file():
        print(f"ensure_step: {paths.checkpoint} is missing: running step 03 (profile {profile})")
        train(
            load_config(
                TrainConfig,
                profile_path(profile, "train"),
                data_dir=str(paths.mined),
                out_dir=str(paths.checkpoint.parent),
                seed=seed,
            )
        )
    return {"unified": paths.unified, "mined": paths.mined, "checkpoint": paths.checkpoint}[step]
