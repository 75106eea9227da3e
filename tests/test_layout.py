"""The house rules that keep the kit readable: stage packages, import direction, docstring examples, lint."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minif2

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "minif2"
STAGES = ["data", "mining", "training", "evaluation", "analysis"]  # in the order of the recipe (notebooks 01-05)
MODULES = sorted(m.name for m in pkgutil.walk_packages(minif2.__path__, "minif2.") if m.name != "minif2.__main__")


def _imports(path: Path) -> set[str]:
    """The minif2 modules a file imports (anywhere in it), as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minif2"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("minif2")}
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_one_subpackage_per_stage():
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
        package = importlib.import_module(f"minif2.{stage}")
        for name in ("main", "cli"):
            assert callable(getattr(package, name, None)), f"minif2.{stage} does not export {name}"


def test_no_stage_imports_a_later_stage():
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        stage = module.split(".")[1] if module.count(".") >= 1 else None
        if stage not in STAGES:
            continue
        for imported in _imports(path):
            parts = imported.split(".")
            if len(parts) > 1 and parts[1] in STAGES:
                assert STAGES.index(parts[1]) <= STAGES.index(stage), (
                    f"{path}: stage {stage} imports later stage {imported}"
                )


def test_shared_modules_import_no_stage():
    """Top-level modules (model, assets, schema, config, ...) are shared by every stage, so they import none."""
    for path in PACKAGE.glob("*.py"):
        if path.name in ("cli.py", "__main__.py", "course.py", "pipeline.py"):
            continue  # the command line, the notebooks' helper and `minif2 run` orchestrate the stages
        for imported in _imports(path):
            parts = imported.split(".")
            assert not (len(parts) > 1 and parts[1] in STAGES), f"{path} imports {imported}"


def test_no_stage_imports_the_orchestrators():
    for path in PACKAGE.rglob("*.py"):
        if _module_name(path).split(".")[1:2] and _module_name(path).split(".")[1] in STAGES:
            orchestrators = {"minif2.course", "minif2.cli", "minif2.pipeline"}
            assert not orchestrators & _imports(path), f"{path} imports an orchestrator"


def test_no_import_cycles():
    graph = {_module_name(p): {i for i in _imports(p) if i != _module_name(p)} for p in PACKAGE.rglob("*.py")}
    graph = {
        m: {i for i in deps if i in graph and not m.startswith(i + ".") and not i.endswith(".__init__")}
        for m, deps in graph.items()
    }
    # a package's __init__ re-exports its modules; a module importing its own package's face is a cycle too
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def _function_lengths() -> dict[str, int]:
    """``{"path:function": lines of code}`` for every function of the package, its docstring not counted."""
    lengths = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                start = body[1].lineno if has_doc and len(body) > 1 else body[0].lineno
                lengths[f"{path.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - start + 1
    return lengths


MAX_FUNCTION_LINES = 60


def test_functions_stay_short():
    """Cap functions, not files (issue 22): a file may grow by concept, a function is read in one screen."""
    long = {f: n for f, n in _function_lengths().items() if n > MAX_FUNCTION_LINES}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code (split them into named steps): {long}"


def test_train_reads_as_the_recipe():
    """nanoGPT's train.py: data, model, optimiser, then per step batch, embed, loss, step, log, save."""
    assert _function_lengths()["training/trainer.py:train"] <= 60
    source = (PACKAGE / "training" / "trainer.py").read_text()
    body = source[source.index("def train(") : source.index("\n\n\n", source.index("def train("))]
    order = ["load_training_data", "build_embedder", "make_backend", "build_loss", "draw_batch", "embed_batch"]
    order += ["run.loss(", "backward(", "log.write", "_save_checkpoint", "_save_final"]
    positions = [body.index(word) for word in order]
    assert positions == sorted(positions), "train() should read in the order the loop runs"


def test_importing_training_stays_light():
    """``from minif2.training import f2llm_loss`` loads neither sentence-transformers nor matplotlib (issue 22)."""
    code = (
        "import sys; from minif2.training import f2llm_loss; import minif2.training.trainer; "
        "print(sorted(m for m in ('sentence_transformers', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_planning_is_its_own_package_the_trainer_does_not_read():
    assert (PACKAGE / "planning" / "__init__.py").is_file()
    for path in (PACKAGE / "training").rglob("*.py"):
        assert not any(i.startswith("minif2.planning") for i in _imports(path)), path
    assert not [p.name for p in (PACKAGE / "training").glob("*.py") if p.stem in ("shapes", "memory", "measure")]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, module


def test_nothing_cites_a_file_outside_the_repository():
    pattern = re.compile(r"shared/SPEC|SPEC §")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    hits = [
        f
        for f in tracked
        if (ROOT / f).is_file()
        and f != "tests/test_layout.py"
        and pattern.search((ROOT / f).read_text(errors="ignore"))
    ]
    assert not hits, f"cite docs/recipe.md instead: {hits}"
    assert (ROOT / "docs" / "recipe.md").is_file()


def test_linter_passes():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: it is a test dependency (pip install -e '.[test]')")
    result = subprocess.run(
        [ruff, "check", "src", "tests", "scripts", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    formatted = subprocess.run(
        [ruff, "format", "--check", "src", "tests", "scripts", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert formatted.returncode == 0, "run `ruff format src tests scripts benchmarks`:\n" + formatted.stdout
