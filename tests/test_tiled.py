"""The tiled path (:mod:`hscl._tiled`): values, gradients and statistics equal the dense path's for every option
combination (tiles smaller than V, M not a multiple of the tile), no [M, M] tensor is held, and the ``backend``
switch (its ``"auto"`` rule and its validation)."""

import itertools
import math
import subprocess
import sys
import textwrap

import pytest
import torch

import hscl
from hscl import _engine, _tiled
from hscl.functional import contrastive_loss, supcon_loss
from tests.conftest import HARDENINGS, make_batch, saved_storages
from tests.conftest import value_and_grad as _value_and_grad

#: Tiled equals dense to rounding: 1e-12 in float64 (``torch.testing.assert_close``); in float32 to 1e-6 of the
#: largest entry of each tensor (the sums run in another order; measured up to 8.7e-7).
TOL64 = dict(rtol=1e-12, atol=1e-12)
TOL32 = "normwise 1e-6"


def _assert_close(got, want, tol):
    if tol != TOL32:
        torch.testing.assert_close(got, want, **tol)
        return
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert float((g - w).abs().max()) <= 1e-6 * float(w.abs().max()), float((g - w).abs().max())


def _both(fn, z, tol, tile_size):
    dense = _value_and_grad(lambda t: fn(t, backend="dense"), z)
    tiled = _value_and_grad(lambda t: fn(t, backend="tiled", tile_size=tile_size), z)
    _assert_close(tiled, dense, tol)


@pytest.fixture(params=["blocks", "generic"])
def layout(request, monkeypatch):
    monkeypatch.setattr(_engine, "_GENERIC_LAYOUT", request.param == "generic")
    return request.param


COMBOS = list(
    itertools.product(["all", "other_class"], range(len(HARDENINGS)), ["views", "labels"], [False, True], [2, 3])
)


@pytest.mark.parametrize("negatives,h,positives,detach,views", COMBOS)
@pytest.mark.parametrize("reduction", ["mean", "pairs", "none"])
@pytest.mark.parametrize("tile_size", [2, 5])
def test_tiled_equals_dense_float64(negatives, h, positives, detach, views, reduction, tile_size, layout):
    """M = 21 or 14 (not a multiple of 5); a tile of 2 is smaller than V = 3."""
    z, y = make_batch(b=7, v=views, seed=h + views)
    kw = dict(negatives=negatives, hardening=HARDENINGS[h][1], positives=positives, detach_weights=detach)
    _both(lambda t, **b: contrastive_loss(t, y, reduction=reduction, **kw, **b), z, TOL64, tile_size)


@pytest.mark.parametrize(
    "negatives,h,positives", list(itertools.product(["all", "other_class"], range(6), ["views", "labels"]))
)
def test_tiled_equals_dense_float32(negatives, h, positives, layout):
    z, y = make_batch(b=9, v=3, d=16, seed=h, dtype=torch.float32)
    kw = dict(negatives=negatives, hardening=HARDENINGS[h][1], positives=positives, reduction="none")
    _both(lambda t, **b: contrastive_loss(t, y, **kw, **b), z, TOL32, 4)


@pytest.mark.parametrize("debias", [0.05, 0.3, 0.9])
@pytest.mark.parametrize("h", [0, 1, 3, 5])
@pytest.mark.parametrize("positives", ["views", "labels"])
def test_debias_tiled_equals_dense(debias, h, positives, layout):
    z, y = make_batch(b=7, v=2, seed=3)
    kw = dict(debias=debias, hardening=HARDENINGS[h][1], positives=positives, reduction="none")
    _both(lambda t, **b: contrastive_loss(t, y, **kw, **b), z, TOL64, 3)


@pytest.mark.parametrize("k,temperature", [(1, 0.07), (1000, 1.0), (3.5, 0.01)])
def test_scale_temperature_and_unnormalised(k, temperature):
    z, y = make_batch(b=6, v=2, seed=2)
    kw = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.5), num_negatives=k, temperature=temperature)
    _both(lambda t, **b: contrastive_loss(t, y, **kw, **b), z, TOL64, 4)
    _both(lambda t, **b: contrastive_loss(0.3 * t, y, normalize=False, **b), z, TOL64, 4)


@pytest.mark.parametrize("h", range(len(HARDENINGS)))
@pytest.mark.parametrize("positives", ["views", "labels"])
@pytest.mark.parametrize("queue_positives", [False, True])
def test_module_with_queue_and_repeated_ids(h, positives, queue_positives):
    """Two training steps through a queue, instance ids with a repeated sample (the generic layout), stats."""
    ids = torch.tensor([0, 1, 2, 1, 3, 0, 7])
    y = torch.tensor([0, 1, 2, 1, 0, 0, 2])
    outs = {}
    for backend in ["dense", "tiled"]:
        loss_fn = hscl.ContrastiveLoss(
            hardening=HARDENINGS[h][1],
            positives=positives,
            queue_size=9,
            queue_positives=queue_positives,
            backend=backend,
            tile_size=3,
        )
        got = []
        for step in range(2):
            z, _ = make_batch(b=7, v=2, seed=20 + step)
            got.append(_value_and_grad(lambda t, f=loss_fn, s=step: f(t, y, instance_ids=ids + 4 * s), z))
        _, stats = loss_fn(z, y, instance_ids=ids, return_stats=True)
        outs[backend] = got, stats
    torch.testing.assert_close(outs["tiled"][0], outs["dense"][0], **TOL64)
    dense, tiled = outs["dense"][1].as_dict(), outs["tiled"][1].as_dict()
    assert dense.keys() == tiled.keys()
    for key, val in dense.items():
        assert tiled[key] == pytest.approx(val, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(negatives="other_class", hardening=hscl.ExponentialTilt(5.0)),
        dict(hardening=hscl.Threshold(math.exp(0.9)), positives="labels"),
        dict(hardening=HARDENINGS[5][1], negatives="other_class"),
    ],
)
def test_stats_equal_dense(kw, layout):
    z, y = make_batch(b=9, v=3, seed=1)
    _, a = contrastive_loss(z, y, return_stats=True, backend="dense", **kw)
    _, b = contrastive_loss(z, y, return_stats=True, backend="tiled", tile_size=4, **kw)
    for key, val in a.as_dict().items():
        assert b.as_dict()[key] == pytest.approx(val, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, TOL64), (torch.float32, TOL32)])
def test_supcon_tiled_equals_dense(views, dtype, tol):
    z, y = make_batch(b=7, v=views, seed=6, dtype=dtype)
    _both(lambda t, **b: supcon_loss(t, y, temperature=0.1, **b), z, tol, 3)
    _both(lambda t, **b: hscl.SupConLoss(0.2, **b)(t, y), z, tol, 2)


def test_log_tilted_mean_against_the_dense_kernel():
    """The tiled kernel alone against :func:`hscl._engine.log_tilted_mean`, rows without a candidate included
    (log E = 0, zero gradient)."""
    g = torch.Generator().manual_seed(0)
    za, zr = torch.randn(11, 4, generator=g, dtype=torch.float64), torch.randn(13, 4, generator=g, dtype=torch.float64)
    ka, kr = torch.randint(3, (11,), generator=g), torch.randint(3, (13,), generator=g)
    ka[0] = 5  # nothing excluded
    full = torch.full((13,), int(ka[1]))  # excludes every column of the rows with key ka[1]
    for h in [None, hscl.ExponentialTilt(2.0), hscl.Threshold(math.exp(0.5)), HARDENINGS[5][1]]:
        for keys in [kr, full]:
            a, r = za.clone().requires_grad_(True), zr.clone().requires_grad_(True)
            dense, w1 = _engine.log_tilted_mean((a * 2.0) @ r.T, ka[:, None] == keys[None, :], h)
            (da, dr) = torch.autograd.grad(dense.sum(), (a, r))
            a2, r2 = za.clone().requires_grad_(True), zr.clone().requires_grad_(True)
            tiled, w2, _ = _tiled.log_tilted_mean(a2, r2, ka, keys, h, inv_t=2.0, detach_weights=False, tile=4)
            (ta, tr) = torch.autograd.grad(tiled.sum(), (a2, r2))
            assert torch.equal(w1, w2)
            torch.testing.assert_close((tiled, ta, tr), (dense, da, dr), **TOL64)
    assert not bool(w2[1])  # key of row 1 fills the reference: no candidate, log E = 0
    assert float(tiled[1].detach()) == 0.0 and float(ta[1].abs().sum()) == 0.0


def test_tiled_path_is_first_order_and_says_so():
    z, y = make_batch(b=4, v=2, d=3, seed=13)
    z.requires_grad_(True)
    for h in [lambda s: 1.0 * s, hscl.ExponentialTilt(1.0)]:
        (g,) = torch.autograd.grad(contrastive_loss(z, y, hardening=h, backend="tiled"), z, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable"):
            g.sum().backward()


def test_auto_picks_dense_for_small_and_tiled_for_large(monkeypatch):
    assert _engine.resolve_backend("auto", rows=4096, cols=4096, chunk_size=None) == "dense"  # 2^24 scores
    assert _engine.resolve_backend("auto", rows=4096, cols=4097, chunk_size=None) == "tiled"
    assert _engine.resolve_backend("auto", rows=8192, cols=8192, chunk_size=64) == "dense"
    assert _engine.resolve_backend("dense", rows=8192, cols=8192, chunk_size=None) == "dense"
    calls = []
    real = _tiled.terms
    monkeypatch.setattr(_tiled, "terms", lambda *a, **k: calls.append(1) or real(*a, **k))
    z, y = make_batch(b=8, v=2, seed=0)
    contrastive_loss(z, y)
    hscl.ContrastiveLoss()(z, y)
    assert calls == []
    monkeypatch.setattr(_engine, "AUTO_DENSE_MAX_SCORES", 16 * 16 - 1)
    contrastive_loss(z, y)
    hscl.ContrastiveLoss()(z, y)
    assert calls == [1, 1]


@pytest.mark.parametrize(
    "make",
    [
        lambda **k: contrastive_loss(*make_batch(), **k),
        lambda **k: hscl.ContrastiveLoss(**k),
        lambda **k: hscl.losses.HSCL(**k),
        lambda **k: supcon_loss(*make_batch(), **k),
        lambda **k: hscl.SupConLoss(**k),
    ],
)
def test_bad_backend_and_tile_size_are_refused(make):
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'dense', 'tiled', got 'sparse'"):
        make(backend="sparse")
    with pytest.raises(ValueError, match="tile_size"):
        make(backend="tiled", tile_size=0)


def test_learnable_hardening_module_is_refused_on_the_tiled_path():
    """The tiled backward returns gradients for the embeddings only: a hardening with trainable parameters would
    silently get none, so the tiled path refuses it (the dense path trains it)."""

    class LearnedTilt(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.beta = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, s):
            return self.beta * s

    hardening = LearnedTilt()
    z, y = make_batch(b=4, v=2)
    contrastive_loss(z, y, hardening=hardening, backend="dense").backward()
    assert hardening.beta.grad is not None
    with pytest.raises(ValueError, match="backend='tiled' gives no gradient to the parameters of a hardening"):
        contrastive_loss(z, y, hardening=hardening, backend="tiled")


def test_chunk_size_is_refused_with_tiled():
    with pytest.raises(ValueError, match="chunk_size applies to backend='dense' only"):
        contrastive_loss(*make_batch(), backend="tiled", chunk_size=4)
    with pytest.raises(ValueError, match="chunk_size applies to backend='dense' only"):
        hscl.ContrastiveLoss(backend="tiled", chunk_size=4)


MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, torch, hscl
    from hscl.functional import contrastive_loss
    torch.set_num_threads(1)
    m, d = 20000, 16
    g = torch.Generator().manual_seed(0)
    z = torch.randn(m // 2, 2, d, generator=g, requires_grad=True)
    y = torch.randint(50, (m // 2,), generator=g)
    kw = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0), positives="labels", backend="tiled")
    contrastive_loss(z[:8], y[:8], tile_size=4, **kw).backward()  # every code path loaded before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    contrastive_loss(z, y, tile_size=256, **kw).backward()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_no_m_by_m_tensor_on_the_tiled_path():
    """M = 20000, D = 16, float32, label positives (both tiled passes), forward and backward: the peak resident
    memory grows by far less than one [M, M] float32 matrix (1.6 GB); measured about 14 MB."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True)
    grown_kib = int(out.stdout.split()[-1])
    assert grown_kib < 200 * 1024, f"peak memory grew by {grown_kib} KiB"


@pytest.mark.parametrize(
    "options",
    [
        dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0)),
        dict(negatives="other_class", positives="labels", hardening=hscl.Threshold(math.exp(-0.5))),
        dict(hardening=hscl.ExponentialTilt(0.5), detach_weights=True),
    ],
)
def test_compiled_tiles_equal_eager(options, monkeypatch):
    """``HSCL_COMPILE=1``: the tiles' element-wise work through ``torch.compile`` gives the eager values and
    gradients (float64, to 1e-12); 23 samples x 2 views in tiles of 8 (a last tile of 6: one dynamic graph)."""
    monkeypatch.setattr(_tiled, "_COMPILED", {})
    monkeypatch.setattr(_tiled, "_COMPILE_BROKEN", [])
    z, y = make_batch(b=23, v=2, d=5, classes=4, seed=11)
    z = z.double()

    def loss(x):
        return contrastive_loss(x, y, backend="tiled", tile_size=8, reduction="none", **options)

    monkeypatch.setenv("HSCL_COMPILE", "0")
    eager = _value_and_grad(loss, z)
    monkeypatch.setenv("HSCL_COMPILE", "1")
    assert _tiled.compile_enabled()
    compiled = _value_and_grad(loss, z)
    assert set(_tiled._COMPILED) == {"forward", "backward"} and not _tiled._COMPILE_BROKEN
    _assert_close(compiled, eager, TOL64)


def test_a_failing_compile_warns_once_and_runs_eager(monkeypatch):
    """A compiler error is caught once, warned once, and every later tile runs eager (the same numbers)."""

    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no compiler here")

        return run

    monkeypatch.setattr(_tiled, "_COMPILED", {})
    monkeypatch.setattr(_tiled, "_COMPILE_BROKEN", [])
    monkeypatch.setattr(torch, "compile", broken)
    z, y = make_batch(b=9, v=2, d=4, seed=12)
    options = dict(negatives="other_class", hardening=hscl.ExponentialTilt(1.0), backend="tiled", tile_size=4)
    monkeypatch.setenv("HSCL_COMPILE", "0")
    want = contrastive_loss(z, y, **options)
    monkeypatch.setenv("HSCL_COMPILE", "1")
    with pytest.warns(RuntimeWarning, match="torch.compile of the tiled path failed") as caught:
        got = contrastive_loss(z, y, **options)
        again = contrastive_loss(z, y, **options)
    assert len([w for w in caught if "torch.compile" in str(w.message)]) == 1
    assert not _tiled.compile_enabled() and "no compiler here" in _tiled._COMPILE_BROKEN[0]
    assert torch.equal(got, want) and torch.equal(again, want)


@pytest.mark.parametrize("hardening", [hscl.ExponentialTilt(1.0), hscl.Threshold(math.exp(-0.5)), None])
def test_view_positives_keep_one_embedding_copy(hardening):
    """With view positives the tiled path keeps only the normalised embeddings (and the input) for the backward
    pass: the positives' scores come from per-sample Gram matrices, not a gathered [M, D] copy of the partners,
    and the normalisation keeps no second copy."""
    z, y = make_batch(b=32, v=2, d=8, seed=3, dtype=torch.float32)
    z.requires_grad_(True)
    kw = dict(negatives="other_class", hardening=hardening, backend="tiled")
    kept = saved_storages(lambda t: contrastive_loss(t, y, **kw), z)
    assert len(kept - {z.untyped_storage().data_ptr()}) == 1, len(kept)
