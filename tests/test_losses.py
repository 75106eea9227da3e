"""minif2.training against sentence-transformers' MNRL, a hand-computed case, gradients, and 2 real processes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from minif2.training.grad_cache import SavedTensorMeter, cached_embed
from minif2.training.losses import (
    f2llm_loss,
    gather,
    hard_negative_loss,
    in_batch_loss,
    matryoshka_dims,
    single_softmax_loss,
    training_loss,
)

TAU = 0.05


def _unit(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


@pytest.fixture(scope="module")
def mnrl():
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model=None, scale=1 / TAU)  # scale = 1/tau = 20


# -- equality with sentence-transformers where the definitions coincide -------------------------


def test_in_batch_equals_mnrl_on_pairs(mnrl):
    q, p = _unit(8, 16, seed=0), _unit(8, 16, seed=1)
    expected = mnrl.compute_loss_from_embeddings([q, p], None)
    torch.testing.assert_close(in_batch_loss(q, p, TAU), expected, rtol=1e-10, atol=1e-10)
    # no negatives: the hard loss vanishes and F2LLM's total is MNRL's
    out = f2llm_loss(q, p, q.new_zeros(8, 0, 16), "retrieval", TAU)
    assert out["hard"].item() == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(out["loss"], expected, rtol=1e-10, atol=1e-10)


def test_hard_negative_equals_mnrl_for_one_query(mnrl):
    q, p, n = _unit(1, 16, seed=2), _unit(1, 16, seed=3), _unit(1, 7, 16, seed=4)
    expected = mnrl.compute_loss_from_embeddings([q, p, *n.unbind(1)], None)  # (anchor, positive, neg_1..neg_7)
    torch.testing.assert_close(hard_negative_loss(q, p, n, TAU), expected, rtol=1e-10, atol=1e-10)


def test_hard_negative_is_mean_of_per_query_mnrl_and_differs_from_joint_mnrl(mnrl):
    b, n_neg = 6, 3
    q, p, n = _unit(b, 16, seed=5), _unit(b, 16, seed=6), _unit(b, n_neg, 16, seed=7)
    per_query = [
        mnrl.compute_loss_from_embeddings([q[i : i + 1], p[i : i + 1], *n[i : i + 1].unbind(1)], None) for i in range(b)
    ]
    torch.testing.assert_close(hard_negative_loss(q, p, n, TAU), torch.stack(per_query).mean(), rtol=1e-10, atol=1e-10)
    # MNRL with b > 1 puts the other queries' documents into the same softmax: F2LLM does not (docs/recipe.md §1a)
    joint = mnrl.compute_loss_from_embeddings([q, p, *n.unbind(1)], None)
    assert joint.item() > hard_negative_loss(q, p, n, TAU).item() + 1e-3


# -- a case worked by hand -------------------------------------------------------------------


def test_hand_computed_two_queries_one_negative():
    # unit vectors in 2-D; cosines are read off by hand:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    p = torch.tensor([[0.6, 0.8], [0.8, 0.6]], dtype=torch.float64)
    n = torch.tensor([[[0.8, 0.6]], [[0.0, 1.0]]], dtype=torch.float64)
    # s(q1,p1)=0.6 s(q1,n1)=0.8 s(q1,p2)=0.8 | s(q2,p2)=0.6 s(q2,n2)=1.0 s(q2,p1)=0.8
    t = 0.05
    hard1 = -math.log(math.exp(0.6 / t) / (math.exp(0.6 / t) + math.exp(0.8 / t)))  # = log(1 + e^4)
    hard2 = -math.log(math.exp(0.6 / t) / (math.exp(0.6 / t) + math.exp(1.0 / t)))  # = log(1 + e^8)
    inb1 = -math.log(math.exp(0.6 / t) / (math.exp(0.6 / t) + math.exp(0.8 / t)))  # q1 against [p1, p2]
    inb2 = -math.log(math.exp(0.6 / t) / (math.exp(0.8 / t) + math.exp(0.6 / t)))  # q2 against [p1, p2], label 1
    out = f2llm_loss(q, p, n, "retrieval", temperature=t)
    assert out["hard"].item() == pytest.approx((hard1 + hard2) / 2, rel=1e-12)
    assert out["in_batch"].item() == pytest.approx((inb1 + inb2) / 2, rel=1e-12)
    assert out["loss"].item() == pytest.approx((hard1 + hard2 + inb1 + inb2) / 2, rel=1e-12)
    assert out["hard"].item() == pytest.approx((math.log1p(math.e**4) + math.log1p(math.e**8)) / 2, rel=1e-12)
    # a different temperature changes the numbers as the formula says
    assert hard_negative_loss(q[:1], p[:1], n[:1], 0.1).item() == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-12)


def test_offset_selects_this_ranks_positives():
    q, docs = _unit(3, 8, seed=8), _unit(9, 8, seed=9)
    logits = q @ docs.T / TAU
    expected = -(logits[torch.arange(3), torch.arange(3, 6)] - logits.logsumexp(1)).mean()
    torch.testing.assert_close(in_batch_loss(q, docs, TAU, offset=3), expected)
    with pytest.raises(ValueError, match="cannot hold positives"):
        in_batch_loss(q, docs, TAU, offset=7)


# -- gradients -------------------------------------------------------------------------------


def test_gradcheck_and_analytic_in_batch_gradient():
    q, p, n = (
        _unit(3, 5, seed=10).requires_grad_(),
        _unit(3, 5, seed=11).requires_grad_(),
        _unit(3, 2, 5, seed=12).requires_grad_(),
    )
    # tau = 0.5 keeps finite differences well conditioned
    assert torch.autograd.gradcheck(lambda a, b, c: hard_negative_loss(a, b, c, 0.5), (q, p, n))
    assert torch.autograd.gradcheck(lambda a, b: in_batch_loss(a, b, 0.5), (q, p))
    # textbook gradient of InfoNCE: dL/dq_i = (softmax_i @ P - p_i) / (b * tau)
    loss = in_batch_loss(q, p, TAU)
    (grad_q,) = torch.autograd.grad(loss, q)
    with torch.no_grad():
        expected = ((q @ p.T / TAU).softmax(1) @ p - p) / (3 * TAU)
    torch.testing.assert_close(grad_q, expected)


# -- task families ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["classification", "clustering"])
def test_no_in_batch_loss_for_classification_and_clustering(family):
    q, p, n = _unit(4, 8, seed=13), _unit(4, 8, seed=14), _unit(4, 1, 8, seed=15)
    out = f2llm_loss(q, p, n, family)
    assert set(out) == {"loss", "hard"}
    torch.testing.assert_close(out["loss"], hard_negative_loss(q, p, n))


@pytest.mark.parametrize("task", ["retrieval", "sts", "nli"])
def test_retrieval_like_tasks_get_both_losses(task):
    q, p, n = _unit(4, 8, seed=16), _unit(4, 8, seed=17), _unit(4, 7, 8, seed=18)
    out = f2llm_loss(q, p, n, task)
    assert set(out) == {"loss", "hard", "in_batch"}
    torch.testing.assert_close(out["loss"], hard_negative_loss(q, p, n) + in_batch_loss(q, p))


def test_unknown_family_and_gather_mode_are_errors():
    q = _unit(2, 4, seed=19)
    with pytest.raises(ValueError, match="unknown task type"):
        f2llm_loss(q, q, None, "ranking-ish")
    with pytest.raises(ValueError, match="mode must be"):
        gather(q, "sideways")  # type: ignore[arg-type]
    assert gather(q)[0] is q and gather(q)[1] == 0


def test_matryoshka_weights_follow_spec_1b():
    dims = matryoshka_dims(576)
    assert [d for d, _ in dims] == [576, 512, 256, 128, 64, 32, 16, 8]
    for n, (d, w) in enumerate(dims, start=1):
        assert w == pytest.approx(1 / (n * math.sqrt(576 / d)))


# -- two real processes (gloo, CPU) ------------------------------------------------------------

B_LOCAL, WORLD, D_IN, D, N_NEG = 3, 2, 12, 8, 2


def _problem():
    """A shared linear 'model' and a global batch of inputs, identical in every process."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(D_IN, D, generator=g, dtype=torch.float64)
    xq, xp = (torch.randn(WORLD * B_LOCAL, D_IN, generator=g, dtype=torch.float64) for _ in range(2))
    xn = torch.randn(WORLD * B_LOCAL, N_NEG, D_IN, generator=g, dtype=torch.float64)
    return weight, xq, xp, xn


def _step(weight, xq, xp, xn, mode, rank=None):
    """Loss and weight gradient; with ``rank`` the per-rank loss of that slice (others' positives given)."""
    w = weight.clone().requires_grad_()
    emb = lambda x: F.normalize(x @ w, dim=-1)  # noqa: E731
    q, p, n = emb(xq), emb(xp), emb(xn)
    if rank is None:
        out = f2llm_loss(q, p, n, "retrieval", TAU, gather_mode=mode)
    else:  # one process emulating rank `rank`'s view under "no_grad"/"detached"
        s = slice(rank * B_LOCAL, (rank + 1) * B_LOCAL)
        docs = p.detach().clone()
        if mode == "no_grad":
            docs = torch.cat([docs[: s.start], p[s], docs[s.stop :]])
        out = {"hard": hard_negative_loss(q[s], p[s], n[s], TAU), "in_batch": in_batch_loss(q[s], docs, TAU, s.start)}
        out["loss"] = out["hard"] + out["in_batch"]
    out["loss"].backward()
    return out["loss"].detach(), w.grad


def _worker(rank: int, world: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/pg", rank=rank, world_size=world)
    weight, xq, xp, xn = _problem()
    s = slice(rank * B_LOCAL, (rank + 1) * B_LOCAL)
    results = {}
    for mode in ("autograd", "no_grad", "detached"):
        loss, grad = _step(weight, xq[s], xp[s], xn[s], mode)
        dist.all_reduce(grad)
        grad /= world  # what DDP / DeepSpeed do with gradients: average over ranks
        dist.all_reduce(loss)
        results[mode] = (loss / world, grad)
    # uneven batches (drop_last=False): rank 0 holds 2 rows, rank 1 holds 4
    t = torch.full((2 + 2 * rank, 3), float(rank), dtype=torch.float64, requires_grad=True)
    gathered, offset = gather(t, "autograd")
    (gathered.sum(1) * torch.arange(6.0, dtype=torch.float64)).sum().backward()
    results["uneven"] = (gathered.detach(), offset, t.grad)
    torch.save(results, Path(folder) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow  # two gloo processes (~10 s): the default suite stays under 4 minutes
def test_two_processes_match_one_process_of_the_global_batch(tmp_path):
    """Autograd gather: 2 gloo processes of batch 3 == 1 process of batch 6 (loss and averaged gradient)."""
    mp.spawn(_worker, args=(WORLD, str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    weight, xq, xp, xn = _problem()
    loss_1p, grad_1p = _step(weight, xq, xp, xn, "autograd")

    loss_2p, grad_2p = ranks[0]["autograd"]
    torch.testing.assert_close(loss_2p, loss_1p, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_2p, grad_1p, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ranks[1]["autograd"][1], grad_2p)  # ranks agree after the all-reduce

    for mode in ("no_grad", "detached"):
        loss_m, grad_m = ranks[0][mode]
        torch.testing.assert_close(loss_m, loss_1p, rtol=1e-12, atol=1e-12)  # same forward value ...
        assert (grad_m - grad_1p).abs().max() > 1e-3  # ... but other ranks' documents get no gradient
        emulated = [_step(weight, xq, xp, xn, mode, rank=r)[1] for r in range(WORLD)]
        torch.testing.assert_close(grad_m, sum(emulated) / WORLD, rtol=1e-10, atol=1e-12)

    for r, res in enumerate(ranks):
        gathered, offset, grad = res["uneven"]
        torch.testing.assert_close(
            gathered, torch.tensor([0.0] * 2 + [1.0] * 4, dtype=torch.float64)[:, None].expand(6, 3)
        )
        assert offset == [0, 2][r]
        coef = torch.arange(6.0, dtype=torch.float64)[offset : offset + 2 + 2 * r]
        torch.testing.assert_close(grad, (WORLD * coef)[:, None].expand(-1, 3))  # both ranks' losses flow back


def test_no_negatives_given_as_none_or_empty_gives_zero_hard_loss():
    q, p = _unit(3, 8, seed=20), _unit(3, 8, seed=21)
    assert hard_negative_loss(q, p, None).item() == 0.0
    assert hard_negative_loss(q, p, q.new_zeros(3, 0, 8)).item() == 0.0


# -- beyond F2LLM v1 (issue 15): one softmax, Matryoshka, gradient caching --------------------------------------


def test_single_softmax_equals_mnrl_with_hard_negatives_and_batch(mnrl):
    """One softmax over [all positives, all negatives] == sentence-transformers' MNRL on (a, p, n_1..n_k), b > 1."""
    b, k = 6, 3
    q, p, n = _unit(b, 16, seed=30), _unit(b, 16, seed=31), _unit(b, k, 16, seed=32)
    expected = mnrl.compute_loss_from_embeddings([q, p, *n.unbind(1)], None)
    torch.testing.assert_close(single_softmax_loss(q, p, n, TAU), expected, rtol=1e-10, atol=1e-10)
    assert single_softmax_loss(q, p, n, TAU).item() > f2llm_loss(q, p, n, "retrieval", TAU)["hard"].item() + 1e-3
    # without in-batch documents the single softmax is F2LLM's hard loss; without negatives, its in-batch loss
    torch.testing.assert_close(single_softmax_loss(q, p, n, TAU, in_batch=False), hard_negative_loss(q, p, n, TAU))
    torch.testing.assert_close(single_softmax_loss(q, p, None, TAU), in_batch_loss(q, p, TAU))
    # the trainer's dispatcher: in-batch documents for retrieval families only
    torch.testing.assert_close(training_loss(q, p, n, "retrieval", TAU, form="single")["loss"], expected)
    torch.testing.assert_close(
        training_loss(q, p, n, "clustering", TAU, form="single")["loss"], hard_negative_loss(q, p, n, TAU)
    )
    with pytest.raises(ValueError, match="form must be"):
        training_loss(q, p, n, "retrieval", form="joint")  # type: ignore[arg-type]


def test_matryoshka_hand_computed_case():
    """d = 16, dims (16, 8) with weights (1, 1 / (2 sqrt 2)); cosines read off by hand."""
    e = torch.eye(16, dtype=torch.float64)
    q = e[:1]
    p = 0.6 * e[:1] + 0.8 * e[8:9]  # cos 0.6 in 16-d; its first 8 dims are 0.6 e_0, i.e. e_0 after re-normalising
    n = (0.8 * e[0] + 0.6 * e[9]).reshape(1, 1, 16)  # cos 0.8 in 16-d, cos 1 in 8-d
    full = math.log1p(math.exp((0.8 - 0.6) / TAU))  # = log(1 + e^4)
    eight = math.log(2.0)  # positive and negative tie at cos 1
    out = training_loss(q, p, n, "clustering", TAU, mrl_dims=matryoshka_dims(16))
    assert out["hard"].item() == pytest.approx(full + eight / (2 * math.sqrt(2)), rel=1e-12)
    assert out["loss"].item() == pytest.approx(out["hard"].item(), rel=1e-12)


def _released_mrl(q, p, n, retrieval: bool) -> tuple[float, float]:
    """F2LLM-v2 ``utils.py`` ``hard_loss`` / ``inbatch_loss`` with ``use_mrl``, raw vectors, one process."""
    d = q.shape[-1]
    dims = [2**i for i in range(3, 15) if 2**i < d] + [d]
    hard = inbatch = 0.0
    candidates = torch.cat([p.unsqueeze(1), n], 1)
    for i, dim in enumerate(sorted(dims)[::-1], start=1):
        weight = 1 / (i * math.sqrt(d / dim))
        a = F.normalize(q[..., :dim], dim=-1)
        logits = (a.unsqueeze(1) * F.normalize(candidates[..., :dim], dim=-1)).sum(-1) / TAU
        hard += F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long)).item() * weight
        if retrieval:
            logits = a @ F.normalize(p[..., :dim], dim=-1).T / TAU
            inbatch += F.cross_entropy(logits, torch.arange(len(q))).item() * weight
    return hard, inbatch  # summed, NOT divided by the number of dims: the released ``# / n`` is commented out


@pytest.mark.parametrize("family", ["retrieval", "clustering"])
def test_matryoshka_equals_released_weighting(family):
    g = torch.Generator().manual_seed(33)
    q, p, n = (torch.randn(*s, generator=g, dtype=torch.float64) for s in ((5, 64), (5, 64), (5, 3, 64)))
    hard, inbatch = _released_mrl(q, p, n, family == "retrieval")
    out = training_loss(
        F.normalize(q, dim=-1),
        F.normalize(p, dim=-1),
        F.normalize(n, dim=-1),
        family,
        TAU,
        mrl_dims=matryoshka_dims(64),
    )
    assert out["hard"].item() == pytest.approx(hard, rel=1e-10)
    if family == "retrieval":
        assert out["in_batch"].item() == pytest.approx(inbatch, rel=1e-10)
        assert out["loss"].item() == pytest.approx(hard + inbatch, rel=1e-10)
    else:
        assert set(out) == {"hard", "loss", "mrl"}  # "mrl": what the truncated dimensions add, logged apart
    plain = f2llm_loss(F.normalize(q, dim=-1), F.normalize(p, dim=-1), F.normalize(n, dim=-1), family, TAU)
    assert out["hard"].item() > plain["hard"].item()  # seven more terms with positive weights


class _Encoder(torch.nn.Module):
    """A token-bag encoder with dropout: stands in for the backbone (ids, mask) -> L2-normalised (n, d)."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(34)
        self.table = torch.nn.Parameter(torch.randn(50, 16, generator=g, dtype=torch.float64))
        self.proj = torch.nn.Linear(16, 16, dtype=torch.float64)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.tanh(self.proj(self.table[ids])))
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(pooled, dim=-1)


def _texts(rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50, (rows, 7), generator=g)
    lengths = torch.randint(2, 8, (rows,), generator=g)
    return ids, (torch.arange(7)[None] < lengths[:, None]).long()  # right padding, ragged lengths


def _embed_and_backward(
    enc: torch.nn.Module, chunk: int, form: str, mrl: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    b, k = 8, 2
    (qi, qm), (di, dm) = _texts(b, 35), _texts(b * (1 + k), 36)
    enc.zero_grad()
    q, docs = cached_embed(enc, qi, qm, chunk), cached_embed(enc, di, dm, chunk)
    dims = matryoshka_dims(16) if mrl else None
    loss = training_loss(q, docs[:b], docs[b:].reshape(b, k, 16), "retrieval", TAU, form=form, mrl_dims=dims)["loss"]
    loss.backward()
    return loss.detach(), [prm.grad.clone() for prm in enc.parameters()]


@pytest.mark.parametrize("form", ["f2llm", "single"])
@pytest.mark.parametrize("mrl", [False, True])
def test_gradient_cache_gives_the_uncached_loss_and_gradients(form, mrl):
    enc = _Encoder(dropout=0.0)
    loss, grads = _embed_and_backward(enc, 0, form, mrl)
    for chunk in (1, 3, 5):
        loss_c, grads_c = _embed_and_backward(enc, chunk, form, mrl)
        torch.testing.assert_close(loss_c, loss, rtol=1e-5, atol=0)
        for g_c, g in zip(grads_c, grads):
            torch.testing.assert_close(g_c, g, rtol=1e-5, atol=1e-12)


def test_gradient_cache_replays_dropout():
    """With dropout the re-forward must draw the step-1 masks again: equal to chunk-by-chunk embedding with a graph."""
    enc = _Encoder(dropout=0.3)
    ids, mask = _texts(9, 37)
    target = _unit(9, 16, seed=38)

    torch.manual_seed(0)
    ref = torch.cat([enc(ids[i : i + 4], mask[i : i + 4]) for i in range(0, 9, 4)])
    (ref * target).sum().backward()
    expected = [prm.grad.clone() for prm in enc.parameters()]
    enc.zero_grad()
    torch.manual_seed(0)
    cached = cached_embed(enc, ids, mask, 4)
    torch.testing.assert_close(cached, ref.detach())
    (cached * target).sum().backward()
    for got, want in zip((prm.grad for prm in enc.parameters()), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_gradient_cache_holds_one_chunk_of_activations():
    enc = _Encoder(dropout=0.0)
    ids, mask = _texts(64, 39)
    peaks = {}
    for chunk in (0, 8):
        with SavedTensorMeter() as meter:
            cached_embed(enc, ids, mask, chunk).sum().backward()
        peaks[chunk] = meter.peak_bytes
        assert meter.current == 0  # everything saved was released after the backward
    assert peaks[8] * 4 < peaks[0]  # 64 rows at once against 8 (plus the cached (64, 16) output)


# -- false-negative masking (issue 25; Qwen3-Embedding's rule) --


def _vec(*v: float) -> torch.Tensor:
    t = torch.tensor(v, dtype=torch.float64)
    return t / t.norm()


def test_masking_nothing_gives_f2llm_loss_exactly():
    """A margin no negative exceeds, on texts without duplicates, is today's loss bit for bit."""
    from minif2.training.losses import f2llm_loss, single_softmax_loss

    g = torch.Generator().manual_seed(0)
    q, p = (torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1) for _ in range(2))
    n = torch.nn.functional.normalize(torch.randn(4, 3, 8, generator=g), dim=-1)
    plain, masked = f2llm_loss(q, p, n, "retrieval"), f2llm_loss(q, p, n, "retrieval", margin=10.0)
    assert all(torch.equal(plain[k], masked[k]) for k in plain) and masked["masked"].item() == 0
    assert torch.equal(single_softmax_loss(q, p, n), single_softmax_loss(q, p, n, margin=10.0))


def test_a_planted_duplicate_and_a_too_close_negative_leave_the_softmax():
    """By hand: query 0's negatives are [its positive again, a text 0.3 above the positive, an honest one];
    query 1's positive is query 0's positive too. With margin 0.1 the first two negatives and, in the
    in-batch loss, query 0's copy in row 1 drop out; what is left is computed here with logsumexp."""
    from minif2.training.losses import f2llm_loss, hard_negative_loss, in_batch_loss

    tau = 0.05
    q = torch.stack([_vec(1, 0, 0), _vec(0, 1, 0)])
    p0 = _vec(0.6, 0.8, 0)  # s(q0, p0) = 0.6
    close, honest = _vec(0.9, 0.0, 0.43589), _vec(0.2, 0.0, 0.9798)  # s(q0, .) = 0.9 and 0.2
    p = torch.stack([p0, p0])  # a duplicate positive across the batch
    n = torch.stack([torch.stack([p0, close, honest]), torch.stack([honest, honest, honest])])
    counts: dict[str, int] = {}
    hard = hard_negative_loss(q, p, n, tau, margin=0.1, masked=counts)
    s0p, s0n, s1p, s1n = (q[0] @ p0).item(), (q[0] @ honest).item(), (q[1] @ p0).item(), (q[1] @ honest).item()
    expect0 = -s0p / tau + torch.logsumexp(
        torch.tensor([s0p, s0n], dtype=torch.float64) / tau, 0
    )  # only the honest negative stays
    expect1 = -s1p / tau + torch.logsumexp(
        torch.tensor([s1p, s1n, s1n, s1n], dtype=torch.float64) / tau, 0
    )  # nothing masked
    assert hard.item() == pytest.approx(((expect0 + expect1) / 2).item(), rel=1e-9) and counts == {"hard": 2}
    inb = in_batch_loss(q, p, tau, margin=0.1, masked=counts)
    # each query's other column is the same text as its positive: masked, so each row's loss is exactly 0
    assert inb.item() == pytest.approx(0.0, abs=1e-12) and counts == {"hard": 2, "in_batch": 2}
    parts = f2llm_loss(q, p, n, "retrieval", tau, margin=0.1)
    assert parts["masked"].item() == 4 and parts["loss"].item() == pytest.approx(hard.item() + inb.item())


def test_layer_matryoshka_is_the_mean_over_exits_as_ml_embed() -> None:
    """ML-Embed's loop divides (in-batch + hard + kd) summed over exits by the number of exits: equal weights."""
    from minif2.training.losses import F2LLMLoss, LayerMatryoshka, mll_exit_layers

    torch.manual_seed(0)
    q, p, n = (F.normalize(torch.randn(*shape), dim=-1) for shape in [(4, 3, 8), (4, 3, 8), (4, 2, 3, 8)])
    parts = LayerMatryoshka(F2LLMLoss())(q, p, n, "retrieval")
    per_exit = [f2llm_loss(q[:, e], p[:, e], n[:, :, e], "retrieval") for e in range(3)]
    for name in ("hard", "in_batch", "loss"):
        by_hand = (per_exit[0][name] + per_exit[1][name] + per_exit[2][name]) / 3
        assert float(parts[name]) == pytest.approx(float(by_hand), rel=1e-6), name
    assert mll_exit_layers(28) == [28, 24, 16, 8, 4, 2, 1] and mll_exit_layers(48)[:2] == [48, 40]
