"""Argument checks shared by the functional and module APIs.

Every check runs before any computation and raises a ``ValueError`` or ``TypeError`` that names the argument
and what was expected.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from .hardening import Hardening

NEGATIVES = ("all", "other_class")
POSITIVES = ("views", "labels")
REDUCTIONS = ("mean", "pairs", "none")


def check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_positive_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def max_score(dtype: torch.dtype) -> float:
    """The largest score |s_ij| = |z_i . z_j| / t the losses accept for embeddings of ``dtype``:
    sqrt(finfo.max) of the compute dtype, about 1.8e19 in float32 (also for half-precision inputs, which are
    computed in float32) and 1.3e154 in float64. Within it every step of the loss stays finite: differences
    of scores, beta times them (beta <= 1e4), and sums of up to 1e19 loss terms."""
    return math.sqrt(torch.finfo(torch.promote_types(dtype, torch.float32)).max)


def check_temperature(value) -> float:
    """t finite and > 0, with 1/t <= :func:`max_score` of float64 (t >= 7.5e-155); the tighter bound of
    float32 (t >= 5.4e-20) is checked by :func:`check_embeddings`, which knows the dtype."""
    value = check_positive_real("temperature", value)
    low = 1.0 / max_score(torch.float64)
    if value < low:
        raise ValueError(
            f"temperature must be >= {low:.3g} (1/t is the largest score of L2-normalised embeddings and must "
            f"stay below sqrt(finfo(float64).max) = {1.0 / low:.3g}), got {value:g}"
        )
    return value


def check_optional_count(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1 or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_num_negatives(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"num_negatives must be a real number >= 1 or None, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"num_negatives must be finite and >= 1, got {value}")
    return value


def check_debias(debias, negatives: str) -> float:
    if isinstance(debias, bool) or not isinstance(debias, numbers.Real):
        raise TypeError(f"debias must be a real number in [0, 1), got {type(debias).__name__}")
    debias = float(debias)
    if not (0.0 <= debias < 1.0):
        raise ValueError(f"debias (the class prior tau_plus) must be in [0, 1), got {debias}")
    if debias > 0 and negatives != "all":
        raise ValueError(
            f"debias={debias} corrects for class collisions and only applies with negatives='all', "
            f"got negatives={negatives!r}"
        )
    return debias


def check_hardening(hardening) -> Hardening | Callable[[Tensor], Tensor] | None:
    if hardening is None or isinstance(hardening, Hardening):
        return hardening
    if not callable(hardening):
        raise TypeError(
            "hardening must be None, hscl.ExponentialTilt(beta), hscl.Threshold(tau) or a callable mapping "
            f"scores to log-weights, got {type(hardening).__name__}"
        )
    return hardening


def check_options(*, negatives, positives, hardening, temperature, num_negatives, debias, reduction) -> dict:
    """Validate the loss options (not the tensors). Returns the normalised values."""
    negatives = check_choice("negatives", negatives, NEGATIVES)
    positives = check_choice("positives", positives, POSITIVES)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    return dict(
        negatives=negatives,
        positives=positives,
        reduction=reduction,
        hardening=check_hardening(hardening),
        temperature=check_temperature(temperature),
        num_negatives=check_num_negatives(num_negatives),
        debias=check_debias(debias, negatives),
    )


def needs_labels(negatives: str, positives: str) -> str | None:
    """The option that requires labels, if any."""
    if negatives == "other_class":
        return "negatives='other_class'"
    if positives == "labels":
        return "positives='labels'"
    return None


def _refuse_meta(name: str, t: Tensor) -> None:
    if t.is_meta:
        raise ValueError(
            f"{name} is a meta tensor (device='meta'); meta tensors hold no values and are not supported: "
            "pass a tensor on a real device (cpu, cuda, ...)"
        )


def check_embeddings(z, *, positives: str, normalize: bool, temperature: float) -> None:
    """Check ``z`` ``[B, V, D]``: a finite floating tensor on a real device, no zero row when it is normalised,
    and scores z_i . z_j / t within :func:`max_score` of its compute dtype (``temperature`` already checked by
    :func:`check_temperature`). One host sync."""
    if not isinstance(z, Tensor):
        raise TypeError(f"z must be a torch.Tensor of shape [B, V, D], got {type(z).__name__}")
    _refuse_meta("z", z)
    if z.dim() != 3:
        raise ValueError(f"z must be 3-D of shape [B, V, D] (samples, views, dim), got shape {tuple(z.shape)}")
    if not z.is_floating_point():
        raise TypeError(f"z must have a floating dtype, got {z.dtype}")
    b, v, d = z.shape
    if b < 1 or d < 1:
        raise ValueError(f"z must have at least one sample and one feature, got shape {tuple(z.shape)}")
    if v < 1:
        raise ValueError(f"z must have at least one view, got shape {tuple(z.shape)}")
    if positives == "views" and v < 2:
        raise ValueError(
            f"positives='views' needs at least 2 views per sample, got z of shape {tuple(z.shape)} (V={v}); "
            "pass more views or positives='labels'"
        )
    limit = max_score(z.dtype)
    compute = torch.promote_types(z.dtype, torch.float32)
    if 1.0 / temperature > limit:
        computed = "" if compute == z.dtype else f", computed in {compute}"
        raise ValueError(
            f"temperature must be >= {1.0 / limit:.3g} for {z.dtype} embeddings{computed}: 1/t scales every "
            f"score (those of L2-normalised embeddings reach 1/t) and must stay below sqrt(finfo({compute}).max) "
            f"= {limit:.3g}; got temperature={temperature:g}"
        )
    with torch.no_grad():
        flat = z.detach().reshape(b * v, d)
        nonfinite = ~torch.isfinite(flat).all()
        if normalize:
            zero = (flat == 0).all(dim=1).any()
            norm = torch.zeros((), dtype=compute, device=flat.device)
        else:
            zero = torch.zeros((), dtype=torch.bool, device=flat.device)
            x = flat.to(compute)
            top = x.abs().amax()  # the largest row norm, computed without overflow or underflow
            norm = top * torch.linalg.vector_norm(x / torch.where(top > 0, top, 1.0), dim=1).amax()
        checks = torch.stack([nonfinite.to(compute), zero.to(compute), norm]).tolist()  # one host sync
    nonfinite, zero, norm = bool(checks[0]), bool(checks[1]), checks[2]
    if nonfinite:
        raise ValueError("z contains NaN or inf; the embeddings must be finite")
    if zero:
        raise ValueError("z contains an all-zero embedding, which cannot be L2-normalised (normalize=True)")
    if not normalize and norm * (norm / temperature) > limit:
        raise ValueError(
            f"with normalize=False the scores z_i . z_j / temperature must stay below sqrt(finfo({compute}).max) "
            f"= {limit:.3g}, but the largest, max_i |z_i|^2 / temperature, is {norm * (norm / temperature):.3g} "
            f"(max_i |z_i| = {norm:.3g}, temperature={temperature:g}): scale z down, raise the temperature or "
            "use normalize=True"
        )


def check_ids(name: str, ids, *, batch: int, device: torch.device, required_by: str | None = None) -> None:
    if ids is None:
        if required_by is not None:
            raise ValueError(f"{required_by} needs {name}, got {name}=None")
        return
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [B], got {type(ids).__name__}")
    _refuse_meta(name, ids)
    if ids.dim() != 1:
        raise ValueError(f"{name} must be 1-D of shape [B]={[batch]}, got shape {tuple(ids.shape)}")
    if ids.shape[0] != batch:
        raise ValueError(f"{name} must have one entry per sample: length {batch} (z.shape[0]), got {ids.shape[0]}")
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"{name} must have an integer dtype (e.g. torch.long), got {ids.dtype}")
    if ids.device != device:
        raise ValueError(f"{name} must be on the same device as z ({device}), got {ids.device}")


__all__ = [
    "check_choice",
    "check_debias",
    "check_embeddings",
    "check_hardening",
    "check_ids",
    "check_num_negatives",
    "check_optional_count",
    "check_options",
    "check_positive_real",
    "check_temperature",
    "max_score",
    "needs_labels",
]


def check_int(name: str, value, minimum: int, *, numpy: bool = False, optional: bool = False, note: str = ""):
    """``value`` unchanged when it is an int >= ``minimum`` (not a bool; with ``numpy=True`` a NumPy integer
    too; with ``optional=True`` also ``None``), else a ``ValueError`` "NAME must be [None or ]an int >= MINIMUM
    [NOTE], got VALUE"."""
    if optional and value is None:
        return None
    if numpy:
        import numpy as np

        types = (int, np.integer)
    else:
        types = int
    if isinstance(value, bool) or not isinstance(value, types) or value < minimum:
        expected = f"{'None or ' if optional else ''}an int >= {minimum}{f' {note}' if note else ''}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


__all__ += ["check_int"]
