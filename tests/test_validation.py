"""Bad input: a ValueError or TypeError naming the argument, raised before any computation."""

import math

import pytest
import torch

import hscl
from hscl.diagnostics import asymptotic_losses
from hscl.functional import contrastive_loss, supcon_loss
from tests.conftest import assert_raises as _raises

Z = torch.randn(4, 2, 3)
Y = torch.tensor([0, 1, 0, 1])


CASES = [
    ("z 2-D", ValueError, r"z must be 3-D", (torch.randn(4, 3),), {}),
    ("z 4-D", ValueError, r"z must be 3-D", (torch.randn(4, 2, 3, 1),), {}),
    ("z not a tensor", TypeError, r"z must be a torch.Tensor", ([[1.0]],), {}),
    ("z integer", TypeError, r"z must have a floating dtype", (torch.ones(4, 2, 3, dtype=torch.long),), {}),
    ("one view", ValueError, r"positives='views' needs at least 2 views", (torch.randn(4, 1, 3),), {}),
    ("labels wrong length", ValueError, r"labels must have one entry per sample", (Z, torch.tensor([0, 1, 0])), {}),
    ("labels 2-D", ValueError, r"labels must be 1-D", (Z, Y[:, None]), {}),
    ("labels float", TypeError, r"labels must have an integer dtype", (Z, Y.float()), {}),
    ("labels bool", TypeError, r"labels must have an integer dtype", (Z, Y.bool()), {}),
    ("labels list", TypeError, r"labels must be a torch.Tensor", (Z, [0, 1, 0, 1]), {}),
    (
        "other_class without labels",
        ValueError,
        r"negatives='other_class' needs labels",
        (Z,),
        dict(negatives="other_class"),
    ),
    ("positives=labels without labels", ValueError, r"positives='labels' needs labels", (Z,), dict(positives="labels")),
    ("temperature 0", ValueError, r"temperature must be finite and > 0", (Z,), dict(temperature=0.0)),
    ("temperature negative", ValueError, r"temperature must be finite and > 0", (Z,), dict(temperature=-1.0)),
    ("temperature nan", ValueError, r"temperature must be finite", (Z,), dict(temperature=math.nan)),
    ("temperature inf", ValueError, r"temperature must be finite", (Z,), dict(temperature=math.inf)),
    ("temperature string", TypeError, r"temperature must be a real number", (Z,), dict(temperature="0.5")),
    ("debias 1", ValueError, r"debias .* must be in \[0, 1\)", (Z,), dict(debias=1.0)),
    ("debias negative", ValueError, r"debias .* must be in \[0, 1\)", (Z,), dict(debias=-0.1)),
    (
        "debias with other_class",
        ValueError,
        r"only applies with negatives='all'",
        (Z, Y),
        dict(debias=0.1, negatives="other_class"),
    ),
    ("num_negatives 0", ValueError, r"num_negatives must be finite and >= 1", (Z,), dict(num_negatives=0)),
    ("num_negatives 0.5", ValueError, r"num_negatives must be finite and >= 1", (Z,), dict(num_negatives=0.5)),
    ("unknown negatives", ValueError, r"negatives must be one of 'all', 'other_class'", (Z,), dict(negatives="some")),
    ("unknown positives", ValueError, r"positives must be one of", (Z,), dict(positives="pairs")),
    ("unknown reduction", ValueError, r"reduction must be one of 'mean', 'pairs', 'none'", (Z,), dict(reduction="sum")),
    (
        "nan in z",
        ValueError,
        r"z contains NaN or inf",
        (torch.tensor([[[1.0, math.nan]], [[1.0, 0.0]]]).expand(2, 2, 2),),
        {},
    ),
    ("inf in z", ValueError, r"z contains NaN or inf", (torch.full((2, 2, 2), math.inf),), {}),
    ("zero vector", ValueError, r"all-zero embedding", (torch.cat([torch.zeros(1, 2, 3), torch.ones(1, 2, 3)]),), {}),
    ("hardening not callable", TypeError, r"hardening must be None", (Z,), dict(hardening=1.0)),
    ("chunk_size 0", ValueError, r"chunk_size must be >= 1", (Z,), dict(chunk_size=0)),
    ("chunk_size float", TypeError, r"chunk_size must be an int", (Z,), dict(chunk_size=2.5)),
]


@pytest.mark.parametrize("name,exc,match,args,kw", CASES, ids=[c[0] for c in CASES])
def test_functional_bad_input(name, exc, match, args, kw):
    _raises(exc, match, contrastive_loss, *args, **kw)


def test_zero_vector_allowed_without_normalisation():
    z = torch.cat([torch.zeros(1, 2, 3), torch.ones(1, 2, 3)])
    assert torch.isfinite(contrastive_loss(z, normalize=False))


def test_presets_validate():
    _raises(ValueError, r"beta must be finite and >= 0", hscl.losses.HSCL, beta=-1.0)
    _raises(ValueError, r"tau must be finite and > 0", hscl.losses.HUCL, tau=0.0)
    _raises(ValueError, r"give beta .* or tau .*, not both", hscl.losses.HSCL, beta=1.0, tau=0.5)
    _raises(ValueError, r"temperature must be finite and > 0", hscl.losses.SCL, temperature=0.0)


@pytest.mark.parametrize("size", [0, -3])
def test_module_queue_and_chunk_size(size):
    _raises(ValueError, r"queue_size must be >= 1", hscl.ContrastiveLoss, queue_size=size)
    _raises(ValueError, r"chunk_size must be >= 1", hscl.ContrastiveLoss, chunk_size=size)


def test_module_checks_inputs_before_work():
    loss = hscl.losses.SCL(queue_size=8)
    _raises(ValueError, r"negatives='other_class' needs labels", loss, Z)
    _raises(ValueError, r"instance_ids must have one entry per sample", loss, Z, Y, instance_ids=torch.arange(3))
    assert len(loss.queue) == 0, "nothing may be pushed by a failed call"


def test_queue_rejects_mixed_dimensions_and_labels():
    loss = hscl.losses.UCL(queue_size=8)
    loss(Z, Y)
    _raises(ValueError, r"queue holds embeddings of dimension 3, got 5", loss, torch.randn(4, 2, 5), Y)
    _raises(ValueError, r"queue holds embeddings with labels", loss, Z)


def test_user_hardening_bad_output():
    _raises(ValueError, r"hardening must return floating log-weights", contrastive_loss, Z, hardening=lambda s: s[0])
    _raises(ValueError, r"NaN or \+inf", contrastive_loss, Z, hardening=lambda s: s * math.inf)


def test_supcon_bad_input():
    _raises(ValueError, r"supcon_loss needs labels", supcon_loss, Z, None)
    _raises(ValueError, r"temperature must be finite and > 0", supcon_loss, Z, Y, temperature=0)
    _raises(ValueError, r"z must be 3-D", supcon_loss, torch.randn(4, 3), Y)


# Issue 12, item 6: values beyond what the computation can represent are refused up front, never NaN or inf.


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("temperature", [1e-38, 1e-40, 5e-20])
def test_temperature_too_small_for_the_dtype(dtype, temperature):
    """temperature=1e-38 gave an inf loss and 1e-40 a NaN one in float32: 1/t must stay below
    sqrt(finfo(float32).max) = 1.84e19, so t >= 5.42e-20, checked before any computation."""
    z, y = Z.to(dtype), Y
    match = rf"temperature must be >= 5\.42e-20 for {dtype} embeddings.*got temperature={temperature:g}"
    _raises(ValueError, match, contrastive_loss, z, y, temperature=temperature)
    _raises(ValueError, match, supcon_loss, z, y, temperature=temperature)
    _raises(ValueError, match, hscl.losses.HSCL(beta=1.0, temperature=temperature, queue_size=4), z, y)
    _raises(ValueError, match, hscl.SupConLoss(temperature=temperature), z, y)
    _raises(ValueError, match, contrastive_loss, z, y, temperature=temperature, normalize=False)
    z2 = torch.randn(4, 2, 3).to(dtype)
    _raises(ValueError, match, asymptotic_losses, z2, Y, hardening=hscl.ExponentialTilt(1.0), temperature=temperature)


@pytest.mark.parametrize("temperature", [1e-160, 5e-324])
def test_temperature_too_small_for_any_dtype(temperature):
    """Below 1 / sqrt(finfo(float64).max) = 7.46e-155 no dtype can hold the scores: refused at construction."""
    match = r"temperature must be >= 7\.46e-155"
    _raises(ValueError, match, hscl.ContrastiveLoss, temperature=temperature)
    _raises(ValueError, match, hscl.SupConLoss, temperature=temperature)
    _raises(ValueError, match, contrastive_loss, Z.double(), temperature=temperature)
    _raises(ValueError, match, supcon_loss, Z.double(), Y, temperature=temperature)


@pytest.mark.parametrize("dtype,scale", [(torch.float32, 1e19), (torch.float32, 1e10), (torch.float64, 1e80)])
def test_unnormalised_scores_beyond_the_range(dtype, scale):
    """normalize=False with |z| ~ 1e19 gave NaN in float32: the largest score max_i |z_i|^2 / t must stay below
    sqrt(finfo.max) of the compute dtype."""
    z = (Z.double() / Z.double().abs().amax() * scale).to(dtype)
    match = r"with normalize=False the scores z_i \. z_j / temperature must stay below sqrt\(finfo"
    _raises(ValueError, match, contrastive_loss, z, Y, normalize=False)
    _raises(ValueError, match, supcon_loss, z, Y, normalize=False)
    _raises(ValueError, match, hscl.losses.UCL(normalize=False), z)
    assert torch.isfinite(contrastive_loss(z, Y))  # normalised, the same z is fine


# Issue 12, item 8: meta tensors are refused with a clear error before any work.

META = torch.empty(4, 2, 3, device="meta")


META_CALLS = [
    ("contrastive_loss", lambda: contrastive_loss(META, Y.to("meta"))),
    ("contrastive_loss other_class", lambda: contrastive_loss(META, Y, negatives="other_class")),
    ("supcon_loss", lambda: supcon_loss(META, Y)),
    ("SupConLoss", lambda: hscl.SupConLoss()(META, Y)),
    ("diagnostics", lambda: asymptotic_losses(META, Y, hardening=hscl.ExponentialTilt(1.0))),
]


@pytest.mark.parametrize("name,call", META_CALLS, ids=[c[0] for c in META_CALLS])
def test_meta_embeddings_are_refused(name, call):
    _raises(ValueError, r"z is a meta tensor \(device='meta'\); meta tensors .* are not supported", call)


def test_meta_module_input_is_refused_before_any_work():
    loss = hscl.losses.HSCL(beta=1.0, queue_size=8)
    _raises(ValueError, r"z is a meta tensor .* not supported", loss, META, Y)
    assert len(loss.queue) == 0 and int(loss.next_auto_id) == 0
    _raises(ValueError, r"labels is a meta tensor .* not supported", loss, Z, Y.to("meta"))
    _raises(ValueError, r"instance_ids is a meta tensor .* not supported", loss, Z, Y, instance_ids=Y.to("meta"))
