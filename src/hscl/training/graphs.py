"""Contrastive pre-training of a graph encoder on two augmented views per graph, and frozen embedding."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..transforms.graph import GraphAugment

__all__ = ["embed_graphs", "pretrain_graphs"]


def _loader(graphs, batch_size, shuffle, seed):
    from torch_geometric.loader import DataLoader

    gen = torch.Generator().manual_seed(seed)
    return DataLoader(list(graphs), batch_size=batch_size, shuffle=shuffle, generator=gen if shuffle else None)


def pretrain_graphs(
    model: nn.Module,
    graphs,
    loss_fn: Callable,
    *,
    labels: Tensor | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    augment_ratio: float = 0.2,
    views: int = 2,
    seed: int = 0,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train ``model`` with ``loss_fn(z [B, V, D], labels)`` on ``views`` GraphCL views per graph (Adam).

    ``labels`` are those the loss may see (``None`` for unsupervised methods); they are attached to ``graphs``
    in order, so only the graphs given here (the training folds) ever reach the loss. Returns the mean loss
    per epoch. ``on_epoch_end(epoch, model)`` runs after each epoch (e.g. diagnostics).
    """
    if isinstance(views, bool) or not isinstance(views, int) or views < 2:
        raise ValueError(f"views must be an int >= 2, got {views!r}")
    if labels is not None and len(labels) != len(graphs):
        raise ValueError(f"labels must have one entry per graph: {len(graphs)}, got {len(labels)}")
    items = []
    for i, g in enumerate(graphs):
        g = g.clone()
        g.y = labels[i].view(1) if labels is not None else torch.zeros(1, dtype=torch.long)
        items.append(g)
    torch.manual_seed(seed)
    augment = GraphAugment(ratio=augment_ratio, generator=torch.Generator().manual_seed(seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in _loader(items, batch_size, True, seed + 1000 * epoch):
            if batch.num_graphs < 2:
                continue
            z = torch.stack([model(augment(batch)) for _ in range(views)], dim=1)
            loss = loss_fn(z, batch.y if labels is not None else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * batch.num_graphs
            count += batch.num_graphs
        history.append(total / max(count, 1))
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


@torch.no_grad()
def embed_graphs(model: nn.Module, graphs, *, batch_size: int = 256) -> Tensor:
    """Frozen representations ``model.features(batch)`` of every graph, in order (eval mode, no augmentation)."""
    was = model.training
    model.eval()
    try:
        return torch.cat([model.features(b) for b in _loader(graphs, batch_size, False, 0)]).cpu()
    finally:
        model.train(was)
