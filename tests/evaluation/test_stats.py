"""Paired statistics against hand-computed examples (hscl.evaluation.stats)."""

import math

import numpy as np
import pytest

from hscl.evaluation.stats import corrected_resampled_ttest, seed_interval, verdict


def test_corrected_resampled_ttest_by_hand():
    # 2 x 2-fold CV, differences 1, 2, 3, 4: mean 2.5, s^2 = 5/3 (ddof 1), n_test / n_train = 1 / (2 - 1) = 1
    c = corrected_resampled_ttest([1.0, 2.0, 3.0, 4.0], folds=2)
    se = math.sqrt((1 / 4 + 1) * 5 / 3)
    assert c.mean == pytest.approx(2.5) and c.se == pytest.approx(se) and c.df == 3 and c.n == 4
    t975 = 3.182446305284263  # Student t, 3 degrees of freedom
    assert (c.low, c.high) == pytest.approx((2.5 - t975 * se, 2.5 + t975 * se))
    assert c.verdict == "no difference detected"
    # the same differences as independent seeds: se = s / sqrt(4) and the interval [0.446, 4.554] excludes 0
    s = seed_interval([1.0, 2.0, 3.0, 4.0])
    assert s.se == pytest.approx(math.sqrt(5 / 3 / 4)) and s.low == pytest.approx(2.5 - t975 * s.se)
    assert s.verdict == "better"


def test_ten_fold_factor_and_counts():
    # 3 x 10-fold: 30 differences, variance factor 1/30 + 1/9
    rng = np.random.default_rng(0)
    d = rng.normal(0.5, 2.0, size=30)
    d[:3] = 0.0
    c = corrected_resampled_ttest(d, folds=10)
    assert c.se == pytest.approx(math.sqrt((1 / 30 + 1 / 9) * d.var(ddof=1)))
    assert (c.wins, c.ties, c.losses) == ((d > 0).sum(), 3, (d < 0).sum())
    from scipy.stats import ttest_1samp

    # uncorrected, the seed interval agrees with scipy's one-sample t-test: 0 outside the 95% interval iff p < 0.05
    s = seed_interval(d)
    assert (s.verdict != "no difference detected") == (ttest_1samp(d, 0.0).pvalue < 0.05)
    assert s.se == pytest.approx(d.std(ddof=1) / math.sqrt(30))


def test_verdicts_and_edges():
    assert verdict(0.1, 2.0) == "better" and verdict(-3.0, -0.1) == "worse"
    assert verdict(-1, 1) == "no difference detected"
    assert seed_interval([-2.0, -2.5, -1.5]).verdict == "worse"
    one = seed_interval([1.0])
    assert one.verdict == "no difference detected" and math.isnan(one.se)
    assert "no difference detected" in one.text()
    assert corrected_resampled_ttest([0.0] * 10, folds=10).verdict == "no difference detected"
    assert seed_interval([0.5, 0.5, 0.5]).verdict == "no difference detected", "zero variance: no t interval"
    assert seed_interval([0.5, 0.5, 0.5]).text() == "+0.5 (equal in all 3: no t interval) no difference detected"
    assert corrected_resampled_ttest([1.0, 3.0], folds=10).text(scale=100).startswith("+200.0 [")
    with pytest.raises(ValueError, match="folds must be an int >= 2"):
        corrected_resampled_ttest([1.0, 2.0], folds=1)
    with pytest.raises(ValueError, match="finite"):
        seed_interval([1.0, float("nan")])


def test_mean_std_uses_ddof_1_and_says_when_there_is_no_spread():
    from hscl.evaluation.stats import mean_std

    assert mean_std([0.5, 0.7], scale=100) == "60.0 ± 14.1"  # std ddof=1 of (50, 70) = 14.14; ddof=0 would be 10
    assert mean_std([0.5], scale=100) == "50.0 (n=1)"
    assert mean_std([]) == "—"


def test_interval_is_text_without_the_verdict():
    c = seed_interval([1.0, 2.0, 3.0])
    assert c.text() == f"{c.interval()} {c.verdict}"
    assert c.interval().startswith("+2.0 [")
