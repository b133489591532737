"""The hardening functions (:mod:`hscl.hardening`): beta and tau outside their ranges are refused, beta above
the accepted 1e4 too."""

import math

import pytest

import hscl
from tests.conftest import assert_raises as _raises


@pytest.mark.parametrize("beta", [-0.1, math.inf, math.nan])
def test_beta_out_of_range(beta):
    _raises(ValueError, r"beta must be finite and >= 0", hscl.ExponentialTilt, beta)


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf])
def test_tau_out_of_range(tau):
    _raises(ValueError, r"tau must be finite and > 0", hscl.Threshold, tau)


# Issue 12, item 6: values beyond what the computation can represent are refused up front, never NaN or inf.


@pytest.mark.parametrize("beta", [1e4 * (1 + 1e-9), 1e6, 3.5e38, 1e300])
def test_beta_above_the_accepted_range(beta):
    """ExponentialTilt(3.5e38) used to give a NaN loss (beta is inf in float32); beta is now capped at 1e4."""
    _raises(ValueError, r"beta must be finite and >= 0\.0 and <= 10000, got", hscl.ExponentialTilt, beta)
    _raises(ValueError, r"beta must be finite and >= 0\.0 and <= 10000", hscl.losses.HUCL, beta=beta)
    assert hscl.ExponentialTilt(1e4).beta == 1e4


def test_threshold_cut_is_the_largest_float_below_log_tau():
    """Keeping s > cut keeps exactly the scores s >= log tau of that dtype (the kernels' strict compare)."""
    import math

    import torch

    from hscl import Threshold

    for tau in (math.exp(-0.5), 1.0, 3.7):
        h = Threshold(tau)
        for dtype in (torch.float32, torch.float64):
            cut = torch.tensor(h.cut(dtype), dtype=dtype)
            log_tau = torch.tensor(h.log_tau, dtype=dtype)
            assert cut < log_tau and torch.nextafter(cut, torch.tensor(math.inf, dtype=dtype)) == log_tau
