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


HEAD_KEYS = [
    "head.0.weight",
    "head.1.weight",
    "head.1.bias",
    "head.1.running_mean",
    "head.1.running_var",
    "head.1.num_batches_tracked",
    "head.3.weight",
    "head.3.bias",
]


def test_projection_head_keeps_the_saved_keys_and_the_seeded_weights():
    """One projection_head serves ResNetEncoder and ProjectedEncoder: the state-dict keys of checkpoints saved
    before, and under a seed the same weights as the Linear-BatchNorm-ReLU-Linear both used to build inline (sums
    taken from the code before the change, torch's default initialisation)."""
    from torch import nn

    from hscl.models import ProjectedEncoder, projection_head

    torch.manual_seed(0)
    resnet = ResNetEncoder(18, width=4, hidden=8, projection=4).state_dict()
    assert [k for k in resnet if k.startswith("head")] == HEAD_KEYS and list(resnet)[-len(HEAD_KEYS) :] == HEAD_KEYS
    sums = {k: resnet[k].double().sum().item() for k in HEAD_KEYS}
    batch_norm = {"weight": 8.0, "bias": 0.0, "running_mean": 0.0, "running_var": 8.0, "num_batches_tracked": 0.0}
    expected = {
        "head.0.weight": -0.4250207983,
        **{f"head.1.{k}": v for k, v in batch_norm.items()},
        "head.3.weight": 2.2209593597,
        "head.3.bias": 0.0211499631,
    }
    assert sums == pytest.approx(expected, abs=1e-8)
    total = sum(v.double().abs().sum().item() for v in resnet.values() if v.is_floating_point())
    assert total == pytest.approx(2277.03963307, abs=1e-6)

    torch.manual_seed(0)
    projected = ProjectedEncoder(nn.Identity(), 6, hidden=7, projection=5).state_dict()
    torch.manual_seed(0)
    inline = nn.Sequential(nn.Linear(6, 7, bias=False), nn.BatchNorm1d(7), nn.ReLU(inplace=True), nn.Linear(7, 5))
    assert list(projected) == HEAD_KEYS
    for key, value in inline.state_dict().items():
        assert torch.equal(projected[f"head.{key}"], value), key
    torch.manual_seed(0)
    assert all(torch.equal(v, inline.state_dict()[k]) for k, v in projection_head(6, 7, 5).state_dict().items())
