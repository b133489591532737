"""Finite values and gradients over the stability grid of docs/math.md and the issue: temperature, beta, dtype,
degenerate batches."""

import itertools
import math
import warnings

import pytest
import torch

import hscl
from hscl.diagnostics import asymptotic_losses
from hscl.functional import contrastive_loss, supcon_loss

pytestmark = pytest.mark.usefixtures("backend")  # every test on the dense and the tiled path

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


# Issue 12, item 5: the L2 normalisation is scale-safe, so the loss does not depend on the scale of z.


def _scale_cases():
    yield "ucl", lambda z, y: contrastive_loss(z)
    yield "hscl-beta", lambda z, y: contrastive_loss(z, y, negatives="other_class", hardening=hscl.ExponentialTilt(2.0))
    yield "hucl-tau", lambda z, y: contrastive_loss(z, y, hardening=hscl.Threshold(math.exp(-0.5)), return_stats=True)
    yield "scl-debias-labels", lambda z, y: contrastive_loss(z, y, positives="labels", debias=0.1, temperature=0.1)
    yield "supcon", lambda z, y: supcon_loss(z, y)
    yield "module-hscl", lambda z, y: hscl.losses.HSCL(beta=1.0, queue_size=8)(z, y)
    yield "supcon-module", lambda z, y: hscl.SupConLoss(temperature=0.2)(z, y)
    yield "asymptotic", lambda z, y: asymptotic_losses(z, y, hardening=hscl.ExponentialTilt(1.0))


def _values(out) -> list[float]:
    """The numbers a loss call returns: the loss, its statistics, or the diagnostics' dict."""
    if isinstance(out, dict):
        return list(out.values())
    if isinstance(out, tuple):
        loss, stats = out
        return [float(loss), *stats.as_dict().values()]
    return [float(out)]


SCALES = {
    torch.float64: [1e-300, 1e-30, 1e-15, 1e-8, 1e8, 1e19, 1e30, 1e300, torch.finfo(torch.float64).max],
    torch.float32: [1e-37, 1e-30, 1e-15, 1e-8, 1e8, 1e19, 1e30, torch.finfo(torch.float32).max],
}


@pytest.mark.parametrize("dtype", list(SCALES), ids=str)
@pytest.mark.parametrize("name,fn", list(_scale_cases()), ids=[c[0] for c in _scale_cases()])
def test_loss_is_invariant_to_the_scale_of_z(name, fn, dtype):
    """z * c gives the loss of z for c from 1e-300 to finfo.max (float64) and 1e-37 to finfo.max (float32):
    before the fix, tiny scales gave log-terms of all-zero scores and large ones overflowed."""
    g = torch.Generator().manual_seed(7)
    z0 = torch.randn(8, 2, 6, generator=g, dtype=torch.float64)
    z0 = z0 / z0.abs().amax()  # largest entry 1, so z0 * c is finite up to c = finfo.max
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    rtol = 1e-12 if dtype == torch.float64 else 2e-5
    ref = _values(fn(z0.to(dtype), y))
    for scale in SCALES[dtype]:
        z = (z0 * scale).to(dtype)
        assert torch.isfinite(z).all()
        got = _values(fn(z, y))
        assert got == pytest.approx(ref, rel=rtol, abs=rtol), f"{name}: scale {scale:g} in {dtype}"


def test_bfloat16_at_its_largest_values():
    """bf16 embeddings at finfo.max: the float32 computation equals the float64 one of the same values (before the
    fix the float32 sum of squares overflowed and every score was 0)."""
    dtype = torch.bfloat16
    g = torch.Generator().manual_seed(8)
    z = torch.randn(8, 2, 6, generator=g)
    z = (z * (torch.finfo(dtype).max / z.abs().amax())).to(dtype)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    kw = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0))
    assert float(contrastive_loss(z, y, **kw)) == pytest.approx(float(contrastive_loss(z.double(), y, **kw)), rel=1e-5)
    assert float(supcon_loss(z, y)) == pytest.approx(float(supcon_loss(z.double(), y)), rel=1e-5)


def test_gradient_is_exact_and_scales_as_one_over_c():
    """gradcheck at scale 1 (float64), and at scale c the gradient is that at scale 1 divided by c, as for any
    function of z / |z|: the normalisation's gradient is right at every scale, not just finite."""
    g = torch.Generator().manual_seed(9)
    z = torch.randn(5, 2, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 1])
    kw = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.5), temperature=0.3)
    assert torch.autograd.gradcheck(lambda x: contrastive_loss(x, y, **kw), (z.clone().requires_grad_(True),))
    assert torch.autograd.gradcheck(lambda x: supcon_loss(x, y), (z.clone().requires_grad_(True),))

    def grad(x):
        x = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(contrastive_loss(x, y, **kw), x)
        return gx

    ref = grad(z)
    for scale in (1e-30, 1e-15, 1e19, 1e30):
        torch.testing.assert_close(grad(z * scale) * scale, ref, rtol=1e-12, atol=1e-14)


def test_normalisation_is_unchanged_at_normal_scales():
    """Dividing by a power of two first is exact: the same bits as F.normalize, values and gradients, wherever
    F.normalize neither overflows nor underflows (so every result at normal scales is unchanged)."""
    from hscl._engine import l2_normalize as _l2_normalize

    for dtype in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(10)
        x = torch.randn(300, 17, generator=g, dtype=dtype) * torch.logspace(-4, 4, 300, dtype=dtype)[:, None]
        x.requires_grad_(True)
        w = torch.randn(300, 17, generator=g, dtype=dtype)
        ours, ref = _l2_normalize(x), torch.nn.functional.normalize(x, dim=1)
        assert torch.equal(ours, ref)
        assert torch.equal(torch.autograd.grad((ours * w).sum(), x)[0], torch.autograd.grad((ref * w).sum(), x)[0])
    zero = torch.zeros(1, 3)
    assert torch.equal(_l2_normalize(zero), zero), "a zero row stays zero"


# Issue 12, item 6: the edges of the accepted ranges give finite values (beyond them, a ValueError: see
# test_validation.py).


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_largest_accepted_beta_and_smallest_temperature_are_finite(dtype):
    g = torch.Generator().manual_seed(11)
    z = torch.randn(8, 2, 6, generator=g).to(dtype)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    _finite_loss_and_grad(z, y, negatives="other_class", hardening=hscl.ExponentialTilt(1e4), temperature=0.01)
    for kw in (dict(), dict(negatives="other_class", hardening=hscl.ExponentialTilt(1e4)), dict(debias=0.5)):
        loss = _finite_loss_and_grad(z, y, temperature=1e-19, **kw)  # 1/t = 1e19 < 1.84e19
        assert float(loss.detach()) > 1e17  # the scale of the scores, not an overflow
    _, stats = contrastive_loss(z, y, hardening=hscl.ExponentialTilt(1e4), temperature=1e-19, return_stats=True)
    assert all(math.isfinite(v) for v in stats.as_dict().values())
    assert math.isfinite(float(supcon_loss(z, y, temperature=1e-19)))


def test_float64_accepts_temperatures_below_the_float32_range():
    g = torch.Generator().manual_seed(12)
    z = torch.randn(8, 2, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for t in (1e-38, 1e-40, 1e-150):
        _finite_loss_and_grad(z, y, negatives="other_class", hardening=hscl.ExponentialTilt(1.0), temperature=t)


def test_unnormalised_embeddings_up_to_the_score_limit_are_finite():
    g = torch.Generator().manual_seed(13)
    z = torch.randn(8, 2, 6, generator=g)
    z = z / z.norm(dim=-1, keepdim=True).amax() * 3e9  # largest score |z|^2 / t = 9e18 / 0.5 < 1.84e19
    _finite_loss_and_grad(z, None, normalize=False, hardening=hscl.ExponentialTilt(1.0))
