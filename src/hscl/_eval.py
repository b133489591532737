"""Frozen forward passes: a module in eval mode and without gradients for the length of a ``with`` block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model) -> Iterator:
    """Run the block without gradients and, when ``model`` is an ``nn.Module``, in eval mode (BatchNorm uses its
    running statistics and does not update them, dropout is off); the module's training mode is restored on exit,
    also after an error. Any other callable is only run without gradients."""
    was = model.training if isinstance(model, nn.Module) else None
    if was is not None:
        model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        if was is not None:
            model.train(was)
