"""scripts/run_course.py: runs the notebooks in order into one run folder, and reports failures well."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _course():
    spec = importlib.util.spec_from_file_location("run_course", ROOT / "scripts" / "run_course.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_course"] = module
    spec.loader.exec_module(module)
    return module


def test_run_course_on_a_fresh_run_folder(tmp_path, capsys):
    course = _course()
    run_dir = course.main(course.CourseConfig(run_dir=str(tmp_path / "run"), smoke=True))
    summary = json.loads((run_dir / "course.json").read_text())
    names = [nb.stem for nb in course.course_notebooks()]
    assert summary["status"] == "ok" and list(summary["times_s"]) == names
    assert all((run_dir / "notebooks" / f"{n}.ipynb").is_file() for n in names)
    printed = capsys.readouterr().out
    assert all(f"{n}.ipynb ... ok in" in printed for n in names)
    if len(names) == 6:  # the artifacts of every step are where the next step looks for them
        for part in ("data/unified/manifest.json", "data/mined/manifest.json", "checkpoints/final/config.json"):
            assert (run_dir / part).exists(), part


def test_a_failing_notebook_is_named_with_its_cell(tmp_path, monkeypatch):
    import nbformat

    course = _course()
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = 'tiny'", metadata={"tags": ["parameters"]})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# broken"),
        params,
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('deliberate')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebooks / "00_broken.ipynb")
    monkeypatch.setattr(course, "ROOT", tmp_path)
    with pytest.raises(course.CourseError, match=r"00_broken.ipynb failed in cell \d+ .*ValueError: deliberate"):
        course.main(course.CourseConfig(run_dir=str(tmp_path / "run")))
    assert json.loads((tmp_path / "run" / "course.json").read_text())["status"].startswith("failed")
