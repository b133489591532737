"""Saving and loading models: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict ``{"format": "hscl-model/1", "model": spec, "state_dict": ..., "meta": {...}}`` where
``spec`` (``{"name", "kwargs"}``) rebuilds the architecture through :func:`hscl.models.build_model`.
:func:`load_model` also reads the Lightning checkpoints of ``hscl train`` (``OUT/checkpoints/last.ckpt``).

Every checkpoint hscl reads goes through :func:`safe_load`: tensors, numbers, strings and containers only; a
file holding any other pickled Python object is refused with a ``ValueError``, never executed.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from ._io import atomic_torch_save
from .models import build_model

__all__ = ["FORMAT", "atomic_torch_save", "load_model", "safe_load", "save_model"]

FORMAT = "hscl-model/1"


def safe_load(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` whatever torch's default: a file that holds other Python objects
    than tensors, numbers, strings and containers (a pickled class instance, a function) is refused with a
    ``ValueError`` naming the object, and nothing of it runs; a truncated or foreign file is a ``ValueError`` too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch words it "Unsupported global: GLOBAL x" or "unsupported GLOBAL posix.system whose module ..."
        lines = [line.strip() for line in str(err).splitlines() if "unsupported global" in line.lower()]
        what = lines[0] if lines else str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"{path} was refused: it holds a pickled Python object that is not a tensor, number, string or "
            f"container, and hscl only loads checkpoints with torch.load(weights_only=True) ({what})"
        ) from None
    except Exception as err:
        raise ValueError(
            f"{path} is not a readable checkpoint (truncated, or not written by torch.save): {err}"
        ) from err


def save_model(path: str | os.PathLike, model: nn.Module, **meta) -> None:
    """Save a model that carries its ``spec`` (as hscl's models do) with JSON-like ``meta``."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ValueError(
            "model has no .spec to rebuild it from: use one of hscl.models, or give your own encoder as a factory "
            "string 'package.module:function' (hscl.models.ProjectedEncoder) rather than as a module"
        )
    atomic_torch_save({"format": FORMAT, "model": spec, "state_dict": model.state_dict(), "meta": meta}, path)


def _from_lightning(ckpt: dict, path: Path) -> tuple[dict, dict, dict]:
    """(spec, encoder state_dict, meta) of an ``hscl train`` Lightning checkpoint."""
    hparams = ckpt["hyper_parameters"]
    config = hparams["config"]
    spec = hparams.get("model")
    if spec is None:
        encoder = hparams.get("encoder")
        if encoder:  # your own encoder, given as a module (no factory): nothing to rebuild it from
            raise ValueError(
                f"{path} holds your own encoder {encoder.get('class')} given as a module; to rebuild it, train with "
                "the encoder given as 'package.module:factory' (hscl train --encoder)"
            )
        kwargs = {k: config[k] for k in ("depth", "width", "hidden", "projection")}
        spec = {"name": "resnet", "kwargs": {**kwargs, "in_channels": 3, "cifar_stem": True}}
    from .training.records import hardening_used

    state = {k[len("encoder.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    meta = {k: config.get(k) for k in ("method", "dataset", "temperature", "seed")}
    if isinstance(config.get("method"), str):
        meta["beta"], meta["tau"] = hardening_used(config["method"], config.get("beta"), config.get("tau"))
    meta["epoch"] = ckpt.get("epoch")
    meta["config"] = dict(config)
    for name in ("mean", "std"):
        if name in ckpt["state_dict"]:
            meta[name] = ckpt["state_dict"][name].flatten().tolist()
    return spec, state, meta


def _check_factory(spec: dict, allow_factory: bool | str, path: Path) -> None:
    factory = (spec.get("kwargs") or {}).get("backbone")
    if allow_factory is True or (isinstance(allow_factory, str) and allow_factory == factory):
        return
    raise ValueError(
        f"{path} holds your own encoder built by {factory!r}: rebuilding it imports and runs that code; "
        f"pass allow_factory={factory!r} (or True) to load_model if you trust it"
    )


def load_model(
    path: str | os.PathLike, map_location="cpu", *, allow_factory: bool | str = False
) -> tuple[nn.Module, dict]:
    """Rebuild and load a model saved by :func:`save_model`, or the encoder of an ``hscl train`` checkpoint
    (``OUT/checkpoints/last.ckpt``; ``meta`` then holds the method, data set, temperature, hardening used, seed,
    epoch, the run's whole ``config`` and the normalisation ``mean``/``std``); returns ``(model, meta)``.

    Your own encoder (a ``"custom"`` spec, :class:`hscl.models.ProjectedEncoder`) is rebuilt by importing and
    calling its recorded factory ``"package.module:function"``; since that runs code named by the file, it is done
    only with ``allow_factory=True`` or ``allow_factory="package.module:function"`` (that factory only)."""
    path = Path(path)
    try:
        ckpt = safe_load(path, map_location)
    except ValueError as err:
        if "was refused" in str(err):
            raise
        raise ValueError(f"{path} is not a readable hscl checkpoint: {err.__cause__ or err}") from err
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        spec, state, meta = ckpt["model"], ckpt["state_dict"], dict(ckpt.get("meta", {}))
    elif (
        isinstance(ckpt, dict)
        and isinstance(ckpt.get("hyper_parameters"), dict)
        and isinstance(ckpt["hyper_parameters"].get("config"), dict)
        and isinstance(ckpt.get("state_dict"), dict)
    ):
        spec, state, meta = _from_lightning(ckpt, path)
    else:
        raise ValueError(
            f"{path} is not an hscl model checkpoint (expected format {FORMAT!r} or an `hscl train` checkpoint)"
        )
    if isinstance(spec, dict) and spec.get("name") == "custom":
        _check_factory(spec, allow_factory, path)
    model = build_model(spec)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the model spec {spec}: {err}") from err
    return model, meta
