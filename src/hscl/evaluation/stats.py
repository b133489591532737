"""Paired comparisons with intervals that fit the design, and the verdict they support (docs/math.md section 5).

Two designs occur in the experiments:

* **Repeated k-fold cross-validation** (graphs): r seeds x k folds give n = r k paired differences
  d_1..d_n (method a minus method b on the same seed and fold). The training sets of the folds overlap, so the
  differences are correlated and the naive standard error s / sqrt(n) is too small. The corrected resampled
  t-test (Nadeau and Bengio, 2003; in the r x k form of Bouckaert and Frank, 2004) inflates the variance:

      mean = (1/n) sum_i d_i,   s^2 = (1/(n-1)) sum_i (d_i - mean)^2
      se   = sqrt( (1/n + n_test/n_train) * s^2 ),   t = mean / se,   df = n - 1

  with n_test / n_train = 1 / (k - 1) for k-fold CV; the 95% interval is mean +- t_{0.975, n-1} se.
* **Independent seeds** (images, digits): the r per-seed differences are independent, so the usual t interval
  applies: se = s / sqrt(r), df = r - 1.

Every standard deviation here uses ddof = 1. A comparison reads ``"better"`` when its 95% interval lies above
zero, ``"worse"`` when it lies below, and ``"no difference detected"`` otherwise (including when fewer than
two differences exist, or all of them are equal, so that no t interval can be formed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import check_int

__all__ = ["Comparison", "corrected_resampled_ttest", "seed_interval", "verdict"]

BETTER, WORSE, UNDECIDED = "better", "worse", "no difference detected"


@dataclass(frozen=True)
class Comparison:
    """A paired comparison: the mean difference, its standard error, the 95% interval and the verdict.
    ``n`` is the number of paired differences, ``df`` the degrees of freedom of the t interval."""

    mean: float
    se: float
    low: float
    high: float
    n: int
    df: int
    verdict: str
    wins: int
    ties: int
    losses: int

    def interval(self, scale: float = 1.0, digits: int = 1) -> str:
        """``+1.2 [-0.3, +2.7]``: the mean and the 95% interval times ``scale`` (the mean alone, with why, when
        there is no interval)."""
        if not math.isfinite(self.se):
            return f"{scale * self.mean:+.{digits}f} (n={self.n})"
        if self.se == 0:
            return f"{scale * self.mean:+.{digits}f} (equal in all {self.n}: no t interval)"
        mean, low, high = (f"{scale * v:+.{digits}f}" for v in (self.mean, self.low, self.high))
        return f"{mean} [{low}, {high}]"

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        """``+1.2 [-0.3, +2.7] better``: :meth:`interval`, then the verdict."""
        return f"{self.interval(scale, digits)} {self.verdict}"


def mean_std(values, scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± std`` of ``values`` times ``scale`` (std with ddof = 1); ``mean (n=1)`` for one value, ``—`` for
    none."""
    v = scale * np.asarray(values, dtype=np.float64).ravel()
    if not v.size:
        return "—"
    if v.size == 1:
        return f"{v[0]:.{digits}f} (n=1)"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def verdict(low: float, high: float) -> str:
    """``"better"`` when the interval [low, high] lies above zero, ``"worse"`` below, else no difference."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return UNDECIDED


def _differences(diffs) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64).ravel()
    if not np.all(np.isfinite(d)):
        raise ValueError("diffs must be finite numbers")
    return d


def _comparison(d: np.ndarray, variance_factor: float, *, tie: float = 1e-12) -> Comparison:
    from scipy.stats import t as student

    n = int(d.size)
    wins, ties = int((d > tie).sum()), int((np.abs(d) <= tie).sum())
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return Comparison(mean, float("nan"), float("nan"), float("nan"), n, 0, UNDECIDED, wins, ties, n - wins - ties)
    se = math.sqrt(variance_factor * float(d.var(ddof=1)))
    half = float(student.ppf(0.975, n - 1)) * se
    low, high = mean - half, mean + half
    # identical differences: the t statistic is undefined, so no verdict is claimed
    found = verdict(low, high) if se > 0 else UNDECIDED
    return Comparison(mean, se, low, high, n, n - 1, found, wins, ties, n - wins - ties)


def corrected_resampled_ttest(diffs, folds: int) -> Comparison:
    """The corrected resampled t-test (Nadeau and Bengio 2003) on paired differences from repeated
    ``folds``-fold cross-validation (any number of repetitions; ``diffs`` flattened, one per (seed, fold)).

    Example: differences 1, 2, 3, 4 from 2 x 2-fold CV (n_test / n_train = 1):

    >>> c = corrected_resampled_ttest([1.0, 2.0, 3.0, 4.0], folds=2)
    >>> round(c.mean, 6), round(c.se, 6)   # se = sqrt((1/4 + 1) * var([1, 2, 3, 4], ddof=1))
    (2.5, 1.443376)
    """
    check_int("folds", folds, 2)
    d = _differences(diffs)
    return _comparison(d, 1.0 / max(d.size, 1) + 1.0 / (folds - 1))


def seed_interval(diffs) -> Comparison:
    """The t interval on independent per-seed paired differences (se = s / sqrt(r), df = r - 1)."""
    d = _differences(diffs)
    return _comparison(d, 1.0 / max(d.size, 1))
