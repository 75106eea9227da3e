"""scripts/run_course.py: runs the notebooks in order into one run folder, and reports failures well."""

from __future__ import annotations

import importlib.util
import json
import re
import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _course():
    spec = importlib.util.spec_from_file_location("run_course", ROOT / "scripts" / "run_course.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_course"] = module
    spec.loader.exec_module(module)
    return module


# What a student cannot act on (issue 26): library warnings, DeepSpeed's accelerator guess, bitsandbytes' kernel
# download, ipykernel's transport warning, transformers' per-file loading and saving bars.
NOISE = re.compile(
    r"^\s*(\[[^\]]*\]\s*)*\[?WARNING\b|\b\w+Warning: |Setting accelerator|pip install kernels|kernels-community"
    r"|without encryption|Loading weights|Writing model shards",
    re.M,
)
PROGRESS = re.compile(r"\d+%\|.*\|")  # a tqdm line: kept, one per long step


def _unactionable(outputs: list[dict]) -> list[str]:
    """Outputs of an executed notebook that match NOISE, and stderr text that is not a progress bar."""
    found = []
    for o in outputs:
        if o.get("output_type") == "stream":
            text = "".join(o.get("text", ""))
            stray = o.get("name") == "stderr" and any(
                line.strip() and not PROGRESS.search(line) for line in text.replace("\r", "\n").splitlines()
            )
        else:
            text = "".join("".join(v) for v in o.get("data", {}).values() if isinstance(v, (str, list)))
            stray = False
        if NOISE.search(text) or stray:
            found.append(text[:200])
    return found


def test_run_course_on_a_fresh_run_folder(tmp_path, capsys):
    course = _course()
    run_dir = course.main(course.CourseConfig(run_dir=str(tmp_path / "run"), smoke=True, solutions=True))
    summary = json.loads((run_dir / "course.json").read_text())
    names = [nb.stem for nb in course.course_notebooks()]
    assert summary["status"] == "ok" and list(summary["times_s"]) == names
    assert all((run_dir / "notebooks" / f"{n}.ipynb").is_file() for n in names)
    captured = capsys.readouterr()
    printed = captured.out
    assert not NOISE.search(captured.err), captured.err  # the runner's own console (e.g. ipykernel's tcp warning)
    assert all(f"{n}.ipynb ... ok in" in printed for n in names)
    for name in names:  # every notebook ran without an error, and every solution passes its own check
        executed = json.loads((run_dir / "notebooks" / f"{name}.ipynb").read_text())
        outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        text = "".join("".join(o.get("text", "")) for o in outputs)
        assert "not quite" not in text and "not answered" not in text, f"{name}: a solution fails its own check"
        assert not _unactionable(outputs), f"{name}: prints what a student cannot act on: {_unactionable(outputs)}"
    if len(names) >= 6:  # the artifacts of every step are where the next step looks for them
        for part in ("data/unified/manifest.json", "data/mined/manifest.json", "checkpoints/final/config.json"):
            assert (run_dir / part).exists(), part
        results = pd.read_csv(run_dir / "eval" / "results.csv")  # every score with its interval (issue 21)
        assert (results["ci_low"] <= results["main_score"] + 1e-9).all() and results["ci_high"].notna().all()
        gains = pd.read_csv(run_dir / "eval" / "gains.csv")
        assert set(gains["verdict"]) <= {"gain", "tie", "loss"}
        _claims_are_the_runs(run_dir, gains)
    record = summary["environment"]  # the run record: what two runs must share to give the same numbers
    assert record["requirements_lock_sha256"] and record["versions"]["torch"] and record["python"]
    if (run_dir / "data" / "unified" / "manifest.json").is_file():
        assert summary["data_fingerprints"]["unified"] and all(summary["data_fingerprints"]["eval_tasks"].values())


def test_the_shared_kernel_forgets_every_variable_between_notebooks():
    """The course runs its notebooks in one kernel (imports once); a notebook must not see the last one's names."""
    from jupyter_client.manager import KernelManager

    course, km = _course(), KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(ROOT))

    def run(code: str) -> dict:  # one client per call, as papermill opens one per notebook
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            return kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)["content"]
        finally:
            kc.stop_channels()

    try:
        assert run("left_over = 1; import json")["status"] == "ok"
        course.clear_kernel(km)
        reply = run("left_over")
        assert reply["status"] == "error" and reply["ename"] == "NameError"
        assert run("import sys; assert 'json' in sys.modules")["status"] == "ok"  # imports stay: the point of it
    finally:
        km.shutdown_kernel(now=True)


def _claims_are_the_runs(run_dir: Path, gains: pd.DataFrame) -> None:
    """Issue 26: notebook 04's reading of the plot is generated from this run's gains.csv, so changing a result
    changes the sentence."""
    from minif2.evaluation import describe_gains

    executed = json.loads((run_dir / "notebooks" / "04_mteb_scoring.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert describe_gains(gains) in printed
    flipped = gains.copy()
    flipped.loc[0, "verdict"] = "loss" if flipped.loc[0, "verdict"] != "loss" else "gain"
    assert describe_gains(flipped) != describe_gains(gains) and describe_gains(flipped) not in printed


@pytest.mark.slow
def test_two_runs_with_one_seed_give_identical_results(tmp_path):
    """Determinism: the same seed, lock and machine give the same results.csv, interval columns included.
    Set MINIF2_REPRO_PROFILE=tiny for the CPU course itself (about 20 minutes); the smoke course by default."""
    import os

    course, smoke = _course(), os.environ.get("MINIF2_REPRO_PROFILE", "smoke") == "smoke"
    tables = []
    for name in ("first", "second"):
        cfg = course.CourseConfig(run_dir=str(tmp_path / name), smoke=smoke, seed=0, notebooks=["01", "02", "03", "04"])
        run_dir = course.main(cfg)
        tables.append(pd.read_csv(run_dir / "eval" / "results.csv"))
        fingerprints = json.loads((run_dir / "course.json").read_text())["data_fingerprints"]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    assert fingerprints["eval_tasks"]


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


# ---------------------------------------------------------------- the exercises' answer key
def _key(prefix: str) -> dict:
    from minif2.course import _solutions_file

    return {k: v for k, v in runpy.run_path(str(_solutions_file(prefix))).items() if k.startswith("answer_")}


def test_every_exercise_has_its_answer_in_the_key():
    """Each check("NN.k", ...) in a notebook finds answer_k in teachers/solutions/NN_*.py."""
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code = "".join(
            "".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"
        )
        asked = re.findall(r'check\("(\d\d)\.(\d)", answer_(\d)', code)
        assert asked, f"{notebook.name} has no exercise checks"
        for prefix, k, var in asked:
            assert prefix == notebook.name[:2] and k == var, (notebook.name, prefix, k, var)
            assert f"answer_{k}" in _key(prefix), f"{notebook.name}: exercise {prefix}.{k} has no answer in the key"
        assert "not quite" not in code and "expected" not in code.split("check(")[-1], notebook.name


ANSWER_CHECKS: dict[str, Any] = {}  # "NN.k" -> a function that recomputes answer k of notebook NN with the library


def _answer(exercise: str):
    def register(check):
        ANSWER_CHECKS[exercise] = check
        return check

    return register


@_answer("00.1")
def _negatives_mined_and_trained(answer, minilm_path):
    from minif2.mining.mine import MiningConfig
    from minif2.training.sampler import negatives_per_step
    from minif2.training.train_config import TrainConfig

    mined = MiningConfig().num_negatives["retrieval"]
    assert answer == (mined, negatives_per_step(TrainConfig().num_negatives, "retrieval"))


@_answer("00.2")
def _scale_of_the_temperature(answer, minilm_path):
    from minif2.training.train_config import TrainConfig

    assert answer == pytest.approx(1 / TrainConfig().temperature)


@_answer("00.3")
def _nearest_sentence(answer, minilm_path):
    from minif2 import Embedder

    sentences = [
        "How do I reverse a list in Python?",
        "Use slicing: my_list[::-1] returns a reversed copy.",
        "The Eiffel Tower is in Paris.",
        "Paris is the capital of France.",
    ]
    minilm = Embedder.from_pretrained(str(minilm_path))
    scores = minilm.encode(sentences) @ minilm.encode(["reverse the order of a list"])[0]
    assert answer == int(scores.argmax())


@_answer("00.4")
def _a_document_has_no_prefix(answer, minilm_path):
    from minif2 import format_query

    assert answer == format_query("a cat on a mat", None) != format_query("a cat on a mat", "Find it.")


@_answer("01.1")
def _sts_pairs_kept(answer, minilm_path):
    from minif2.data import from_sts

    rows = [
        {"sentence1": "a", "sentence2": "b", "score": 3.0},
        {"sentence1": "c", "sentence2": "d", "score": 2.9},
        {"sentence1": "e", "sentence2": "f", "score": 5.0},
    ]
    assert answer == len(from_sts(rows, "x", threshold=3.0))


@_answer("01.2")
def _duplicates_by_hash(answer, minilm_path):
    from minif2.schema import text_hash

    candidates = [
        "return the sum of two numbers.",
        "Return the sum of two numbers",
        "RETURN  the sum\nof two numbers.",
        "Return the sum of 2 numbers.",
    ]
    target = text_hash("Return the sum of two numbers.")
    assert answer == [i for i, c in enumerate(candidates) if text_hash(c) == target]


@_answer("01.3")
def _retrieval_share(answer, minilm_path):
    from minif2 import config

    mix = config.DATA_MIX_MILLIONS
    assert answer == pytest.approx(round(mix["retrieval"] / sum(mix.values()), 2))


@_answer("01.4")
def _nli_negatives(answer, minilm_path):
    from minif2.data import from_nli

    rows = [
        {"premise": "p", "hypothesis": h, "label": label}
        for h, label in (("e", "entailment"), ("n", "neutral"), ("c", "contradiction"))
    ]
    (sample,) = from_nli(rows, "nli_demo")
    assert answer == len(sample.negatives) and sorted(sample.negatives) == ["c", "n"]


@_answer("02.1")
def _negatives_the_rule_keeps(answer, minilm_path):
    from minif2.mining import apply_rule, select_negatives

    ex = np.array([[0.92, 0.85, 0.81, 0.75, 0.70, 0.68, 0.66, 0.50]])
    rule = apply_rule(
        np.arange(8)[None], ex, np.array([0.7]), {}, top_k=8, skip_top=2, max_score=0.8, relative_margin=0.95
    )
    assert answer == [int(r) + 1 for r in np.flatnonzero(select_negatives(rule.keep, 3)[0])]


@_answer("02.3")
def _sentence_transformers_skips_after_filtering(answer, minilm_path):
    from minif2.mining import apply_rule

    scores = np.array([[0.9, 0.88, 0.85] + [0.3] * 17])  # 3 above 0.8, the rest below every bar
    rule = apply_rule(
        np.arange(20)[None],
        scores,
        np.array([0.95]),
        {},
        top_k=20,
        skip_top=5,
        max_score=0.8,
        relative_margin=None,
        skip_order="survivors",  # sentence-transformers' order (range_min after max_score)
    )
    assert answer == int(np.flatnonzero(rule.keep[0])[0])


@_answer("02.2")
def _margin_bar(answer, minilm_path):
    from minif2.mining import apply_rule

    rule = apply_rule(
        np.arange(3)[None],
        np.array([[0.58, 0.57, 0.56]]),
        np.array([0.6]),
        {},
        top_k=3,
        skip_top=0,
        max_score=None,
        relative_margin=0.95,
    )
    assert rule.keep[0].tolist() == [False, False, True]  # the bar sits at the key's value: 0.57 is out, 0.56 in
    assert answer == pytest.approx(0.57)


@_answer("02.4")
def _false_negative_in_a_list(answer, minilm_path):
    """The teacher scores the key's candidate highest, and F2LLM's rule drops it and only it."""
    from minif2 import Embedder
    from minif2.mining.mine import MiningConfig

    nb = json.loads((ROOT / "notebooks" / "02_hard_negative_mining.ipynb").read_text())
    cell = next("".join(c["source"]) for c in nb["cells"] if "exercise_query =" in "".join(c["source"]))
    given: dict = {}
    exec(cell.replace("# answer_4", "#"), given)  # the notebook's own query, positive and candidates
    teacher, rule = Embedder.from_pretrained(str(minilm_path)), MiningConfig()
    scores = (
        teacher.encode([given["exercise_positive"], *given["candidates"]]) @ teacher.encode([given["exercise_query"]]).T
    )
    scores = scores.ravel()
    dropped = [i for i, s in enumerate(scores[1:]) if s >= min(rule.max_score, rule.relative_margin * scores[0])]
    assert dropped == [answer] and int(np.argmax(scores[1:])) == answer


@_answer("03.1")
def _loss_of_equal_vectors(answer, minilm_path):
    from minif2.training import hard_negative_loss

    v = torch.nn.functional.normalize(torch.ones(1, 4), dim=-1)
    assert answer == pytest.approx(float(hard_negative_loss(v, v, v[:, None].expand(1, 2, 4))), rel=1e-3)


@_answer("03.2")
def _in_batch_negatives(answer, minilm_path):
    from minif2 import config

    paper = config.TRAINING_4B
    assert answer == paper["batch_per_gpu"] * paper["gpus"] - 1


@_answer("03.3")
def _optimiser_memory(answer, minilm_path):
    assert answer == pytest.approx(0.6e9 * 12 / 8 / 1e9)  # fp32 master + two AdamW moments, split over 8


@_answer("03.4")
def _loss_at_a_larger_temperature(answer, minilm_path):
    from minif2.training import hard_negative_loss

    unit = lambda c: torch.tensor([[c, (1 - c**2) ** 0.5]])  # noqa: E731 - a unit vector at cosine c with (1, 0)
    loss = hard_negative_loss(torch.tensor([[1.0, 0.0]]), unit(0.9), unit(0.8)[:, None], temperature=0.5)
    assert answer == pytest.approx(float(loss), abs=1e-3)
    assert answer == pytest.approx(float(np.log1p(np.exp(-0.2))), abs=1e-3)  # by hand


@_answer("04.1")
def _mean_of_types(answer, minilm_path):
    from minif2.evaluation import category_averages

    toy = pd.DataFrame(
        {
            "task": list("abcd"),
            "type": ["Retrieval", "Retrieval", "STS", "Clustering"],
            "main_score": [0.5, 0.3, 0.8, 0.4],
            "model": "m",
        }
    )
    assert answer == pytest.approx(float(category_averages(toy)["mean_type"].iloc[0]))


@_answer("04.2")
def _ndcg(answer, minilm_path):
    from minif2.evaluation import ndcg_at_k

    assert answer == pytest.approx(ndcg_at_k(["rel1", "x", "y", "rel2", "z"], {"rel1": 1, "rel2": 1}))


@_answer("04.3")
def _query_with_instruction(answer, minilm_path):
    from minif2.model import format_query

    assert answer == format_query("A cat sat.", "Retrieve semantically similar text.")


def _shape():
    rng = np.random.default_rng(0)
    shape = rng.standard_normal((10, 2))
    return shape - shape.mean(axis=0), rng


@_answer("04.5")
def _ndcg_past_the_cut_off(answer, minilm_path):
    from minif2.evaluation import ndcg_at_k

    assert answer == ndcg_at_k([f"x{i}" for i in range(10)] + ["d"], {"d": 1}, k=10)
    assert ndcg_at_k([f"x{i}" for i in range(9)] + ["d"], {"d": 1}, k=10) == pytest.approx(1 / np.log2(11))


@_answer("05.1")
def _reflection(answer, minilm_path):
    from minif2.analysis import orthogonal_procrustes

    shape, _ = _shape()
    assert answer == round(float(np.linalg.det(orthogonal_procrustes(shape * np.array([-1.0, 1.0]), shape))))


@_answer("05.2")
def _scaled_rotation(answer, minilm_path):
    from scipy.stats import special_ortho_group

    from minif2.analysis import procrustes_distance

    shape, _ = _shape()
    rotation = special_ortho_group.rvs(2, random_state=0)
    assert answer == pytest.approx(procrustes_distance(2 * shape @ rotation, shape))


@_answer("05.3")
def _common_pca_dim(answer, minilm_path):
    from minif2.analysis import common_pca_dim

    assert answer == common_pca_dim({"minilm": (10, 384), "tiny-qwen3": (10, 64)}, 200)[0]


@_answer("05.4")
def _what_the_reference_changes(answer, minilm_path):
    from minif2.analysis import AnalysisConfig, analyze

    _, rng = _shape()  # the generator after the shape's draws, as the key computed it
    conditions = ["Base", "Retrieval", "Reranking", "STS", "Classification", "Clustering"]
    emb = {m: {c: rng.standard_normal((20, d)) for c in conditions} for m, d in (("a", 16), ("b", 12), ("c", 8))}
    one, two = (analyze(emb, AnalysisConfig(pca_dim=8, reference=ref)) for ref in ("a", "b"))
    changed = {
        "a": not np.allclose(one.displacement["displacement"], two.displacement["displacement"], atol=1e-6),
        "b": not np.allclose(one.point_distance, two.point_distance, atol=1e-6),
        "c": not np.allclose(one.distances, two.distances, atol=1e-6),
    }
    assert answer == [x for x in "abc" if changed[x]]


@_answer("05.5")
def _permuted_axes(answer, minilm_path):
    from minif2.analysis import procrustes_distance

    cloud = np.random.default_rng(0).standard_normal((50, 8))
    assert answer == pytest.approx(procrustes_distance(cloud[:, [3, 0, 7, 1, 6, 2, 5, 4]], cloud), abs=1e-12)


@_answer("06.1")
def _matryoshka_weight(answer, minilm_path):
    from minif2.training import matryoshka_dims

    assert answer == pytest.approx(dict(matryoshka_dims(64))[16])


@_answer("06.2")
def _candidates_of_equal_logits(answer, minilm_path):
    from minif2.training import single_softmax_loss

    same = torch.nn.functional.normalize(torch.ones(4, 8), dim=-1)  # every logit equal: loss = log(candidates)
    assert answer == round(float(single_softmax_loss(same, same, same[:, None].expand(4, 3, 8)).exp()))


@_answer("06.3")
def _forwards_of_the_cache(answer, minilm_path):
    from minif2.training import cached_embed

    calls = []
    lin = torch.nn.Linear(3, 2)
    cached_embed(
        lambda ids, mask: calls.append(1) or lin(ids), torch.ones(64, 3), torch.ones(64, 3), 8
    ).sum().backward()
    assert answer == len(calls)


@_answer("06.4")
def _false_negatives_masked(answer, minilm_path):
    from minif2.training.losses import false_negatives

    scores = torch.tensor([[0.85, 0.79, 0.75, 0.30]])
    assert answer == int(false_negatives(scores, torch.tensor([[0.70]]), torch.zeros_like(scores), 0.1).sum())


def _asked() -> dict[str, str]:
    """Every exercise a notebook checks -> the hint its check cell gives."""
    found = {}
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code = "".join(
            "".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"
        )
        for exercise, hint in re.findall(r'check\("(\d\d\.\d)", answer_\d, hint="([^"]*)"', code):
            found[exercise] = hint
    return found


@pytest.mark.parametrize("exercise", sorted(_asked()))
def test_every_exercise_hints_after_a_wrong_answer_and_explains_a_right_one(exercise, capsys):
    """Issue 26: a wrong answer gets the cell's hint (never the key), a right one the key's explanation."""
    from minif2.course import _solutions_file, check

    prefix, k = exercise.split(".")
    key = runpy.run_path(str(_solutions_file(prefix)))
    hint, explanation = _asked()[exercise], key.get(f"explain_{k}", "")
    assert hint.strip() and len(explanation) > 20, exercise
    check(exercise, object(), hint=hint)  # an answer that equals nothing
    check(exercise, key[f"answer_{k}"], hint=hint)
    wrong, right = capsys.readouterr().out.splitlines()
    assert wrong == f"{exercise}: not quite. Hint: {hint}"  # the cell's own hint, nothing from the key
    assert right == f"{exercise}: correct. {explanation}"


def test_every_answer_in_the_key_has_a_check():
    keyed = {f"{p}.{k.removeprefix('answer_')}" for p in ("00", "01", "02", "03", "04", "05", "06") for k in _key(p)}
    not_recomputed = {"04.4"}  # a normal-approximation interval
    assert keyed == set(ANSWER_CHECKS) | not_recomputed
    assert set(_asked()) == keyed  # every exercise's check cell carries a hint


@pytest.mark.parametrize("exercise", sorted(ANSWER_CHECKS))
def test_answer_key_agrees_with_the_library(exercise, request):
    """The key is the teacher's copy; recompute every answer with the library, so a change of behaviour shows here."""
    prefix, k = exercise.split(".")
    minilm_path = request.getfixturevalue("minilm_path") if exercise in ("00.3", "02.4") else None
    ANSWER_CHECKS[exercise](_key(prefix)[f"answer_{k}"], minilm_path)


def test_check_hints_only_after_a_wrong_answer_and_echoes_nothing(capsys):
    """Issue 26: a hint printed before any attempt gives the answer away; a returned bool echoes a stray False."""
    from minif2.course import check, load_solutions

    right = load_solutions("00_overview")["answer_1"]
    outcomes = [check("00.1", answer, hint="HINT") for answer in (None, "surely wrong", right)]
    assert outcomes == [None, None, None]
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["00.1: not answered yet", "00.1: not quite. Hint: HINT"]
    assert lines[2].startswith("00.1: correct. ")  # with the key's explanation


def test_explore_draws_once_at_the_sliders_values_headless_and_gives_sliders_live():
    """Headless (papermill): one call at each slider's value, no widget; live: ipywidgets' interact, which also
    draws once at the starting values and leaves a slider per argument."""
    from ipywidgets import FloatSlider, IntSlider

    from minif2.course import explore

    calls = []
    explore(lambda tau, k: calls.append((tau, k)), False, tau=FloatSlider(value=0.05, min=0.01, max=1.0), k=3)
    assert calls == [(0.05, 3)]
    calls.clear()
    explore(lambda tau, k: calls.append((tau, k)), True, tau=FloatSlider(value=0.5, min=0.01, max=1.0), k=IntSlider(2))
    assert calls == [(0.5, 2)]
