"""torch.autograd.gradcheck on the smooth configurations (finite differences against autograd)."""

import math

import pytest
import torch

import hscl
from hscl.functional import contrastive_loss, supcon_loss
from tests.conftest import make_batch

pytestmark = pytest.mark.usefixtures("backend")  # every test on the dense and the tiled path

CASES = [
    dict(),
    dict(hardening=hscl.ExponentialTilt(1.0)),
    dict(negatives="other_class", hardening=hscl.ExponentialTilt(2.0)),
    dict(negatives="other_class", hardening=hscl.Threshold(math.exp(-0.5))),
    dict(negatives="other_class", positives="labels", reduction="pairs"),
    dict(negatives="all", debias=0.1, reduction="none"),
    dict(
        negatives="other_class", hardening=hscl.ExponentialTilt(1.0), chunk_size=3
    ),  # detach_weights is no true gradient
]


@pytest.mark.parametrize("kw", CASES, ids=[str(i) for i in range(len(CASES))])
def test_gradcheck(kw):
    z, y = make_batch(b=5, v=2, d=4, seed=11)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: contrastive_loss(t, y, **kw), (z,), eps=1e-6, atol=1e-6)


def test_gradcheck_supcon():
    z, y = make_batch(b=5, v=2, d=4, seed=12)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: supcon_loss(t, y), (z,), eps=1e-6, atol=1e-6)


def test_second_order_through_a_user_hardening():
    """User hardening functions go through plain autograd on the dense path: second derivatives work (gradient
    penalties). The tiled path is first-order only and says so (tests/test_tiled.py)."""
    z, y = make_batch(b=4, v=2, d=3, seed=13)
    z.requires_grad_(True)
    assert torch.autograd.gradgradcheck(
        lambda t: contrastive_loss(t, y, hardening=lambda s: 1.0 * s, backend="dense"), (z,)
    )


def test_second_order_through_builtin_hardening_says_so():
    """The built-in hardenings use a fused first-order kernel: double backward raises instead of being wrong."""
    z, y = make_batch(b=4, v=2, d=3, seed=13)
    z.requires_grad_(True)
    (g,) = torch.autograd.grad(contrastive_loss(z, y, hardening=hscl.ExponentialTilt(1.0)), z, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()
