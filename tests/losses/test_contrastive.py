"""ContrastiveLoss as a module (:mod:`hscl.losses.contrastive`): the memory queue's embeddings join the
negatives as the reference computes them, its state round-trips and eval mode pushes nothing, the default K counts
it; statistics and repr; a training loop that lowers the loss."""

import math

import pytest
import torch

import hscl
import reference as R
from reference import reference_loss
from tests.conftest import TOL, make_batch


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
