"""Hardening functions: how the negatives are tilted toward the hard ones (docs/math.md section 2).

A hardening function eta(s) >= 0 is non-decreasing in the score s = z_i . z_j / t. hscl works with its
logarithm, the *log-weight* w_ij = log eta(s_ij), so that every sum stays a log-sum-exp.

Contract for a user's own hardening function
-------------------------------------------
Any callable ``h`` with ``h(scores) -> log_weights`` can be passed as ``hardening``:

* ``scores`` is a floating tensor of any shape (in practice ``[anchors, reference]``) holding s_ij.
* It returns a tensor of the same shape and a floating dtype: the log-weights w_ij = log eta(s_ij).
* ``-inf`` is allowed and means "weight zero" (that candidate is not a negative). ``nan`` and ``+inf``
  are not allowed and raise a ``ValueError``.
* It should be non-decreasing in s (not checked) and differentiable where finite, with a finite gradient
  there. To produce ``-inf``, use ``torch.where`` / ``masked_fill`` on the output rather than ``log(0)``,
  whose backward is ``0 * inf = nan``.

Example: a soft threshold ``lambda s: torch.nn.functional.logsigmoid(4.0 * (s + 0.5))``.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

__all__ = ["MAX_BETA", "ExponentialTilt", "Hardening", "Threshold", "from_beta_tau"]


#: The largest accepted beta of :class:`ExponentialTilt`.
MAX_BETA = 1e4


def _check_real(name: str, value, *, low: float, low_inclusive: bool, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    ok = value >= low if low_inclusive else value > low
    if not math.isfinite(value) or not ok or (high is not None and value > high):
        bound = f">= {low}" if low_inclusive else f"> {low}"
        if high is not None:
            bound += f" and <= {high:g}"
        raise ValueError(f"{name} must be finite and {bound}, got {value:g}")
    return value


class Hardening:
    """Base class of the built-in hardening functions: ``log_weights(scores)`` gives w = log eta(s)."""

    def log_weights(self, scores: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, scores: Tensor) -> Tensor:
        return self.log_weights(scores)


class ExponentialTilt(Hardening):
    r"""Exponential tilt: eta(s) = (e^s)^beta, so w_ij = beta * s_ij (Robinson et al.; the authors' code).

    The tilted mean of e^s over the negatives N(i) is then

        log E_i = LSE_{j in N(i)} ((1 + beta) s_ij) - LSE_{j in N(i)} (beta s_ij).

    ``beta = 0`` gives the unhardened loss; as beta grows, log E_i tends to max_{j in N(i)} s_ij.

    Args:
        beta: concentration, a finite real number in [0, 1e4] (``MAX_BETA``); larger values raise a
            ``ValueError``. At beta = 1e4 the tilt is already the hardest-negative limit for any practical
            purpose (a score gap of 1e-3 gets weight e^{-10}); beyond it, beta times the float32 rounding of
            the scores (about 1e-7 / t) decides the weights more and more (the float32 gradient is off by
            about 1e-3 at beta = 1e5 and is noise from about 1e8; the float64 one from about 1e16), and beyond
            3.4e38 beta is inf in float32 and the loss NaN.
    """

    def __init__(self, beta: float) -> None:
        self.beta = _check_real("beta", beta, low=0.0, low_inclusive=True, high=MAX_BETA)

    def log_weights(self, scores: Tensor) -> Tensor:
        return scores * self.beta

    def __repr__(self) -> str:
        return f"ExponentialTilt(beta={self.beta:g})"


class Threshold(Hardening):
    r"""Threshold: eta(s) = 1 if e^s >= tau else 0, so w_ij = 0 when s_ij >= log tau and -inf otherwise.

    Only the negatives harder than the threshold count, all with the same weight:

        log E_i = LSE_{j in N(i), s_ij >= log tau} (s_ij) - log |{j in N(i) : s_ij >= log tau}|.

    An anchor with no negative above the threshold carries no weighted negative and is left out of the
    mean (docs/math.md section 2). The paper uses tau = e^{-0.5} and tau = e^{-0.1}.

    Args:
        tau: the threshold on e^s, a finite real number > 0.
    """

    def __init__(self, tau: float) -> None:
        self.tau = _check_real("tau", tau, low=0.0, low_inclusive=False)
        self.log_tau = math.log(self.tau)

    def support(self, scores: Tensor) -> Tensor:
        """Boolean mask of the scores that carry weight (s >= log tau)."""
        return scores >= self.log_tau

    def log_weights(self, scores: Tensor) -> Tensor:
        zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
        return torch.where(self.support(scores), zero, -math.inf)

    def cut(self, dtype: torch.dtype) -> float:
        """The largest float of ``dtype`` below log tau: a score s is kept when s > cut, i.e. s >= log tau in that
        dtype (the strict compare of ``F.threshold`` and of the tiled and Triton kernels)."""
        log_tau = torch.tensor(self.log_tau, dtype=dtype)
        return torch.nextafter(log_tau, torch.tensor(-math.inf, dtype=dtype)).item()

    def __repr__(self) -> str:
        return f"Threshold(tau={self.tau:g})"


def from_beta_tau(beta: float | None = None, tau: float | None = None, *, default_beta: float = 1.0) -> Hardening:
    """The hardening named by exactly one of ``beta`` (exponential tilt) or ``tau`` (threshold)."""
    if beta is not None and tau is not None:
        raise ValueError(f"give beta (exponential tilt) or tau (threshold), not both: beta={beta}, tau={tau}")
    if tau is not None:
        return Threshold(tau)
    return ExponentialTilt(default_beta if beta is None else beta)
