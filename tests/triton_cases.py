"""The cases of tests/test_triton.py, run by it in a subprocess with ``TRITON_INTERPRET=1`` set before triton is
imported (its standard library, ``tl.sum`` and the rest, is built for the interpreter only then): the Triton
kernels of :mod:`hscl._triton` on CPU tensors, against the dense path (through the public losses, with
``HSCL_TRITON=force``) and the torch tiled path (several blocks)."""

import itertools
import math
import os

import pytest
import torch

import hscl
from hscl import _tiled
from hscl.functional import contrastive_loss, supcon_loss
from tests.conftest import make_batch
from tests.conftest import value_and_grad as _value_and_grad

if os.environ.get("TRITON_INTERPRET") != "1":  # pragma: no cover - a misuse
    pytest.skip("run by tests/test_triton.py with TRITON_INTERPRET=1", allow_module_level=True)

HARDENINGS = {
    "none": None,
    "tilt1": hscl.ExponentialTilt(1.0),
    "tilt3": hscl.ExponentialTilt(3.0),
    "tau-0.5": hscl.Threshold(math.exp(-0.5)),
    "tau+0.9": hscl.Threshold(math.exp(0.9)),  # leaves some anchors without candidates
}
TOL64 = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def kernels():
    """hscl._triton, its kernels built for the interpreter."""
    from triton.runtime.interpreter import InterpretedFunction

    import hscl._triton as module

    assert isinstance(module._stats_kernel, InterpretedFunction)
    return module


@pytest.fixture
def forced(kernels, monkeypatch):
    """HSCL_TRITON=force, and the number of calls that went to the kernels."""
    monkeypatch.setenv("HSCL_TRITON", "force")
    calls = []
    original = kernels.log_tilted_mean

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(kernels, "log_tilted_mean", counted)
    return calls


def _close(got, want, dtype):
    if dtype == torch.float64:
        torch.testing.assert_close(got, want, **TOL64)
    else:
        assert got.shape == want.shape and got.dtype == want.dtype
        assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max()), float((got - want).abs().max())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "negatives,h,positives", list(itertools.product(["all", "other_class"], HARDENINGS, ["views", "labels"]))
)
def test_triton_equals_dense(forced, dtype, negatives, h, positives):
    """M = 40 (B = 20, V = 2; one partial block of 64), D = 16."""
    z, y = make_batch(b=20, v=2, d=16, classes=4, seed=len(h), dtype=dtype)
    kw = dict(negatives=negatives, hardening=HARDENINGS[h], positives=positives, reduction="none")
    dense = _value_and_grad(lambda t: contrastive_loss(t, y, **kw, backend="dense"), z)
    calls = len(forced)
    triton = _value_and_grad(lambda t: contrastive_loss(t, y, **kw, backend="tiled"), z)
    assert len(forced) == calls + 1
    for got, want in zip(triton, dense, strict=True):
        _close(got, want, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_triton_supcon_equals_dense(forced, dtype):
    z, y = make_batch(b=21, v=3, d=8, classes=5, dtype=dtype)  # M = 63
    dense = _value_and_grad(lambda t: supcon_loss(t, y, backend="dense").reshape(1), z)
    triton = _value_and_grad(lambda t: supcon_loss(t, y, backend="tiled").reshape(1), z)
    assert forced
    for got, want in zip(triton, dense, strict=True):
        _close(got, want, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("h", list(HARDENINGS))
@pytest.mark.parametrize("detach", [False, True])
def test_kernels_equal_torch_tiled_over_several_blocks(kernels, dtype, h, detach):
    """Blocks of 16 over 45 anchors and 37 reference rows (D = 24); with tau = e^0.9 some anchors have no
    candidate."""
    g = torch.Generator().manual_seed(3)
    za = torch.nn.functional.normalize(torch.randn(45, 24, generator=g, dtype=dtype), dim=1)
    zr = torch.nn.functional.normalize(torch.randn(37, 24, generator=g, dtype=dtype), dim=1)
    ka, kr = torch.randint(1, 5, (45,), generator=g), torch.randint(1, 5, (37,), generator=g)
    ka[ka == 1], kr[kr == 1] = 7, 7
    w = torch.linspace(-1.0, 2.0, 45, dtype=dtype)
    kw = dict(inv_t=2.0, detach_weights=detach)

    def run(fn, **extra):
        a, r = za.clone().requires_grad_(True), zr.clone().requires_grad_(True)
        log_e, weighted = fn(a, r, ka, kr, HARDENINGS[h], **kw, **extra)[:2]
        return (log_e.detach(), *torch.autograd.grad((log_e * w).sum(), (a, r))), weighted

    got, got_weighted = run(kernels.log_tilted_mean, block=16)
    want, want_weighted = run(_tiled.log_tilted_mean, tile=8)
    assert torch.equal(got_weighted, want_weighted)
    assert bool(got_weighted.all()) == (h != "tau+0.9")
    for a, b in zip(got, want, strict=True):
        _close(a, b, dtype)


def test_kernel_arguments_are_checked(kernels):
    z, k = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="takes None, ExponentialTilt or Threshold"):
        kernels.log_tilted_mean(z, z, k, k, torch.tanh, inv_t=1.0, detach_weights=False)
    with pytest.raises(ValueError, match="float32 or float64 za and zr of one dtype"):
        kernels.log_tilted_mean(z, z.double(), k, k, None, inv_t=1.0, detach_weights=False)
    with pytest.raises(ValueError, match="block must be a power of 2 of at least 16, got 24"):
        kernels.log_tilted_mean(z, z, k, k, None, inv_t=1.0, detach_weights=False, block=24)
