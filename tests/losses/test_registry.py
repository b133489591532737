"""The method table (:mod:`hscl.losses.registry`): ``make_loss`` by name and its errors, and each method's
configuration is the functional loss with that method's options."""

import pytest
import torch

import hscl


def test_method_registry():
    from hscl.losses.registry import METHODS, make_loss

    assert isinstance(make_loss("hscl-tau", 0.5).hardening, hscl.Threshold)
    assert make_loss("hscl", 0.5, beta=2.0).hardening.beta == 2.0
    assert isinstance(make_loss("supcon", 0.1), hscl.SupConLoss)
    assert all(METHODS[m].supervised == (m not in ("ucl", "hucl")) for m in METHODS)
    with pytest.raises(ValueError, match="has no hardening"):
        make_loss("scl", 0.5, beta=1.0)
    with pytest.raises(ValueError, match="unknown method 'simclr'"):
        make_loss("simclr", 0.5)


def test_registry_configurations_match_the_functional_loss():
    """The theory's configuration (view positives, mean) and the paper's accuracy configuration (label
    positives, pairs) are exactly the functional loss with those options."""
    from hscl.losses.registry import METHODS, TABLE_METHODS, make_loss

    g = torch.Generator().manual_seed(3)
    z, y = torch.randn(12, 2, 8, generator=g, dtype=torch.float64), torch.arange(12) % 3
    for name in ("scl", "hscl-beta", "hscl-tau", "scl-labels", "hscl-beta-labels", "hscl-tau-labels"):
        method, loss = METHODS[name], make_loss(name, 0.5)
        assert (loss.positives, loss.reduction) == (method.positives, method.reduction)
        assert method.configuration == ("labels" if name.endswith("-labels") else "views")
        expected = hscl.functional.contrastive_loss(
            z,
            y,
            negatives="other_class",
            hardening=loss.hardening,
            temperature=0.5,
            positives=method.positives,
            reduction=method.reduction,
        )
        torch.testing.assert_close(loss(z, y), expected)
    assert make_loss("scl-labels", 0.5)(z, y) != make_loss("scl", 0.5)(z, y)
    assert "hscl" not in TABLE_METHODS and len(set(METHODS[m].label for m in TABLE_METHODS)) == len(TABLE_METHODS)
