"""The MLP encoder (:mod:`hscl.models.mlp`): shapes, its spec rebuilds it, bad sizes."""

import pytest
import torch

from hscl.models import MLPEncoder, build_model


def test_mlp_shapes_and_spec():
    m = MLPEncoder(8, hidden=16, features=12, projection=4)
    assert m(torch.randn(6, 2, 8)).shape == (6, 2, 4)
    assert m.features(torch.randn(6, 8)).shape == (6, 12)
    assert isinstance(build_model(m.spec), MLPEncoder)
    with pytest.raises(ValueError, match="unknown model 'resnet99'"):
        build_model({"name": "resnet99"})
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        MLPEncoder(8, hidden=0)
