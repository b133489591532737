"""``hscl train``: one image pre-training job and its evaluation (:func:`hscl.training.images.train_images`).

The configuration is :class:`~hscl.training.images.ImageConfig`; its presets are ``hscl/configs/train/``
(``cpu``: a narrow ResNet-18 for a CPU, the default; ``paper``: the authors' ResNet-50 settings; ``modern``: a
full-width ResNet-18 with SGD, warm-up and cosine decay) or a YAML file of the same keys. :func:`configure` resolves
the preset and the overrides (an explicit ``epochs`` without ``min_steps`` pins the budget: ``min_steps`` 0) and
checks what needs no output folder: the accelerator is available, ``train_subset`` holds one image of every
class. :func:`main` checks the output folder and that every checkpoint a run would resume from loads with
``torch.load(weights_only=True)``, then runs the job; ``OUT/config.json`` holds the resolved configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._extras import require

require(__name__, "images")  # before the imports below: name the extra, not a missing module

from .._io import check_output_folder
from ..config import resolve
from ..training.images import ImageConfig

__all__ = [
    "COMMAND",
    "NAMED_CLASSES",
    "check_accelerator",
    "check_job",
    "check_resumable",
    "check_train_subset",
    "configure",
    "main",
    "origin",
]

#: The presets' folder under ``hscl/configs/``.
COMMAND = "train"
#: Classes of the named image data sets (a class-balanced subset needs one image of each).
NAMED_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "stl10": 10, "tiny-imagenet": 200}


def origin(key: str, overrides: Mapping, sources: Mapping | None, preset: str) -> str:
    """How ``key`` got its value, for a message: the flag (or ``--set``) that gave it, else ``KEY (from PRESET)``."""
    sources = sources or {}
    if key in overrides:
        return sources.get(key, key)
    return f"{key.rpartition('.')[2]} (from {preset})"


def check_accelerator(accelerator: str, devices, source: str, devices_source: str = "devices") -> None:
    """The accelerator ``source`` names is available here (a GPU for ``cuda``/``gpu``, Apple's MPS for ``mps``), with
    at least ``devices`` GPUs; a ``ValueError`` naming ``source`` otherwise."""
    import torch

    kind = str(accelerator).lower()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = torch.backends.mps.is_available()
    if kind == "cuda" or (kind == "gpu" and not mps):
        if gpus == 0:
            raise ValueError(
                f"{source} {accelerator}: no GPU is available here (torch.cuda.is_available() is False with torch "
                f"{torch.__version__}); use --accelerator cpu or auto"
            )
        if isinstance(devices, int) and devices > gpus:
            raise ValueError(f"{devices_source} {devices}: only {gpus} GPU(s) are available here")
    elif kind == "mps" and not mps:
        raise ValueError(f"{source} {accelerator}: Apple's MPS is not available here; use --accelerator cpu or auto")


def check_train_subset(config: ImageConfig, source: str) -> None:
    """A class-balanced subset takes at least one image of every class: fewer than the classes is refused here,
    before any work, as ``balanced_subset`` refuses it when the run starts (with more than the training split
    holds, which needs the data read). A folder's classes are counted from its labels."""
    n, dataset = config.train_subset, config.dataset
    if n is None or dataset is None:
        return
    classes = NAMED_CLASSES.get(dataset)
    if classes is None and Path(dataset).exists():
        import numpy as np

        from ..datasets.image_sets import load_image_splits

        labels = load_image_splits(dataset, data_root=config.data_root)["train"].labels
        classes = len(np.unique(labels[labels >= 0]))
    if classes is not None and isinstance(n, int) and n < classes:
        raise ValueError(
            f"{source} {n}: a class-balanced subset takes at least one image of each of the {classes} classes of "
            f"{dataset}, so it would train on {classes} images, not {n}; give at least {classes}"
        )


def check_resumable(out: str | os.PathLike) -> None:
    """Every ``last.ckpt`` a run in ``out`` would resume from loads with ``torch.load(weights_only=True)``: a pickled
    object other than tensors and containers is refused (never built), a truncated file found. Memory-mapped: the
    tensors are not read, so checking many large checkpoints costs little."""
    import torch

    out = Path(out)
    for last in (out / "checkpoints" / "last.ckpt", *sorted(out.glob("runs/*/checkpoints/last.ckpt"))):
        if not last.is_file():
            continue
        try:
            torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... on a bad file
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            named = [line for line in lines if "GLOBAL" in line]  # weights_only's refusal names the object
            reason = (named or lines or [type(err).__name__])[0].split(". ")[0][:200].rstrip(".")
            raise ValueError(
                f"{last}: a run cannot resume from it, it is not a checkpoint torch.load(weights_only=True) accepts "
                f"(refused: a pickled object other than tensors and containers, or a truncated or foreign file: "
                f"{reason}); delete it to start that run again, or give another --out"
            ) from None


def configure(
    preset: str | os.PathLike = "cpu", overrides: Mapping[str, Any] | None = None, *, sources: Mapping | None = None
) -> ImageConfig:
    """The job's :class:`ImageConfig`: the ``preset`` (a name of ``configs/train/`` or a YAML file) updated by
    ``overrides`` (``{field: value}``; :func:`hscl.config.resolve`). An explicit ``epochs`` without ``min_steps``
    pins the budget (``min_steps`` 0). Checked here: the accelerator is available, ``train_subset`` is at least
    the number of classes. ``sources``: how the command line names each key (and ``"preset"``) in messages."""
    overrides = dict(overrides or {})
    if "epochs" in overrides and "min_steps" not in overrides:
        overrides["min_steps"] = 0  # an explicit epochs pins the budget
    config = resolve(ImageConfig, COMMAND, preset, overrides, sources=sources)
    check_job(config, overrides, sources, f"{(sources or {}).get('preset', 'preset')} {preset}")
    return config


def check_job(config: ImageConfig, overrides: Mapping, sources: Mapping | None, preset: str, prefix: str = "") -> None:
    """The checks of an image job before any work (:func:`check_accelerator`, :func:`check_train_subset`), each
    message naming where the value came from (:func:`origin`; ``prefix``: the keys' section, e.g. ``"image."``)."""
    check_accelerator(
        config.accelerator,
        config.devices,
        origin(f"{prefix}accelerator", overrides, sources, preset),
        origin(f"{prefix}devices", overrides, sources, preset),
    )
    check_train_subset(config, origin(f"{prefix}train_subset", overrides, sources, preset))


def main(
    config: ImageConfig,
    out: str | os.PathLike,
    *,
    encoder: str | None = None,
    progress: bool = True,
    sources: Mapping | None = None,
) -> dict:
    """Run the job of ``config`` into ``out`` and return its metrics (``{}`` on a process other than rank 0).

    ``out`` must be a folder or creatable, and every checkpoint it would resume from must load with
    ``weights_only=True`` (checked first). ``encoder``: your own encoder, a factory ``package.module:function``
    (imported, never evaluated; the current folder is searched too) instead of the ResNet."""
    from ..training import images
    from . import import_from_current_folder

    check_output_folder(out, (sources or {}).get("out", "out"))
    check_resumable(out)
    options = {}
    if encoder is not None:  # resolved by train_images with importlib, never evaluated
        import_from_current_folder()
        options["encoder"] = encoder
    return images.train_images(config, out, progress=progress, **options)
