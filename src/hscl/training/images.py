"""Contrastive pre-training of image encoders with PyTorch Lightning: one code path for a CPU, one GPU, and DDP
over several GPUs or nodes (torchrun / SLURM; the loss gathers negatives over the global batch), mixed precision,
checkpoints, CSV logs, a progress bar, seeding; then the evaluation of docs/math.md section 5.

``train_images(config)`` runs a whole job: data (decoded once, memory-mapped), a class-balanced validation split
held out of train, pre-training with the batched SimCLR augmentation on the training device, a weighted kNN
monitor each epoch, and at the end a linear probe selected on validation and reported on test, and kNN on test.
It writes ``OUT/metrics.json`` (with the hscl version and git commit) and ``OUT/config.json`` (with the
hardening ``beta``/``tau`` actually used) atomically, logs, and ``OUT/checkpoints/last.ckpt`` at the end of every
epoch (atomically); run again with the same OUT and configuration, also after a kill, it resumes from the last
finished epoch. Checkpoints are read with ``torch.load(weights_only=True)`` only (:func:`hscl.checkpoint.safe_load`).

Your own encoder: ``train_images(config, out, encoder=module_or_factory)`` (``hscl train --encoder
package.module:factory``) trains any ``nn.Module`` that maps normalised images ``[N, 3, H, W]`` to representations
``[N, D]`` instead of the ResNet; ``D`` is read from one forward of two training images (or given as
``feature_dim``) and the projection head (``hidden``, ``projection``) is built on it
(:class:`hscl.models.ProjectedEncoder`). A factory string is recorded in ``config.json`` and in the checkpoint, so
that :func:`hscl.checkpoint.load_model` rebuilds the encoder.

Budget rule (fixed before any test number is seen, the same for every method of a data set):
``epochs = max(config.epochs, ceil(config.min_steps / steps_per_epoch))`` with ``steps_per_epoch`` the optimizer
steps of one pass over the labeled training images (``ceil(n_train / batch_size)`` on one process), so that a
small data set still gets ``min_steps`` optimizer steps (:func:`budget_epochs`). ``epochs = 0`` trains nothing:
the untrained-encoder control, evaluated by the same probe and kNN.

Pairing (docs/math.md section 5): a seed fixes the encoder's initialisation (seeded right before it is built, before
the loss), the batch order (a permutation drawn from (seed, epoch) alone) and the augmentations (drawn from (seed,
process rank, optimizer step) alone), so that two methods with the same seed differ only in the loss.
:func:`raw_pixel_probe` is the raw-pixel control: the same probe on flattened pixels, same splits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._extras import require
from .._validation import check_int

require(__name__, "images")  # before the imports below: name the extra, not "No module named 'lightning'"

import lightning.pytorch as pl
import numpy as np
import torch

from .._io import atomic_torch_save, atomic_write_text
from ..datasets.image_readers import balanced_split, balanced_subset
from ..datasets.image_sets import load_image_splits
from ..evaluation import knn_accuracy, linear_probe
from ..losses.registry import METHODS, make_loss
from ..models import ResNetEncoder, encoder_argument, projected_encoder, qualified_name
from ..transforms.image import SimCLRAugment, to_float_images
from .records import hardening_used, provenance
from .runs import embed_frozen

__all__ = [
    "ImageConfig",
    "ImageContrastive",
    "budget_epochs",
    "config_differences",
    "hardening_used",
    "raw_pixel_probe",
    "train_images",
    "training_split_size",
]


@dataclass
class ImageConfig:
    dataset: str = "digits"
    method: str = "hscl-beta"
    beta: float | None = None
    tau: float | None = None
    epochs: int = 5  # 0: no pre-training (the untrained-encoder control)
    min_steps: int = 0  # the budget rule: at least this many optimizer steps (see budget_epochs); 0: off
    batch_size: int = 256
    optimizer: str = "adam"  # "adam" (the paper's) or "sgd" (momentum 0.9, warm-up, cosine)
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_epochs: int = 0
    temperature: float = 0.5
    depth: int = 18
    width: int = 16
    hidden: int = 128
    projection: int = 64
    views: int = 2
    size: int | None = None  # crop size; default: the images' own
    val_fraction: float = 0.1
    train_subset: int | None = None  # pre-train and probe on this many train images (class-balanced); None: all
    use_unlabeled: bool = True  # unsupervised methods also pre-train on an unlabeled split (STL-10's)
    diagnostics: int = 0  # record the paper's diagnostics each epoch on this many training images (0: off)
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    num_workers: int = 0
    knn_k: int = 200
    data_root: str | None = None
    download: bool = False

    # what may differ between a run and its resumption
    RESUMABLE = ("epochs", "min_steps", "devices", "num_nodes", "num_workers", "accelerator", "data_root", "download")

    def validate(self) -> ImageConfig:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        for name in ("batch_size", "depth", "width", "hidden", "projection", "views", "devices", "knn_k"):
            value = getattr(self, name)
            check_int(name, value, 1)
        for name in ("epochs", "min_steps"):
            value = getattr(self, name)
            check_int(name, value, 0, note="(epochs 0: the untrained control)")
        if self.views < 2:
            raise ValueError(f"views must be >= 2 (one positive per anchor at least), got {self.views}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        check_int("diagnostics", self.diagnostics, 0, note="(images to record on)")
        check_int("train_subset", self.train_subset, 2, optional=True)
        if not (self.lr > 0 and self.temperature > 0 and self.weight_decay >= 0 and 0 < self.val_fraction < 1):
            raise ValueError("lr and temperature must be > 0, weight_decay >= 0 and val_fraction in (0, 1)")
        return self


def budget_epochs(epochs: int, min_steps: int, train_images: int, batch_size: int, world_size: int = 1) -> int:
    """The budget rule: ``max(epochs, ceil(min_steps / steps_per_epoch))`` with ``steps_per_epoch =
    ceil(ceil(train_images / world_size) / batch_size)`` (one optimizer step per batch, the last batch kept);
    ``epochs = 0`` stays 0 (the untrained control).

    >>> budget_epochs(5, 300, 1800, 256)   # 8 steps an epoch: 38 epochs give 304 >= 300 steps
    38
    >>> budget_epochs(5, 300, 45000, 256)  # 176 steps an epoch: the preset's 5 epochs already exceed 300
    5
    """
    for name, value, low in (
        ("epochs", epochs, 0),
        ("min_steps", min_steps, 0),
        ("train_images", train_images, 1),
        ("batch_size", batch_size, 1),
        ("world_size", world_size, 1),
    ):
        check_int(name, value, low, numpy=True)
    if epochs == 0:
        return 0
    steps_per_epoch = math.ceil(math.ceil(train_images / world_size) / batch_size)
    return max(int(epochs), math.ceil(min_steps / steps_per_epoch))


class _EpochShuffle(torch.utils.data.Sampler):
    """A permutation of ``range(n)`` drawn from (seed, epoch) alone: the same batch order for every method with
    the same seed, also after a resume (Lightning calls ``set_epoch`` at the start of every epoch)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return iter(torch.randperm(self.n, generator=gen).tolist())


class _Images(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> None:
        self.images, self.labels, self.index = images, labels, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        j = self.index[i]
        return torch.from_numpy(np.array(self.images[j])), int(self.labels[j])


def _record(config: ImageConfig, encoder: dict | None = None) -> dict:
    """``config.json``: every setting, with the hardening actually used, and the encoder (None: the ResNet)."""
    record = dataclasses.asdict(config)
    record["beta"], record["tau"] = hardening_used(config.method, config.beta, config.tau)
    record["encoder"] = encoder
    return record


class ImageContrastive(pl.LightningModule):
    """Pre-training: uint8 images -> V augmented views on the device -> encoder -> the loss.

    ``encoder``: the network (``forward`` gives the projections, ``features`` the representations); default the
    ResNet of ``config`` (depth, width, hidden, projection)."""

    def __init__(
        self,
        config: ImageConfig,
        mean: list[float],
        std: list[float],
        size: int,
        encoder: torch.nn.Module | None = None,
    ):
        super().__init__()
        self.config = config
        if encoder is None:
            encoder = ResNetEncoder(config.depth, config.width, 3, config.hidden, config.projection)
        describe = getattr(encoder, "description", None)
        self.save_hyperparameters(
            {
                "config": dataclasses.asdict(config),
                "model": getattr(encoder, "spec", None),  # what hscl.checkpoint.load_model rebuilds
                "encoder": describe() if describe is not None else None,
            }
        )
        self.encoder = encoder
        self.augment = SimCLRAugment(size)
        self.supervised = METHODS[config.method].supervised
        loss = make_loss(config.method, config.temperature, beta=config.beta, tau=config.tau)
        if hasattr(loss, "gather_distributed"):
            loss.gather_distributed = True  # negatives over the global batch under DDP
        self.loss = loss
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen representations of un-augmented images."""
        return self.encoder.features(self.normalize(to_float_images(images)))

    def augment_seed(self) -> int:
        """The augmentation seed of this optimizer step: drawn from (seed, process rank, step) alone."""
        rank = self.trainer.global_rank if self._trainer is not None else 0
        state = np.random.SeedSequence([self.config.seed, rank, self.global_step]).generate_state(2)
        return int(state[0]) << 31 | int(state[1]) >> 1

    def training_step(self, batch, batch_idx):
        images, labels = batch
        views = self.augment(images, views=self.config.views, seed=self.augment_seed())  # [B, V, 3, S, S]
        b, v = views.shape[:2]
        z = self.encoder(self.normalize(views.flatten(0, 1))).view(b, v, -1)
        loss = self.loss(z, labels if self.supervised else None)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=b)
        return loss

    def configure_optimizers(self):
        c = self.config
        if c.optimizer == "adam":
            return torch.optim.Adam(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        opt = torch.optim.SGD(self.parameters(), lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        steps = max(1, self.trainer.estimated_stepping_batches)
        per_epoch = steps / max(1, getattr(self.trainer, "max_epochs", None) or c.epochs)
        warm = c.warmup_epochs * per_epoch

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1.0, steps - warm)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _features(module: ImageContrastive, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    """Frozen float32 representations of ``images`` (the data cache's uint8 ``[N, H, W, C]``), ``batch`` at a time
    on the module's device, returned on the CPU."""
    batches = (torch.from_numpy(np.array(images[i : i + batch])) for i in range(0, len(images), batch))
    return embed_frozen(module, batches, embed=lambda x: module.embed(x.to(module.device)).float())


class KNNMonitor(pl.Callback):
    """Weighted kNN accuracy (k = 200 by default) of the validation split against the train split, each epoch."""

    def __init__(self, train_images, train_labels, val_images, val_labels, k: int, limit: int = 10000) -> None:
        self.train = (train_images[:limit], torch.as_tensor(train_labels[:limit]))
        self.val = (val_images, torch.as_tensor(val_labels))
        self.k = k

    def on_train_epoch_end(self, trainer, module) -> None:
        if not trainer.is_global_zero:
            return
        acc = knn_accuracy(
            _features(module, self.train[0]), self.train[1], _features(module, self.val[0]), self.val[1], k=self.k
        )
        module.log("val/knn_top1", acc, rank_zero_only=True)


def _atomic_checkpoint_io():
    """Lightning checkpoint I/O that writes through a temporary file and a rename (never a half-written file) and
    reads with ``torch.load(weights_only=True)`` whatever torch's default or the caller's ``weights_only``
    (:func:`hscl.checkpoint.safe_load`: any other pickled object is refused with a ``ValueError``)."""
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    from ..checkpoint import safe_load

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            atomic_torch_save(checkpoint, path)

        def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
            # Lightning passes no map_location: load to the CPU as its own TorchCheckpointIO does (every DDP rank
            # would otherwise put the whole checkpoint on cuda:0, and a GPU run could not resume on a CPU)
            return safe_load(path, map_location="cpu" if map_location is None else map_location)

    return AtomicCheckpointIO()


def _epoch_checkpoint(path: Path):
    """A callback that writes ``path`` at the end of every training epoch (through the trainer's checkpoint I/O,
    atomically), after the other callbacks' epoch-end hooks: a run killed during epoch k resumes at epoch k.
    (``ModelCheckpoint(save_last=True, save_top_k=0)`` writes ``last.ckpt`` only at the end of the fit.)"""
    from lightning.pytorch.callbacks import Checkpoint

    class EpochCheckpoint(Checkpoint):  # a Checkpoint: Lightning runs it after the other callbacks
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            trainer.save_checkpoint(path, weights_only=False)  # the whole state: optimizer, loops, callbacks

    return EpochCheckpoint()


def _diagnostics_callback(module: ImageContrastive, out: Path, train_all, train_idx, config: ImageConfig):
    """Per-epoch diagnostics (docs/math.md section 4: the four asymptotic losses and the Assumption 1 fractions at the
    paper's settings) on a fixed class-balanced subset of the training images, two SimCLR views each, written to
    ``OUT/diagnostics/`` (CSV and the two figures) by rank 0."""
    from ..diagnostics import DiagnosticsCallback, DiagnosticsRecorder

    labels = train_all.labels[train_idx]
    n = min(config.diagnostics, len(train_idx))
    keep = train_idx if n == len(train_idx) else train_idx[balanced_split(labels, n / len(train_idx), seed=7)[1]]
    keep = np.sort(keep)
    data = (
        torch.from_numpy(np.array(train_all.images[keep])),
        torch.as_tensor(train_all.labels[keep], dtype=torch.long),
    )

    def views(x: torch.Tensor) -> torch.Tensor:
        return module.normalize(module.augment(x.to(module.device), views=1)[:, 0])

    recorder = DiagnosticsRecorder(
        out / "diagnostics",
        temperature=config.temperature,
        title=f"({Path(config.dataset).name}, trained with {config.method})",
    )
    return DiagnosticsCallback(recorder, data, augment=views, model=lambda m: m.encoder)


def _loggers(out: Path) -> list:
    """CSV logs always (``OUT/logs``); TensorBoard event files too (``OUT/tensorboard``) when ``tensorboard`` or
    ``tensorboardX`` is installed (``pip install hscl[tensorboard]``)."""
    from importlib.util import find_spec

    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers = [CSVLogger(out, name="logs")]
    if find_spec("tensorboard") is not None or find_spec("tensorboardX") is not None:
        loggers.append(TensorBoardLogger(out, name="tensorboard"))
    return loggers


def config_differences(saved: dict, config: ImageConfig) -> list[str]:
    """The settings (outside ``ImageConfig.RESUMABLE``) in which a saved ``config.json`` differs from ``config``;
    a setting the saved file lacks (written by an older hscl) counts as its default, and ``beta``/``tau`` are
    compared as used (an older file's ``null`` is the method's default hardening, see :func:`hardening_used`)."""
    defaults = {f.name: f.default for f in dataclasses.fields(ImageConfig)}
    old = {k: saved.get(k, d) for k, d in defaults.items()}
    new = dataclasses.asdict(config)
    for record in (old, new):
        if isinstance(record["method"], str):
            record["beta"], record["tau"] = hardening_used(record["method"], record["beta"], record["tau"])
    return sorted(k for k, v in new.items() if k not in ImageConfig.RESUMABLE and old[k] != v)


def _encoder_key(encoder: dict | None):
    """What identifies an encoder across a resume: its factory string, else its class; None: the ResNet."""
    if not isinstance(encoder, dict):
        return None
    return ("factory", encoder["factory"]) if encoder.get("factory") else ("class", encoder.get("class"))


def _check_out(out: Path, config: ImageConfig, encoder: dict | None = None) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"output folder {out} cannot be created or written: {err}") from err
    saved = out / "config.json"
    if saved.is_file() and (out / "checkpoints" / "last.ckpt").is_file():
        record = json.loads(saved.read_text())
        diff = config_differences(record, config)
        if _encoder_key(record.get("encoder")) != _encoder_key(encoder):
            diff.append("encoder")
        if diff:
            raise ValueError(
                f"{out} holds a checkpoint of another configuration (different {', '.join(diff)}); "
                "use another --out or the same settings"
            )


def training_split_size(config: ImageConfig, progress: bool = False) -> int:
    """The number of labeled images in a job's training split (the data set's training images less the
    validation split), the most ``train_subset`` can take."""
    splits = load_image_splits(
        config.dataset, data_root=config.data_root, download_missing=config.download, progress=progress
    )
    labels = splits["train"].labels
    train_idx, _ = balanced_split(labels, config.val_fraction, seed=config.seed)
    return int((labels[train_idx] >= 0).sum())


def _splits(config: ImageConfig, progress: bool):
    """The data and the split indices of a job: (splits, train_idx, val_idx), identical for every method and for
    the controls of one seed (the validation split is drawn with ``seed``, the training subset with ``seed + 1``)."""
    splits = load_image_splits(
        config.dataset, data_root=config.data_root, download_missing=config.download, progress=progress
    )
    train_all = splits["train"]
    train_idx, val_idx = balanced_split(train_all.labels, config.val_fraction, seed=config.seed)
    if config.train_subset is not None:
        # exactly train_subset labeled images of the training split, class-balanced (the validation and test
        # splits stay whole); fewer than the classes or more than the split holds is refused
        keep = balanced_subset(
            train_all.labels[train_idx], config.train_subset, seed=config.seed + 1, name="train_subset"
        )
        train_idx = train_idx[keep]
    return splits, train_idx, val_idx


def _device(config: ImageConfig) -> torch.device:
    """Where the untrained control embeds (no Trainer runs): the GPU when the config would train on one."""
    gpu = config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def _user_encoder(encoder) -> dict | None:
    """The identity of the ``encoder`` argument (None: the ResNet), checked by :func:`encoder_argument` (a
    factory resolved, not called yet) so that a bad one is reported before anything is read or written."""
    module, factory = encoder_argument(encoder)
    if module is None and factory is None:
        return None
    return {"factory": factory, "class": None if module is None else qualified_name(module)}


def train_images(
    config: ImageConfig,
    out: str | os.PathLike,
    *,
    progress: bool = True,
    callbacks: Sequence = (),
    encoder: torch.nn.Module | str | None = None,
    feature_dim: int | None = None,
) -> dict:
    """Run a whole image job (see the module docstring) and return the metrics written to ``OUT/metrics.json``.

    ``callbacks``: extra Lightning callbacks (for instance to record batches). With ``config.epochs = 0`` nothing
    is trained: the untrained encoder (same seed, same initialisation) goes through the same evaluation.

    ``encoder``: your own network instead of the ResNet, an ``nn.Module`` (trained in place) or a factory
    ``"package.module:function"`` (imported, called without arguments after the seed; recorded so that the
    checkpoint can be rebuilt). It maps normalised images ``[N, 3, H, W]`` to ``[N, D]``; ``feature_dim`` is ``D``
    (default: read from one forward of two training images). The projection head ``D -> config.hidden ->
    config.projection`` is put on top; ``depth`` and ``width`` are then unused."""
    config.validate()
    out = Path(out)
    identity = _user_encoder(encoder)
    _check_out(out, config, identity)  # before any data is read or anything written
    pl.seed_everything(config.seed, workers=True, verbose=False)
    splits, train_idx, val_idx = _splits(config, progress)
    train_all, test = splits["train"], splits["test"]
    world = config.devices * config.num_nodes
    epochs = budget_epochs(config.epochs, config.min_steps, len(train_idx), config.batch_size, world)
    size = config.size or train_all.images.shape[1]
    sample = to_float_images(torch.from_numpy(np.array(train_all.images[train_idx[:5000]])))
    mean, std = sample.mean(dim=(0, 2, 3)).tolist(), sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    torch.manual_seed(config.seed)  # the initialisation depends on the seed alone (the encoder is built first)
    net = None
    if identity is not None:
        example = (sample[:2] - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        net = projected_encoder(
            encoder, example, feature_dim=feature_dim, hidden=config.hidden, projection=config.projection
        )
        identity = net.description()
    module = ImageContrastive(config, mean, std, size, encoder=net)
    pretrain_set = _Images(train_all.images, train_all.labels, train_idx)
    unlabeled = splits.get("unlabeled")
    if unlabeled is not None and config.use_unlabeled and not METHODS[config.method].supervised:
        extra = _Images(unlabeled.images, unlabeled.labels, np.arange(len(unlabeled.labels)))
        pretrain_set = torch.utils.data.ConcatDataset([pretrain_set, extra])
    atomic_write_text(out / "config.json", json.dumps(_record(config, identity), indent=1) + "\n")
    if epochs == 0:
        module.to(_device(config))
    else:
        module = _fit(module, config, out, epochs, pretrain_set, train_all, train_idx, val_idx, callbacks, progress)
        if module is None:
            return {}
    tr = _features(module, train_all.images[train_idx])
    va = _features(module, train_all.images[val_idx])
    te = _features(module, test.images)
    metrics = _evaluate(config, tr, va, te, train_all.labels[train_idx], train_all.labels[val_idx], test.labels)
    metrics.update(epochs=epochs, pretrain_images=len(pretrain_set) if epochs else 0, **provenance())
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics


def _fit(module, config, out, epochs, pretrain_set, train_all, train_idx, val_idx, callbacks, progress):
    """Pre-train ``module`` for ``epochs`` (resuming from ``OUT/checkpoints/last.ckpt``, written at the end of
    every epoch); the trained module on rank 0, None on the other ranks."""
    import inspect

    distributed = config.devices * config.num_nodes > 1
    if distributed:  # Lightning swaps in a DistributedSampler seeded with the seed, reshuffled per epoch
        options = {"shuffle": True}
    else:
        options = {"sampler": _EpochShuffle(len(pretrain_set), config.seed)}
    loader = torch.utils.data.DataLoader(
        pretrain_set, batch_size=config.batch_size, drop_last=False, num_workers=config.num_workers, **options
    )
    last = out / "checkpoints" / "last.ckpt"
    callbacks = [
        _epoch_checkpoint(last),
        KNNMonitor(
            train_all.images[train_idx],
            train_all.labels[train_idx],
            train_all.images[val_idx],
            train_all.labels[val_idx],
            config.knn_k,
        ),
        *callbacks,
    ]
    if config.diagnostics:
        callbacks.append(_diagnostics_callback(module, out, train_all, train_idx, config))
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=config.precision,
        callbacks=callbacks,
        logger=_loggers(out),
        default_root_dir=out,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=10,
        plugins=[_atomic_checkpoint_io()],
        deterministic=False,
    )
    for stale in last.parent.glob(f".{last.name}.*.tmp"):  # left by a kill during a checkpoint's write
        stale.unlink(missing_ok=True)
    options = {"weights_only": True} if "weights_only" in inspect.signature(trainer.fit).parameters else {}
    # the checkpoint I/O reads with weights_only=True in any case (Lightning < 2.5 has no such argument)
    trainer.fit(module, loader, ckpt_path=str(last) if last.is_file() else None, **options)
    return module if trainer.is_global_zero else None


def _evaluate(config: ImageConfig, tr, va, te, train_y, val_y, test_y) -> dict:
    """The evaluation of docs/math.md section 5 on features of the train, validation and test splits: the linear probe
    (C chosen on validation, reported on test) and the weighted kNN on test."""
    probe = linear_probe(tr.numpy(), train_y, va.numpy(), val_y, te.numpy(), test_y)
    return {
        "linear_top1": probe["linear_top1"],
        "linear_val_top1": probe["val_top1"],
        "linear_C": probe["C"],
        "knn_top1": knn_accuracy(tr, torch.as_tensor(train_y), te, torch.as_tensor(test_y), k=config.knn_k),
        "method": config.method,
        "dataset": config.dataset,
        "seed": config.seed,
        "train_images": len(train_y),
        "val_images": len(val_y),
        "test_images": len(test_y),
    }


def raw_pixel_probe(config: ImageConfig, out: str | os.PathLike | None = None, *, progress: bool = True) -> dict:
    """The raw-pixel control: the linear probe and the kNN of :func:`train_images` on the flattened pixels (the
    probe standardises them with train statistics; the kNN sees them standardised the same way), on the same
    train / validation / test split as the methods of ``config.seed``. Writes ``OUT/metrics.json`` and
    ``OUT/config.json`` when ``out`` is given; ``metrics["method"]`` is ``"raw-pixels"``."""
    config.validate()
    if out is not None:
        out = Path(out)
        _check_out(out, config)
    splits, train_idx, val_idx = _splits(config, progress)
    train_all, test = splits["train"], splits["test"]

    def flat(images) -> torch.Tensor:
        return torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(len(images), -1))

    tr, va, te = flat(train_all.images[train_idx]), flat(train_all.images[val_idx]), flat(test.images)
    mean, std = tr.mean(0), tr.std(0).clamp_min(1e-6)
    tr, va, te = ((a - mean) / std for a in (tr, va, te))
    metrics = _evaluate(config, tr, va, te, train_all.labels[train_idx], train_all.labels[val_idx], test.labels)
    metrics.update(method="raw-pixels", epochs=0, pretrain_images=0, **provenance())
    if out is not None:
        atomic_write_text(out / "config.json", json.dumps(_record(config), indent=1) + "\n")
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics
