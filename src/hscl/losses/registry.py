"""The methods of the paper's tables by name, shared by every pipeline: ``make_loss("hscl-beta", t)``.

This is the one place that defines them. SCL and H-SCL come in two configurations (docs/math.md section 6):

* the **theory's** (``scl``, ``hscl-tau``, ``hscl-beta``): view positives (the other views of the same sample),
  the mean over anchors; the setting of the asymptotic analysis (docs/math.md section 4);
* the **paper's accuracy configuration** (``scl-labels``, ``hscl-tau-labels``, ``hscl-beta-labels``): every
  other same-class embedding is a positive and all valid (anchor, positive) pairs are pooled
  (``positives="labels"``, ``reduction="pairs"``), as in the authors' training script ``main.py``.

Negatives are other-class samples in both. UCL, H-UCL (view positives, all negatives) and SupCon (Khosla et al.)
exist in one configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from .hard_scl import HSCL
from .hard_ucl import HUCL
from .scl import SCL
from .supcon import SupConLoss
from .ucl import UCL

__all__ = ["DEFAULT_BETA", "DEFAULT_TAU", "METHODS", "TABLE_METHODS", "Method", "make_loss", "table_methods"]

#: The pre-registered primary hardening settings: the exponential tilt beta = 1 (the HCL and H-SCL authors'
#: default) and the threshold tau = e^-0.5 (the paper's Figures 4 and 5).
DEFAULT_BETA = 1.0
DEFAULT_TAU = math.exp(-0.5)


@dataclass(frozen=True)
class Method:
    """A method of the tables: its loss family and, for SCL and H-SCL, the configuration.

    ``family`` is ``ucl``, ``hucl``, ``scl``, ``hscl`` or ``supcon``; ``hardening`` ``"beta"``, ``"tau"`` or
    ``None``; ``positives`` ``"views"`` or ``"labels"``; ``reduction`` ``"mean"`` or ``"pairs"``."""

    label: str
    family: str
    hardening: str | None = None
    positives: str = "views"
    reduction: str = "mean"

    @property
    def supervised(self) -> bool:
        """Whether the loss sees labels."""
        return self.family in ("scl", "hscl", "supcon")

    @property
    def configuration(self) -> str:
        """``"views"`` (the theory's), ``"labels"`` (the paper's accuracy script) or ``"supcon"``."""
        return "supcon" if self.family == "supcon" else self.positives

    def spec(self) -> dict:
        """What defines the loss (for fingerprints and tables)."""
        return {
            "family": self.family,
            "hardening": self.hardening,
            "positives": self.positives,
            "reduction": self.reduction,
        }


_LABELS = {"beta": "beta=1", "tau": "tau=e^-0.5"}


def _supervised(family: str, hardening: str | None, positives: str) -> Method:
    name = "SCL" if family == "scl" else f"H-SCL ({_LABELS[hardening]})"
    if positives == "labels":
        return Method(f"{name}, label pos.", family, hardening, "labels", "pairs")
    return Method(name, family, hardening)


METHODS: dict[str, Method] = {
    "ucl": Method("UCL", "ucl"),
    "hucl": Method("H-UCL (beta=1)", "hucl", "beta"),
    "scl": _supervised("scl", None, "views"),
    "hscl-tau": _supervised("hscl", "tau", "views"),
    "hscl-beta": _supervised("hscl", "beta", "views"),
    "scl-labels": _supervised("scl", None, "labels"),
    "hscl-tau-labels": _supervised("hscl", "tau", "labels"),
    "hscl-beta-labels": _supervised("hscl", "beta", "labels"),
    "supcon": Method("SupCon", "supcon"),
}
#: The methods of the tables, in table order (``hscl`` is an alias of ``hscl-beta`` and is not run twice).
TABLE_METHODS: tuple[str, ...] = tuple(METHODS)
METHODS["hscl"] = METHODS["hscl-beta"]  # alias: H-SCL with its default tilt


def table_methods(*, tau: bool = True, supcon: bool = True) -> tuple[str, ...]:
    """The methods of :data:`TABLE_METHODS`, in table order, less the thresholded ones (``tau=False``: the
    primary comparison uses the tilt) or SupCon (``supcon=False``). Whether a method sees labels is
    ``METHODS[name].supervised``."""
    return tuple(
        name
        for name in TABLE_METHODS
        if (tau or METHODS[name].hardening != "tau") and (supcon or METHODS[name].family != "supcon")
    )


def make_loss(name: str, temperature: float, *, beta: float | None = None, tau: float | None = None) -> nn.Module:
    """The loss module of method ``name``; ``beta`` / ``tau`` override the default hardening (beta = 1,
    tau = e^-0.5) of the hardened methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    method = METHODS[name]
    if (beta is not None or tau is not None) and method.hardening is None:
        hardened = ", ".join(k for k, m in METHODS.items() if m.hardening is not None)
        raise ValueError(f"method {name!r} has no hardening: --beta/--tau apply to {hardened}")
    if beta is not None and tau is not None:
        raise ValueError("give --beta or --tau, not both")
    if method.hardening == "tau" and beta is None:
        tau = DEFAULT_TAU if tau is None else tau
    if method.hardening is not None and tau is None and beta is None:
        beta = DEFAULT_BETA
    if method.family == "ucl":
        return UCL(temperature=temperature)
    if method.family == "hucl":
        return HUCL(beta=beta, tau=tau, temperature=temperature)
    if method.family == "supcon":
        return SupConLoss(temperature=temperature)
    options = dict(temperature=temperature, positives=method.positives, reduction=method.reduction)
    if method.family == "scl":
        return SCL(**options)
    return HSCL(beta=beta, tau=tau, **options)
