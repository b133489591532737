"""The supervised reference of the graph table (docs/math.md section 5): the same GIN (or your own encoder,
``hscl reproduce graphs --encoder``) trained end to end with cross-entropy on the training folds, its epoch chosen
on a validation split held out of them (early stopping as model selection)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn

from .._eval import eval_mode
from .._extras import require
from .._validation import check_int

require(__name__, "graphs")

__all__ = ["GraphClassifier", "fit_graph_classifier"]


class GraphClassifier(nn.Module):
    """An encoder's ``features(batch)`` followed by a linear layer to the class logits."""

    def __init__(self, encoder: nn.Module, in_features: int, classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(in_features, classes)

    def forward(self, batch) -> Tensor:
        return self.classifier(self.encoder.features(batch))


def _loader(graphs, batch_size: int, shuffle: bool, seed: int):
    from torch_geometric.loader import DataLoader

    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(list(graphs), batch_size=batch_size, shuffle=shuffle, generator=gen)


@torch.no_grad()
def _evaluate(model: nn.Module, graphs, labels: Tensor, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) in eval mode."""
    model.eval()
    logits = torch.cat([model(b) for b in _loader(graphs, batch_size, False, 0)]).cpu()
    loss = float(nn.functional.cross_entropy(logits.double(), labels))
    return float((logits.argmax(1) == labels).double().mean()), loss


def fit_graph_classifier(
    encoder: nn.Module,
    graphs,
    labels: Tensor,
    test_graphs,
    test_labels: Tensor,
    *,
    max_steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    num_classes: int | None = None,
) -> dict:
    """Train ``encoder`` (anything with ``features(batch)``; its feature size is read from one batch) plus a
    linear classifier with cross-entropy (Adam) on ``graphs`` / ``labels``, for at most ``max_steps`` optimizer
    steps, evaluating after every epoch on a stratified ``val_fraction`` of them (held out of training, seeded
    by ``seed``); restore the weights of the epoch with the best validation accuracy (ties: the lower validation
    cross-entropy, then the earlier epoch) and score the test graphs once. Training runs the whole budget, so a
    small, noisy validation split cannot stop it after a few steps.

    ``num_classes`` sizes the classifier (default: from the training labels only).
    Returns ``{"accuracy", "val_accuracy", "best_epoch", "epochs", "steps"}``. The test graphs take no part in
    training or in the choice of the epoch.
    """
    from sklearn.model_selection import train_test_split

    labels = torch.as_tensor(labels).long()
    test_labels = torch.as_tensor(test_labels).long()
    if len(labels) != len(graphs) or len(test_labels) != len(test_graphs):
        raise ValueError("labels and test_labels must have one entry per graph")
    check_int("max_steps", max_steps, 1)
    check_int("batch_size", batch_size, 2)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    y = labels.numpy()
    idx = np.arange(len(y))
    fit_idx, val_idx = train_test_split(idx, test_size=val_fraction, stratify=y, random_state=seed)
    items = []
    for i in fit_idx:
        g = graphs[int(i)].clone()
        g.y = labels[int(i)].view(1)
        items.append(g)
    val_graphs, val_labels = [graphs[int(i)] for i in val_idx], labels[val_idx]
    classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    torch.manual_seed(seed)
    with eval_mode(encoder):
        width = encoder.features(next(iter(_loader(items[:2], 2, False, 0)))).shape[1]
    model = GraphClassifier(encoder, width, classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, best_epoch, steps, epoch = (-1.0, 0.0), None, 0, 0, 0
    while steps < max_steps:
        model.train()
        for batch in _loader(items, batch_size, True, seed + 1000 * epoch):
            if batch.num_graphs < 2 or steps >= max_steps:
                continue
            loss = nn.functional.cross_entropy(model(batch), batch.y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        epoch += 1
        val_acc, val_loss = _evaluate(model, val_graphs, val_labels, 256)
        if (val_acc, -val_loss) > best:
            best, best_epoch = (val_acc, -val_loss), epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    acc = _evaluate(model, test_graphs, test_labels, 256)[0]
    return {"accuracy": acc, "val_accuracy": best[0], "best_epoch": best_epoch, "epochs": epoch, "steps": steps}
