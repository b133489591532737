"""ContrastiveLoss as a module: chunked computation, the memory queue, statistics, state."""

import math

import pytest
import torch

import hscl
import reference as R
from conftest import make_batch
from hscl.functional import contrastive_loss
from reference import reference_loss

TOL = dict(rtol=1e-9, atol=1e-9)


def _value_and_grad(fn, z):
    z = z.clone().requires_grad_(True)
    out = fn(z)
    w = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    (g,) = torch.autograd.grad((out * w).sum(), z)
    return out.detach(), g


@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0)),
        dict(negatives="other_class", hardening=hscl.Threshold(math.exp(0.5)), reduction="pairs"),
        dict(positives="labels", hardening=lambda s: torch.nn.functional.logsigmoid(s), reduction="none"),
        dict(debias=0.2, detach_weights=True),
    ],
)
def test_chunked_equals_dense(chunk, kw):
    z, y = make_batch(b=9, v=2, seed=chunk)
    dense = _value_and_grad(lambda t: contrastive_loss(t, y, **kw), z)
    chunked = _value_and_grad(lambda t: contrastive_loss(t, y, chunk_size=chunk, **kw), z)
    torch.testing.assert_close(chunked, dense, **TOL)
    module = _value_and_grad(lambda t: hscl.ContrastiveLoss(chunk_size=chunk, **kw)(t, y), z)
    torch.testing.assert_close(module, dense, **TOL)


def test_chunked_stats_equal_dense():
    z, y = make_batch(b=9, v=3, seed=1)
    kw = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0), return_stats=True)
    _, a = contrastive_loss(z, y, **kw)
    _, b = contrastive_loss(z, y, chunk_size=4, **kw)
    for key, val in a.as_dict().items():
        assert val == pytest.approx(b.as_dict()[key], rel=1e-9, abs=1e-12), key


def test_stats_values():
    """Known answers: without hardening the effective number of negatives is |N(i)|; collision share by count."""
    b, v = 6, 2
    z, _ = make_batch(b=b, v=v, seed=2)
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    _, st = contrastive_loss(z, y, return_stats=True)
    assert st.effective_negatives.item() == pytest.approx(b * v - v)
    # per sample, same-class other samples: class 0 -> 2, class 1 -> 1, class 2 -> 0; times v*v view pairs
    collisions = v * v * (3 * 2 + 2 * 1)
    assert st.collision_share.item() == pytest.approx(collisions / (b * v * (b * v - v)))
    _, st_scl = contrastive_loss(z, y, negatives="other_class", return_stats=True)
    # anchors of class 0 have 6 other-class candidates, class 1: 8, class 2: 10
    assert st_scl.effective_negatives.item() == pytest.approx((6 * 6 + 4 * 8 + 2 * 10) / 12)
    x = torch.nn.functional.normalize(z.reshape(12, -1), dim=1)
    s = x @ x.T / 0.5
    assert st.mean_positive_score.item() == pytest.approx(s[torch.arange(12), torch.arange(12) ^ 1].mean().item())
    _, st_tilt = contrastive_loss(z, y, hardening=hscl.ExponentialTilt(5.0), return_stats=True)
    assert 1.0 <= st_tilt.effective_negatives.item() < b * v - v
    _, st_none = contrastive_loss(z, return_stats=True)
    assert st_none.collision_share is None and "collision_share" not in st_none.as_dict()


def _queue_ref(kw, ref_kw, batches, queue_positives=False, with_ids=False, size=100):
    """Value of the last call of a module fed ``batches``, and the reference with the previous ones queued."""
    loss = hscl.ContrastiveLoss(queue_size=size, queue_positives=queue_positives, **kw)
    for z, y, ids in batches:
        out = loss(z, y, instance_ids=ids if with_ids else None)
    prev = batches[:-1]
    qz = torch.cat([torch.nn.functional.normalize(z.reshape(-1, z.shape[-1]), dim=1) for z, _, _ in prev])[-size:]
    qy = torch.cat([y.repeat_interleave(z.shape[1]) for z, y, _ in prev])[-size:]
    if with_ids:
        qu = torch.cat([ids.repeat_interleave(z.shape[1]) for z, _, ids in prev])[-size:]
        cur_ids = batches[-1][2]
    else:
        qu = torch.arange(qz.shape[0]) + 10_000  # never equal to the current batch's ids
        cur_ids = None
    z, y, _ = batches[-1]
    ref, _, _ = reference_loss(z, y, queue=(qz, qy, qu, queue_positives), ids=cur_ids, **ref_kw)
    return out, ref


QUEUE_CASES = [
    (dict(), dict()),
    (
        dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0)),
        dict(negatives="other_class", hardening=R.tilt(1.0)),
    ),
    (dict(negatives="other_class", positives="labels"), dict(negatives="other_class", positives="labels")),
]


@pytest.mark.parametrize("kw,ref_kw", QUEUE_CASES)
@pytest.mark.parametrize("queue_positives", [False, True])
@pytest.mark.parametrize("size", [3, 100])
def test_queue_joins_negatives(kw, ref_kw, queue_positives, size):
    batches = [(*make_batch(b=5, v=2, seed=s), None) for s in range(3)]
    out, ref = _queue_ref(kw, ref_kw, batches, queue_positives, size=size)
    torch.testing.assert_close(out, ref, **TOL)


def test_queue_with_instance_ids_excludes_own_past_views():
    g = torch.Generator().manual_seed(0)
    ids1, ids2 = torch.tensor([0, 1, 2, 3]), torch.tensor([2, 3, 4, 5])  # samples 2 and 3 seen before
    batches = [
        (torch.randn(4, 2, 5, generator=g, dtype=torch.float64), torch.tensor([0, 1, 0, 1]), i) for i in (ids1, ids2)
    ]
    for qp in (False, True):
        out, ref = _queue_ref({}, {}, batches, queue_positives=qp, with_ids=True)
        torch.testing.assert_close(out, ref, **TOL)


def test_queue_is_fifo_and_wraps():
    q = hscl.EmbeddingQueue(5)
    for step in range(4):  # 3 embeddings per push
        q.push(torch.full((3, 2), float(step)), torch.tensor([step] * 3), torch.arange(3) + 10 * step)
    emb, labels, ids = q.entries()
    assert len(q) == 5
    assert emb[:, 0].tolist() == [2.0, 2.0, 3.0, 3.0, 3.0]  # oldest first
    assert ids.tolist() == [21, 22, 30, 31, 32]
    assert labels.tolist() == [2, 2, 3, 3, 3]
    big = hscl.EmbeddingQueue(4)
    big.push(torch.arange(7.0)[:, None], None, torch.arange(7))
    assert big.entries()[0][:, 0].tolist() == [3.0, 4.0, 5.0, 6.0]
    assert big.entries()[1] is None


def test_queue_state_dict_round_trip_and_eval_mode():
    z, y = make_batch(b=4, v=2, seed=9)
    a = hscl.losses.HSCL(beta=1.0, queue_size=6)
    a(z, y)
    b = hscl.losses.HSCL(beta=1.0, queue_size=6)
    b.load_state_dict(a.state_dict())
    z2, y2 = make_batch(b=4, v=2, seed=10)
    b.eval()
    before = len(b.queue)
    torch.testing.assert_close(b(z2, y2), a(z2, y2))
    assert len(b.queue) == before, "eval mode must not push"
    c = hscl.losses.HSCL(beta=1.0, queue_size=7)
    with pytest.raises(ValueError, match="queue_size=7"):
        c.load_state_dict(a.state_dict())


def test_default_k_counts_queue():
    z, _ = make_batch(b=4, v=2, seed=3)
    loss = hscl.losses.UCL(queue_size=3)
    loss(z)
    z2, _ = make_batch(b=4, v=2, seed=4)
    k = 8 - 2 + 3
    with_queue = loss(z2)  # the queue holds the last 3 embeddings of z
    ref, _, _ = reference_loss(
        z2,
        None,
        queue=(torch.nn.functional.normalize(z.reshape(8, -1), dim=1)[-3:], None, torch.arange(3) + 99, False),
        num_negatives=k,
    )
    torch.testing.assert_close(with_queue, ref, **TOL)


def test_module_stats_and_repr():
    z, y = make_batch(b=4, v=2, seed=5)
    loss, st = hscl.losses.HSCL(tau=math.exp(-0.5))(z, y, return_stats=True)
    torch.testing.assert_close(loss, hscl.losses.HSCL(tau=math.exp(-0.5))(z, y))
    assert isinstance(st, hscl.LossStats)
    assert int(st.num_anchors) == 8
    assert "other_class" in repr(hscl.losses.HSCL(tau=0.5)) and "Threshold" in repr(hscl.losses.HSCL(tau=0.5))


def test_training_loop_decreases_loss():
    """A tiny model trained with H-SCL separates two classes: the loss goes down."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=g)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    loss_fn = hscl.losses.HSCL(beta=1.0, temperature=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        views = x[:, None, :] + 0.1 * torch.randn(64, 2, 10, generator=g)
        loss = loss_fn(model(views), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3


def test_method_registry():
    from hscl.losses.registry import METHODS, make_loss

    assert isinstance(make_loss("hscl-tau", 0.5).hardening, hscl.Threshold)
    assert make_loss("hscl", 0.5, beta=2.0).hardening.beta == 2.0
    assert isinstance(make_loss("supcon", 0.1), hscl.SupConLoss)
    assert all(METHODS[m].supervised == (m not in ("ucl", "hucl")) for m in METHODS)
    with pytest.raises(ValueError, match="has no hardening"):
        make_loss("scl", 0.5, beta=1.0)
    with pytest.raises(ValueError, match="unknown method 'simclr'"):
        make_loss("simclr", 0.5)


def test_registry_configurations_match_the_functional_loss():
    """The theory's configuration (view positives, mean) and the paper's accuracy configuration (label
    positives, pairs) are exactly the functional loss with those options."""
    from hscl.losses.registry import METHODS, TABLE_METHODS, make_loss

    g = torch.Generator().manual_seed(3)
    z, y = torch.randn(12, 2, 8, generator=g, dtype=torch.float64), torch.arange(12) % 3
    for name in ("scl", "hscl-beta", "hscl-tau", "scl-labels", "hscl-beta-labels", "hscl-tau-labels"):
        method, loss = METHODS[name], make_loss(name, 0.5)
        assert (loss.positives, loss.reduction) == (method.positives, method.reduction)
        assert method.configuration == ("labels" if name.endswith("-labels") else "views")
        expected = hscl.functional.contrastive_loss(
            z,
            y,
            negatives="other_class",
            hardening=loss.hardening,
            temperature=0.5,
            positives=method.positives,
            reduction=method.reduction,
        )
        torch.testing.assert_close(loss(z, y), expected)
    assert make_loss("scl-labels", 0.5)(z, y) != make_loss("scl", 0.5)(z, y)
    assert "hscl" not in TABLE_METHODS and len(set(METHODS[m].label for m in TABLE_METHODS)) == len(TABLE_METHODS)


# Issue 12, item 7: a queue state is checked on load, with an error naming the key, and a bad one loads nothing.


def _filled_queue_state(size=6, pushes=1):
    loss = hscl.losses.HSCL(beta=1.0, queue_size=size)
    for seed in range(pushes):
        loss(make_batch(b=2, v=2, seed=seed)[0], torch.tensor([0, 1]))  # 4 embeddings per call
    return {k: v.clone() for k, v in loss.state_dict().items()}


def _nan_row(state):
    state["queue.embeddings"][1, 0] = math.nan


BAD_QUEUE_STATES = [
    ("count beyond capacity", lambda s: s["queue.count"].fill_(10), r"queue\.count must be in \[0, 6\].*got 10"),
    ("count negative", lambda s: s["queue.count"].fill_(-1), r"queue\.count must be in \[0, 6\]"),
    ("count float", lambda s: s.update({"queue.count": torch.tensor(4.0)}), r"queue\.count must be a 0-d integer"),
    ("count 1-d", lambda s: s.update({"queue.count": torch.tensor([4])}), r"queue\.count must be a 0-d integer"),
    ("head beyond capacity", lambda s: s["queue.head"].fill_(6), r"queue\.head must be in \[0, 5\]"),
    ("head != count", lambda s: s["queue.head"].fill_(1), r"queue\.head must equal count \(4\)"),
    ("NaN row", _nan_row, r"queue\.embeddings contains NaN or inf"),
    ("inf row", lambda s: s["queue.embeddings"][0].fill_(math.inf), r"queue\.embeddings contains NaN or inf"),
    ("embeddings 1-d", lambda s: s.update({"queue.embeddings": torch.zeros(6)}), r"queue\.embeddings must be a float"),
    ("embeddings int", lambda s: s.update({"queue.embeddings": torch.zeros(6, 5, dtype=torch.long)}), r"floating"),
    ("embeddings [0, 5]", lambda s: s.update({"queue.embeddings": torch.zeros(0, 5)}), r"must have shape \[0, 0\]"),
    ("labels float", lambda s: s.update({"queue.labels": s["queue.labels"].double()}), r"labels must have an int"),
    ("ids short", lambda s: s.update({"queue.ids": s["queue.ids"][:3]}), r"queue\.ids must have shape \[6\]"),
    ("has_labels int", lambda s: s.update({"queue.has_labels": torch.tensor(1)}), r"has_labels must be a 0-d"),
    ("not a tensor", lambda s: s.update({"queue.count": 4}), r"queue\.count must be a tensor, got int"),
    ("next_auto_id < 0", lambda s: s["next_auto_id"].fill_(-5), r"next_auto_id must be a 0-d integer >= 0"),
]


@pytest.mark.parametrize("name,corrupt,match", BAD_QUEUE_STATES, ids=[c[0] for c in BAD_QUEUE_STATES])
def test_queue_state_is_checked_on_load(name, corrupt, match):
    """count beyond the capacity used to inflate K silently and a NaN row to make every anchor invalid."""
    state = _filled_queue_state()
    corrupt(state)
    target = hscl.losses.HSCL(beta=1.0, queue_size=6)
    target(make_batch(b=2, v=2, seed=5)[0], torch.tensor([1, 0]))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state)
    after = target.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), "nothing loads"


def test_queue_state_check_accepts_every_state_a_queue_writes():
    for pushes in (0, 1, 2, 3):  # empty, partly filled, full and wrapped around
        state = _filled_queue_state(pushes=pushes)
        target = hscl.losses.HSCL(beta=1.0, queue_size=6)
        target.load_state_dict(state)
        assert len(target.queue) == min(4 * pushes, 6)
    q = hscl.EmbeddingQueue(3)
    q.push(torch.randn(5, 2), None, torch.arange(5))
    q.reset()
    fresh = hscl.EmbeddingQueue(3)
    fresh.load_state_dict(q.state_dict())
    assert len(fresh) == 0
    standalone = hscl.EmbeddingQueue(3)
    state = q.state_dict()
    state["count"] = torch.tensor(7)
    with pytest.raises(ValueError, match=r"invalid queue state in the checkpoint: count must be in \[0, 3\]"):
        standalone.load_state_dict(state)


def test_stats_on_the_generic_layout():
    """Stats with a repeated instance id (the generic layout, not the block one) are returned, and asking for them
    does not change the loss (it raised UnboundLocalError before)."""
    from hscl.losses import HSCL

    torch.manual_seed(0)
    z = torch.randn(6, 2, 8)
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    ids = torch.tensor([0, 1, 2, 0, 3, 4])  # instance 0 twice: its four views are one another's positives
    value, stats = HSCL(queue_size=16)(z, y, instance_ids=ids, return_stats=True)
    assert torch.isfinite(value) and stats.num_valid > 0 and torch.isfinite(stats.effective_negatives)
    assert torch.equal(value, HSCL(queue_size=16)(z, y, instance_ids=ids))
