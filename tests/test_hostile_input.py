"""Issue 14: hostile input, interrupted runs and a folder that runs code.

Every test writes its own small files under ``tmp_path`` and asserts that the error names the
file, line or field, or that the result is right (one test per item of the issue).
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets
import pytest

from minif2 import cli
from minif2.config import ConfigError, MissingInputError, config_to_dict, from_dict, load_config, staged_folder
from minif2.data import unify
from minif2.data.adapters import import_jsonl
from minif2.data.loaders import load_hub_source
from minif2.data.task_folders import TaskFormatError, read_eval_task
from minif2.data.validation import SkipReport, TextList, UnifyError, check_record, read_jsonl, read_tsv
from minif2.model import EMBEDDER_FILE, Embedder, EmbedderConfig
from minif2.schema import Sample, write_unified
from minif2.training import checkpoint, trainer
from minif2.training.checkpoint import MetricsLog, read_metrics


def _jsonl(path: Path, rows: list, raw: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + raw)
    return path


def _task(folder: Path, kind: str, **meta: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.json").write_text(json.dumps({"name": folder.name, "type": kind, **meta}))
    return folder


def _retrieval_task(folder: Path, qrels: str) -> Path:
    _task(folder, "retrieval")
    _jsonl(folder / "corpus.jsonl", [{"_id": "d1", "text": "tea"}, {"_id": "d2", "text": "coffee"}])
    _jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": "a hot drink"}])
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------- 1. trust_remote_code
def _hostile_model(tiny: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of tiny-qwen3 whose settings ask for remote code and whose auto_map points at a
    .py file that writes a marker file when it is imported."""
    folder, marker = tmp_path / "hostile", tmp_path / "marker.txt"
    shutil.copytree(tiny, folder)
    (folder / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import Qwen3Config, Qwen3Model\n"
        "class EvilConfig(Qwen3Config):\n    pass\n"
        "class EvilModel(Qwen3Model):\n    config_class = EvilConfig\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / EMBEDDER_FILE).write_text(json.dumps({"trust_remote_code": True, "pooling": "last"}))
    return folder, marker


def test_model_folder_cannot_enable_remote_code(tiny_qwen3_path, tmp_path, monkeypatch):
    folder, marker = _hostile_model(tiny_qwen3_path, tmp_path)
    with pytest.warns(UserWarning, match="ignoring trust_remote_code"):
        embedder = Embedder.from_pretrained(folder)
    assert not marker.exists()
    assert embedder.config.trust_remote_code is False
    # the caller's explicit argument does run the folder's code (so the marker above can detect it), with a warning
    import transformers.dynamic_module_utils as dmu  # noqa: PLC0415 - patched to keep the module cache in tmp_path

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    with pytest.warns(UserWarning, match="may run Python code"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            Embedder.from_pretrained(folder, trust_remote_code=True)
        except Exception:  # noqa: BLE001, S110 - the hostile classes need not load; only the import matters
            pass
    assert marker.exists()


def test_eval_on_hostile_folder_runs_none_of_its_code(tiny_qwen3_path, tmp_path, capsys):
    folder, marker = _hostile_model(tiny_qwen3_path, tmp_path)
    task = _task(tmp_path / "tasks" / "TinySTS", "sts", instruction="", source="test")
    rows = [{"sentence1": f"s{i}", "sentence2": f"t{i}", "score": float(i % 3)} for i in range(6)]
    _jsonl(task / "test.jsonl", rows)
    with pytest.warns(UserWarning, match="ignoring trust_remote_code"):
        code = cli.main(["eval", "--model", str(folder), "--tasks", str(task), "--out-dir", str(tmp_path / "eval")])
    assert code == 0
    assert not marker.exists()
    assert (tmp_path / "eval" / "results.csv").is_file()


def test_saved_embedder_does_not_record_trust_remote_code(tiny_qwen3_path, tmp_path):
    embedder = Embedder.from_pretrained(tiny_qwen3_path)
    embedder.save(tmp_path / "saved")
    assert "trust_remote_code" not in json.loads((tmp_path / "saved" / EMBEDDER_FILE).read_text())


# ---------------------------------------------------------------- 2. failed reruns keep the previous output
def test_staged_folder_swaps_only_on_success(tmp_path):
    final = tmp_path / "out"
    with staged_folder(final) as tmp:
        (tmp / "a.txt").write_text("first")
    before = _snapshot(final)
    with pytest.raises(RuntimeError), staged_folder(final) as tmp:
        (tmp / "a.txt").write_text("second")
        raise RuntimeError("boom")
    assert _snapshot(final) == before == {"a.txt": b"first"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind


def _unify_rerun(tmp_path, monkeypatch):
    """A good unify run, then the same config on a file with a bad record."""
    good = _jsonl(tmp_path / "pairs.jsonl", [{"query": "tea?", "positive": "Tea is a drink."}])
    cfg = unify.UnifyConfig(
        out_dir=str(tmp_path / "data"),
        offline_sources=(),
        imports=[{"name": "mine", "shape": "pairs", "path": str(good)}],
    )
    unify.main(cfg)
    assert "unified/mine.parquet" in _snapshot(tmp_path / "data")

    def rerun():
        _jsonl(good, [{"query": "tea?", "positive": None}])
        unify.main(cfg)

    return tmp_path / "data", rerun, UnifyError, "line 1, field 'positive'"


def _mining_rerun(tmp_path, monkeypatch):
    """A previous mined folder; the rerun mines its first source and fails on the second."""
    from minif2.mining import mine  # noqa: PLC0415 - the mining stage, imported where it is tested

    data = write_unified({s: [Sample("q", "p", [], "retrieval", s)] for s in ("a", "b")}, tmp_path / "unified")
    out = tmp_path / "mined"
    (out / "mining_scores").mkdir(parents=True)
    (out / "mining_scores" / "a.parquet").write_bytes(b"previous scores")
    (out / "manifest.json").write_text('{"sources": {"a": 1}}')
    calls = []

    def fake_mine(dataset, *args, **kwargs):  # the first source succeeds, the second fails
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("teacher crashed")
        report = {"samples_in": 1, "samples_out": 0, "removed": {}, "shortfall": 0}
        return SimpleNamespace(samples=[], scores={"positive_score": [0.5], "negative_scores": [[0.1]]}, report=report)

    monkeypatch.setattr(mine, "load_teacher", lambda cfg: None)
    monkeypatch.setattr(mine, "mine_source", fake_mine)

    def rerun():
        try:
            mine.main(mine.MiningConfig(data_dir=str(data), out_dir=str(out), cache_dir=str(tmp_path / "cache")))
        finally:
            assert len(calls) == 2

    return out, rerun, RuntimeError, "teacher crashed"


def _evaluation_rerun(tmp_path, monkeypatch):
    """A previous results.csv; the rerun names a model that does not exist."""
    from minif2.assets import AssetError  # noqa: PLC0415
    from minif2.evaluation.evaluate import EvalConfig  # noqa: PLC0415
    from minif2.evaluation.evaluate import main as evaluate_main  # noqa: PLC0415

    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.csv").write_text("task,type,main_score\nA,sts,0.5\n")
    cfg = EvalConfig(models=[str(tmp_path / "no-such-model")], tasks=str(tmp_path / "tasks"), out_dir=str(out))
    return out, lambda: evaluate_main(cfg), AssetError, None


def _analysis_rerun(tmp_path, monkeypatch):
    """A previous distances.csv; the rerun names a queries file that does not exist."""
    from minif2.analysis.shift import AnalysisConfig  # noqa: PLC0415
    from minif2.analysis.study import main as analysis_main  # noqa: PLC0415

    out = tmp_path / "analysis"
    out.mkdir()
    (out / "distances.csv").write_text("a,b\n1,2\n")
    cfg = AnalysisConfig(models=["tiny-qwen3"], queries_file=str(tmp_path / "missing.txt"), out_dir=str(out))
    return out, lambda: analysis_main(cfg), FileNotFoundError, "missing.txt"


@pytest.mark.parametrize("stage", [_unify_rerun, _mining_rerun, _evaluation_rerun, _analysis_rerun],
                         ids=["unify", "mining", "evaluation", "analysis"])  # fmt: skip
def test_failed_rerun_keeps_previous_output(stage, tmp_path, monkeypatch):
    out, rerun, error, match = stage(tmp_path, monkeypatch)
    before = _snapshot(out)
    with pytest.raises(error, match=match):
        rerun()
    assert _snapshot(out) == before


# ---------------------------------------------------------------- 3. qrels: graded relevance, fractions, duplicates
def test_qrels_keep_integer_grades(tmp_path):
    task = read_eval_task(_retrieval_task(tmp_path / "T", "q1\td1\t2\nq1\td2\t1.0\n"))
    assert task["qrels"] == {"q1": {"d1": 2, "d2": 1}}


def test_fractional_qrels_score_is_an_error_not_zero(tmp_path):
    folder = _retrieval_task(tmp_path / "T", "q1\td1\t0.5\n")
    with pytest.raises(
        TaskFormatError, match=r"qrels.tsv, line 2, field 'score': not an integer relevance grade: '0.5'"
    ):
        read_eval_task(folder)


def test_duplicate_qrels_are_reported(tmp_path):
    folder = _retrieval_task(tmp_path / "T", "q1\td1\t1\nq1\td2\t1\nq1\td1\t0\n")
    with pytest.warns(
        UserWarning, match=r"qrels.tsv: 1 conflicting duplicate.*line 4 grades \('q1', 'd1'\) 0, line 2 1"
    ):
        assert read_eval_task(folder)["qrels"] == {"q1": {"d1": 0, "d2": 1}}  # the last line wins
    _retrieval_task(folder, "q1\td1\t1\nq1\td1\t1\nq1\td1\t1\n")
    with pytest.warns(UserWarning, match="2 duplicate qrels line"):
        assert read_eval_task(folder)["qrels"] == {"q1": {"d1": 1}}


# ---------------------------------------------------------------- 4. null texts
def test_null_text_in_task_file_is_an_error(tmp_path):
    task = _task(tmp_path / "S", "sts")
    _jsonl(
        task / "test.jsonl",
        [{"sentence1": "a", "sentence2": "b", "score": 1}, {"sentence1": None, "sentence2": "c", "score": 2}],
    )
    with pytest.raises(
        TaskFormatError, match=r"test.jsonl, line 2, field 'sentence1': missing field: 'sentence1' is null"
    ):
        read_eval_task(task)


def test_title_and_task_json_texts_are_type_checked(tmp_path):
    folder = _retrieval_task(tmp_path / "T", "q1\td1\t1\n")
    _jsonl(
        folder / "corpus.jsonl", [{"_id": "d1", "title": None, "text": "tea"}, {"_id": "d2", "title": "", "text": "x"}]
    )
    assert read_eval_task(folder)["corpus"]["d1"]["title"] == ""  # absent/null/empty title: no title
    _jsonl(folder / "corpus.jsonl", [{"_id": "d1", "title": ["Tea"], "text": "tea"}])
    with pytest.raises(TaskFormatError, match=r"corpus.jsonl, line 1, field 'title': wrong type"):
        read_eval_task(folder)
    _task(folder, "retrieval", instruction=None)
    with pytest.raises(TaskFormatError, match=r"task.json, field 'instruction'"):
        read_eval_task(folder)


def test_null_text_or_label_in_data_file_is_an_error(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"query": "q", "positive": "p"}, {"query": None, "positive": "p"}])
    with pytest.raises(UnifyError, match=r"p.jsonl, line 2, field 'query'"):
        import_jsonl(path, "pairs", "p")
    path = _jsonl(tmp_path / "c.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": None}])
    with pytest.raises(UnifyError, match=r"c.jsonl, line 2, field 'label'"):
        import_jsonl(path, "classification_labels", "c")


# ---------------------------------------------------------------- 5. resuming with changed settings
def _checkpoint(out: Path, cfg: trainer.TrainConfig) -> Path:
    step = out / "step-0000002"
    step.mkdir(parents=True)
    (step / "state.pt").write_bytes(b"")
    import yaml  # noqa: PLC0415

    (step / "train.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return step


def test_resume_with_changed_settings_is_refused(tmp_path):
    out = tmp_path / "ckpt"
    saved = trainer.TrainConfig(out_dir=str(out), model="tiny-qwen3", lr=1e-4, max_steps=2, resume=True)
    step = _checkpoint(out, saved)
    changed = trainer.TrainConfig(out_dir=str(out), model="minilm", lr=1e-3, max_steps=2, resume=True)
    with pytest.raises(
        ConfigError, match=r"train.yaml: cannot resume with changed settings \(lr: 0.0001 -> 0.001; model"
    ):
        checkpoint.resume_point(changed, out)
    longer = trainer.TrainConfig(
        out_dir=str(out), model="tiny-qwen3", lr=1e-4, max_steps=9, save_every_steps=1, resume=True
    )
    assert checkpoint.resume_point(longer, out) == step  # max_steps and intervals may change
    changed.resume_with_changes = True
    with pytest.warns(UserWarning, match=r"changed settings \['lr', 'model'\]"):
        assert checkpoint.resume_point(changed, out) == step


def test_resume_without_checkpoint_says_so(tmp_path):
    with pytest.warns(UserWarning, match="no checkpoint in .*starts from step 0"):
        assert checkpoint.resume_point(trainer.TrainConfig(out_dir=str(tmp_path), resume=True), tmp_path) is None


class _FakeEmbedder:
    """Writes an embedder folder of one file: enough for write_checkpoint without loading a model."""

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.safetensors").write_bytes(b"weights" * 100)


def _written_checkpoint(out: Path, cfg, step: int) -> Path:
    import yaml  # noqa: PLC0415

    return checkpoint.write_checkpoint(
        checkpoint.checkpoint_dir(out, step),
        embedder=_FakeEmbedder(),
        state={"step": step},
        config_yaml=yaml.safe_dump(config_to_dict(cfg), sort_keys=False),
        lora=False,
    )


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip"])
def test_damaged_checkpoint_is_named_and_the_newest_intact_one_resumes(tmp_path, damage):
    out = tmp_path / "run"
    cfg = trainer.TrainConfig(out_dir=str(out), resume=True)
    older, newer = _written_checkpoint(out, cfg, 1), _written_checkpoint(out, cfg, 2)
    assert (newer / "manifest.json").is_file() and checkpoint.verify_checkpoint(newer) is None
    target = newer / "embedder" / "model.safetensors"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:10])
    elif damage == "delete":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[::-1])  # same size, other contents
    with pytest.warns(UserWarning, match=r"skipping damaged checkpoints .*step-0000002/embedder/model.safetensors"):
        assert checkpoint.resume_point(cfg, out) == older
    (older / "state.pt").write_bytes(b"\x00")
    with pytest.raises(checkpoint.CheckpointError, match=r"no intact checkpoint .*step-0000002/embedder") as err:
        checkpoint.resume_point(cfg, out)
    assert "\n" not in str(err.value)


def test_unreadable_state_file_is_a_one_line_checkpoint_error(tmp_path):
    step = tmp_path / "step-0000001"
    step.mkdir()
    (step / "state.pt").write_bytes(b"PK\x03\x04 not a zip")  # written before manifests: nothing to verify
    with pytest.raises(checkpoint.CheckpointError, match=r"state.pt cannot be read .*the checkpoint is damaged"):
        checkpoint.load_state(step)


def test_cli_prints_a_damaged_checkpoint_and_a_missing_input_alone_but_a_bare_file_error_with_traceback(
    monkeypatch, capsys
):
    for error in (checkpoint.CheckpointError("step-0000002/state.pt: 3 bytes"), MissingInputError("no data")):
        monkeypatch.setattr(cli, "assets_cli", lambda argv, error=error: (_ for _ in ()).throw(error))
        assert cli.main(["assets"]) == 2
        assert capsys.readouterr().err.strip() == f"minif2 assets: error: {error}"
    monkeypatch.setattr(cli, "assets_cli", lambda argv: open("/nonexistent/minif2-bug"))  # a bug, not user input
    with pytest.raises(FileNotFoundError):
        cli.main(["assets"])


def test_mteb_prompts_fall_back_with_a_warning_only_when_mteb_cannot_be_imported(monkeypatch):
    from minif2 import instructions  # noqa: PLC0415

    instructions.mteb_instructions.cache_clear()
    monkeypatch.setitem(sys.modules, "mteb.models.model_implementations.codefuse_models", None)  # -> ImportError
    with pytest.warns(UserWarning, match="F2LLM's MTEB prompts are not importable"):
        assert instructions.mteb_instructions() == instructions.MTEB_FALLBACK
    instructions.mteb_instructions.cache_clear()


# ---------------------------------------------------------------- 6. config values type-checked
def test_config_values_are_type_checked(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("lr: 1e-3\nmax_steps: 3\n")  # PyYAML reads 1e-3 as a string: a decimal number is accepted
    cfg = load_config(trainer.TrainConfig, path)
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float)
    for text, field, wanted in [
        ('gradient_checkpointing: "no"\n', "gradient_checkpointing", "got 'no' (str), expected bool"),
        ("lr: fast\n", "lr", "got 'fast' (str), expected float"),
        ("batch_size: 2.5\n", "batch_size", "got 2.5 (float), expected int"),
        ("betas: [0.9]\n", "betas", "expected tuple[float, float]"),
        ("max_steps: ten\n", "max_steps", "expected int or None"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(trainer.TrainConfig, path)
        assert f"{path}, field '{field}': " in str(err.value) and wanted in str(err.value)
    with pytest.raises(ConfigError, match=r"field 'pooling': got 'max' \(str\), expected one of \['last', 'mean'\]"):
        from_dict(EmbedderConfig, {"pooling": "max"}, "m.json")
    with pytest.raises(ConfigError, match=r"imports\[0\], field 'split': got 3"):
        unify.import_sources([{"name": "x", "shape": "pairs", "path": "x.jsonl", "split": 3}], False, SkipReport())


def test_every_choice_field_of_the_train_config_is_a_literal_checked_at_load_time(tmp_path):
    import typing  # noqa: PLC0415

    from minif2.training.train_config import _choices  # noqa: PLC0415

    hints = typing.get_type_hints(trainer.TrainConfig)
    choices = {name for name, tp in hints.items() if _choices(tp) is not None}
    assert choices >= {"mode", "backend", "precision", "attn_implementation", "sampler_rule", "gather_mode"}
    assert choices >= {"loss", "lr_schedule", "kd_mode"}
    path = tmp_path / "train.yaml"
    for field in sorted(choices):
        path.write_text(f"{field}: not-a-choice\n")
        with pytest.raises(ConfigError, match=rf"{path}, field '{field}': got 'not-a-choice' \(str\), expected one of"):
            load_config(trainer.TrainConfig, path)
    with pytest.raises(ValueError, match=r"train config field 'kd_mode' must be one of"):  # built in Python
        trainer.check_config(trainer.TrainConfig(kd_mode="simlarity"))  # type: ignore[arg-type]


def _literal_fields(cls: type, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """``{(group, ..., field): its type}`` for every field of ``cls`` (nested groups too) that holds a Literal."""
    import dataclasses  # noqa: PLC0415
    import typing  # noqa: PLC0415

    found = {}
    for name, tp in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(tp):
            found.update(_literal_fields(tp, (*prefix, name)))
        elif "Literal[" in str(tp):
            found[(*prefix, name)] = tp
    return found


def _config_classes() -> dict[type, set[str]]:
    """Every stage's config class, with the choice fields it must hold as Literals (at least)."""
    from minif2.analysis.shift import AnalysisConfig  # noqa: PLC0415
    from minif2.evaluation.doctor import DoctorConfig  # noqa: PLC0415
    from minif2.evaluation.evaluate import EvalConfig  # noqa: PLC0415
    from minif2.mining.mine import MiningConfig  # noqa: PLC0415
    from minif2.training.merge import MergeConfig  # noqa: PLC0415
    from minif2.training.prune import PruneConfig  # noqa: PLC0415

    return {
        unify.UnifyConfig: {"classification_form"},
        MiningConfig: {"on_shortfall", "existing_negatives", "search_backend", "corpus_storage", "disk_dtype"},
        trainer.TrainConfig: {"mode", "backend", "precision", "attn_implementation", "loss", "lr_schedule"},
        EvalConfig: {"torch_dtype"},
        DoctorConfig: {"torch_dtype", "checks"},
        AnalysisConfig: {"pca_fit_on", "procrustes_method"},
        EmbedderConfig: {"pooling", "padding_side", "torch_dtype", "attn_implementation"},
        MergeConfig: {"method"},
        PruneConfig: {"pooling"},
    }


@pytest.mark.parametrize("cls", list(_config_classes()), ids=lambda cls: cls.__name__)
def test_every_choice_field_of_every_config_fails_at_load_time_naming_file_and_field(cls, tmp_path):
    import yaml  # noqa: PLC0415

    fields = _literal_fields(cls)
    assert {keys[-1] for keys in fields} >= _config_classes()[cls]
    path = tmp_path / "stage.yaml"
    for keys, tp in fields.items():
        value: Any = ["not-a-choice"] if str(tp).startswith("list[") else "not-a-choice"
        for key in reversed(keys):
            value = {key: value}
        path.write_text(yaml.safe_dump(value))
        with pytest.raises(
            ConfigError,
            match=rf"{path}, field '{'.'.join(keys)}'(\[0\])?: got 'not-a-choice' \(str\), "
            r"expected one of",
        ):
            load_config(cls, path)


# ---------------------------------------------------------------- 7. user negatives
def test_negatives_in_pairs_file_are_kept(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"query": "tea?", "positive": "Tea.", "negatives": ["Coffee.", "Milk."]}])
    assert import_jsonl(path, "pairs", "p")[0].negatives == ["Coffee.", "Milk."]
    _jsonl(path, [{"query": "tea?", "positive": "Tea.", "negatives": "Coffee."}])
    with pytest.raises(UnifyError, match=r"line 1, field 'negatives': wrong type: expected list"):
        import_jsonl(path, "pairs", "p")
    _jsonl(path, [{"query": "tea?", "positive": "Tea.", "negatives": ["Coffee.", None]}])
    with pytest.raises(UnifyError, match=r"line 1, field 'negatives': wrong type: item 1"):
        import_jsonl(path, "pairs", "p")


def test_plain_list_fields_are_not_taken_for_texts():
    row = {"text": "t", "relevance": [1.0, 2.5]}  # e.g. a summarization row: numbers in a list field
    assert check_record(row, {"text": str, "relevance": list}, "s.jsonl", 1) == row
    with pytest.raises(UnifyError, match=r"s.jsonl, line 1, field 'negatives': wrong type: item 0"):
        check_record({"negatives": [3]}, {"negatives": TextList}, "s.jsonl", 1)


def test_negatives_list_in_f2llm_file_is_kept(tmp_path):
    rows = [
        {"query": "q1", "passage": "p1", "negatives": ["n1", "n2"]},
        {"query": "q2", "passage": "p2", "negatives": ["n3", "n4"]},
    ]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "f.parquet"))
    out = load_hub_source(str(tmp_path / "f.parquet"), "f2llm", "msmarco")
    assert [s.negatives for s in out] == [["n1", "n2"], ["n3", "n4"]] and out[0].task == "retrieval"


# ---------------------------------------------------------------- 8. NaN scores, the evaluation seed
def test_nan_score_in_sts_task_is_an_error(tmp_path):
    task = _task(tmp_path / "S", "sts")
    (task / "test.jsonl").write_text(
        '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "sentence2": "c", "score": NaN}\n'
    )
    with pytest.raises(TaskFormatError, match=r"test.jsonl, line 2, field 'score': not a number"):
        read_eval_task(task)


def test_nan_row_in_sts_source_is_refused_or_counted(tmp_path):
    path = tmp_path / "sts.jsonl"
    path.write_text(
        '{"sentence1": "a", "sentence2": "b", "score": 5}\n{"sentence1": "a", "sentence2": "c", "score": NaN}\n'
    )
    with pytest.raises(UnifyError, match=r"sts.jsonl, line 2, field 'score': not a number"):
        import_jsonl(path, "sts", "s", threshold=4)
    report = SkipReport()
    assert len(import_jsonl(path, "sts", "s", lenient=True, report=report, threshold=4)) == 2
    assert report.total == 1 and report.examples[0]["line"] == 2


def test_changed_seed_is_not_served_from_the_cache(tiny_qwen3_path, tmp_path, monkeypatch):
    from minif2.evaluation.evaluate import EvalConfig, evaluate_models  # noqa: PLC0415

    task = _task(tmp_path / "tasks" / "TinySTS", "sts", instruction="", source="test")
    _jsonl(task / "test.jsonl", [{"sentence1": f"s{i}", "sentence2": f"t{i}", "score": float(i % 3)} for i in range(6)])
    encoded = []
    real_encode = Embedder.encode
    monkeypatch.setattr(Embedder, "encode", lambda self, *a, **k: encoded.append(1) or real_encode(self, *a, **k))
    for seed, scored in ((42, True), (42, False), (7, True), (7, False)):
        encoded.clear()
        cfg = EvalConfig(out_dir=str(tmp_path / "eval"), seed=seed)
        evaluate_models([str(tiny_qwen3_path)], str(task), labels=["tiny"], cfg=cfg)
        assert bool(encoded) == scored, (seed, scored)  # a new seed is scored again, a repeated one is cached


def test_result_cache_depends_on_the_seed(tmp_path):
    from minif2.evaluation.evaluate import EvalConfig, _cache  # noqa: PLC0415

    paths = [Path(_cache(EvalConfig(out_dir=str(tmp_path), seed=s)).cache_path) for s in (42, 1, 2)]
    assert paths == [tmp_path / "mteb_cache", tmp_path / "mteb_cache" / "seed-1", tmp_path / "mteb_cache" / "seed-2"]


# ---------------------------------------------------------------- 9. clear errors
def test_non_utf8_line_is_named_and_lenient_skips_it(tmp_path):
    path = _jsonl(
        tmp_path / "p.jsonl", [{"query": "q", "positive": "p"}], raw=b'{"query": "caf\xe9", "positive": "p"}\n'
    )
    with pytest.raises(UnifyError, match=r"p.jsonl, line 2: not UTF-8"):
        list(read_jsonl(path, {"query": str}))
    report = SkipReport()
    assert [n for n, _ in read_jsonl(path, {"query": str}, lenient=True, report=report)] == [1]
    assert report.total == 1 and report.examples[0]["line"] == 2
    tsv = tmp_path / "q.tsv"
    tsv.write_bytes(b"query-id\tcorpus-id\tscore\nq1\td\xff\t1\n")
    with pytest.raises(UnifyError, match=r"q.tsv, line 2: not UTF-8"):
        list(read_tsv(tsv, ("query-id", "corpus-id", "score")))


def test_sts_score_that_is_not_a_number(tmp_path):
    path = _jsonl(tmp_path / "sts.jsonl", [{"sentence1": "a", "sentence2": "b", "score": "high"}])
    with pytest.raises(UnifyError, match=r"sts.jsonl, line 1, field 'score': wrong type: expected int/float"):
        import_jsonl(path, "sts", "s", threshold=4)


def test_qrels_with_only_a_header(tmp_path):
    with pytest.raises(TaskFormatError, match=r"qrels.tsv: no rows: the file has a header and no data line"):
        read_eval_task(_retrieval_task(tmp_path / "T", ""))


def test_unknown_nli_label_names_line_and_field(tmp_path):
    rows = [
        {"premise": "a", "hypothesis": "b", "label": "entailment"},
        {"premise": "a", "hypothesis": "c", "label": "maybe"},
    ]
    with pytest.raises(UnifyError, match=r"nli.jsonl, line 2, field 'label': unknown NLI label 'maybe'"):
        import_jsonl(_jsonl(tmp_path / "nli.jsonl", rows), "nli", "n")


def test_missing_sts_threshold_is_named(tmp_path):
    path = _jsonl(tmp_path / "sts.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 1}])
    with pytest.raises(UnifyError, match=r"sts.jsonl, field 'threshold': missing option"):
        import_jsonl(path, "sts", "s")


def test_task_folder_without_task_json(tmp_path):
    (tmp_path / "T").mkdir()
    with pytest.raises(TaskFormatError, match=rf"{tmp_path / 'T' / 'task.json'}: missing file"):
        read_eval_task(tmp_path / "T")


# ---------------------------------------------------------------- 10. the metrics log
def test_metrics_log_is_never_emptied(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"split": "train", "step": 1, "loss": 2.0}\n')
    with pytest.warns(UserWarning, match="the earlier one is now .*metrics.jsonl.1"):
        MetricsLog(path)
    assert path.read_text() == "" and read_metrics(tmp_path / "metrics.jsonl.1") == [
        {"split": "train", "step": 1, "loss": 2.0}
    ]


def test_partial_last_line_does_not_block_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"split": "train", "step": 1, "loss": 2.0}\n{"split": "train", "step": 2, "loss": 1.5}\n{"split": "tr'
    )
    with pytest.warns(UserWarning, match="line 3: dropping a partial last line"):
        MetricsLog(path, resume_step=1)
    assert read_metrics(path) == [{"split": "train", "step": 1, "loss": 2.0}]
    path.write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
    with pytest.raises(ValueError, match="metrics.jsonl, line 2: not valid JSON"):
        read_metrics(path)


# ---------------------------------------------------------------- 11. an empty source file
def test_empty_source_file_is_warned_on_the_console(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg = unify.UnifyConfig(
        out_dir=str(tmp_path / "data"),
        offline_sources=(),
        imports=[{"name": "mine", "shape": "pairs", "path": str(empty)}],
    )
    unify.main(cfg)
    assert "warning: source 'mine' gave no training samples (it had no valid record)" in capsys.readouterr().err


# ---------------------------------------------------------------- 12. the command line
def test_cli_user_error_prints_message_alone(tmp_path, capsys):
    config = tmp_path / "unify.yaml"
    config.write_text('lenient: "no"\n')
    assert cli.main(["unify", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"minif2 unify: error: {config}, field 'lenient': got 'no' (str), expected bool"
    assert "Traceback" not in err


def test_cli_data_error_prints_message_alone(tmp_path, capsys):
    bad = _jsonl(tmp_path / "p.jsonl", [{"query": "q"}])
    config = tmp_path / "unify.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'data'}\noffline_sources: []\nimports:\n  - {{name: p, shape: pairs, path: {bad}}}\n"
    )
    assert cli.main(["unify", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 1, field 'positive': missing field" in err and "Traceback" not in err


@pytest.mark.parametrize("profile", ["tiny", "small-gpu", "paper", "smoke"])
def test_every_profile_is_offered_by_every_command_that_has_its_file(profile, capsys):
    """One list of profiles (``config.PROFILES``): a command refuses a profile only when its YAML is missing."""
    from minif2.config import PROFILES, profile_path  # noqa: PLC0415

    assert profile in PROFILES
    for command in ("unify", "mine", "train", "eval", "analyze"):
        if not profile_path(profile, {"analyze": "analyze", "eval": "eval"}.get(command, command)).is_file():
            continue
        with pytest.raises(SystemExit) as stop:  # argparse: a refused choice exits 2 before --help exits 0
            cli.main([command, "--profile", profile, "--help"])
        assert stop.value.code == 0, (command, profile, capsys.readouterr().err)


@pytest.mark.parametrize("as_json", [False, True])
def test_plan_runs_for_the_smoke_profile(as_json, capsys):
    assert cli.main(["plan", "--profile", "smoke", "--gpus", "1"] + (["--json"] if as_json else [])) == 0
    out = capsys.readouterr().out
    assert "Qwen3-0.6B" in out and "smoke" in out


def test_cli_unexpected_error_keeps_its_traceback(monkeypatch):
    def boom(argv):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "assets_cli", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["assets"])
