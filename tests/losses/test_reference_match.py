"""hscl against the naive float64 reference of docs/math.md, value and gradient, over every option combination."""

import itertools
import math

import pytest
import torch

import hscl
import reference as R
from hscl import _engine
from hscl.functional import contrastive_loss, supcon_loss
from reference import reference_loss, reference_supcon
from tests.conftest import HARDENINGS, TOL, make_batch

pytestmark = pytest.mark.usefixtures("backend")  # every test on the dense and the tiled path


def _compare(z, labels, ours_kw, ref_kw, seed=0):
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    ours = contrastive_loss(z1, labels, **ours_kw)
    ref, _, _ = reference_loss(z2, labels, **ref_kw)
    torch.testing.assert_close(ours, ref, **TOL)
    weights = torch.randn(ours.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    (g1,) = torch.autograd.grad((ours * weights).sum(), z1, allow_unused=True)
    (g2,) = torch.autograd.grad((ref * weights).sum(), z2, allow_unused=True)
    g1 = torch.zeros_like(z) if g1 is None else g1
    g2 = torch.zeros_like(z) if g2 is None else g2
    torch.testing.assert_close(g1, g2, **TOL)
    return ours


COMBOS = list(
    itertools.product(
        ["all", "other_class"],
        range(len(HARDENINGS)),
        ["views", "labels"],
        ["mean", "pairs", "none"],
        [False, True],
        [2, 3],
    )
)


@pytest.fixture(params=["blocks", "generic"])
def layout(request, monkeypatch):
    """Run through both ways of finding instances: the block layout and the instance-id comparison."""
    monkeypatch.setattr(_engine, "_GENERIC_LAYOUT", request.param == "generic")
    return request.param


@pytest.mark.parametrize("negatives,h,positives,reduction,detach,views", COMBOS)
def test_matches_reference(negatives, h, positives, reduction, detach, views, layout):
    _, ours_h, ref_h = HARDENINGS[h]
    z, labels = make_batch(b=6, v=views, seed=h + views)
    kw = dict(negatives=negatives, positives=positives, reduction=reduction, detach_weights=detach, temperature=0.5)
    _compare(z, labels, dict(kw, hardening=ours_h), dict(kw, hardening=ref_h))


@pytest.mark.parametrize("debias", [0.05, 0.3, 0.9])
@pytest.mark.parametrize("h", [0, 1, 3])
def test_debias_matches_reference(debias, h, layout):
    _, ours_h, ref_h = HARDENINGS[h]
    z, labels = make_batch(b=7, v=2, seed=3)
    kw = dict(negatives="all", debias=debias, temperature=0.5, reduction="none")
    _compare(z, labels, dict(kw, hardening=ours_h), dict(kw, hardening=ref_h))


def test_debias_clamp_is_reached():
    """A large class prior drives (K E - tau_plus K e^{s_p}) below the floor K e^{-1/t} for some pairs."""
    z, labels = make_batch(b=5, v=2, seed=1)
    z[:, 1] = z[:, 0] + 0.01 * z[:, 1]  # views nearly identical: e^{s_p} is large
    _compare(z, labels, dict(debias=0.9, reduction="none"), dict(debias=0.9, reduction="none"))


@pytest.mark.parametrize("k", [1, 3.5, 1000])
@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_num_negatives_and_temperature(k, temperature):
    z, labels = make_batch(b=5, v=2, seed=2)
    kw = dict(negatives="other_class", num_negatives=k, temperature=temperature)
    _compare(z, labels, dict(kw, hardening=hscl.ExponentialTilt(1.5)), dict(kw, hardening=lambda s: 1.5 * s))


def test_without_normalisation():
    z, labels = make_batch(b=5, v=2, seed=4)
    z = 0.3 * z
    kw = dict(normalize=False, negatives="other_class", temperature=0.5)
    _compare(z, labels, kw, kw)


def test_unlabelled_ucl():
    z, _ = make_batch(b=6, v=3, seed=5)
    _compare(z, None, dict(hardening=hscl.ExponentialTilt(1.0)), dict(hardening=lambda s: s))


@pytest.mark.parametrize("views", [1, 2, 3])
def test_supcon_matches_reference(views):
    z, labels = make_batch(b=7, v=views, seed=6)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    ours = supcon_loss(z1, labels, temperature=0.1)
    ref = reference_supcon(z2, labels, temperature=0.1)
    torch.testing.assert_close(ours, ref, **TOL)
    torch.testing.assert_close(torch.autograd.grad(ours, z1)[0], torch.autograd.grad(ref, z2)[0], **TOL)


def test_invalid_anchors_are_left_out_and_counted():
    z, labels = make_batch(b=6, v=2, seed=0)
    loss, stats = contrastive_loss(
        z, labels, negatives="other_class", hardening=hscl.Threshold(math.exp(0.9)), return_stats=True
    )
    ref, _, valid = reference_loss(z, labels, negatives="other_class", hardening=R.threshold(math.exp(0.9)))
    assert 0 < sum(valid) < len(valid), "the fixture must leave some anchors out"
    assert int(stats.num_valid) == sum(valid)
    assert int(stats.num_anchors) == 12
    torch.testing.assert_close(loss, ref, **TOL)


@pytest.mark.parametrize("h", range(len(HARDENINGS)))
def test_repeated_instance_ids_in_a_batch(h):
    """A sampler with replacement puts one sample twice in a batch: the module then compares instance ids."""
    _, ours_h, ref_h = HARDENINGS[h]
    z, labels = make_batch(b=6, v=2, seed=8)
    ids = torch.tensor([0, 1, 2, 1, 3, 0])
    labels = labels[torch.tensor([0, 1, 2, 1, 4, 0])]  # the same sample keeps its label
    z1 = z.clone().requires_grad_(True)
    ours = hscl.ContrastiveLoss(hardening=ours_h)(z1, labels, instance_ids=ids)
    z2 = z.clone().requires_grad_(True)
    ref, _, _ = reference_loss(z2, labels, hardening=ref_h, ids=ids)
    torch.testing.assert_close(ours, ref, **TOL)
    torch.testing.assert_close(torch.autograd.grad(ours, z1)[0], torch.autograd.grad(ref, z2)[0], **TOL)
