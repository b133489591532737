"""Feature-vector data sets: scikit-learn's digits (shipped with scikit-learn, no download) or a ``.npz`` file
with arrays ``x`` (``[N, F]``, real) and ``y`` (``[N]``, integer labels)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["load_digits", "load_vector_dataset", "load_vectors"]


def load_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 8x8 handwritten digits as ``x`` ``[1797, 64]`` in [0, 1] (float32) and ``y``."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    return torch.from_numpy(data.data.astype(np.float32) / 16.0), torch.from_numpy(data.target.astype(np.int64))


def load_vectors(path: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """Read ``x`` and ``y`` from a ``.npz`` file (no pickled objects are loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz or "y" not in npz:
                raise ValueError(f"{path} must hold arrays named 'x' and 'y', found {sorted(npz.files)}")
            x, y = npz["x"], npz["y"]
    except (OSError, ValueError) as err:
        if "must hold arrays" in str(err):
            raise
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{path}: x must be [N, F] and y [N], got {x.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: y must hold integer labels, got dtype {y.dtype}")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ValueError(f"{path}: x must be finite numbers")
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def load_vector_dataset(name_or_path: str) -> tuple[Tensor, Tensor]:
    """``"digits"`` or the path of a ``.npz`` file."""
    if name_or_path == "digits":
        return load_digits()
    if name_or_path.endswith(".npz") or Path(name_or_path).exists():
        return load_vectors(name_or_path)
    raise ValueError(f"unknown data set {name_or_path!r}: use 'digits' or the path of a .npz file with x and y")
