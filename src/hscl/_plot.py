"""Matplotlib without a display, and figures written atomically as PNG (a run killed while saving leaves the
previous file, never half of one)."""

from __future__ import annotations

import os
from pathlib import Path

from ._io import atomic_write

__all__ = ["pyplot", "save_png"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (unless one was already chosen), imported on first use so that
    importing hscl never pulls in matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Write ``fig`` to ``path`` as a 120-dpi PNG, atomically, then close it."""
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png", **savefig_kwargs))
    pyplot().close(fig)
    return path
