"""The functional loss (:mod:`hscl.functional`) beyond the reference match: the chunked computation equals the
dense one (values, gradients and statistics, the module's too), and the statistics' known answers."""

import math

import pytest
import torch

import hscl
from hscl.functional import contrastive_loss
from tests.conftest import TOL, make_batch


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
