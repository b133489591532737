"""The methods of the paper's tables by name, shared by every pipeline: ``make_loss("hscl-beta", t)``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from .hscl import HSCL
from .hucl import HUCL
from .scl import SCL
from .supcon import SupConLoss
from .ucl import UCL

__all__ = ["METHODS", "Method", "make_loss"]


@dataclass(frozen=True)
class Method:
    label: str
    supervised: bool
    hardening: str | None  # "beta", "tau" or None


METHODS: dict[str, Method] = {
    "ucl": Method("UCL", False, None),
    "hucl": Method("H-UCL (beta=1)", False, "beta"),
    "scl": Method("SCL", True, None),
    "hscl-tau": Method("H-SCL (tau=e^-0.5)", True, "tau"),
    "hscl-beta": Method("H-SCL (beta=1)", True, "beta"),
    "supcon": Method("SupCon", True, None),
}
METHODS["hscl"] = Method("H-SCL (beta=1)", True, "beta")  # alias: H-SCL with its default tilt


def make_loss(name: str, temperature: float, *, beta: float | None = None, tau: float | None = None) -> nn.Module:
    """The loss module of method ``name``; ``beta`` / ``tau`` override the default hardening (beta = 1,
    tau = e^-0.5) of the hardened methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    method = METHODS[name]
    if (beta is not None or tau is not None) and method.hardening is None:
        raise ValueError(f"method {name!r} has no hardening: --beta/--tau apply to hucl, hscl, hscl-beta, hscl-tau")
    if beta is not None and tau is not None:
        raise ValueError("give --beta or --tau, not both")
    if method.hardening == "tau" and beta is None:
        tau = math.exp(-0.5) if tau is None else tau
    if method.hardening is not None and tau is None and beta is None:
        beta = 1.0
    if name == "ucl":
        return UCL(temperature=temperature)
    if name == "hucl":
        return HUCL(beta=beta, tau=tau, temperature=temperature)
    if name == "scl":
        return SCL(temperature=temperature)
    if name == "supcon":
        return SupConLoss(temperature=temperature)
    return HSCL(beta=beta, tau=tau, temperature=temperature)
