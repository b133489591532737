"""Your own encoder and the projection head (:mod:`hscl.models.custom`): one ``projection_head`` for the ResNet
and ``ProjectedEncoder`` (the saved keys, the seeded weights), and an encoder given by its factory round-trips
through a checkpoint, rebuilt only when allowed."""

import pytest
import torch

from hscl.checkpoint import load_model, save_model
from hscl.models import ResNetEncoder

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


def test_your_own_encoder_round_trips_through_its_factory(tmp_path, monkeypatch):
    from hscl.models import ProjectedEncoder, feature_dim_of

    (tmp_path / "vector_encoders.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Linear(8, 10), nn.ReLU())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = ProjectedEncoder("vector_encoders:make", feature_dim=10, hidden=7, projection=3).eval()
    assert feature_dim_of(model.backbone, torch.zeros(2, 8)) == 10
    assert model.spec == {
        "name": "custom",
        "kwargs": {"backbone": "vector_encoders:make", "feature_dim": 10, "hidden": 7, "projection": 3},
    }
    save_model(tmp_path / "m.pt", model, temperature=0.5)
    with pytest.raises(ValueError, match=r"pass allow_factory='vector_encoders:make' .* if you trust it"):
        load_model(tmp_path / "m.pt")
    again, meta = load_model(tmp_path / "m.pt", allow_factory=True)
    x = torch.randn(5, 8)
    torch.testing.assert_close(again.eval()(x), model(x), rtol=0, atol=0)
    assert meta == {"temperature": 0.5}
    with pytest.raises(ValueError, match="give your own encoder as a factory string"):
        save_model(tmp_path / "n.pt", ProjectedEncoder(torch.nn.Linear(8, 4), feature_dim=4))
    with pytest.raises(ValueError, match="returned 10 features, the head was built for 9"):
        ProjectedEncoder("vector_encoders:make", feature_dim=9)(x)
