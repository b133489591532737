"""Optional dependencies. ``pip install hscl`` brings torch and numpy: the losses, hardening, functional, queue
and diagnostics core. The pipelines need an extra (``pyproject.toml``): ``hscl[images]``, ``hscl[graphs]``,
``hscl[all]``. :func:`require` says which one to install, instead of ``No module named 'lightning'``."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterable, Sequence

# The imports each extra brings (pyproject.toml lists their distributions; tests/test_extras.py keeps them equal).
EXTRAS: dict[str, tuple[str, ...]] = {
    "images": ("lightning", "PIL", "yaml", "sklearn", "scipy", "threadpoolctl", "matplotlib", "tqdm"),
    "graphs": ("torch_geometric", "yaml", "sklearn", "scipy", "joblib", "matplotlib", "tqdm"),
}
EXTRAS["all"] = tuple(dict.fromkeys(EXTRAS["images"] + EXTRAS["graphs"]))
EXTRAS["gpu"] = ("triton",)  # the Triton kernels of the tiled loss path (hscl._triton); not part of 'all'


class MissingExtraError(ImportError):
    """An optional dependency of hscl is not installed; the message names the extra that brings it."""


def missing(modules: Iterable[str]) -> list[str]:
    """The top-level ``modules`` that cannot be imported (found without importing them)."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a blocked or half-removed package
            found = False
        if not found:
            out.append(name)
    return out


def require(by: str, *extras: str, modules: Sequence[str] | None = None) -> None:
    """Raise :class:`MissingExtraError` unless ``by`` can run: every import of one of ``extras`` is installed
    (or, given, every one of ``modules``). The message names the extras, e.g. ``hscl.training.images needs the
    'images' extra: pip install 'hscl[images]' (missing: lightning)``."""
    if modules is not None:
        lacking = missing(modules)
        if not lacking:
            return
    else:
        per_extra = [missing(EXTRAS[e]) for e in extras]
        if any(not m for m in per_extra):
            return
        lacking = per_extra[0] if len(extras) == 1 else []
    names = " or the ".join(f"'{e}'" for e in extras)
    installs = " or ".join(f"pip install 'hscl[{e}]'" for e in extras)
    detail = f" (missing: {', '.join(lacking)})" if lacking else ""
    raise MissingExtraError(f"{by} needs the {names} extra: {installs}{detail}")


@functools.cache
def _triton_installed() -> bool:
    return not missing(["triton"])


#: ``HSCL_TRITON``: ``auto`` (the default), ``force`` or ``off``; see :func:`use_triton`.
TRITON_MODES = ("auto", "force", "off")


def use_triton(za, zr) -> bool:
    """Whether the tiled loss path computes log E_i with the Triton kernels (``hscl._triton``, the 'gpu' extra)
    for the embeddings ``za`` and ``zr``, by the environment variable ``HSCL_TRITON``: ``auto`` (the default):
    float32 CUDA tensors of at most 256 columns, with triton installed; ``force``: any float32 or float64 tensors
    (CPU tensors run under Triton's interpreter, ``TRITON_INTERPRET=1``); ``off``: never."""
    mode = os.environ.get("HSCL_TRITON", "auto").strip().lower() or "auto"
    if mode not in TRITON_MODES:
        raise ValueError(f"HSCL_TRITON must be one of {', '.join(TRITON_MODES)}, got {mode!r}")
    if mode == "off" or za.dtype != zr.dtype or str(za.dtype) not in ("torch.float32", "torch.float64"):
        return False
    if mode == "force":
        return True
    return za.is_cuda and zr.is_cuda and str(za.dtype) == "torch.float32" and za.shape[1] <= 256 and _triton_installed()


def progress_bar(iterable, **kwargs):
    """``tqdm(iterable, **kwargs)``, or ``iterable`` itself where tqdm is not installed (the core install)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, **kwargs)
