"""A multilayer perceptron encoder with a projection head, for feature-vector data."""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import check_int

__all__ = ["MLPEncoder"]


class MLPEncoder(nn.Module):
    """h = backbone(x) (two Linear-BatchNorm-ReLU layers), z = head(h) (Linear-ReLU-Linear).

    ``forward`` accepts ``[..., in_features]`` (e.g. ``[B, V, F]`` views) and returns ``[..., projection]``.
    """

    def __init__(self, in_features: int, hidden: int = 256, features: int = 128, projection: int = 64) -> None:
        super().__init__()
        for name, value in dict(
            in_features=in_features, hidden=hidden, features=features, projection=projection
        ).items():
            check_int(name, value, 1)
        self.spec = {
            "name": "mlp",
            "kwargs": dict(in_features=in_features, hidden=hidden, features=features, projection=projection),
        }
        self.backbone = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, features),
            nn.BatchNorm1d(features),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Linear(features, features), nn.ReLU(inplace=True), nn.Linear(features, projection))

    def features(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        return self.backbone(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
