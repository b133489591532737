"""Finite values and gradients over the stability grid of SPEC.md and the issue: temperature, beta, dtype,
degenerate batches."""

import itertools
import math
import warnings

import pytest
import torch

import hscl
from hscl.functional import contrastive_loss, supcon_loss

DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]


def _finite_loss_and_grad(z, y, **kw):
    z = z.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loss = contrastive_loss(z, y, **kw)
    loss.sum().backward()
    assert torch.isfinite(loss).all(), f"loss not finite for {kw}"
    assert torch.isfinite(z.grad).all(), f"gradient not finite for {kw}"
    assert loss.dtype == torch.promote_types(z.dtype, torch.float32)
    return loss


GRID = list(itertools.product([0.01, 0.1, 1.0], [0.0, 1.0, 10.0, 100.0], DTYPES, ["all", "other_class"]))


@pytest.mark.parametrize("temperature,beta,dtype,negatives", GRID)
def test_grid_is_finite(temperature, beta, dtype, negatives):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 2, 32, generator=g).to(dtype)
    y = torch.randint(4, (16,), generator=g)
    loss = _finite_loss_and_grad(
        z, y, negatives=negatives, hardening=hscl.ExponentialTilt(beta), temperature=temperature
    )
    if dtype != torch.float64:  # the half-precision input is computed in float32 inside: close to float64
        ref = contrastive_loss(
            z.double(), y, negatives=negatives, hardening=hscl.ExponentialTilt(beta), temperature=temperature
        )
        assert abs(loss.item() - ref.item()) <= 1e-3 * max(1.0, abs(ref.item()))


@pytest.mark.parametrize("temperature", [0.01, 1.0])
@pytest.mark.parametrize("tau", [math.exp(-0.5), math.exp(-0.1), math.exp(50.0)])
def test_threshold_is_finite(temperature, tau):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(16, 2, 8, generator=g)
    y = torch.randint(4, (16,), generator=g)
    _finite_loss_and_grad(z, y, negatives="other_class", hardening=hscl.Threshold(tau), temperature=temperature)


def _degenerate_batches():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(8, 2, 6, generator=g)
    yield "one class", z, torch.zeros(8, dtype=torch.long)
    yield "all distinct", z, torch.arange(8)
    yield "identical embeddings", torch.ones(8, 2, 6), torch.randint(3, (8,), generator=g)
    yield "one sample", z[:1], torch.zeros(1, dtype=torch.long)
    yield "two samples, same class", z[:2], torch.zeros(2, dtype=torch.long)


@pytest.mark.parametrize("name,z,y", list(_degenerate_batches()), ids=[b[0] for b in _degenerate_batches()])
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(negatives="other_class"),
        dict(negatives="other_class", hardening=hscl.ExponentialTilt(100.0), temperature=0.01),
        dict(negatives="other_class", hardening=hscl.Threshold(math.exp(-0.5))),
        dict(hardening=hscl.ExponentialTilt(1.0), debias=0.5),
        dict(negatives="other_class", positives="labels", reduction="pairs"),
        dict(reduction="none"),
    ],
)
def test_degenerate_batches_never_nan(name, z, y, kw):
    _finite_loss_and_grad(z, y, **kw)


def test_no_valid_anchor_gives_zero_that_backpropagates_and_warns():
    z = torch.randn(4, 2, 3, requires_grad=True)
    y = torch.zeros(4, dtype=torch.long)
    with pytest.warns(RuntimeWarning, match="no valid anchor"):
        loss, stats = contrastive_loss(z, y, negatives="other_class", return_stats=True)
    assert float(loss) == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    assert int(stats.num_valid) == 0


def test_one_class_ucl_still_learns():
    """UCL does not need labels: a single class changes nothing for it."""
    z = torch.randn(6, 2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(contrastive_loss(z, torch.zeros(6, dtype=torch.long)), contrastive_loss(z))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_under_autocast(dtype):
    """Under CPU autocast the loss is still computed in float32 and matches the float32 value."""
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(10, 2, 8)
    y = torch.randint(3, (10,))
    kw = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0), temperature=0.1)
    with torch.autocast("cpu", dtype=dtype):
        z = lin(x)
        loss = contrastive_loss(z, y, **kw)
    assert loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in lin.parameters())
    assert abs(float(loss) - float(contrastive_loss(z.float(), y, **kw))) < 1e-5


def test_supcon_degenerate():
    z = torch.randn(5, 2, 4, requires_grad=True)
    loss = supcon_loss(z, torch.arange(5), temperature=0.01)  # views are the only positives
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    with pytest.warns(RuntimeWarning):
        assert float(supcon_loss(torch.randn(3, 1, 4), torch.arange(3))) == 0.0
