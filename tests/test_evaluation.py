"""MTEB scoring (issue 6): the kit's numbers are mteb's own, instructions reach queries only,
the result cache keeps checkpoints apart, and bad task folders are reported with file and line."""

from __future__ import annotations

import random
from pathlib import Path

import mteb
import pandas as pd
import pytest
import torch
from datasets import Dataset, DatasetDict
from mteb.types import PromptType

from minif2 import Embedder
from minif2.data.task_folders import TaskFormatError, write_task_folder
from minif2.evaluation.evaluate import EvalConfig, cli, evaluate_models, main, resolve_tasks
from minif2.evaluation.mteb_model import F2LLM_PROMPTS, MtebEmbedder
from minif2.evaluation.mteb_tasks import load_local_task, load_local_tasks
from minif2.evaluation.report import PAPER_MTEB_ENG_V2, category_averages, paper_comparison

WORDS = (
    "river mountain bank money loan credit forest tree leaf green music guitar piano song drum "
    "football goal player match team code python function error bug server cloud rain storm wind "
    "doctor hospital fever medicine cat dog horse bird garden flower seed soil market price stock trade"
).split()
TOPICS = {  # label -> its own words; texts mix them with shared noise, so scores are neither 0 nor 1
    "finance": ["bank", "money", "loan", "credit", "market", "price", "stock", "trade"],
    "nature": ["river", "mountain", "forest", "tree", "leaf", "green", "garden", "flower"],
    "music": ["music", "guitar", "piano", "song", "drum", "player", "match", "team"],
    "code": ["code", "python", "function", "error", "bug", "server", "cloud", "trade"],
    "health": ["doctor", "hospital", "fever", "medicine", "cat", "dog", "horse", "bird"],
}


def _text(rng: random.Random, topic: str, n: int = 6, noise: float = 0.5) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < noise else rng.choice(TOPICS[topic]) for _ in range(n))


def _make_tasks(root: Path, seed: int = 0) -> Path:
    """One small task of each type (tens of rows), hard enough that scores sit between 0 and 1."""
    rng = random.Random(seed)
    labels = list(TOPICS)
    docs = [
        {"_id": f"d{i}", "title": rng.choice(["", labels[i % 5]]), "text": _text(rng, labels[i % 5], 10)}
        for i in range(30)
    ]
    queries = [{"_id": f"q{i}", "text": _text(rng, labels[i % 5], 4, 0.3)} for i in range(15)]
    qrels = [(f"q{i}", f"d{j}", 1) for i in range(15) for j in range(30) if j % 5 == i % 5 and rng.random() < 0.3] + [
        (f"q{i}", f"d{i}", 2) for i in range(15)
    ]
    write_task_folder(
        root / "ret",
        "ToyRetrieval",
        "retrieval",
        "Given a topic, retrieve passages about it.",
        corpus=docs,
        queries=queries,
        qrels=qrels,
    )
    pairs = []
    for _ in range(30):
        a, b = rng.choice(labels), rng.choice(labels)
        pairs.append(
            {"sentence1": _text(rng, a), "sentence2": _text(rng, b), "score": float(a == b) * 3 + rng.random() * 2}
        )
    write_task_folder(root / "sts", "ToySTS", "sts", "Retrieve semantically similar text.", test=pairs)
    labelled = lambda n: [{"text": _text(rng, t, 6, 0.6), "label": t} for t in labels for _ in range(n)]  # noqa: E731
    write_task_folder(
        root / "cls",
        "ToyClassification",
        "classification",
        "Classify the topic of the text.",
        train=labelled(10),
        test=labelled(6),
    )
    binary = lambda n: [{"text": _text(rng, t, 6, 0.7), "label": t} for t in ("finance", "nature") for _ in range(n)]  # noqa: E731
    write_task_folder(
        root / "cls2",
        "ToyBinaryClassification",
        "classification",
        "Classify the topic of the text.",
        train=binary(10),
        test=binary(8),
    )
    write_task_folder(root / "clu", "ToyClustering", "clustering", "Identify the topic of the text.", test=labelled(8))
    pc = [{"sentence1": p["sentence1"], "sentence2": p["sentence2"], "label": int(p["score"] > 3)} for p in pairs]
    write_task_folder(
        root / "pair", "ToyPairClassification", "pair_classification", "Retrieve text with the same topic.", test=pc
    )
    return root


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_tasks(tmp_path_factory.mktemp("eval_tasks"))


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return Embedder.from_pretrained("minilm")


@pytest.fixture(scope="module")
def sentence_transformer(minilm_path: Path) -> object:
    """The reference: all-MiniLM-L6-v2 loaded by sentence-transformers, as mteb would run it."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture(scope="module")
def perturbed_qwen3(tmp_path_factory: pytest.TempPathFactory, tiny_qwen3_path: Path) -> Path:
    """tiny-qwen3 with its weights nudged: a second, different checkpoint."""
    emb = Embedder.from_pretrained(str(tiny_qwen3_path))
    with torch.no_grad():
        torch.manual_seed(0)
        for p in emb.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return emb.save(tmp_path_factory.mktemp("ckpt") / "perturbed")


def _score(model: object, task: object) -> float:
    return float(mteb.evaluate(model, task, cache=None, show_progress_bar=False).task_results[0].get_score())


@pytest.mark.parametrize("folder", ["ret", "sts", "cls", "cls2", "clu", "pair"])
def test_minilm_score_equals_mteb_through_sentence_transformers(
    folder: str, task_root: Path, minilm: Embedder, sentence_transformer: object
) -> None:
    ours = _score(MtebEmbedder(minilm), load_local_task(task_root / folder))
    reference = _score(sentence_transformer, load_local_task(task_root / folder))
    assert abs(ours - reference) < 1e-4
    assert 0.05 < ours < 0.999, f"fixture too easy or broken: {ours}"  # the comparison must be able to fail


def test_instructions_go_on_queries_only(
    task_root: Path, tiny_qwen3_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = MtebEmbedder(str(tiny_qwen3_path))
    assert model.instructions  # a decoder: F2LLM-style by default
    calls: list[tuple[int, str | None]] = []
    original = Embedder.encode

    def spy(
        self: Embedder, texts: list[str], *args: object, instruction: str | None = None, **kwargs: object
    ) -> object:
        calls.append((len(texts), instruction))
        return original(self, texts, *args, instruction=instruction, **kwargs)

    monkeypatch.setattr(Embedder, "encode", spy)
    _score(model, load_local_task(task_root / "ret"))
    assert sorted(calls) == [(15, "Given a topic, retrieve passages about it."), (30, None)]  # queries / documents
    calls.clear()
    _score(model, load_local_task(task_root / "sts"))  # symmetric: every sentence is a query
    assert {instr for _, instr in calls} == {"Retrieve semantically similar text."}
    # hub tasks: F2LLM's own instruction by task name, never on documents
    banking = mteb.get_task("Banking77Classification").metadata
    assert model.instruction(banking, None) == "Given an online banking query, find the corresponding intents."
    scifact = mteb.get_task("SCIDOCS").metadata
    assert model.instruction(scifact, PromptType.query) == F2LLM_PROMPTS["SCIDOCS"]
    assert model.instruction(scifact, PromptType.document) is None
    # a model trained with instructions on retrieval only (EmbedderConfig.instruction_tasks) is scored the same way
    model.model.config.instruction_tasks = ["retrieval"]
    assert model.instruction(banking, None) is None
    assert model.instruction(scifact, PromptType.query) == F2LLM_PROMPTS["SCIDOCS"]


def test_instructed_minilm_equals_sentence_transformers_with_prompts(
    task_root: Path, minilm: Embedder, minilm_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    instruction = "Given a topic, retrieve passages about it."
    prompts = {"query": f"Instruct: {instruction}\nQuery: "}
    ours = _score(MtebEmbedder(minilm, instructions=True), load_local_task(task_root / "ret"))
    reference = _score(
        SentenceTransformer(str(minilm_path), device="cpu", prompts=prompts), load_local_task(task_root / "ret")
    )
    plain = _score(MtebEmbedder(minilm), load_local_task(task_root / "ret"))
    assert abs(ours - reference) < 1e-4
    assert abs(ours - plain) > 1e-3  # the instruction really changed the queries


def test_two_checkpoints_in_a_row_get_their_own_cached_results(
    task_root: Path, tmp_path: Path, tiny_qwen3_path: Path, perturbed_qwen3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = EvalConfig(cache_dir=str(tmp_path / "cache"), out_dir=str(tmp_path))
    first = evaluate_models(
        [str(tiny_qwen3_path), str(perturbed_qwen3)], str(task_root / "sts"), labels=["a", "b"], cfg=cfg
    )
    assert first["revision"].nunique() == 2
    assert abs(first["main_score"].iloc[0] - first["main_score"].iloc[1]) > 1e-3
    cached = list((tmp_path / "cache").rglob("ToySTS.json"))  # <cache_dir>/seed-<seed>/results/...
    assert len(cached) == 2  # one per revision
    with monkeypatch.context() as patch:  # now both must come from the cache: encoding would fail
        patch.setattr(Embedder, "encode", lambda *a, **k: pytest.fail("re-encoded although cached"))
        again = evaluate_models(
            [str(perturbed_qwen3), str(tiny_qwen3_path)], str(task_root / "sts"), labels=["b", "a"], cfg=cfg
        )
    scores = dict(zip(first["model"], first["main_score"]))
    assert dict(zip(again["model"], again["main_score"])) == pytest.approx(scores, abs=1e-6)  # mteb stores 6 decimals
    # same name and weights, but the task's files changed: re-scored, not read from the stale cache
    (task_root / "sts_copy").mkdir()
    for f in (task_root / "sts").iterdir():
        (task_root / "sts_copy" / f.name).write_text(f.read_text())
    lines = (task_root / "sts_copy" / "test.jsonl").read_text().splitlines()
    (task_root / "sts_copy" / "test.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    changed = evaluate_models([str(tiny_qwen3_path)], str(task_root / "sts_copy"), labels=["a"], cfg=cfg)
    assert changed["main_score"].iloc[0] != first["main_score"].iloc[0]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "corpus.jsonl").unlink(), r"corpus\.jsonl: missing file"),
        (
            lambda d: (d / "queries.jsonl").write_text('{"_id": "q1"}\n'),
            r"queries\.jsonl, line 1, field 'text': missing field",
        ),
        (
            lambda d: (d / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\nnot json\n'),
            r"queries\.jsonl, line 2: malformed line: not valid JSON",
        ),
        (lambda d: (d / "qrels" / "test.tsv").write_text("q\td\ts\n"), r"test\.tsv, line 1: malformed header"),
        (
            lambda d: (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\tnope\t1\n"),
            r"test\.tsv, field 'corpus-id': ids not found.*'nope'",
        ),
        (
            lambda d: (d / "task.json").write_text('{"name": "x", "type": "ranking"}'),
            r"task\.json, field 'type': is 'ranking'",
        ),
        (lambda d: (d / "task.json").unlink(), r"task\.json: missing file"),
    ],
)
def test_malformed_task_folder_names_file_and_problem(damage: object, message: str, tmp_path: Path) -> None:
    folder = _make_tasks(tmp_path) / "ret"
    damage(folder)  # type: ignore[operator]
    with pytest.raises(TaskFormatError, match=message):
        load_local_task(folder)


def test_other_malformed_files(tmp_path: Path) -> None:
    root = _make_tasks(tmp_path)
    (root / "cls" / "train.jsonl").unlink()
    with pytest.raises(TaskFormatError, match=r"cls/train\.jsonl: missing file"):
        load_local_task(root / "cls")
    (root / "pair" / "test.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "label": 2}\n')
    with pytest.raises(TaskFormatError, match=r"test\.jsonl, field 'label': must be 0 or 1"):
        load_local_task(root / "pair")
    with pytest.raises(TaskFormatError, match="does not exist"):
        load_local_tasks(tmp_path / "nowhere")


def test_category_averages_by_hand() -> None:
    df = pd.DataFrame(
        {
            "task": list("abcd"),
            "type": ["STS", "STS", "Retrieval", "Clustering"],
            "main_score": [0.9, 0.7, 0.3, 0.5],
            "model": "m",
        }
    )
    row = category_averages(df).iloc[0]
    assert row["mean_task"] == pytest.approx(60.0)  # (90 + 70 + 30 + 50) / 4
    assert row["mean_type"] == pytest.approx(160 / 3)  # STS (90+70)/2 = 80, Retrieval 30, Clustering 50 -> 160/3
    assert row["STS"] == pytest.approx(80.0)
    table = paper_comparison(category_averages(df))
    f2llm = table.set_index("model").loc["F2LLM-4B (public MTEB results)"]
    assert f2llm["mean_task"] == 73.67 and f2llm["Clustering"] == 68.54 and f2llm["suite"].startswith("MTEB(eng, v2)")
    assert len(table) == 1 + len(PAPER_MTEB_ENG_V2)


def test_hub_suites_resolve_offline() -> None:
    suite = resolve_tasks("MTEB(eng, v2)")
    assert len(suite) == 41
    assert all(t.metadata.name in F2LLM_PROMPTS for t in suite)  # F2LLM has an instruction for every task
    assert [t.metadata.name for t in resolve_tasks("STSBenchmark, ArguAna")] == ["STSBenchmark", "ArguAna"]
    assert len(resolve_tasks("fast")) == 8
    with pytest.raises(ValueError, match="not an existing folder"):
        resolve_tasks("NoSuchTask")


def test_comma_joined_task_folders_resolve_to_those_tasks_in_order(task_root: Path) -> None:
    spec = f"{task_root / 'sts'}, {task_root / 'clu'}"
    assert [t.metadata.name for t in resolve_tasks(spec)] == ["ToySTS", "ToyClustering"]


def test_main_writes_table_averages_paper_numbers_and_plot(
    task_root: Path, tmp_path: Path, tiny_qwen3_path: Path, perturbed_qwen3: Path
) -> None:
    tasks = tmp_path / "tasks"
    for name in ("sts", "clu"):
        (tasks / name).mkdir(parents=True)
        for f in (task_root / name).iterdir():
            (tasks / name / f.name).write_text(f.read_text())
    cfg = EvalConfig(
        models=[str(tiny_qwen3_path), str(perturbed_qwen3)],
        labels=["base", "fine-tuned"],
        tasks=str(tasks),
        out_dir=str(tmp_path / "eval"),
    )
    out = main(cfg)
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == [
        "task",
        "type",
        "main_score",
        "ci_low",
        "ci_high",
        "rows",
        "metric",
        "model",
        "revision",
    ]
    assert sorted(zip(results["model"], results["task"])) == sorted(
        (m, t) for m in ("base", "fine-tuned") for t in ("ToySTS", "ToyClustering")
    )
    assert set(results["type"]) == {"STS", "Clustering"}
    averages = pd.read_csv(out / "category_averages.csv").set_index("model")
    base = results[results["model"] == "base"]
    assert averages.loc["base", "mean_task"] == pytest.approx(base["main_score"].mean() * 100)
    assert "F2LLM-4B (public MTEB results)" in set(pd.read_csv(out / "paper_comparison.csv")["model"])
    assert (out / "scores.png").stat().st_size > 10_000 and (out / "eval_config.yaml").is_file()
    assert (out / "results.json").is_file()


def test_cli_scores_a_model(task_root: Path, tmp_path: Path, tiny_qwen3_path: Path) -> None:
    code = cli(
        [
            "--model",
            str(tiny_qwen3_path),
            "--label",
            "tiny",
            "--tasks",
            str(task_root / "sts"),
            "--out-dir",
            str(tmp_path / "cli"),
            "--instructions",
            "off",
            "--no-cache",
        ]
    )
    assert code == 0
    results = pd.read_csv(tmp_path / "cli" / "results.csv")
    assert list(results["model"]) == ["tiny"] and list(results["task"]) == ["ToySTS"]
    assert not (tmp_path / "cli" / "mteb_cache").exists()


def test_max_rows_keeps_a_seeded_sample_with_its_relevant_documents(task_root: Path) -> None:
    full = load_local_task(task_root / "ret")
    small = load_local_task(task_root / "ret", max_rows=4)
    again = load_local_task(task_root / "ret", max_rows=4)
    split = small.dataset["default"]["test"]
    assert len(split["queries"]) == 4 and list(split["queries"]["id"]) == list(
        again.dataset["default"]["test"]["queries"]["id"]
    )
    relevant = {d for q in split["queries"]["id"] for d in split["relevant_docs"][q]}
    assert relevant <= set(split["corpus"]["id"]) and len(split["corpus"]) == len(relevant) + 12  # + 3 x 4 others
    assert small.metadata.revision != full.metadata.revision  # a cached full-size score is never reused
    sts = load_local_task(task_root / "sts", max_rows=7)
    assert len(sts.dataset["test"]) == 7


def _reranking_rows(rng: random.Random) -> list[dict[str, object]]:
    """Queries with candidates: 2 positives of the query's topic and 5 negatives, some of them near misses."""
    labels, rows = list(TOPICS), []
    for i in range(12):
        topic = labels[i % 5]
        others = [t for t in labels if t != topic]
        rows.append(
            {
                "query": _text(rng, topic, 4, 0.3),
                "positive": [_text(rng, topic, 8, 0.6) for _ in range(2)],
                "negative": [_text(rng, rng.choice(others + [topic]), 8, 0.6) for _ in range(5)],
            }
        )
    return rows


def _summarization_rows(rng: random.Random) -> list[dict[str, object]]:
    """Texts with 2 human summaries and 6 machine summaries scored by how much of the topic they keep."""
    rows = []
    for topic in TOPICS:
        machine, relevance = [], []
        for _ in range(6):
            noise = rng.random()
            machine.append(_text(rng, topic, 6, noise))
            relevance.append(round(5 * (1 - noise) + rng.random(), 2))
        rows.append(
            {
                "text": _text(rng, topic, 20, 0.3),
                "human_summaries": [_text(rng, topic, 6, 0.2) for _ in range(2)],
                "machine_summaries": machine,
                "relevance": relevance,
            }
        )
    return rows


def _builtin_with_rows(name: str, dataset: object) -> object:
    """One of mteb's own MTEB(eng, v2) tasks with our rows injected in its own format (no download)."""
    task = mteb.get_task(name)
    task.dataset, task.data_loaded = dataset, True
    return task


def test_local_reranking_and_summarization_equal_mtebs_builtin_tasks(tmp_path: Path, minilm: Embedder) -> None:
    """Same rows, same model: the local folder scores exactly what mteb's AskUbuntuDupQuestions (reranking,
    MAP@1000 and MRR) and SummEvalSummarization.v2 (Spearman) compute when given those rows."""
    rng = random.Random(3)
    rerank, summaries = _reranking_rows(rng), _summarization_rows(rng)
    write_task_folder(tmp_path / "rr", "ToyReranking", "reranking", test=rerank)
    write_task_folder(tmp_path / "sum", "ToySummarization", "summarization", test=summaries)
    model = MtebEmbedder(minilm)  # an encoder: no instructions, so the tasks' prompts do not matter

    corpus, queries, qrels, top = [], [], {}, {}  # the rows in mteb's retrieval-with-candidates format, by hand
    for i, row in enumerate(rerank):
        qid = f"q{i}"
        queries.append({"id": qid, "text": row["query"]})
        qrels[qid], top[qid] = {}, []
        for kind, docs in (("p", row["positive"]), ("n", row["negative"])):
            for j, text in enumerate(docs):
                corpus.append({"id": f"{qid}{kind}{j}", "title": "", "text": text})
                top[qid].append(f"{qid}{kind}{j}")
                qrels[qid][f"{qid}{kind}{j}"] = int(kind == "p")
    split = {"corpus": Dataset.from_list(corpus), "queries": Dataset.from_list(queries)}
    builtin = _builtin_with_rows(
        "AskUbuntuDupQuestions", {"default": {"test": {**split, "relevant_docs": qrels, "top_ranked": top}}}
    )
    ours = mteb.evaluate(model, load_local_task(tmp_path / "rr"), cache=None).task_results[0]
    reference = mteb.evaluate(model, builtin, cache=None).task_results[0]
    for metric in ("map_at_1000", "mrr_at_1000", "ndcg_at_10"):
        assert abs(ours.scores["test"][0][metric] - reference.scores["test"][0][metric]) < 1e-6, metric
    assert 0.05 < ours.get_score() < 0.999

    columns = {k: [r[k] for r in summaries] for k in ("text", "human_summaries", "machine_summaries", "relevance")}
    builtin = _builtin_with_rows("SummEvalSummarization.v2", DatasetDict({"test": Dataset.from_dict(columns)}))
    ours_sum = _score(model, load_local_task(tmp_path / "sum"))
    reference_sum = _score(model, builtin)
    assert abs(ours_sum - reference_sum) < 1e-6
    assert 0.05 < ours_sum < 0.999, ours_sum


def test_reranking_and_summarization_folders_are_checked(tmp_path: Path) -> None:
    row = {"query": "q", "positive": ["p"], "negative": []}
    write_task_folder(tmp_path / "rr", "BadReranking", "reranking", test=[row])
    with pytest.raises(TaskFormatError, match="negative"):
        load_local_task(tmp_path / "rr")
    bad = {"text": "t", "human_summaries": ["h"], "machine_summaries": ["a", "b"], "relevance": [1.0]}
    write_task_folder(tmp_path / "sum", "BadSummarization", "summarization", test=[bad])
    with pytest.raises(TaskFormatError, match="one number per machine summary"):
        load_local_task(tmp_path / "sum")


# -- Matryoshka dimensions (issue 15; docs/recipe.md §1b) ----------------------------------------------------


@pytest.mark.parametrize("folder", ["ret", "sts"])
def test_dim_equals_sentence_transformers_truncate_dim(
    folder: str, task_root: Path, minilm: Embedder, minilm_path: Path
) -> None:
    """Cut to 32 of 384 dims: the same score as sentence-transformers' ``truncate_dim`` (cosine ignores the norm)."""
    from sentence_transformers import SentenceTransformer

    ours = _score(MtebEmbedder(minilm, dim=32), load_local_task(task_root / folder))
    reference = _score(
        SentenceTransformer(str(minilm_path), device="cpu", truncate_dim=32), load_local_task(task_root / folder)
    )
    full = _score(MtebEmbedder(minilm), load_local_task(task_root / folder))
    assert abs(ours - reference) < 1e-4
    assert abs(ours - full) > 1e-3  # 32 dims really are fewer
    assert MtebEmbedder(minilm, dim=32).revision != MtebEmbedder(minilm).revision  # its own cache entry
    with pytest.raises(ValueError, match="dim must be"):
        MtebEmbedder(minilm, dim=385)


def test_scores_by_dimension_encodes_once_and_plots(
    task_root: Path, tmp_path: Path, tiny_qwen3_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from minif2.evaluation import plot_scores_by_dimension, scores_by_dimension

    calls = []
    original = Embedder.encode

    def spy(self: Embedder, texts: list[str], *args: object, **kwargs: object) -> object:
        calls.append(len(texts))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(Embedder, "encode", spy)
    cfg = EvalConfig(use_cache=False, instructions=False)
    table = scores_by_dimension([str(tiny_qwen3_path)], str(task_root / "sts"), [8, 16, 64], ["tiny"], cfg)
    assert list(table["dim"]) == [8, 16, 64] and set(table["model"]) == {"tiny"}
    assert len(calls) == 2  # sentence1 and sentence2 encoded once, cut three ways (not 2 x 3 times)
    assert table["main_score"].nunique() == 3
    fig = plot_scores_by_dimension(table, tmp_path / "dims.png")
    assert (tmp_path / "dims.png").stat().st_size > 5_000 and fig.axes[0].get_xscale() == "log"
    assert (
        cli(
            [
                "--model",
                str(tiny_qwen3_path),
                "--tasks",
                str(task_root / "sts"),
                "--out-dir",
                str(tmp_path / "cli"),
                "--dim",
                "16",
                "--instructions",
                "off",
                "--no-cache",
            ]
        )
        == 0
    )
    scored = pd.read_csv(tmp_path / "cli" / "results.csv")["main_score"].item()
    assert scored == pytest.approx(table.loc[table["dim"] == 16, "main_score"].item(), abs=1e-6)


def test_width_axis_labels_every_width_that_does_not_collide() -> None:
    """Matryoshka's widths on a log2 axis: 512 sits a sixth of an octave from the full 576, so only 576 is labelled."""
    import matplotlib.pyplot as plt

    from minif2.evaluation.report import _width_ticks

    fig, ax = plt.subplots()
    _width_ticks(ax, [8, 16, 32, 64, 128, 256, 512, 576])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["8", "16", "32", "64", "128", "256", "", "576"]
    assert list(ax.get_xticks()) == [8, 16, 32, 64, 128, 256, 512, 576]
    plt.close(fig)
