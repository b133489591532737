"""Embedding a whole data set once, two augmented views per sample, for the large-N diagnostics."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from .._eval import eval_mode
from .._extras import progress_bar
from .._validation import check_int

__all__ = ["embed_views"]


def embed_views(
    model: nn.Module | Callable[[Tensor], Tensor],
    data: Iterable[tuple[Tensor, Tensor]] | tuple[Tensor, Tensor],
    *,
    augment: Callable[[Tensor], Tensor],
    views: int = 2,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[Tensor, Tensor]:
    """Embed every sample ``views`` times, each through its own random ``augment``, without gradients.

    Args:
        model: maps a batch of inputs to embeddings ``[n, D]`` (put in eval mode during the call, then restored).
        data: ``(x, y)`` tensors of the whole data set, or an iterable of ``(x, y)`` batches (a DataLoader).
        augment: a random augmentation applied to a batch; called once per view.
        views: views per sample (2 for the diagnostics: one positive per anchor).
        batch_size: batch size when ``data`` is a pair of tensors.
        device: where to run the model (default: the model's device, or the CPU).
        progress: show a progress bar (where tqdm is installed).

    Returns:
        ``(z, labels)``: ``z`` of shape ``[N, views, D]`` on the CPU in float32, ``labels`` ``[N]``.
    """
    check_int("views", views, 1)
    if device is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        x_all, y_all = data
        if x_all.shape[0] != y_all.shape[0]:
            raise ValueError(f"x and y must have the same length, got {x_all.shape[0]} and {y_all.shape[0]}")
        batches: Iterable = [
            (x_all[i : i + batch_size], y_all[i : i + batch_size]) for i in range(0, x_all.shape[0], batch_size)
        ]
    else:
        batches = data
    if progress:  # a bar where tqdm is installed
        batches = progress_bar(batches, desc="embedding", unit="batch", leave=False)
    zs, ys = [], []
    with eval_mode(model):
        for x, y in batches:
            x = x.to(device)
            zs.append(torch.stack([model(augment(x)) for _ in range(views)], dim=1).float().cpu())
            ys.append(torch.as_tensor(y).cpu())
    if not zs:
        raise ValueError("data is empty: nothing to embed")
    return torch.cat(zs), torch.cat(ys)
