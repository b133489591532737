"""Helpers shared by the data sets' test modules (import them from ``tests.datasets.conftest``)."""

from pathlib import Path

import numpy as np


def save_image(path: Path, array: np.ndarray, mode="RGB", fmt=None):
    """Write ``array`` as an image file at ``path`` (folders created), converted to ``mode``, in format ``fmt``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).convert(mode).save(path, format=fmt)
