"""Recording the diagnostics every epoch: a CSV row per epoch and hardening setting, and two figures (the four
losses across epochs, as the paper's Figure 5; the fraction of anchors satisfying Assumption 1, as its Figure 4).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from torch import Tensor

from .._io import write_csv_atomic
from .._plot import ASYMPTOTIC_LABEL, epoch_axis, legend_outside, math_text, pyplot, readable, save_png
from .asymptotic import LOSS_NAMES, PAPER_SETTINGS, assumption_report
from .embed import embed_views

__all__ = ["DiagnosticsRecorder"]

COLUMNS = (
    "epoch",
    "setting",
    *LOSS_NAMES,
    "assumption_fraction",
    "anchors",
    "satisfied",
    "vacuous",
    "excluded",
    "hscl_le_hucl",
    "hscl_ge_ucl",
    "frac_anchors_hscl_le_hucl",
    "frac_anchors_hscl_ge_ucl",
    "temperature",
)


class DiagnosticsRecorder:
    """Per-epoch recorder of the four asymptotic losses and the Assumption 1 fractions.

    Call :meth:`record` with embeddings (``[N, 2, D]`` and labels) or :meth:`record_model` with a model and data
    at the end of each epoch. Every call rewrites ``out_dir/diagnostics.csv`` atomically (a row per epoch and
    setting; re-recording an epoch replaces its rows, so a resumed run continues the same file) and redraws
    ``out_dir/diagnostics_losses.png`` and ``out_dir/diagnostics_assumption.png``.

    Args:
        out_dir: output folder (created).
        settings: name -> hardening; default the paper's four (tau = e^-0.5, e^-0.1; beta = 1, 2).
        temperature: t of the critic.
        chunk_size: anchors per chunk (see :func:`~hscl.diagnostics.assumption_report`).
        title: a title for the figures (e.g. the data set and the method trained).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        settings: Mapping[str, object] | None = None,
        *,
        temperature: float = 0.5,
        chunk_size: int | None = None,
        title: str = "",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(self.out_dir, os.W_OK):
            raise PermissionError(f"out_dir {self.out_dir} is not writable")
        self.settings = dict(PAPER_SETTINGS if settings is None else settings)
        if not self.settings:
            raise ValueError("settings must name at least one hardening")
        self.temperature = temperature
        self.chunk_size = chunk_size
        self.title = title
        self.csv_path = self.out_dir / "diagnostics.csv"
        self.rows: list[dict[str, str]] = self._read_existing()

    def _read_existing(self) -> list[dict[str, str]]:
        if not self.csv_path.exists():
            return []
        with open(self.csv_path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
                raise ValueError(f"{self.csv_path} exists but is not a diagnostics CSV with columns {COLUMNS}")
            return list(reader)

    def record(self, epoch: int, z: Tensor, labels: Tensor, *, draw: bool = True) -> list[dict]:
        """Compute every setting on ``z`` (``[N, 2, D]``) with the whole of it as reference set; write the CSV
        and (unless ``draw=False``; call :meth:`plot` later) redraw the figures."""
        new = []
        for name, hardening in self.settings.items():
            report = assumption_report(
                z, labels, hardening=hardening, temperature=self.temperature, chunk_size=self.chunk_size
            )
            row = report.summary()
            row.pop("hardening")
            new.append({"epoch": epoch, "setting": name, **row})
        self.rows = [r for r in self.rows if int(r["epoch"]) != epoch] + [
            {k: str(v) for k, v in r.items()} for r in new
        ]
        self.rows.sort(
            key=lambda r: (
                int(r["epoch"]),
                list(self.settings).index(r["setting"]) if r["setting"] in self.settings else len(self.settings),
            )
        )
        self._write()
        if draw:
            self.plot()
        return new

    def record_model(
        self,
        epoch: int,
        model,
        data,
        *,
        augment: Callable[[Tensor], Tensor],
        batch_size: int = 512,
        draw: bool = True,
    ) -> list[dict]:
        """Embed ``data`` with ``model`` (two views, no gradients), then :meth:`record`."""
        z, labels = embed_views(model, data, augment=augment, views=2, batch_size=batch_size, progress=False)
        return self.record(epoch, z, labels, draw=draw)

    def _write(self) -> None:
        write_csv_atomic(self.csv_path, self.rows, COLUMNS)

    def plot(self) -> tuple[Path, Path]:
        """Redraw both figures from the rows; returns their paths."""
        plt = pyplot()

        names = list(dict.fromkeys(r["setting"] for r in self.rows))
        series = {n: sorted((int(r["epoch"]), r) for r in self.rows if r["setting"] == n) for n in names}

        fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            epochs = [e for e, _ in series[name]]
            for loss in LOSS_NAMES:
                ax.plot(epochs, [float(r[loss]) for _, r in series[name]], marker="o", ms=3, label=loss)
            ax.set_title(math_text(name))
            epoch_axis(ax)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(ASYMPTOTIC_LABEL)
        legend_outside(axes[0][-1], title="asymptotic loss", title_fontsize=8)
        fig.suptitle(readable(f"The four asymptotic losses {self.title}".strip()), fontsize=11)
        fig.tight_layout()
        losses_png = self.out_dir / "diagnostics_losses.png"
        save_png(fig, losses_png)

        fig, ax = plt.subplots(figsize=(6, 4))
        for name in names:
            ax.plot(
                [e for e, _ in series[name]],
                [float(r["assumption_fraction"]) for _, r in series[name]],
                marker="o",
                ms=3,
                label=name,
            )
        epoch_axis(ax)
        ax.set_ylabel("fraction of anchors")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        legend_outside(ax, title="hardening", title_fontsize=8)
        ax.set_title(readable(f"Anchors satisfying Assumption 1\n{self.title}".strip()), fontsize=11)
        fig.tight_layout()
        assumption_png = self.out_dir / "diagnostics_assumption.png"
        save_png(fig, assumption_png)
        return losses_png, assumption_png
