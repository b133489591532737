"""The per-epoch recorder (:mod:`hscl.diagnostics.recorder`): CSV and figures, atomic, resumable."""

import pytest
import torch

from hscl.diagnostics import DiagnosticsRecorder, assumption_report
from tests.conftest import csv_rows as _rows
from tests.diagnostics.conftest import SETTINGS


def test_record_writes_rows_and_figures(tmp_path):
    rec = DiagnosticsRecorder(tmp_path, SETTINGS, title="test")
    z, y = torch.randn(30, 2, 4), torch.randint(3, (30,))
    for epoch in range(3):
        rec.record(epoch, z + 0.1 * epoch, y)
    rows = _rows(tmp_path / "diagnostics.csv")
    assert [(r["epoch"], r["setting"]) for r in rows] == [(str(e), s) for e in range(3) for s in SETTINGS]
    expected = assumption_report(z + 0.2, y, hardening=SETTINGS["beta=1"])
    last = rows[-2]
    assert float(last["H-SCL"]) == pytest.approx(expected.losses["H-SCL"], rel=1e-6)
    assert float(last["assumption_fraction"]) == pytest.approx(expected.fraction)
    for png in ("diagnostics_losses.png", "diagnostics_assumption.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file may be left behind"
    assert (tmp_path / "diagnostics.csv").stat().st_mode & 0o044, "results must be readable by others (umask)"


def test_resume_replaces_the_epoch_and_keeps_the_rest(tmp_path):
    z, y = torch.randn(20, 2, 4), torch.randint(3, (20,))
    rec = DiagnosticsRecorder(tmp_path, SETTINGS)
    rec.record(0, z, y)
    rec.record(1, z, y)
    resumed = DiagnosticsRecorder(tmp_path, SETTINGS)  # a new process picks the file up
    resumed.record(1, 2 * z, y)
    resumed.record(2, z, y)
    rows = _rows(tmp_path / "diagnostics.csv")
    assert [r["epoch"] for r in rows] == ["0", "0", "1", "1", "2", "2"]


def test_foreign_csv_is_refused(tmp_path):
    (tmp_path / "diagnostics.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a diagnostics CSV"):
        DiagnosticsRecorder(tmp_path, SETTINGS)


def test_empty_settings_refused(tmp_path):
    with pytest.raises(ValueError, match="settings must name at least one hardening"):
        DiagnosticsRecorder(tmp_path, {})


def test_record_model(tmp_path):
    model = torch.nn.Linear(6, 3)
    rec = DiagnosticsRecorder(tmp_path, SETTINGS)
    rows = rec.record_model(0, model, (torch.randn(25, 6), torch.randint(2, (25,))), augment=lambda t: t + 0.05)
    assert len(rows) == 2 and rows[0]["anchors"] == 50
