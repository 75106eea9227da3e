"""`minif2 run` (pipeline.py) and unify's held-out split of the user's imports (data/holdout.py), issue 27."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from minif2.data import UnifyConfig, eval_texts, read_eval_task, split_by_query
from minif2.data import main as unify
from minif2.pipeline import SUMMARY_COLUMNS, PipelineConfig, main
from minif2.schema import Sample, read_unified, text_hash

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["tea", "rivers", "volcanoes", "bicycles", "violins", "glaciers", "bees", "compilers", "lighthouses", "maps"]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _pairs(n: int = 60) -> list[dict]:
    return [
        {
            "query": f"What is fact {i} about {TOPICS[i % 10]}?",
            "positive": f"Fact {i}: {TOPICS[i % 10]} have the property number {7 * i}.",
            "negatives": [f"A note {i} on {TOPICS[(i + 3) % 10]}."],
        }
        for i in range(n)
    ]


def _training_texts(folder: Path) -> set[str]:
    out = set()
    for sample in read_unified(folder).values():
        for row in sample:
            out |= {text_hash(row["query"]), text_hash(row["positive"]), *map(text_hash, row["negatives"])}
    return out


def test_split_by_query_keeps_a_query_on_one_side():
    samples = [Sample(f"q{i % 7}", f"doc {i}", [], "retrieval", "s", "") for i in range(30)]
    train, held = split_by_query(samples, 0.3, seed=1)
    assert len(train) + len(held) == 30 and held and train
    assert not {s.query for s in train} & {s.query for s in held}
    assert split_by_query(samples, 0.3, seed=1) == (train, held)  # seeded


def test_unify_holds_out_every_import_shape(tmp_path):
    """Pairs -> retrieval, labelled texts -> classification, scored pairs -> STS; none of it in training."""
    labels = [{"text": f"review {i} of {TOPICS[i % 3]}", "label": TOPICS[i % 3]} for i in range(40)]
    scored = [
        {"sentence1": f"s{i} {TOPICS[i % 10]}", "sentence2": f"t{i} {TOPICS[i * i % 10]}", "score": i % 5}
        for i in range(40)
    ]
    imports = [
        {"name": "mine", "shape": "pairs", "path": _write_jsonl(tmp_path / "p.jsonl", _pairs())},
        {"name": "labs", "shape": "classification_labels", "path": _write_jsonl(tmp_path / "l.jsonl", labels)},
        {"name": "sim", "shape": "sts", "path": _write_jsonl(tmp_path / "s.jsonl", scored), "holdout": 0.25}
        | {"options": {"threshold": 3}},
    ]
    cfg = UnifyConfig(out_dir=str(tmp_path / "data"), offline_sources=(), imports=imports, holdout=0.2)
    out = unify(cfg)
    manifest = json.loads((out / "unified" / "manifest.json").read_text())
    tasks = manifest["eval_tasks"]
    assert {k: v["type"] for k, v in tasks.items()} == {
        "mine_heldout": "retrieval",
        "labs_heldout": "classification",
        "sim_heldout": "sts",
    }
    assert tasks["mine_heldout"]["queries"] == 12 and tasks["sim_heldout"]["test"] == 10
    assert all(v["fingerprint"] for v in tasks.values())
    retrieval = read_eval_task(out / "eval_tasks" / "mine_heldout")
    assert len(retrieval["corpus"]) == 24  # 12 held-out positives + their 12 negatives (distractors)
    held = {text_hash(t) for t in eval_texts(out / "eval_tasks")}
    assert not held & _training_texts(out / "unified")
    assert manifest["before_dedup"]["mine"] == 48  # 60 - 12
    assert manifest["before_dedup"]["labs"] == 40 - tasks["labs_heldout"]["held_out"]  # stratified: 3 of each label
    assert (
        tasks["labs_heldout"]["held_out"] == 9 and tasks["labs_heldout"]["train"] + tasks["labs_heldout"]["test"] == 9
    )


def test_a_holdout_of_nothing_is_an_error_that_names_the_field(tmp_path):
    from minif2.data import UnifyError

    path = _write_jsonl(tmp_path / "p.jsonl", _pairs(1))
    cfg = UnifyConfig(
        out_dir=str(tmp_path), offline_sources=(), imports=[{"name": "a", "shape": "pairs", "path": path}]
    )
    cfg.holdout = 0.5
    with pytest.raises(UnifyError, match="holdout"):
        unify(cfg)


def test_run_on_the_smoke_profile_holds_out_trains_and_compares(tmp_path, capsys):
    """The acceptance test of issue 27: the held-out task exists, holds no training text, and the table
    has base, trained and interval columns; a second call resumes (skips every stage)."""
    path = _write_jsonl(tmp_path / "my_pairs.jsonl", _pairs())
    config = tmp_path / "my.yaml"
    config.write_text(f"offline_sources: []\nimports:\n  - {{name: my_pairs, shape: pairs, path: {path}}}\n")
    cfg = PipelineConfig(config=str(config), profile="smoke", out_dir=str(tmp_path / "run"), general=False)
    table = main(cfg)
    run = tmp_path / "run"
    task = read_eval_task(run / "data" / "eval_tasks" / "my_pairs_heldout")
    assert task["type"] == "retrieval" and len(task["queries"]) == 6  # 10 % of 60, the default
    held = {text_hash(t) for t in eval_texts(run / "data" / "eval_tasks")}
    assert not held & (_training_texts(run / "data" / "unified") | _training_texts(run / "data" / "mined"))
    assert list(table.columns) == SUMMARY_COLUMNS
    assert {"base", "trained", "base_low", "base_high", "trained_low", "gain_low", "gain_high"} <= set(table.columns)
    row = table[table.task == "my_pairs_heldout"].iloc[0]
    assert bool(row.held_out) and row.base_low <= row.base <= row.base_high and row.verdict in {"gain", "tie", "loss"}
    assert pd.read_csv(run / "summary.csv").shape == table.shape
    capsys.readouterr()
    main(cfg)  # resumable: every output exists, nothing reruns
    assert capsys.readouterr().out.count("skipped") == 4


def _readme_example() -> str:
    """The bash block under the README's `<!-- tested by tests/test_pipeline.py -->` marker."""
    readme = (ROOT / "README.md").read_text()
    after = readme[readme.index("<!-- tested by tests/test_pipeline.py -->") :]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1)


@pytest.mark.slow  # about 1-2.5 min on 2 cores: it also harvests and scores the kit's offline suite
def test_the_readme_own_data_example_runs_as_written(tmp_path):
    """The README's commands, in a fresh folder, with this interpreter standing in for `.venv/bin/`."""
    script = _readme_example()
    assert "minif2 run --config my.yaml" in script
    tools = {"minif2": f"{sys.executable} -m minif2", "python": sys.executable}
    script = re.sub(r"\.venv/bin/(minif2|python)\b", lambda m: tools[m.group(1)], script)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = pd.read_csv(next(tmp_path.glob("runs/*/summary.csv")))
    assert summary["held_out"].any() and (~summary["held_out"]).any()  # your task and the kit's suite


def test_every_eval_config_field_has_a_flag(capsys):
    """`minif2 eval` takes on the command line every EvalConfig field (the notebooks set several)."""
    import dataclasses

    from minif2.evaluation import EvalConfig, cli

    with pytest.raises(SystemExit):
        cli(["--help"])
    text = capsys.readouterr().out
    flags = {"models": "--model", "labels": "--label", "use_cache": "--no-cache", "plot": "--no-plot"}
    flags |= {"max_length_tokens": "--max-length", "max_rows_per_task": "--max-rows", "torch_dtype": "--dtype"}
    for field in dataclasses.fields(EvalConfig):
        flag = flags.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in text, f"EvalConfig.{field.name}: no {flag} in `minif2 eval --help`"
