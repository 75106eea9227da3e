"""minif2.training: one source per micro-batch, F2LLM's source order, size-proportional mix, coverage, resume."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter

import numpy as np
import pytest
from accelerate.data_loader import BatchSamplerShard
from scipy.stats import chisquare
from torch.utils.data import BatchSampler

from minif2.training.sampler import NEGATIVES_PER_STEP_V2, SourceBatchSampler, negatives_for_step, negatives_per_step

SIZES = {"msmarco": 50, "banking77": 23, "imdb": 12, "snli": 31}


def _epoch(sampler: SourceBatchSampler) -> list[tuple[str, list[int]]]:
    return list(sampler)


def _ranks(sizes, batch_size, world, seed=0, drop_last=True, epoch=0, rule="f2llm"):
    out = []
    for rank in range(world):
        s = SourceBatchSampler(sizes, batch_size, seed, rank, world, drop_last=drop_last, rule=rule)
        s.set_epoch(epoch)
        out.append(_epoch(s))
    return out


def _released_multiloader(loaders: dict[str, list], epoch: int) -> list[tuple[str, object]]:
    """F2LLM's ``MultiLoader.reset_epoch`` + ``__iter__`` (codefuse-ai/CodeFuse-Embeddings ``F2LLM/run.py``),
    copied line for line with the prepared DataLoaders replaced by lists of their batches."""
    rng = random.Random(epoch)
    iters = {k: iter(v) for k, v in loaders.items()}
    names = list(iters.keys())
    weights = [len(loaders[k]) for k in names]
    out = []
    while names:  # until every DataLoader is empty
        name = rng.choices(names, weights=weights)[0]  # pick a data-source at random
        try:
            batch = next(iters[name])
            out.append((name, batch))
        except StopIteration:
            idx = names.index(name)
            names.pop(idx)  # this dataset has no batch left
            weights.pop(idx)
    return out


def _released_loaders(sampler: SourceBatchSampler, rank: int, world: int) -> dict[str, list[list[int]]]:
    """Each source's DataLoader(shuffle=True, batch_size=b, drop_last=False) as accelerate prepares it for
    ``rank``: the sampler's own epoch permutation, batched, then sharded by accelerate's BatchSamplerShard
    (even_batches=True, its default); with one process accelerate does not shard."""
    loaders = {}
    for source in sampler.source_sizes:
        perm = [int(i) for i in sampler._permutation(source)]
        batches = BatchSampler(perm, sampler.batch_size, drop_last=False)
        if world > 1:
            batches = BatchSamplerShard(batches, num_processes=world, process_index=rank, even_batches=True)
        loaders[source] = list(batches)
    return loaders


@pytest.mark.parametrize(
    ("sizes", "batch_size", "world", "epoch"),
    [(SIZES, 4, 1, 0), (SIZES, 4, 1, 3), (SIZES, 3, 2, 1), ({"a": 1000, "b": 37, "c": 5, "d": 250}, 8, 4, 2)],
)
def test_default_order_and_batches_are_those_of_f2llms_released_loop(sizes, batch_size, world, epoch):
    """Same sizes, epoch and batch size: F2LLM's MultiLoader draws the same sources in the same order, and
    (given the same shuffle) every rank gets the same indices, partial last batches included."""
    for rank in range(world):
        sampler = SourceBatchSampler(sizes, batch_size, seed=0, rank=rank, world_size=world)
        sampler.set_epoch(epoch)
        released = _released_multiloader(_released_loaders(sampler, rank, world), epoch)
        assert list(sampler) == [(name, list(batch)) for name, batch in released]
    batches_left = SourceBatchSampler(sizes, batch_size, rule="batches_left").schedule(epoch)
    assert batches_left != [name for name, _ in released]  # the kit's option is a different schedule


def test_f2llm_rule_ends_epochs_on_longer_single_source_runs():
    """Fixed weights let one source run dry early by chance, so an epoch tends to end on a long run of the
    remaining source; weights by batches left keep the mix to the end (a uniform shuffle)."""
    sizes = {"a": 500, "b": 300, "c": 200}  # batch 10: 50, 30 and 20 batches

    def tail(order):  # fraction of the epoch spent in its final run of one source
        n = next((i for i, src in enumerate(reversed(order)) if src != order[-1]), len(order))
        return n / len(order)

    mean_tail = {
        rule: np.mean([tail(SourceBatchSampler(sizes, 10, rule=rule).schedule(e)) for e in range(300)])
        for rule in ("f2llm", "batches_left")
    }
    assert mean_tail["f2llm"] > 2 * mean_tail["batches_left"], mean_tail


def test_micro_batches_come_from_one_source_and_have_batch_size():
    s = SourceBatchSampler(SIZES, batch_size=4, seed=1, drop_last=True)
    batches = _epoch(s)
    assert len(batches) == len(s) == sum(n // 4 for n in SIZES.values())
    for source, idx in batches:
        assert source in SIZES and len(idx) == 4
        assert all(0 <= i < SIZES[source] for i in idx)
    # each source contributes exactly its number of full batches: all finish within the epoch
    assert Counter(src for src, _ in batches) == {k: n // 4 for k, n in SIZES.items()}


def test_even_rule_draws_each_source_alike_whatever_its_size():
    """QZhou's grouping: while both have batches left, the first step is "a" or "b" with probability 1/2 each,
    not 6/7 and 1/7 as by size (chi-square over 3000 seeded epochs); every batch is still trained once."""
    s = SourceBatchSampler({"a": 60, "b": 10}, batch_size=10, rule="even")
    seeds = 3000
    schedules = [s.schedule(epoch) for epoch in range(seeds)]
    first = Counter(sch[0] for sch in schedules)
    assert chisquare([first["a"], first["b"]], [seeds / 2, seeds / 2]).pvalue > 1e-3, first
    assert all(Counter(sch) == {"a": 6, "b": 1} for sch in schedules[:50])


def test_source_mix_is_proportional_to_size_at_every_step():
    """Drawing by batches LEFT gives a uniformly shuffled multiset: P(source at step t) = batches_s / total."""
    sizes = {"a": 60, "b": 30, "c": 10}  # batch 10: 6, 3, 1 batches
    s = SourceBatchSampler(sizes, batch_size=10, rule="batches_left")
    expected = np.array([6, 3, 1]) / 10
    seeds = 3000
    schedules = [s.schedule(epoch) for epoch in range(seeds)]  # epoch e uses random.Random(seed + e)
    for step in (0, 4, 9):
        counts = Counter(sch[step] for sch in schedules)
        observed = np.array([counts[k] for k in "abc"])
        assert chisquare(observed, expected * seeds).pvalue > 1e-3, (step, observed)
    # a static-weight sampler would have "c" far more often at the LAST step than 1/10; ours does not
    last = Counter(sch[-1] for sch in schedules)
    assert abs(last["c"] / seeds - 0.1) < 0.03


@pytest.mark.parametrize("world", [1, 3])
def test_every_sample_seen_once_per_epoch_without_drop_last(world):
    """One process: exactly once. Several: the last global batch is completed with the epoch's first samples."""
    per_rank = _ranks(SIZES, batch_size=4, world=world, seed=2, drop_last=False)
    seen: dict[str, list[int]] = {k: [] for k in SIZES}
    for batches in per_rank:
        for source, idx in batches:
            seen[source].extend(idx)
    for source, n in SIZES.items():
        assert sorted(set(seen[source])) == list(range(n)), source
        g = 4 * world
        assert len(seen[source]) == (n if world == 1 else -(-n // g) * g)
    assert all(len(ids) == 4 for batches in per_rank for _, ids in batches) == (world > 1)


def test_drop_last_sees_each_kept_sample_once_and_reports_the_rest():
    world, b = 2, 4
    per_rank = _ranks(SIZES, batch_size=b, world=world, seed=3)
    s = SourceBatchSampler(SIZES, b, world_size=world, drop_last=True)
    assert s.remainder == {k: n % 8 for k, n in SIZES.items()}
    summary = s.summary()
    assert summary["dropped_per_epoch"] == sum(n % 8 for n in SIZES.values())
    assert summary["samples_per_epoch"] + summary["dropped_per_epoch"] == sum(SIZES.values())
    for source, n in SIZES.items():
        idx = [i for batches in per_rank for src, ids in batches if src == source for i in ids]
        assert len(idx) == len(set(idx)) == n - n % 8
    assert all(len(ids) == b for batches in per_rank for _, ids in batches)


def test_ranks_agree_on_source_and_hold_disjoint_slices():
    per_rank = _ranks(SIZES, batch_size=3, world=4, seed=4)
    assert len({len(batches) for batches in per_rank}) == 1
    for step in zip(*per_rank):
        assert len({src for src, _ in step}) == 1
        ids = [i for _, idx in step for i in idx]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("rule", ["f2llm", "batches_left"])
def test_deterministic_per_seed_and_different_across_seeds_and_epochs(rule):
    a = _epoch(SourceBatchSampler(SIZES, 4, seed=7, rule=rule))
    assert a == _epoch(SourceBatchSampler(SIZES, 4, seed=7, rule=rule))
    assert a != _epoch(SourceBatchSampler(SIZES, 4, seed=8, rule=rule))
    s = SourceBatchSampler(SIZES, 4, seed=7, rule=rule)
    first, second = _epoch(s), _epoch(s)  # iterating to the end moves on to epoch 1
    assert first == a and second != first and s.epoch == 2


def test_resume_mid_epoch_gives_the_identical_remaining_sequence():
    def run(sampler, num_epochs, stop_after=None):
        got = []
        for epoch in range(sampler.epoch, num_epochs):
            sampler.set_epoch(epoch)
            for batch in sampler:
                got.append((epoch, batch))
                if stop_after is not None and len(got) == stop_after:
                    return got
        return got

    full = run(SourceBatchSampler(SIZES, 4, seed=5, rank=1, world_size=2), num_epochs=2)
    for cut in (1, 5, len(full) // 2, len(full) // 2 + 1):  # within epoch 0, at its end, inside epoch 1
        first = SourceBatchSampler(SIZES, 4, seed=5, rank=1, world_size=2)
        head = run(first, 2, stop_after=cut)
        state = json.loads(json.dumps(first.state_dict()))  # survives a JSON checkpoint
        assert state["rule"] == "f2llm"
        resumed = SourceBatchSampler(SIZES, 4, seed=5, rank=1, world_size=2)
        resumed.load_state_dict(state)
        assert head + run(resumed, 2) == full, cut


def test_resume_with_other_rank_count_but_same_global_batch_covers_the_rest():
    first = SourceBatchSampler(SIZES, 4, seed=6, world_size=2, drop_last=True)
    it = iter(first)
    for _ in range(3):
        next(it)
    state = first.state_dict()
    left_before = sorted((src, i) for batches in _ranks_after(state, SIZES, 4, 2) for src, ids in batches for i in ids)
    left_after = sorted((src, i) for batches in _ranks_after(state, SIZES, 8, 1) for src, ids in batches for i in ids)
    assert left_before == left_after and len(left_before) > 0


def _ranks_after(state, sizes, batch_size, world):
    out = []
    for rank in range(world):
        s = SourceBatchSampler(sizes, batch_size, seed=6, rank=rank, world_size=world, drop_last=True)
        s.load_state_dict(state)
        out.append(list(s))
    return out


def test_resume_refuses_other_data_or_batch():
    state = SourceBatchSampler(SIZES, 4).state_dict()
    with pytest.raises(ValueError, match="'global_batch_size' differs"):
        SourceBatchSampler(SIZES, 5).load_state_dict(state)
    with pytest.raises(ValueError, match="'source_sizes' differs"):
        SourceBatchSampler({**SIZES, "extra": 9}, 4).load_state_dict(state)
    with pytest.raises(ValueError, match="'rule' differs"):
        SourceBatchSampler(SIZES, 4, rule="batches_left").load_state_dict(state)
    old = {k: v for k, v in SourceBatchSampler(SIZES, 4, rule="batches_left").state_dict().items() if k != "rule"}
    SourceBatchSampler(SIZES, 4, rule="batches_left").load_state_dict(old)  # saved before the rule existed


def test_small_source_warns_and_bad_arguments_raise():
    with pytest.warns(UserWarning, match="tiny"):
        s = SourceBatchSampler({"big": 40, "tiny": 3}, batch_size=4, world_size=2, drop_last=True)
    assert s.batches_per_source == {"big": 5, "tiny": 0} and s.remainder["tiny"] == 3
    with pytest.raises(ValueError, match="rank"):
        SourceBatchSampler(SIZES, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="non-negative"):
        SourceBatchSampler({"a": -1}, 4)
    with pytest.raises(ValueError, match="rule"):
        SourceBatchSampler(SIZES, 4, rule="uniform")


def test_negatives_for_step_draws_k_distinct_seeded_positions():
    draws = [negatives_for_step(random.Random(s), available=24) for s in range(200)]
    assert all(len(d) == 7 == len(set(d)) and all(0 <= i < 24 for i in d) for d in draws)
    assert negatives_for_step("0-3-17", 24) == negatives_for_step("0-3-17", 24)
    assert len({tuple(d) for d in draws}) > 190  # different steps, different negatives
    assert sorted(negatives_for_step(0, available=1)) == [0]  # classification keeps its one negative
    assert sorted(negatives_for_step(1, available=5)) == [0, 1, 2, 3, 4]
    assert len(set(negatives_for_step(1, available=24, k=9))) == 9  # F2LLM-v2 clustering (docs/recipe.md §1b)
    position_counts = Counter(i for d in draws for i in d)
    assert chisquare([position_counts[i] for i in range(24)]).pvalue > 1e-3  # every position equally likely


def test_negatives_per_step_by_family_as_in_the_released_code():
    """F2LLM v1: 7 for retrieval and clustering, 1 for classification; v2: 9 for clustering; an int: all."""
    assert [negatives_per_step(dict(), f) for f in ("retrieval", "classification", "clustering")] == [7, 1, 7]
    assert negatives_per_step(NEGATIVES_PER_STEP_V2, "clustering") == 9
    assert negatives_per_step(NEGATIVES_PER_STEP_V2, "retrieval") == 7
    assert negatives_per_step(1, "clustering") == 1  # the tiny profile's one number
    with pytest.raises(ValueError, match="unknown families"):
        negatives_per_step({"sts": 3}, "retrieval")


def test_load_training_data_counts_uneven_negatives_as_python_would(tmp_path, caplog):
    """Arrow counts the negatives column (issue 24); the report equals counting each row's list in Python."""
    from minif2.schema import Sample, write_unified
    from minif2.training.sampler import load_training_data

    rows = [Sample(f"q{i}", f"p{i}", [f"n{i}.{j}" for j in range(2 + i % 3)], "retrieval", "s", "I") for i in range(12)]
    write_unified({"s": rows}, tmp_path / "u")
    with caplog.at_level(logging.INFO, logger="minif2.training.sampler"):
        data = load_training_data(tmp_path / "u", validation_fraction=0.25, seed=0)
    counts = [len(r.negatives) for r in rows]
    report = data.report["sources"]["s"]
    assert (report["negatives_min"], report["negatives_max"]) == (min(counts), max(counts)) == (2, 4)
    assert data.negatives_available["s"] == 2 and report["train"] + report["validation"] == 12
    assert "s: rows have 2 to 4 negatives; a step can draw at most 2" in caplog.text  # a note, not a warning
