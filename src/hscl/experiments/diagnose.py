"""``hscl diagnose``: Assumption 1 and the four asymptotic losses of a saved encoder on a whole data set.

The command's configuration is :class:`DiagnoseConfig` (no named presets: its defaults and the flags are the
configuration); :func:`configure` resolves it from overrides, :func:`main` runs :func:`diagnose` and writes
``OUT/diagnose.csv`` when given an output folder.

:func:`diagnose` reads what the project writes and the data sets it reads:

* an ``hscl train`` run: its output folder or ``OUT/checkpoints/last.ckpt`` (written by Lightning). The encoder
  is rebuilt from the checkpoint (the ResNet of the run's configuration; your own encoder only with
  ``allow_factory``) with the normalisation it trained with (the ``mean`` / ``std`` buffers); the data default to
  the run's data set (a name under its data root, an image folder or archive; ``OUT/config.json`` says which),
  its training split; the views are the run's SimCLR augmentation.
* a model saved with :func:`hscl.checkpoint.save_model`: an MLP on feature vectors (``digits`` or a ``.npz`` file
  with ``x`` and ``y``; views by :class:`~hscl.transforms.VectorAugment` with the noise and dropout recorded in
  ``meta["augment"]``), a GIN on graphs (a TU data set by name under a data root, the bundled MUTAG, or a folder of
  TU raw files; views by GraphCL's :class:`~hscl.transforms.GraphAugment` with ``meta["augment_ratio"]``, 0.2 by
  default, as ``hscl reproduce graphs`` trains), or a ResNet on images (as above; ``meta["mean"]`` /
  ``meta["std"]``, else the data's per-channel statistics). ``meta["kind"]`` (``"vectors"``, ``"images"`` or
  ``"graphs"``), when recorded, says which data the model embeds: ``train_graph_encoder(save=...)`` records
  ``"graphs"`` (and ``meta["augment"]["ratio"]``, ``meta["dataset"]``), so your own graph encoder is read too.

Every sample is embedded twice (two independent views of the training augmentation, no gradients) and
:func:`~hscl.diagnostics.assumption_report` runs once per hardening setting with the whole data set as reference
set (docs/math.md section 4). Checkpoints are read by :func:`hscl.checkpoint.load_model`, with
``torch.load(weights_only=True)``: a file that holds anything but tensors and plain containers is refused, never
executed.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._extras import require
from .._validation import check_int

__all__ = ["DiagnoseConfig", "Diagnosis", "SavedEncoder", "configure", "diagnose", "load_encoder", "main"]

#: Where ``hscl train`` leaves its Lightning checkpoint inside its output folder.
TRAIN_CHECKPOINT = Path("checkpoints") / "last.ckpt"
#: The columns of the printed table (``diagnose.csv`` holds every field of the report's summary).
COLUMNS = (
    "setting",
    "UCL",
    "H-UCL",
    "SCL",
    "H-SCL",
    "assumption_fraction",
    "vacuous",
    "excluded",
    "hscl_le_hucl",
    "hscl_ge_ucl",
)
_KINDS = {"mlp": "vectors", "resnet": "images", "gin": "graphs"}


@dataclass
class SavedEncoder:
    """An encoder rebuilt from a checkpoint, with what its training recorded."""

    kind: str  # "vectors", "images" or "graphs"
    model: nn.Module  # maps a batch of (augmented, normalised) inputs to the projections z
    path: Path
    temperature: float | None = None
    dataset: str | None = None
    data_root: str | None = None
    augment: dict = field(default_factory=dict)  # the augmentation's settings
    mean: list[float] | None = None  # images: the per-channel normalisation of training
    std: list[float] | None = None
    size: int | None = None  # images: the crop size (None: the images' own)


def _checkpoint_file(path: Path) -> Path:
    """``path`` itself, or ``path/checkpoints/last.ckpt`` for an ``hscl train`` output folder."""
    if path.is_dir():
        last = path / TRAIN_CHECKPOINT
        if not last.is_file():
            raise FileNotFoundError(
                f"{path} is a folder without {TRAIN_CHECKPOINT} (an hscl train output folder holds one after its "
                "first epoch); give the folder of a run or a checkpoint file"
            )
        return last
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return path


def _run_record(path: Path) -> dict:
    """The ``config.json`` that ``hscl train`` writes beside ``checkpoints/`` (empty when there is none)."""
    record = path.parent.parent / "config.json"
    if path.parent.name != "checkpoints" or not record.is_file():
        return {}
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_encoder(path: str | os.PathLike, *, allow_factory: bool | str = False) -> SavedEncoder:
    """Rebuild the encoder of an ``hscl train`` run (its folder or ``checkpoints/last.ckpt``) or of a model saved
    with :func:`hscl.checkpoint.save_model` (through :func:`hscl.checkpoint.load_model`, which reads both with
    ``weights_only=True``), with what training recorded: the data set, the temperature, the augmentation and, for
    images, the normalisation. ``allow_factory``: see :func:`~hscl.checkpoint.load_model` (your own encoder)."""
    from ..checkpoint import load_model

    path = _checkpoint_file(Path(path))
    model, meta = load_model(path, allow_factory=allow_factory)
    name = model.spec["name"] if isinstance(getattr(model, "spec", None), dict) else None
    record = _run_record(path)
    if meta.get("kind") in _KINDS.values():  # recorded when saved (train_graph_encoder: "graphs")
        kind = meta["kind"]
    elif name == "custom":  # your own encoder: on images when it trained under hscl train (a normalisation)
        kind = "images" if meta.get("mean") is not None else None
    else:
        kind = _KINDS.get(name)
    if kind is None:
        raise ValueError(
            f"{path}: hscl cannot tell which data a {name!r} model embeds (save it with "
            f"meta kind={'/'.join(_KINDS.values())}, as train_graph_encoder(save=...) does)"
        )
    config = meta.get("config") if isinstance(meta.get("config"), Mapping) else record
    augment = meta.get("augment") if isinstance(meta.get("augment"), Mapping) else {}
    if kind == "graphs":
        augment = {"ratio": float(meta.get("augment_ratio", augment.get("ratio", 0.2)))}

    def recorded(key):
        return meta[key] if meta.get(key) is not None else config.get(key)

    return SavedEncoder(
        kind,
        model,
        path,
        temperature=recorded("temperature"),
        dataset=recorded("dataset"),
        data_root=recorded("data_root"),
        augment=dict(augment),
        mean=meta.get("mean"),
        std=meta.get("std"),
        size=recorded("size"),
    )


@dataclass
class Diagnosis:
    """What :func:`diagnose` measured: one row per hardening setting (:data:`COLUMNS`)."""

    checkpoint: str
    data: str
    samples: int
    temperature: float
    augmentation: str
    rows: list[dict]

    def title(self) -> str:
        return (
            f"hscl diagnose: {self.checkpoint} on {self.data} ({self.samples} samples x 2 views, "
            f"t={self.temperature:g}, reference set = these {self.samples} samples' views, augmentation "
            f"{self.augmentation})"
        )

    def table(self) -> str:
        """A Markdown table of the rows."""
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        for r in self.rows:
            cells = [f"{r[h]:.4f}" if isinstance(r[h], float) else str(r[h]) for h in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write_csv(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/diagnose.csv`` (atomically) and return its path."""
        from .._io import write_csv_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return write_csv_atomic(folder / "diagnose.csv", self.rows, list(self.rows[0]))


def _subset(n: int, samples: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a random ``samples`` of ``n`` (seeded), or None for all."""
    if samples is None or samples >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


def _data_name(enc: SavedEncoder, data: str | None, default: str | None = None) -> str:
    name = data if data is not None else (enc.dataset or default)
    if name is None:
        raise ValueError(f"{enc.path} does not record its data set: give it with --data")
    return str(name)


def _vector_inputs(enc: SavedEncoder, data, samples, seed, noise, drop):
    from ..datasets import load_vector_dataset
    from ..transforms import VectorAugment

    name = _data_name(enc, data, "digits")
    x, y = load_vector_dataset(name)
    in_features = enc.model.spec["kwargs"].get("in_features")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"the data has {x.shape[1]} features but the checkpoint's model expects {in_features}")
    keep = _subset(len(y), samples, seed)
    if keep is not None:
        x, y = x[keep], y[keep]
    cfg = dict(enc.augment)
    if noise is not None:
        cfg["noise"] = noise
    if drop is not None:
        cfg["drop"] = drop
    augment = VectorAugment(**cfg, generator=torch.Generator().manual_seed(seed))
    return name, (x, y), augment, enc.model, repr(augment)


def _image_inputs(enc: SavedEncoder, data, data_root, samples, seed, progress):
    require("hscl diagnose of an image encoder", "images")
    from ..datasets.image_sets import NAMED, load_image_splits
    from ..transforms.image import SimCLRAugment, to_float_images

    name = _data_name(enc, data)
    if data is None and name not in NAMED and not Path(name).exists():
        raise ValueError(
            f"the data set recorded in {enc.path}, {name!r}, is not found from here (a path relative to where the "
            "run started?): give it with --data"
        )
    root = data_root if data_root is not None else enc.data_root
    train = load_image_splits(name, data_root=root, progress=progress)["train"]
    labeled = np.flatnonzero(train.labels >= 0)
    keep = _subset(len(labeled), samples, seed)
    idx = labeled if keep is None else labeled[keep]
    x = torch.from_numpy(np.array(train.images[idx]))
    y = torch.as_tensor(train.labels[idx], dtype=torch.long)
    if enc.mean is None or enc.std is None:  # as hscl train computes them: on (up to 5,000) training images
        sample = to_float_images(x[:5000])
        mean, std = sample.mean(dim=(0, 2, 3)).tolist(), sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    else:
        mean, std = enc.mean, enc.std
    size = int(enc.size or x.shape[1])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = enc.model.to(device)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    simclr = SimCLRAugment(size)
    calls = itertools.count()

    def augment(images: torch.Tensor) -> torch.Tensor:  # one seed per call, drawn from (seed, call) alone
        call_seed = int(np.random.SeedSequence([seed, next(calls)]).generate_state(1)[0])
        return (simclr(images, views=1, seed=call_seed)[:, 0] - mean_t) / std_t

    return name, (x, y), augment, model, f"SimCLR (crop {size}, as hscl train)"


def _graph_inputs(enc: SavedEncoder, data, data_root, samples, seed, batch_size):
    require("hscl diagnose of a graph encoder", "graphs")
    from torch_geometric.loader import DataLoader

    from ..datasets.tu import load_tu
    from ..transforms.graph import GraphAugment

    name = _data_name(enc, data)
    root = data_root if data_root is not None else enc.data_root
    dataset = load_tu(name, data_root=root)
    in_features = enc.model.spec["kwargs"].get("in_features")
    if in_features is not None and dataset.num_features != in_features:
        raise ValueError(
            f"{dataset.name} has {dataset.num_features} node features but the checkpoint's GIN expects {in_features}"
        )
    keep = _subset(len(dataset), samples, seed)
    graphs = list(dataset) if keep is None else [dataset[i] for i in keep]
    ratio = float(enc.augment.get("ratio", 0.2))
    augment = GraphAugment(ratio=ratio, generator=torch.Generator().manual_seed(seed))
    batches = [(b, b.y) for b in DataLoader(graphs, batch_size=batch_size)]
    return name, batches, augment, enc.model, f"GraphCL (ratio {ratio:g}, as hscl reproduce graphs)"


def diagnose(
    checkpoint: str | os.PathLike,
    data: str | None = None,
    *,
    settings: Mapping | None = None,
    temperature: float | None = None,
    data_root: str | os.PathLike | None = None,
    samples: int | None = None,
    noise: float | None = None,
    drop: float | None = None,
    chunk_size: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    allow_factory: bool | str = False,
    progress: bool = True,
) -> Diagnosis:
    """Assumption 1 and the four asymptotic losses of a saved encoder on a whole data set (module doc).

    Args:
        checkpoint: an ``hscl train`` output folder or checkpoint, or a :func:`~hscl.checkpoint.save_model` file.
        data: the data set (default: the one the checkpoint records; ``digits`` for an MLP that records none).
        settings: ``{name: hardening}`` (default: the paper's, :data:`~hscl.diagnostics.PAPER_SETTINGS`).
        temperature: default: the checkpoint's (0.5 when it records none).
        data_root: where named data sets live (default: the checkpoint's, then hscl's defaults).
        samples: diagnose a random ``samples`` of the data set (seeded by ``seed``; default: all of it).
        noise, drop: vector checkpoints only: override the recorded augmentation.
        chunk_size: anchors per chunk of :func:`~hscl.diagnostics.assumption_report`.
        seed: seeds the augmentation (and the subset).
        allow_factory: rebuild your own encoder by importing the factory the checkpoint names (runs that code:
            only for checkpoints you trust; see :func:`hscl.checkpoint.load_model`).
    """
    from ..diagnostics import PAPER_SETTINGS, assumption_report, embed_views

    if samples is not None:
        check_int("samples", samples, 2)
    if temperature is not None and not (isinstance(temperature, int | float) and 0 < temperature < float("inf")):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    enc = load_encoder(checkpoint, allow_factory=allow_factory)
    if enc.kind != "vectors" and (noise is not None or drop is not None):
        raise ValueError(
            f"noise and drop set the augmentation of vector (MLP) checkpoints; {enc.path} holds a model on {enc.kind}"
        )
    if enc.kind == "vectors":
        name, inputs, augment, model, described = _vector_inputs(enc, data, samples, seed, noise, drop)
    elif enc.kind == "images":
        name, inputs, augment, model, described = _image_inputs(enc, data, data_root, samples, seed, progress)
    else:
        name, inputs, augment, model, described = _graph_inputs(enc, data, data_root, samples, seed, batch_size)
    t = float(temperature if temperature is not None else (enc.temperature or 0.5))
    z, labels = embed_views(model, inputs, augment=augment, views=2, batch_size=batch_size, progress=progress)
    rows = []
    for setting, hardening in (settings or PAPER_SETTINGS).items():
        rep = assumption_report(z, labels, hardening=hardening, temperature=t, chunk_size=chunk_size, progress=progress)
        rows.append({"setting": setting, **rep.summary()})
    return Diagnosis(str(checkpoint), name, int(z.shape[0]), t, described, rows)


@dataclass
class DiagnoseConfig:
    """``hscl diagnose``: the arguments of :func:`diagnose` (its defaults; ``settings`` None: the paper's four)."""

    checkpoint: str | None = None  # required: an hscl train run (folder or last.ckpt) or a save_model file
    data: str | None = None  # default: the data set the checkpoint records
    data_root: str | None = None
    samples: int | None = None  # default: all
    settings: Mapping | None = None  # {name: hardening}; default: PAPER_SETTINGS
    temperature: float | None = None  # default: the checkpoint's
    chunk_size: int | None = None
    noise: float | None = None
    drop: float | None = None
    seed: int = 0
    batch_size: int = 256
    allow_factory: str | None = None  # the factory the checkpoint names, when you trust it


def configure(overrides: Mapping | None = None, *, sources: Mapping | None = None) -> DiagnoseConfig:
    """The :class:`DiagnoseConfig` of its defaults updated by ``overrides`` (:func:`hscl.config.resolve`)."""
    from ..config import resolve

    return resolve(DiagnoseConfig, overrides=overrides, sources=sources)


def main(config: DiagnoseConfig, out: str | os.PathLike | None = None, *, progress: bool = True):
    """Diagnose ``config.checkpoint`` (:func:`diagnose`); with ``out``, also write ``OUT/diagnose.csv``. Returns
    ``(Diagnosis, the CSV's path or None)``. A factory to allow may live in the current folder (imported, never
    evaluated); a checkpoint that names a factory not allowed is refused with the flag that allows it."""
    from . import import_from_current_folder

    if config.checkpoint is None:
        raise ValueError("checkpoint: give an hscl train run or checkpoint, or a model saved with save_model")
    if config.allow_factory:  # a factory in the current folder, as hscl train finds it
        import_from_current_folder()
    try:
        result = diagnose(
            config.checkpoint,
            config.data,
            settings=config.settings,
            temperature=config.temperature,
            data_root=config.data_root,
            samples=config.samples,
            noise=config.noise,
            drop=config.drop,
            chunk_size=config.chunk_size,
            seed=config.seed,
            batch_size=config.batch_size,
            allow_factory=config.allow_factory or False,
            progress=progress,
        )
    except ValueError as err:
        if not config.allow_factory and "allow_factory" in str(err):  # say it the command line's way
            raise ValueError(f"{err} (on the command line: --allow-factory PACKAGE.MODULE:FACTORY)") from None
        raise
    return result, (result.write_csv(out) if out is not None else None)
