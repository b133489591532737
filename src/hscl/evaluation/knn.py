"""Weighted k-nearest-neighbour accuracy on frozen features (the cheap monitor of docs/math.md section 5).

Each test sample votes with its k most cosine-similar training samples, a neighbour of similarity s weighing
exp(s / t) (Wu et al. 2018; the SimCLR / MoCo monitors). Test samples are processed in chunks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_accuracy", "knn_predict"]


@torch.no_grad()
def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    *,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> Tensor:
    """Predicted labels of ``test_features`` ``[m, d]`` from ``train_features`` ``[n, d]`` and their labels."""
    if train_features.dim() != 2 or test_features.dim() != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"features must be [n, d] and [m, d], got {tuple(train_features.shape)}, {tuple(test_features.shape)}"
        )
    if train_labels.shape != (train_features.shape[0],):
        raise ValueError(f"train_labels must be [{train_features.shape[0]}], got {tuple(train_labels.shape)}")
    if k < 1 or temperature <= 0:
        raise ValueError(f"k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    num_classes = int(train_labels.max()) + 1 if num_classes is None else num_classes
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)
    preds = []
    for start in range(0, test_features.shape[0], chunk_size):
        sim = F.normalize(test_features[start : start + chunk_size].float(), dim=1) @ train.T
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes, device=sim.device)
        votes.scatter_add_(1, train_labels[idx].long(), (top / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_features, train_labels, test_features, test_labels, **kw) -> float:
    """Top-1 accuracy of :func:`knn_predict`."""
    pred = knn_predict(train_features, train_labels, test_features, **kw)
    return float((pred.cpu() == test_labels.cpu()).float().mean())
