"""Model cards (issue 25): ``Embedder.save`` writes a README.md that says what is known and, where it is
not, says so; the recipe's departures from F2LLM and the data counts come from the trainer's files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from minif2 import Embedder
from minif2.model_card import build_card, collect_facts, departures, write_model_card


@pytest.fixture(scope="module")
def tiny() -> Embedder:
    return Embedder.from_pretrained("tiny-qwen3")


def _front_matter(card: str) -> str:
    return card.split("---\n")[1]


def test_untrained_save_says_it_has_no_training_record(tiny: Embedder, tmp_path: Path) -> None:
    card = (tiny.save(tmp_path / "plain") / "README.md").read_text()
    assert "No training record (`train.yaml`) was found" in card
    assert "those of `tiny-qwen3`" in card
    assert "Departures" not in card and "Data:" not in card  # nothing invented
    assert "Not scored" in card
    assert "base_model" not in _front_matter(card)  # an asset name is not a hub id
    assert '| `pooling` | `"last"` |' in card


def test_trained_run_card_lists_departures_and_data(tiny: Embedder, tmp_path: Path) -> None:
    out_dir = tmp_path / "checkpoints"  # what the trainer leaves in its out_dir before saving final/
    out_dir.mkdir()
    (out_dir / "train.yaml").write_text("model: Qwen/Qwen3-0.6B\nmode: full\nlr: 0.0005\ntemperature: 0.05\n")
    sources = {
        "codesearch": {"rows": 4000, "train": 3960, "validation": 40, "family": "retrieval"},
        "wiki_articles": {"rows": 1000, "train": 990, "validation": 10, "family": "clustering"},
    }
    (out_dir / "run_summary.json").write_text(json.dumps({"data": {"sources": sources}}))
    card = (tiny.save(out_dir / "final") / "README.md").read_text()
    assert "base_model: Qwen/Qwen3-0.6B" in _front_matter(card)
    assert "settings from `../train.yaml`" in card
    assert "| `lr` | `0.0005` | `8e-06` |" in card
    assert "`temperature`" not in card.split("Departures")[1].split("## ")[0]  # equal to F2LLM's: no departure
    assert "Data: 2 sources, 5000 rows." in card
    assert "| codesearch | retrieval | 4000 | 3960 | 40 |" in card


def test_grouped_train_yaml_is_read_by_field() -> None:
    """The trainer's config may be grouped; the card compares leaf fields."""
    assert departures({"lr": 8e-6, "betas": (0.9, 0.98), "num_epochs": 1}) == {"num_epochs": (1, 2)}


def test_scores_with_intervals_and_extra_columns(tiny: Embedder, tmp_path: Path) -> None:
    folder = tiny.save(tmp_path / "scored")
    results = pd.DataFrame(
        {
            "task": ["ToySTS", "ToyRetrieval"],
            "type": ["STS", "Retrieval"],
            "main_score": [0.61234, 0.4],
            "metric": ["cosine_spearman", "ndcg_at_10"],
            "model": "m",
            "revision": "abc",
            "ci_low": [0.5, 0.3],
            "ci_high": [0.7, 0.5],
            "n_bootstrap": [1000, 1000],  # a column the card does not know passes without harm
        }
    )
    card = (write_model_card(folder, results=results)).read_text()
    assert "with their intervals" in card
    assert "| ToySTS | STS | cosine_spearman | 0.6123 | 0.5000 | 0.7000 |" in card
    assert "Task list (2): ToyRetrieval, ToySTS." in card
    no_ci = write_model_card(folder, results=results.drop(columns=["ci_low", "ci_high"])).read_text()
    assert "no intervals were computed" in no_ci


def test_card_of_a_folder_without_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="minif2_embedder.json"):
        write_model_card(tmp_path)


def test_collect_then_build_round_trip(tmp_path: Path) -> None:
    facts = collect_facts(tmp_path, {"pooling": "mean", "uses_instructions": False}, loaded_from="minilm")
    card = build_card(facts)
    assert "This model takes no instructions." in card and "Base model: `minilm`." in card
