"""The two install routes (pyproject + bootstrap, environment.yml) and the README stay in step."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503): ``Foo_Bar>=1`` -> ``foo-bar``."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0]).lower()


def _lock() -> dict[str, str]:
    """requirements.lock as {normalised name: exact version}."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", p) for p in pins), "every lock line is name==version"
    return {_name(p): p.split("==")[1] for p in pins}


def _direct_dependencies() -> list[str]:
    project = _pyproject()["project"]
    return project["dependencies"] + project["optional-dependencies"]["test"]


def test_lock_satisfies_pyproject_lower_bounds():
    lock = _lock()
    for requirement in map(Requirement, _direct_dependencies()):
        name = _name(requirement.name)
        assert name in lock, f"{requirement} is in pyproject.toml but not in requirements.lock: run scripts/lock.sh"
        assert requirement.specifier.contains(lock[name], prereleases=True), (
            f"lock {name}=={lock[name]} vs {requirement}"
        )


def test_environment_yml_pins_the_locked_versions():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = {_name(d): d.split("==")[1] for d in pip_section if not d.startswith("-")}
    lock = _lock()
    wanted = {_name(d): lock[_name(d)] for d in _direct_dependencies()}
    assert have == wanted, f"environment.yml {sorted(set(have.items()) ^ set(wanted.items()))} differs from the lock"


def test_venv_matches_the_lock():
    """The interpreter running the tests (scripts/test.sh: .venv) has every locked package at its exact version
    and nothing beyond the lock but minif2 itself (DeepSpeed may be missing: it is optional)."""
    lock = _lock()
    installed = {_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    installed.pop("minif2", None)
    drift = {
        name: (want, installed.get(name, "missing"))
        for name, want in lock.items()
        if installed.get(name, "").split("+")[0] != want and not (name == "deepspeed" and name not in installed)
    }
    extra = sorted(set(installed) - set(lock))
    assert not drift and not extra, (
        f"the environment differs from requirements.lock (locked, installed): {drift}; not in the lock: {extra}. "
        "Re-run scripts/bootstrap.sh (or scripts/lock.sh after changing a dependency)"
    )


def test_bootstrap_installs_the_lock_and_ci_runs_readme_test_command():
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "--no-deps" in bootstrap and "requirements.lock" in bootstrap
    assert _lock()["torch"] == "2.13.0"  # the CPU wheel on this kind of machine; a looser pin pulls a CUDA build
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^bash (scripts/\S+\.sh)", readme, flags=re.M)
    assert "scripts/test.sh" in commands and "scripts/course.sh" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def test_cli_help_lists_pipeline_commands(monkeypatch, capsys):
    """``python -m minif2 --help`` (minif2/__main__.py), run in this process: a subprocess spends 5 s importing."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["minif2", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("minif2", run_name="__main__")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("unify", "mine", "train", "merge", "eval", "doctor", "analyze"):
        assert re.search(rf"^\s+{command}\s", out, flags=re.M), out
