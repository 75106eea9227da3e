"""minif2.training: one source per micro-batch, size-proportional mix, exact coverage, determinism, resume."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from minif2.training.sampler import SourceBatchSampler, negatives_for_step

SIZES = {"msmarco": 50, "banking77": 23, "imdb": 12, "snli": 31}


def _epoch(sampler: SourceBatchSampler) -> list[tuple[str, list[int]]]:
    return list(sampler)


def _ranks(sizes, batch_size, world, seed=0, drop_last=True, epoch=0):
    out = []
    for rank in range(world):
        s = SourceBatchSampler(sizes, batch_size, seed=seed, rank=rank, world_size=world, drop_last=drop_last)
        s.set_epoch(epoch)
        out.append(_epoch(s))
    return out


def test_micro_batches_come_from_one_source_and_have_batch_size():
    s = SourceBatchSampler(SIZES, batch_size=4, seed=1)
    batches = _epoch(s)
    assert len(batches) == len(s) == sum(n // 4 for n in SIZES.values())
    for source, idx in batches:
        assert source in SIZES and len(idx) == 4
        assert all(0 <= i < SIZES[source] for i in idx)
    # each source contributes exactly its number of full batches: all finish within the epoch
    assert Counter(src for src, _ in batches) == {k: n // 4 for k, n in SIZES.items()}


def test_source_mix_is_proportional_to_size_at_every_step():
    """Drawing by batches LEFT gives a uniformly shuffled multiset: P(source at step t) = batches_s / total."""
    sizes = {"a": 60, "b": 30, "c": 10}  # batch 10: 6, 3, 1 batches
    s = SourceBatchSampler(sizes, batch_size=10)
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
def test_every_sample_seen_exactly_once_per_epoch_without_drop_last(world):
    per_rank = _ranks(SIZES, batch_size=4, world=world, seed=2, drop_last=False)
    seen: dict[str, list[int]] = {k: [] for k in SIZES}
    for batches in per_rank:
        for source, idx in batches:
            seen[source].extend(idx)
    for source, n in SIZES.items():
        assert sorted(seen[source]) == list(range(n)), source


def test_drop_last_sees_each_kept_sample_once_and_reports_the_rest():
    world, b = 2, 4
    per_rank = _ranks(SIZES, batch_size=b, world=world, seed=3)
    s = SourceBatchSampler(SIZES, b, world_size=world)
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


def test_deterministic_per_seed_and_different_across_seeds_and_epochs():
    a = _epoch(SourceBatchSampler(SIZES, 4, seed=7))
    assert a == _epoch(SourceBatchSampler(SIZES, 4, seed=7))
    assert a != _epoch(SourceBatchSampler(SIZES, 4, seed=8))
    s = SourceBatchSampler(SIZES, 4, seed=7)
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
        resumed = SourceBatchSampler(SIZES, 4, seed=5, rank=1, world_size=2)
        resumed.load_state_dict(state)
        assert head + run(resumed, 2) == full, cut


def test_resume_with_other_rank_count_but_same_global_batch_covers_the_rest():
    first = SourceBatchSampler(SIZES, 4, seed=6, world_size=2)
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
        s = SourceBatchSampler(sizes, batch_size, seed=6, rank=rank, world_size=world)
        s.load_state_dict(state)
        out.append(list(s))
    return out


def test_resume_refuses_other_data_or_batch():
    state = SourceBatchSampler(SIZES, 4).state_dict()
    with pytest.raises(ValueError, match="'global_batch_size' differs"):
        SourceBatchSampler(SIZES, 5).load_state_dict(state)
    with pytest.raises(ValueError, match="'source_sizes' differs"):
        SourceBatchSampler({**SIZES, "extra": 9}, 4).load_state_dict(state)


def test_small_source_warns_and_bad_arguments_raise():
    with pytest.warns(UserWarning, match="tiny"):
        s = SourceBatchSampler({"big": 40, "tiny": 3}, batch_size=4, world_size=2)
    assert s.batches_per_source == {"big": 5, "tiny": 0} and s.remainder["tiny"] == 3
    with pytest.raises(ValueError, match="rank"):
        SourceBatchSampler(SIZES, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="non-negative"):
        SourceBatchSampler({"a": -1}, 4)


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
