"""Committed notebooks are clean and follow the course's conventions; each one also runs alone (slow).

The default suite runs the whole course ONCE (tests/test_course.py, smoke profile). Here, behind the
``slow`` marker, every notebook runs on its own in a fresh run folder, so it must rebuild the previous
steps' artifacts itself (``course.ensure_step``: what a student who opens notebook 03 first gets).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [
    "00_overview",
    "01_data_unification",
    "02_hard_negative_mining",
    "03_contrastive_training",
    "04_mteb_scoring",
    "05_instruction_shift",
    "06_beyond_f2llm",
]


def _cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def test_the_course_has_its_seven_notebooks():
    assert [nb.stem for nb in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters_goals_and_exercises(notebook):
    cells = _cells(notebook)
    dirty = [
        i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{notebook.name}: cells {dirty} have outputs; clear them before committing"
    missing_ids = [i for i, c in enumerate(cells) if "id" not in c]  # nbformat 4.5: papermill warns, later refuses
    assert not missing_ids, f"{notebook.name}: cells {missing_ids} have no id (nbformat.validator.normalize)"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: needs exactly one cell tagged 'parameters'"
    for name in ("profile", "run_dir", "seed", "smoke", "solutions"):
        assert f"{name} =" in "".join(tagged[0]["source"]), f"{notebook.name}: parameter '{name}' missing"
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").lower()
    assert "learning goals" in text and "summary" in text and "exercise" in text
    assert (ROOT / "teachers" / "solutions" / f"{notebook.stem}.py").is_file(), "solutions file missing"


def test_the_answer_key_is_not_in_the_folder_students_open():
    """JupyterLab opens at notebooks/ (README): no file there may hold an answer of the key (issue 26)."""
    keys = [p for p in (ROOT / "notebooks").rglob("*") if p.is_file() and p.suffix != ".ipynb"]
    holding = [p for p in keys if re.search(r"^answer_\d+\s*=", p.read_text(errors="ignore"), re.M)]
    assert not holding, f"answer keys a student can open: {holding}"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_alone_headless(notebook, tmp_path):
    import papermill as pm

    out = tmp_path / notebook.name
    pm.execute_notebook(
        str(notebook),
        str(out),
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
        parameters={
            "profile": "tiny",
            "run_dir": str(tmp_path / "run"),
            "seed": 0,
            "smoke": True,
            "solutions": True,
            "interactive": False,
        },
    )
    outputs = [o for c in _cells(out) for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "not quite" not in text and "not answered" not in text, "a solution fails its own check"
