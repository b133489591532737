"""The linear probe (:mod:`hscl.evaluation.linear`): its C is chosen on the validation split only."""

import numpy as np
import pytest

from hscl.evaluation import (
    linear_probe,
)


def test_linear_probe_selects_on_validation_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    a = linear_probe(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:])
    b = linear_probe(x[:200], y[:200], x[200:250], y[200:250], x[250:], 1 - y[250:])  # test labels flipped
    assert a["C"] == b["C"] and a["linear_top1"] == pytest.approx(1 - b["linear_top1"])
    assert a["linear_top1"] > 0.9 and a["val_top1"] > 0.9
    with pytest.raises(ValueError, match="validation split is empty"):
        linear_probe(x[:200], y[:200], x[:0], y[:0], x[250:], y[250:])
