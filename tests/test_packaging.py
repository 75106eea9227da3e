"""The two install routes (pyproject + bootstrap, environment.yml) and the README stay in step."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    project = _pyproject()["project"]
    wanted = {d.replace(" ", "") for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    wanted.discard(next(d for d in wanted if d.startswith("torch")))  # conda's pytorch package
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = {d.replace(" ", "") for d in pip_section if not d.startswith("-")}
    assert have == wanted, (
        f"only in pyproject: {sorted(wanted - have)}; only in environment.yml: {sorted(have - wanted)}"
    )
    assert any(str(d).startswith("pytorch") for d in env["dependencies"] if isinstance(d, str))


def test_bootstrap_pins_cpu_torch_and_ci_runs_readme_test_command():
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert '"torch==2.13.0"' in bootstrap
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^bash (scripts/\S+\.sh)", readme, flags=re.M)
    assert "scripts/test.sh" in commands and "scripts/course.sh" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def test_cli_help_lists_pipeline_commands():
    out = subprocess.run([sys.executable, "-m", "minif2", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("unify", "mine", "train", "merge", "eval", "doctor", "analyze"):
        assert re.search(rf"^\s+{command}\s", out, flags=re.M), out
