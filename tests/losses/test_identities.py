"""The identities of docs/math.md section 2, to float64 precision."""

import math

import pytest
import torch

import hscl
from hscl.functional import contrastive_loss
from tests.conftest import TOL, make_batch

pytestmark = pytest.mark.usefixtures("backend")  # every test on the dense and the tiled path


@pytest.mark.parametrize("negatives", ["all", "other_class"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_beta_zero_is_unhardened(negatives, reduction):
    z, y = make_batch(b=8, v=2, seed=1)
    plain = contrastive_loss(z, y, negatives=negatives, reduction=reduction)
    tilted = contrastive_loss(z, y, negatives=negatives, reduction=reduction, hardening=hscl.ExponentialTilt(0.0))
    torch.testing.assert_close(tilted, plain, **TOL)


@pytest.mark.parametrize("negatives", ["all", "other_class"])
def test_threshold_below_every_score_is_unhardened(negatives):
    z, y = make_batch(b=8, v=2, seed=2)
    t = 0.5
    # s >= -1/t for unit vectors: log tau below -1/t lets every negative through
    loose = hscl.Threshold(math.exp(-1.0 / t - 1.0))
    torch.testing.assert_close(
        contrastive_loss(z, y, negatives=negatives, hardening=loose, temperature=t),
        contrastive_loss(z, y, negatives=negatives, temperature=t),
        **TOL,
    )


@pytest.mark.parametrize("hardening", [None, hscl.ExponentialTilt(2.0), hscl.Threshold(math.exp(-0.5))])
@pytest.mark.parametrize("views", [2, 3])
def test_distinct_labels_make_scl_equal_ucl(hardening, views):
    z, _ = make_batch(b=9, v=views, seed=3)
    y = torch.randperm(9)
    for reduction in ("mean", "none", "pairs"):
        torch.testing.assert_close(
            contrastive_loss(z, y, negatives="other_class", hardening=hardening, reduction=reduction),
            contrastive_loss(z, y, negatives="all", hardening=hardening, reduction=reduction),
            **TOL,
        )


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_ucl_two_views_is_nt_xent(temperature):
    """SimCLR's NT-Xent written the textbook way: cross-entropy over the 2B-1 others, positive as target."""
    b = 10
    z, _ = make_batch(b=b, v=2, d=8, seed=4)
    x = torch.nn.functional.normalize(z.transpose(0, 1).reshape(2 * b, -1), dim=1)  # [view0 batch; view1 batch]
    logits = x @ x.T / temperature
    logits.fill_diagonal_(-math.inf)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    nt_xent = torch.nn.functional.cross_entropy(logits, target)
    torch.testing.assert_close(contrastive_loss(z, temperature=temperature), nt_xent, **TOL)


def test_large_beta_tends_to_hardest_negative():
    """As beta grows, log E_i tends to max_{j in N(i)} s_ij: the loss tends to -s_ip + logaddexp(s_ip, log K + max)."""
    z, y = make_batch(b=6, v=2, seed=5)
    t = 0.5
    x = torch.nn.functional.normalize(z.reshape(12, -1), dim=1)
    s = x @ x.T / t
    yy = y.repeat_interleave(2)
    idx = torch.arange(12)
    partner = idx ^ 1  # the other view
    other = yy[:, None] != yy[None, :]
    hardest = s.masked_fill(~other, -math.inf).amax(1)
    k = 12 - 2
    limit = (-s[idx, partner] + torch.logaddexp(s[idx, partner], math.log(k) + hardest)).mean()
    gaps = []
    for beta in (1.0, 3.0, 10.0, 1000.0):
        val = contrastive_loss(z, y, negatives="other_class", hardening=hscl.ExponentialTilt(beta), temperature=t)
        gaps.append(abs(float(val - limit)))
    assert gaps[0] > gaps[1] > gaps[2] > 0.0
    assert gaps[-1] < 1e-9


def test_detach_weights_changes_gradient_not_value():
    z, y = make_batch(b=6, v=2, seed=6)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    h = hscl.ExponentialTilt(1.0)
    a = contrastive_loss(z1, y, negatives="other_class", hardening=h)
    b = contrastive_loss(z2, y, negatives="other_class", hardening=h, detach_weights=True)
    torch.testing.assert_close(a, b, **TOL)
    ga, gb = torch.autograd.grad(a, z1)[0], torch.autograd.grad(b, z2)[0]
    assert (ga - gb).abs().max() > 1e-6


def test_hscl_preset_equals_functional():
    z, y = make_batch(b=6, v=2, seed=7)
    h = hscl.ExponentialTilt(1.0)
    torch.testing.assert_close(
        hscl.losses.HSCL(beta=1.0)(z, y), contrastive_loss(z, y, negatives="other_class", hardening=h), **TOL
    )
    torch.testing.assert_close(hscl.losses.UCL()(z), contrastive_loss(z), **TOL)
    torch.testing.assert_close(hscl.losses.SCL()(z, y), contrastive_loss(z, y, negatives="other_class"), **TOL)
    tau = hscl.Threshold(math.exp(-0.1))
    torch.testing.assert_close(hscl.losses.HUCL(tau=math.exp(-0.1))(z, y), contrastive_loss(z, y, hardening=tau), **TOL)
    torch.testing.assert_close(hscl.SupConLoss(0.2)(z, y), hscl.functional.supcon_loss(z, y, temperature=0.2), **TOL)
