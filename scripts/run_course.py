"""Run the whole course headless: notebooks 00 -> 06 with papermill into one run folder.

    python scripts/run_course.py                      # tiny profile, runs/<timestamp>/
    python scripts/run_course.py --smoke --run-dir /tmp/run   # the test suite's quick pass

Every executed notebook is kept in ``<run_dir>/notebooks/``; one progress line per notebook
with its time; a failure stops the course and names the notebook, the cell and the error.
The notebooks share one kernel (``shared_kernel``, the default), its variables cleared between
notebooks (IPython's ``%reset -f``; figures closed): what each notebook defines, it defines again,
but the libraries it imports are imported once, which saves a kernel start and ~5 s of imports per
notebook. ``--fresh-kernels`` starts one kernel per notebook instead, as a notebook opened alone gets.
A summary with the times is written to ``<run_dir>/course.json``. This is the README's
main job (``bash scripts/course.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import papermill as pm
from jupyter_client.manager import KernelManager
from papermill.exceptions import PapermillExecutionError

from minif2.config import PROFILES
from minif2.provenance import environment_record

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CourseConfig:
    profile: str = "tiny"  # one of minif2.config.PROFILES: tiny (CPU), smoke, small-gpu, paper
    run_dir: str | None = None  # default: runs/<timestamp>
    smoke: bool = False  # shrink every notebook to a quick check (the tests use it)
    seed: int = 0
    solutions: bool = False  # show the exercise solutions (teacher's copy)
    notebooks: list[str] = field(default_factory=list)  # subset by prefix, e.g. ["00", "03"]; empty = all
    kernel: str = "python3"
    shared_kernel: bool = True  # one kernel for every notebook, cleared between them (module docstring)


class CourseError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


def course_notebooks(selected: list[str] | None = None) -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order, optionally only those whose name starts with a selected prefix."""
    found = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if selected:
        found = [nb for nb in found if any(nb.name.startswith(s) for s in selected)]
    return found


RESET = "get_ipython().run_line_magic('reset', '-f')\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')"


def clear_kernel(km: KernelManager) -> None:
    """Delete every variable of the shared kernel and close its figures; imported modules stay loaded."""
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(RESET, timeout=60, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise CourseError(f"could not clear the shared kernel: {reply['content'].get('evalue')}")
    finally:
        kc.stop_channels()


def shared_kernel(kernel: str) -> KernelManager:
    """One kernel for the whole course, talking over local sockets in a private temporary folder (ipc):
    over tcp, ipykernel warns at start that its traffic is unencrypted, which a student cannot act on."""
    sockets = Path(tempfile.mkdtemp(prefix="minif2-kernel-"))
    km = KernelManager(kernel_name=kernel, transport="ipc", ip=str(sockets / "kernel"))
    km.start_kernel(cwd=str(ROOT))
    return km


def run_notebook(notebook: Path, out: Path, parameters: dict, kernel: str, km: KernelManager | None = None) -> float:
    """Execute one notebook with papermill (in ``km``'s kernel if given, cleared first); return its wall time."""

    start = time.perf_counter()
    try:
        if km is not None:
            clear_kernel(km)
        pm.execute_notebook(
            str(notebook),
            str(out),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(ROOT),
            progress_bar=False,
            log_output=False,
            **({"km": km} if km is not None else {}),
        )
    except PapermillExecutionError as err:
        cell = _failing_cell(out)
        raise CourseError(
            f"{notebook.name} failed in cell {cell} (execution count {err.exec_count}): {err.ename}: {err.evalue}\n"
            f"the executed notebook with the traceback is {out}"
        ) from None
    return time.perf_counter() - start


def _failing_cell(executed: Path) -> int | str:
    """The 0-based index of the cell holding the error in an executed notebook."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return "?"
    for index, cell in enumerate(cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    return "?"


def run_record(run_dir: Path) -> dict:
    """What two course runs must share to give the same numbers: the environment (Python, the lock's hash, the
    key packages' versions) and the fingerprints of the data the run built (its unify manifest)."""
    record: dict = {"environment": environment_record()}
    manifest = run_dir / "data" / "unified" / "manifest.json"
    if manifest.is_file():
        built = json.loads(manifest.read_text())
        record["data_fingerprints"] = {
            "unified": built.get("fingerprints", {}),
            "eval_tasks": {name: task.get("fingerprint") for name, task in built.get("eval_tasks", {}).items()},
        }
    return record


def main(cfg: CourseConfig) -> Path:
    run_dir = Path(cfg.run_dir) if cfg.run_dir else ROOT / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = run_dir if run_dir.is_absolute() else ROOT / run_dir
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    notebooks = course_notebooks(cfg.notebooks)
    if not notebooks:
        raise CourseError(f"no notebooks matching {cfg.notebooks or 'NN_*.ipynb'} in {ROOT / 'notebooks'}")
    parameters = {
        "profile": cfg.profile,
        "run_dir": str(run_dir),
        "seed": cfg.seed,
        "smoke": cfg.smoke,
        "solutions": cfg.solutions,
        "interactive": False,  # headless: every slider drawn once, as a static figure (course.explore)
    }
    summary: dict = {"config": asdict(cfg), "run_dir": str(run_dir), "times_s": {}, "status": "running"}
    print(
        f"course: {len(notebooks)} notebooks, profile={cfg.profile}, smoke={cfg.smoke}, run folder {run_dir}",
        flush=True,
    )
    total = time.perf_counter()
    km = shared_kernel(cfg.kernel) if cfg.shared_kernel else None
    try:
        for i, notebook in enumerate(notebooks, 1):
            print(f"[{i}/{len(notebooks)}] {notebook.name} ...", end=" ", flush=True)
            seconds = run_notebook(notebook, run_dir / "notebooks" / notebook.name, parameters, cfg.kernel, km)
            summary["times_s"][notebook.stem] = round(seconds, 1)
            print(f"ok in {seconds:.1f} s", flush=True)
        summary["status"] = "ok"
    except CourseError as err:
        print("FAILED", flush=True)
        summary["status"] = f"failed: {err}"
        raise
    finally:
        if km is not None:
            km.shutdown_kernel(now=True)
            shutil.rmtree(Path(km.ip).parent, ignore_errors=True)
        summary["total_s"] = round(time.perf_counter() - total, 1)
        summary.update(run_record(run_dir))
        (run_dir / "course.json").write_text(json.dumps(summary, indent=2))
    print(f"course finished in {summary['total_s']:.1f} s; executed notebooks in {run_dir / 'notebooks'}")
    return run_dir


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", choices=PROFILES)
    parser.add_argument("--run-dir", default=None, help="run folder (default: runs/<timestamp>)")
    parser.add_argument("--smoke", action="store_true", help="quick pass with the smallest parameters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solutions", action="store_true", help="show exercise solutions (teachers)")
    parser.add_argument("--notebooks", nargs="*", default=[], help="only these, by prefix (e.g. 00 03)")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument(
        "--fresh-kernels", action="store_true", help="one kernel per notebook (default: one shared, cleared between)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        main(
            CourseConfig(
                profile=args.profile,
                run_dir=args.run_dir,
                smoke=args.smoke,
                seed=args.seed,
                solutions=args.solutions,
                notebooks=args.notebooks,
                kernel=args.kernel,
                shared_kernel=not args.fresh_kernels,
            )
        )
    except CourseError as err:
        print(f"course stopped: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
