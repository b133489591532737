"""The Lightning callback (:mod:`hscl.diagnostics.callback`): the recorder's rows after each epoch of a fit."""

import pytest
import torch

import hscl
from hscl.diagnostics import DiagnosticsRecorder
from tests.conftest import csv_rows as _rows
from tests.diagnostics.conftest import SETTINGS


def test_lightning_callback(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from hscl.diagnostics import DiagnosticsCallback

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=g), torch.randint(3, (64,), generator=g)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
            self.loss = hscl.losses.HSCL(beta=1.0)

        def training_step(self, batch, _):
            xb, yb = batch
            views = torch.stack([xb + 0.1 * torch.randn_like(xb) for _ in range(2)], 1)
            return self.loss(self.net(views), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    rec = DiagnosticsRecorder(tmp_path, SETTINGS)
    cb = DiagnosticsCallback(rec, (x, y), augment=lambda t: t + 0.1 * torch.randn_like(t), model=lambda m: m.net)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Module(), data)
    rows = _rows(tmp_path / "diagnostics.csv")
    assert [r["epoch"] for r in rows] == ["0", "0", "1", "1"]
