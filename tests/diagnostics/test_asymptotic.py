"""The diagnostics of docs/math.md section 4 against a float64 naive reference and analytic constructions."""

import math

import pytest
import torch

import hscl
from hscl import _engine, _tiled
from hscl.diagnostics import (
    assumption_fraction,
    assumption_report,
    asymptotic_losses,
    default_chunk_size,
)
from hscl.functional import contrastive_loss
from tests.conftest import HARDENINGS, TOL, make_batch


def naive(z, labels, eta, t=0.5):
    """Per anchor, from docs/math.md section 4 loop by loop: (L_UCL, L_H-UCL, L_SCL, L_H-SCL, E_C, E_D, m_C, m_D)."""
    z = z.double()
    b = z.shape[0]
    x = torch.nn.functional.normalize(z.reshape(2 * b, -1), dim=1)
    u = [i // 2 for i in range(2 * b)]
    y = [int(labels[i // 2]) for i in range(2 * b)]
    out = []
    for i in range(2 * b):
        s = [float(x[i] @ x[j]) / t for j in range(2 * b)]
        p = i ^ 1

        def tilted(js, weight, s=s):
            w = [weight(s[j]) for j in js]
            total = sum(w)
            return (sum(wj * math.exp(s[j]) for wj, j in zip(w, js, strict=True)) / total if total > 0 else None), total

        n_all = [j for j in range(2 * b) if u[j] != u[i]]
        d = [j for j in range(2 * b) if y[j] != y[i]]
        c = [j for j in range(2 * b) if y[j] == y[i] and u[j] != u[i]]
        e_ucl, _ = tilted(n_all, lambda s_: 1.0)
        e_hucl, _ = tilted(n_all, eta)
        e_scl, _ = tilted(d, lambda s_: 1.0)
        e_d, m_d = tilted(d, eta)
        e_c, m_c = tilted(c, eta)

        def loss(e, s=s, p=p):
            return None if e is None else -s[p] + math.log(e)

        out.append((loss(e_ucl), loss(e_hucl), loss(e_scl), loss(e_d), e_c, e_d, m_c, m_d, e_hucl))
    return out


ETAS = {
    "tilt0.7": (hscl.ExponentialTilt(0.7), lambda s: math.exp(0.7 * s)),
    "tilt2": (hscl.ExponentialTilt(2.0), lambda s: math.exp(2.0 * s)),
    "tau-0.5": (hscl.Threshold(math.exp(-0.5)), lambda s: 1.0 if math.exp(s) >= math.exp(-0.5) else 0.0),
    "tau+1.5": (hscl.Threshold(math.exp(1.5)), lambda s: 1.0 if math.exp(s) >= math.exp(1.5) else 0.0),
    "user": (lambda s: torch.nn.functional.logsigmoid(4 * (s + 0.5)), lambda s: 1 / (1 + math.exp(-4 * (s + 0.5)))),
}


BACKENDS = ["dense", "tiled"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(ETAS))
@pytest.mark.parametrize("split", [None, 1, 5])
def test_report_matches_naive_reference(name, split, backend):
    """``split``: the anchors per chunk (dense) or the tile edge (tiled); 16 embeddings, not a multiple of 5."""
    ours, eta = ETAS[name]
    z, y = make_batch(b=8, v=2, d=4, classes=3, seed=3)
    size = dict(chunk_size=split) if backend == "dense" else dict(tile_size=split)
    rep = assumption_report(z, y, hardening=ours, backend=backend, **size)
    ref = naive(z, y, eta)
    excluded = torch.tensor([r[3] is None for r in ref])
    assert torch.equal(rep.excluded, excluded)
    assert torch.equal(rep.vacuous, torch.tensor([r[6] == 0 for r in ref]))
    sat = torch.tensor([r[3] is not None and (r[6] == 0 or r[4] >= r[5]) for r in ref])
    assert torch.equal(rep.satisfied, sat)
    keep = [i for i, r in enumerate(ref) if r[3] is not None]
    for k, loss_name in enumerate(("UCL", "H-UCL", "SCL", "H-SCL")):
        expected = torch.tensor([ref[i][k] for i in keep], dtype=torch.float64)
        torch.testing.assert_close(rep.per_anchor[loss_name][keep], expected, **TOL)
        if keep:
            assert rep.losses[loss_name] == pytest.approx(float(expected.mean()), rel=1e-12, abs=1e-12)
    if keep:
        assert rep.fraction == pytest.approx(int(sat.sum()) / len(keep))
    if name == "tau+1.5":
        assert 0 < rep.num_excluded < rep.num_anchors, "the fixture must exclude some anchors"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["tilt0.7", "tau-0.5", "user"])
def test_hucl_is_the_mixture_of_collisions_and_true_negatives(name, backend):
    """E_H-UCL = (m_C E_C + m_D E_D) / (m_C + m_D), so E_H-UCL >= E_H-SCL exactly when E_C >= E_D."""
    ours, eta = ETAS[name]
    z, y = make_batch(b=9, v=2, d=4, classes=3, seed=4)
    rep = assumption_report(z, y, hardening=ours, backend=backend, tile_size=4)
    for i, (_, _, _, _, e_c, e_d, m_c, m_d, e_hucl) in enumerate(naive(z, y, eta)):
        if m_c > 0 and m_d > 0:
            assert e_hucl == pytest.approx((m_c * e_c + m_d * e_d) / (m_c + m_d), rel=1e-12)
        if m_d > 0 and m_c > 0 and abs(e_c - e_d) > 1e-9 * e_d:
            assert bool(rep.satisfied[i]) == bool(rep.hscl_le_hucl_per_anchor[i])


@pytest.mark.parametrize("backend", BACKENDS)
def test_assumption_holds_for_separated_classes(backend):
    """Tight, mutually orthogonal class clusters: every collision is harder than every true negative."""
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4, 16, dtype=torch.float64)
    y = torch.arange(4).repeat(5)
    z = centres[y][:, None, :] + 0.01 * torch.randn(20, 2, 16, generator=g, dtype=torch.float64)
    for hardening in (hscl.ExponentialTilt(1.0), hscl.ExponentialTilt(2.0), hscl.Threshold(math.exp(-0.5))):
        rep = assumption_report(z, y, hardening=hardening, backend=backend)
        assert rep.fraction == 1.0 and rep.num_vacuous == 0 and rep.num_excluded == 0
        assert rep.hscl_le_hucl and bool(rep.hscl_le_hucl_per_anchor.all())


@pytest.mark.parametrize("backend", BACKENDS)
def test_assumption_fails_for_a_known_set(backend):
    """On the unit circle (t = 0.5), class 0 at 0 and 180 degrees, class 1 at 10 degrees; identical views.

    Sample 0: C = sample 1 (s = -2), D = sample 2 (s = 2 cos 10) -> fails. Sample 1: C = sample 0 (s = -2),
    D = sample 2 (s = 2 cos 170) -> fails, since -2 < 2 cos 170. Sample 2 has no collision: vacuous.
    """
    angles = torch.tensor([0.0, 180.0, 10.0], dtype=torch.float64) * math.pi / 180
    pts = torch.stack([angles.cos(), angles.sin()], 1)
    z = pts[:, None, :].expand(3, 2, 2).clone()
    y = torch.tensor([0, 0, 1])
    for hardening in (hscl.ExponentialTilt(1.0), hscl.ExponentialTilt(5.0)):
        rep = assumption_report(z, y, hardening=hardening, backend=backend, tile_size=4)
        assert rep.satisfied.tolist() == [False, False, False, False, True, True]
        assert rep.vacuous.tolist() == [False, False, False, False, True, True]
        assert rep.fraction == pytest.approx(2 / 6)
    # the losses in closed form for the anchors of sample 0 (positive: the identical view, s = 2)
    rep = assumption_report(z, y, hardening=hscl.ExponentialTilt(1.0), backend=backend, tile_size=4)
    c10 = 2 * math.cos(math.radians(10))
    assert float(rep.per_anchor["UCL"][0]) == pytest.approx(-2 + math.log((2 * math.exp(-2) + 2 * math.exp(c10)) / 4))
    assert float(rep.per_anchor["SCL"][0]) == pytest.approx(-2 + c10)
    tilted = (2 * math.exp(-4) + 2 * math.exp(2 * c10)) / (2 * math.exp(-2) + 2 * math.exp(c10))
    assert float(rep.per_anchor["H-UCL"][0]) == pytest.approx(-2 + math.log(tilted))
    assert float(rep.per_anchor["H-SCL"][0]) == pytest.approx(-2 + c10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("h", [0, 1, 3, 5])
@pytest.mark.parametrize("negatives", ["all", "other_class"])
def test_asymptotic_loss_is_the_k_negative_loss_minus_log_k(h, negatives, backend):
    """l_ip - log K -> -s_ip + log E_i as K grows (docs/math.md section 4)."""
    _, ours, _ = HARDENINGS[h]
    z, y = make_batch(b=7, v=2, d=4, seed=5)
    hardening = ours if ours is not None else hscl.ExponentialTilt(0.0)
    rep = assumption_report(z, y, hardening=hardening, backend=backend, tile_size=3)
    name = ("H-" if ours is not None else "") + ("UCL" if negatives == "all" else "SCL")
    keep = ~rep.excluded
    errors = []
    for k in (1e2, 1e5, 1e10):
        per = contrastive_loss(z, y, negatives=negatives, hardening=ours, num_negatives=k, reduction="none")
        errors.append(float((per.reshape(-1)[keep] - math.log(k) - rep.per_anchor[name][keep]).abs().max()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-8


@pytest.mark.parametrize("backend", BACKENDS)
def test_public_shortcuts_and_keys(backend):
    z, y = make_batch(b=10, v=2, seed=6)
    h = hscl.ExponentialTilt(1.0)
    losses = asymptotic_losses(z, y, hardening=h, backend=backend, tile_size=7)
    assert set(losses) == {"UCL", "H-UCL", "SCL", "H-SCL"}
    assert losses == assumption_report(z, y, hardening=h, backend=backend, tile_size=7).losses
    assert (
        assumption_fraction(z, y, hardening=h, backend=backend, tile_size=7)
        == assumption_report(z, y, hardening=h, backend=backend, tile_size=7).fraction
    )


@pytest.mark.parametrize("name", list(ETAS))
@pytest.mark.parametrize("tile", [1, 7, 64])
def test_tiled_equals_dense(name, tile):
    """The tiled pass gives the dense chunks' report in float64 (to 1e-12), for a tile edge that divides the 46
    embeddings (1), one that does not (7) and one larger than all of them (64); 5 classes, some collisions."""
    ours, _ = ETAS[name]
    z, y = make_batch(b=23, v=2, d=5, classes=5, seed=8)
    dense = assumption_report(z.double(), y, hardening=ours, backend="dense")
    tiled = assumption_report(z.double(), y, hardening=ours, backend="tiled", tile_size=tile)
    for attr in ("satisfied", "vacuous", "excluded"):
        assert torch.equal(getattr(tiled, attr), getattr(dense, attr))
    for key in dense.per_anchor:
        torch.testing.assert_close(tiled.per_anchor[key], dense.per_anchor[key], rtol=0, atol=1e-12)
        assert tiled.losses[key] == pytest.approx(dense.losses[key], rel=0, abs=1e-12)


def test_auto_picks_the_tiled_pass_above_the_dense_limit(monkeypatch):
    """``backend="auto"``: dense up to 2^24 scores or with ``chunk_size``, tiled above (the limit lowered here)."""
    called = []
    real = _tiled.reference_log_means
    monkeypatch.setattr(_tiled, "reference_log_means", lambda *a, **k: called.append(1) or real(*a, **k))
    z, y = make_batch(b=10, v=2, seed=6)
    h = hscl.ExponentialTilt(1.0)
    assumption_report(z, y, hardening=h)
    assert not called
    monkeypatch.setattr(_engine, "AUTO_DENSE_MAX_SCORES", 399)
    assumption_report(z, y, hardening=h, chunk_size=4)
    assert not called
    assumption_report(z, y, hardening=h)
    assert called


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_true_negative_warns_and_reports_nan(backend):
    z = torch.randn(4, 2, 3)
    with pytest.warns(RuntimeWarning, match="no anchor has a weighted true negative"):
        rep = assumption_report(
            z, torch.zeros(4, dtype=torch.long), hardening=hscl.ExponentialTilt(1.0), backend=backend
        )
    assert rep.num_excluded == 8 and math.isnan(rep.fraction) and math.isnan(rep.losses["H-SCL"])


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(z=torch.randn(4, 3, 2)), ValueError, "exactly 2 views"),
        (dict(labels=None), ValueError, "the diagnostics needs labels"),
        (dict(hardening=None), ValueError, "hardening is required"),
        (dict(temperature=0), ValueError, "temperature must be finite and > 0"),
        (dict(chunk_size=0), ValueError, "chunk_size must be >= 1"),
        (dict(labels=torch.zeros(3, dtype=torch.long)), ValueError, "labels must have one entry per sample"),
        (dict(backend="sparse"), ValueError, "backend must be one of"),
        (dict(backend="tiled", chunk_size=4), ValueError, "chunk_size applies to backend='dense' only"),
        (dict(backend="tiled", tile_size=0), ValueError, "tile_size must be >= 1"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = dict(z=torch.randn(4, 2, 2), labels=torch.tensor([0, 1, 0, 1]), hardening=hscl.ExponentialTilt(1.0))
    args.update(kwargs)
    z, labels = args.pop("z"), args.pop("labels")
    with pytest.raises(exc, match=match):
        assumption_report(z, labels, **args)


def test_default_chunk_size_bounds_memory():
    assert default_chunk_size(100_000) * 36 * 100_000 <= 1 << 30
    assert default_chunk_size(10) == 10
    assert default_chunk_size(10**9) == 1
