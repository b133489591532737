"""ResNet encoders: the standard architectures (parameter counts), shapes, views, spec round trip."""

import pytest
import torch

from hscl.models import ResNetEncoder, build_model


@pytest.mark.parametrize("depth,expected", [(18, 11_168_832), (34, 21_276_992), (50, 23_500_352)])
def test_backbone_matches_the_standard_resnet(depth, expected):
    """torchvision's ResNet minus its fc layer, with the 7x7 stem swapped for the 3x3 CIFAR stem."""
    model = ResNetEncoder(depth)
    backbone = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head"))
    assert backbone == expected
    assert model.num_features == (2048 if depth == 50 else 512)


def test_shapes_views_and_stems():
    model = ResNetEncoder(18, width=8, hidden=32, projection=16).eval()
    x = torch.randn(3, 2, 3, 32, 32)
    assert model(x).shape == (3, 2, 16) and model.features(x).shape == (3, 2, 64)
    torch.testing.assert_close(model(x)[:, 1], model(x[:, 1]))
    gray = ResNetEncoder(50, width=4, in_channels=1, cifar_stem=False)
    assert gray(torch.randn(2, 1, 64, 64)).shape == (2, 128)
    assert isinstance(build_model(model.spec), ResNetEncoder)


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNetEncoder(101)
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        ResNetEncoder(18, width=0)
