"""Saving and loading models: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict ``{"format": "hscl-model/1", "model": spec, "state_dict": ..., "meta": {...}}`` where
``spec`` (``{"name", "kwargs"}``) rebuilds the architecture through :func:`hscl.models.build_model`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ._io import atomic_write
from .models import build_model

__all__ = ["FORMAT", "atomic_torch_save", "load_model", "save_model"]

FORMAT = "hscl-model/1"


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_model(path: str | os.PathLike, model: nn.Module, **meta) -> None:
    """Save a model that carries its ``spec`` (as hscl's models do) with JSON-like ``meta``."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError("model has no .spec to rebuild it from; use one of hscl.models")
    atomic_torch_save({"format": FORMAT, "model": spec, "state_dict": model.state_dict(), "meta": meta}, path)


def load_model(path: str | os.PathLike, map_location="cpu") -> tuple[nn.Module, dict]:
    """Rebuild and load a model saved by :func:`save_model`; returns ``(model, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable hscl checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not an hscl model checkpoint (expected format {FORMAT!r})")
    model = build_model(ckpt["model"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the model spec {ckpt['model']}: {err}") from err
    return model, dict(ckpt.get("meta", {}))
