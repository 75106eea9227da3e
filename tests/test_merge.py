"""Checkpoint merging (issue 25): averages, slerp and base mixing checked against hand-computed weights
on the tiny Qwen3; the merged folder loads in sentence-transformers and minif2 with the same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from minif2 import Embedder
from minif2.cli import main as cli_main
from minif2.training.merge import MergeConfig, MergeError, main, merge_states, slerp

TEXTS = ["a cat sat on the mat", "def add(a, b): return a + b", "rivers flow to the sea"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three 'checkpoints' of one run: tiny-qwen3 and two nudged copies (fixed seeds)."""
    root = tmp_path_factory.mktemp("run")
    emb = Embedder.from_pretrained("tiny-qwen3")
    folders = {"base": emb.save(root / "base")}
    for seed in (1, 2):
        nudged = Embedder.from_pretrained("tiny-qwen3")
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in nudged.backbone.parameters():
                p.add_(0.1 * torch.randn_like(p))
        folders[f"step{seed}"] = nudged.save(root / f"step{seed}")
    return folders


def test_average_of_equal_checkpoints_is_that_checkpoint(saved_weights, run: dict[str, Path], tmp_path: Path) -> None:
    out = main(MergeConfig(checkpoints=[str(run["step1"])] * 2, out_dir=str(tmp_path / "m")))
    ours, theirs = saved_weights(out), saved_weights(run["step1"])
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)


def test_weighted_average_equals_hand_computed_mix(saved_weights, run: dict[str, Path], tmp_path: Path) -> None:
    out = main(
        MergeConfig(checkpoints=[str(run["step1"]), str(run["step2"])], weights=[3.0, 1.0], out_dir=str(tmp_path))
    )
    a, b, merged = saved_weights(run["step1"]), saved_weights(run["step2"]), saved_weights(out)
    for key in merged:  # weights normalised: 3/4 and 1/4
        torch.testing.assert_close(merged[key], 0.75 * a[key] + 0.25 * b[key], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(merged["norm.weight"], a["norm.weight"])  # the mix really moved the weights


def test_mix_with_base_is_lm_cocktail_weighting(saved_weights, run: dict[str, Path], tmp_path: Path) -> None:
    cfg = MergeConfig(
        checkpoints=[str(run["step1"])],
        method="mix",
        base_model=str(run["base"]),
        fine_tuned_weight=0.8,
        out_dir=str(tmp_path),
    )
    ft, base, merged = saved_weights(run["step1"]), saved_weights(run["base"]), saved_weights(main(cfg))
    for key in merged:
        torch.testing.assert_close(merged[key], 0.8 * ft[key] + 0.2 * base[key], rtol=1e-6, atol=1e-6)
    assert "Method: `mix`" in (tmp_path / "README.md").read_text()  # the model card records the merge


def test_slerp_ends_and_midpoint(saved_weights, run: dict[str, Path], tmp_path: Path) -> None:
    ends = [str(run["step1"]), str(run["step2"])]
    for t, expected in ((0.0, run["step1"]), (1.0, run["step2"])):
        out = main(MergeConfig(checkpoints=ends, method="slerp", t=t, out_dir=str(tmp_path / f"t{t}")))
        for key, value in saved_weights(out).items():
            torch.testing.assert_close(value, saved_weights(expected)[key], rtol=1e-5, atol=1e-6)
    # textbook case: halfway between orthogonal unit vectors is on the unit circle at 45 degrees
    mid = slerp(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0]), 0.5)
    torch.testing.assert_close(mid, torch.tensor([2**0.5, 2**0.5]))
    # parallel vectors: a straight line, no division by sin(0)
    torch.testing.assert_close(slerp(torch.ones(3), 3 * torch.ones(3), 0.5), 2 * torch.ones(3))


def test_merge_states_hand_computed() -> None:
    states = [
        {"w": torch.tensor([1.0, 4.0]), "ids": torch.tensor([7])},
        {"w": torch.tensor([3.0, 0.0]), "ids": torch.tensor([9])},
    ]
    merged = merge_states(states, [0.25, 0.75])
    torch.testing.assert_close(merged["w"], torch.tensor([2.5, 1.0]))
    assert merged["ids"].tolist() == [7]  # integer tensors are not averaged


def test_merged_folder_loads_in_sentence_transformers_with_equal_vectors(run: dict[str, Path], tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    out = main(MergeConfig(checkpoints=[str(run["step1"]), str(run["step2"])], out_dir=str(tmp_path / "avg")))
    ours = Embedder.from_pretrained(str(out)).encode(TEXTS)
    st = SentenceTransformer(str(out), device="cpu").encode(TEXTS, normalize_embeddings=False)
    np.testing.assert_allclose(st, ours, atol=1e-5)
    assert not np.allclose(ours, Embedder.from_pretrained(str(run["step1"])).encode(TEXTS), atol=1e-3)


def test_different_shapes_are_refused_naming_the_folder(run: dict[str, Path], tmp_path: Path) -> None:
    from minif2.assets import prune_layers

    small = Embedder.from_pretrained("tiny-qwen3")
    prune_layers(small.backbone, [0])
    other = small.save(tmp_path / "one-layer")
    with pytest.raises(MergeError, match="one-layer"):
        main(MergeConfig(checkpoints=[str(run["base"]), str(other)], out_dir=str(tmp_path / "m")))
    minilm = str(Path(Embedder.from_pretrained("minilm").source))
    with pytest.raises(MergeError, match="architecture bert"):
        main(MergeConfig(checkpoints=[str(run["base"]), minilm], out_dir=str(tmp_path / "m")))


def test_bad_configs_give_one_line_errors(run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = str(run["base"])
    for cfg, message in [
        (MergeConfig(checkpoints=[base], method="slerp"), "exactly 2"),
        (MergeConfig(checkpoints=[base], method="mix"), "base_model"),
        (MergeConfig(checkpoints=[base, base], weights=[1.0]), "weights"),
        (MergeConfig(checkpoints=[str(tmp_path)]), str(tmp_path)),
    ]:
        with pytest.raises(MergeError, match=message):
            main(cfg)
    assert cli_main(["merge", "--checkpoint", base, "--method", "slerp", "--out-dir", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line, no traceback


def test_lora_checkpoint_is_merged_into_its_base(tmp_path: Path) -> None:
    """A trainer LoRA checkpoint (``adapter/`` + ``train.yaml``): the adapter is merged into the base first."""
    emb = Embedder.from_pretrained("tiny-qwen3")
    emb.add_lora(r=4, alpha=8, dropout=0.0)
    with torch.no_grad():  # LoRA's B starts at zero: make the adapter do something
        for name, p in emb.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    expected = emb.encode(TEXTS)
    ckpt = tmp_path / "step-0000010"
    emb.backbone.save_pretrained(ckpt / "adapter")
    (ckpt / "train.yaml").write_text("model: tiny-qwen3\nmode: lora\nmax_length_tokens: 1024\n")
    out = main(MergeConfig(checkpoints=[str(ckpt), str(ckpt)], out_dir=str(tmp_path / "merged")))
    np.testing.assert_allclose(Embedder.from_pretrained(str(out)).encode(TEXTS), expected, atol=1e-5)
