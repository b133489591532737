"""GIN graph encoder (Xu et al. 2019) as in InfoGraph / GraphCL: sum pooling of every layer, concatenated."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GINEncoder"]


class GINEncoder(nn.Module):
    """h = [sum-pool(x_1), ..., sum-pool(x_L)] with x_l = BN(ReLU(GINConv_l(x_{l-1}))), z = head(h).

    Each GINConv's MLP is Linear-ReLU-Linear. ``forward(batch)`` takes a PyG batch (``x``, ``edge_index``,
    ``batch``, ``num_graphs``) and returns the projections ``[num_graphs, projection]``; ``features(batch)`` the
    representations ``[num_graphs, hidden * layers]`` used for evaluation.
    """

    def __init__(self, in_features: int, hidden: int = 32, layers: int = 3, projection: int | None = None) -> None:
        super().__init__()
        from torch_geometric.nn import GINConv

        for name, value in dict(in_features=in_features, hidden=hidden, layers=layers).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        out = hidden * layers
        projection = out if projection is None else projection
        self.spec = {"name": "gin", "kwargs": dict(in_features=in_features, hidden=hidden, layers=layers,
                                                   projection=projection)}  # fmt: skip
        dims = [in_features] + [hidden] * layers
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(a, hidden), nn.ReLU(), nn.Linear(hidden, hidden))) for a in dims[:-1]
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(out, out), nn.ReLU(inplace=True), nn.Linear(out, projection))

    def features(self, batch) -> Tensor:
        from torch_geometric.nn import global_add_pool

        x, pooled = batch.x, []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(conv(x, batch.edge_index).relu())
            pooled.append(global_add_pool(x, batch.batch, size=batch.num_graphs))
        return torch.cat(pooled, dim=1)

    def forward(self, batch) -> Tensor:
        return self.head(self.features(batch))
