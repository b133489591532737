"""The diagnostics as a PyTorch Lightning callback (needs ``lightning``)."""

from __future__ import annotations

from collections.abc import Callable

from .._extras import require

require(__name__, "images")  # before the imports below: name the extra, not "No module named 'lightning'"

import lightning.pytorch as pl
from torch import Tensor

from .recorder import DiagnosticsRecorder

__all__ = ["DiagnosticsCallback"]


class DiagnosticsCallback(pl.Callback):
    """At the end of every training epoch, embed ``data`` (two augmented views per sample, no gradients) with
    the module's encoder and record the diagnostics (on global rank 0 only).

    Args:
        recorder: where to write (a :class:`~hscl.diagnostics.DiagnosticsRecorder`).
        data: ``(x, y)`` tensors or an iterable of ``(x, y)`` batches (a fixed diagnostic set).
        augment: the random augmentation used for each view.
        model: maps the LightningModule to the network that gives the embeddings (default: the module itself).
        every_n_epochs: record every n-th epoch (and always the first).
    """

    def __init__(
        self,
        recorder: DiagnosticsRecorder,
        data,
        *,
        augment: Callable[[Tensor], Tensor],
        model: Callable[[pl.LightningModule], Callable[[Tensor], Tensor]] | None = None,
        every_n_epochs: int = 1,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.recorder = recorder
        self.data = data
        self.augment = augment
        self.model = model
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if not trainer.is_global_zero or epoch % self.every_n_epochs:
            return
        net = self.model(pl_module) if self.model is not None else pl_module
        self.recorder.record_model(epoch, net, self.data, augment=self.augment)
