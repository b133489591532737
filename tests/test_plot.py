"""Figures a reader understands: every figure hscl writes is rendered from a small synthetic results table and
checked on its matplotlib objects. Bars start at 0; no legend covers an axes' data area; data sets appear by
name, never as a file name; beta and tau are math text; epoch axes have integer ticks."""

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from hscl import _plot
from hscl.diagnostics import DiagnosticsRecorder
from hscl.experiments import figures
from hscl.experiments import graphs as G
from hscl.experiments import images as I

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = "../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz"
FILE_NAME = re.compile(r"\.(?:tar\.gz|tgz|tar|zip|npz|npy|csv|pt|ckpt|pkl)\b|[\w.~-]*/[\w.-]+/", re.IGNORECASE)
PLAIN_GREEK = re.compile(r"(?<![\w\\-])(?:beta|tau)(?![\w-])")


@pytest.fixture
def saved(monkeypatch):
    """Every figure saved through ``Figure.savefig`` during the test, by the final path of its PNG."""
    figs: dict[str, Figure] = {}
    original = Figure.savefig

    def spy(self, fname, *args, **kwargs):
        original(self, fname, *args, **kwargs)
        tmp = Path(fname)  # atomic_write's temporary file: ".<name>.<random>.tmp" beside the target
        figs[tmp.name[1:].rsplit(".", 2)[0]] = self

    monkeypatch.setattr(Figure, "savefig", spy)
    return figs


# --------------------------------------------------------------------------------------------- the checks


def _draw(fig):
    """Lay ``fig`` out again as it was saved (``save_png`` closed it, which detached its canvas); its renderer."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _texts(fig) -> list[str]:
    """Every piece of text a reader sees: titles, axis labels, tick labels, legend entries and titles."""
    _draw(fig)
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_title(loc) for loc in ("left", "center", "right")]
        out += [ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels())]
        out += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    return [t for t in out if t]


def _legends(fig) -> list:
    return [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)


def _overlap(a, b) -> float:
    """Area (px^2) shared by two window extents."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def check_legends_outside(fig) -> None:
    renderer = _draw(fig)
    legends = _legends(fig)
    assert legends, "the figure has a legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert _overlap(box, ax.get_window_extent(renderer)) == 0, (
                f"the legend {[t.get_text() for t in legend.get_texts()]} covers the data area of {ax.get_title()!r}"
            )


def check_names_and_math(fig) -> None:
    for text in _texts(fig):
        assert not FILE_NAME.search(text), f"a file name or path in {text!r}"
        outside_math = re.sub(r"\$[^$]*\$", "", text)
        assert not PLAIN_GREEK.search(outside_math), f"beta/tau not in math text: {text!r}"


def check_bars_from_zero(fig) -> None:
    bars = [(ax, c) for ax in fig.axes for c in ax.containers if isinstance(c, BarContainer)]
    assert bars, "the figure has bars"
    for ax, container in bars:
        assert ax.get_ylim()[0] <= 0, f"the bars' axis starts at {ax.get_ylim()[0]}, not 0"
        for bar in container.patches:
            assert bar.get_y() == 0, "every bar starts at 0"


def check_integer_epochs(fig) -> int:
    _draw(fig)
    checked = 0
    for ax in fig.axes:
        if ax.get_xlabel() != "epoch":
            continue
        labels = [t.get_text().replace("\N{MINUS SIGN}", "-") for t in ax.get_xticklabels() if t.get_text()]
        assert labels and all(re.fullmatch(r"-?\d+", t) for t in labels), f"epoch ticks {labels}"
        checked += 1
    assert checked, "the figure has an epoch axis"
    return checked


def legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in _legends(fig) for t in legend.get_texts()]


# --------------------------------------------------------------------------------------------- the shared style


def test_dataset_names_and_math_text():
    assert _plot.dataset_name(ARCHIVE) == "CIFAR-10"
    assert _plot.dataset_name("cifar-100-python") == "CIFAR-100"
    assert _plot.dataset_name("/data/stl10_binary/") == "STL-10"
    assert _plot.dataset_name("tiny-imagenet-200.zip") == "Tiny-ImageNet"
    assert _plot.dataset_name("PTC_MR") == "PTC_MR" and _plot.dataset_name("my_set.npz") == "my_set"
    assert _plot.math_text("H-SCL (beta=1)") == r"H-SCL ($\beta$=1)"
    assert _plot.math_text("tau=e^-0.5") == r"$\tau$=$e^{-0.5}$"
    assert _plot.math_text("H-SCL (beta/tau on inner split)") == r"H-SCL ($\beta$/$\tau$ on inner split)"
    assert _plot.math_text("tau_plus, hscl-beta") == "tau_plus, hscl-beta", "names of code are left alone"
    assert _plot.readable(f"({ARCHIVE}, trained with hscl-beta)") == "(CIFAR-10, trained with hscl-beta)"


def test_bar_chart_and_paired_chart(tmp_path, saved):
    series = {"raw pixels": ([80.0, 60.0], [1.0, 2.0]), "H-SCL (beta=1)": ([92.0, np.nan], [0.5, 0.0])}
    _plot.bar_chart(tmp_path / "bars.png", [ARCHIVE, "MUTAG"], series, title="t", controls=["raw pixels"])
    fig = saved["bars.png"]
    check_bars_from_zero(fig)
    check_legends_outside(fig)
    check_names_and_math(fig)
    assert "raw pixels (control)" in legend_labels(fig) and r"H-SCL ($\beta$=1)" in legend_labels(fig)
    _plot.paired_chart(
        tmp_path / "empty.png",
        ["MUTAG"],
        {"UCL": ([np.nan], [np.nan], [np.nan])},
        title="t",
        ylabel="d",
        empty="nothing paired",
    )
    assert "nothing paired" in _texts(saved["empty.png"])


# --------------------------------------------------------------------------------------------- every figure


def _graph_results(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps({"fingerprint": "f00d", "settings": {"graph": {"folds": 3}}}))
    rng = np.random.default_rng(0)
    methods = ["untrained", "wl", "supervised", "ucl", "hucl", "scl", "hscl-beta", "hscl-tau-labels", "supcon"]
    rows = []
    for d in ("MUTAG", "PROTEINS"):
        for i, m in enumerate(methods):
            for seed in (0, 1):
                for fold in range(3):
                    acc = 0.6 + 0.03 * i + 0.02 * rng.standard_normal()
                    kept = "0.8" if m == "hscl-tau-labels" else ""
                    rows.append(
                        dict(
                            dataset=d,
                            method=m,
                            seed=seed,
                            fold=fold,
                            accuracy=f"{acc:.4f}",
                            svm_C="1",
                            pretraining="",
                            epochs="2",
                            steps="10",
                            negatives_kept=kept,
                            seconds="1",
                            fingerprint="f00d",
                        )
                    )
    path = folder / "results.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=G.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_graph_report_figures(tmp_path, saved):
    G.write_report(_graph_results(tmp_path))
    bars, paired = saved["accuracy.png"], saved["paired.png"]
    check_bars_from_zero(bars)
    for fig in (bars, paired):
        check_legends_outside(fig)
        check_names_and_math(fig)
        labels = legend_labels(fig)
        assert r"H-UCL ($\beta$=1)" in labels and r"H-SCL ($\tau$=$e^{-0.5}$), label pos." in labels
    assert "GIN, untrained (control)" in legend_labels(bars), "the controls are in the bar chart, marked"
    assert "WL subtree kernel (control)" in legend_labels(paired), "the paired differences include the other controls"
    assert _legend_colours(paired)["UCL"] == _legend_colours(bars)["UCL"], "a method keeps its colour across figures"
    assert [t.get_text() for t in paired.axes[0].get_xticklabels()] == ["MUTAG", "PROTEINS"]


@pytest.mark.skipif(not (ROOT / "results" / "graphs" / "results.csv").is_file(), reason="no committed graph run")
def test_graph_report_of_the_committed_run_renders(tmp_path, saved):
    """``write_report`` on a copy of the committed (possibly still growing) graph results."""
    for name in ("results.csv", "settings.json"):
        shutil.copy(ROOT / "results" / "graphs" / name, tmp_path / name)
    table, png = G.write_report(tmp_path / "results.csv")
    assert table.is_file() and png == tmp_path / "accuracy.png" and (tmp_path / "paired.png").is_file()
    check_bars_from_zero(saved["accuracy.png"])
    for name in ("accuracy.png", "paired.png"):
        check_legends_outside(saved[name])
        check_names_and_math(saved[name])


def _image_results(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    methods = ["untrained", "raw-pixels", "ucl", "hucl", "scl", "hscl-tau", "hscl-beta-labels"]
    rows = []
    for seed in (0, 1, 2):
        for i, m in enumerate(methods):
            acc = 0.55 + 0.04 * i + 0.01 * seed
            rows.append(
                dict(
                    dataset=ARCHIVE,
                    method=m,
                    seed=seed,
                    linear_top1=acc,
                    knn_top1=acc - 0.02,
                    linear_val_top1=acc,
                    epochs=0 if m in I.CONTROLS else 3,
                    train_images=1000,
                    seconds=1,
                    fingerprint="f00d",
                )
            )
            if m in I.CONTROLS:
                continue
            log = folder / "runs" / f"{m}-seed{seed}" / "logs" / "version_0" / "metrics.csv"
            log.parent.mkdir(parents=True)
            lines = ["epoch,step,train/loss_epoch,val/knn_top1"]
            lines += [f"{e},{10 * e},{5 - e - 0.1 * i},{0.3 + 0.1 * e}" for e in range(3)]
            log.write_text("\n".join(lines) + "\n")
    path = folder / "results.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=I.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_image_report_figures(tmp_path, saved):
    I.write_report(_image_results(tmp_path))
    bars, paired, curves = saved["accuracy.png"], saved["paired.png"], saved["curves.png"]
    check_bars_from_zero(bars)
    for fig in (bars, paired, curves):
        check_legends_outside(fig)
        check_names_and_math(fig)
        assert r"H-SCL ($\tau$=$e^{-0.5}$)" in legend_labels(fig)
    assert check_integer_epochs(curves) == 2
    groups = [t.get_text() for t in bars.axes[0].get_xticklabels()]
    assert groups[0].startswith("CIFAR-10") and len(groups) == 2
    assert "raw pixels (control)" in legend_labels(paired), "the raw-pixel control is compared with the untrained one"
    assert _legend_colours(paired)["UCL"] == _legend_colours(bars)["UCL"], "a method keeps its colour across figures"
    assert _legend_colours(paired)["SCL"] == _legend_colours(bars)["SCL"]


def _legend_colours(fig) -> dict[str, tuple]:
    """Legend label -> the RGBA colour of its handle (a bar's face or a marker's face)."""
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch

    out = {}
    for legend in _legends(fig):
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            colour = handle.get_facecolor() if isinstance(handle, Patch) else handle.get_color()
            out[text.get_text()] = tuple(round(float(c), 3) for c in mcolors.to_rgba(colour))
    return out


def _diagnostic_rows() -> tuple[list[dict], list[dict]]:
    rows, results = [], []
    for m in ("scl", "hscl-beta", "hucl"):
        for seed in (0, 1):
            for epoch in (0, 1, 2):
                for k, setting in enumerate(figures.PAPER_SETTINGS):
                    losses = {
                        name: 3.0 - 0.1 * epoch + 0.05 * j + 0.01 * k for j, name in enumerate(figures.LOSS_NAMES)
                    }
                    rows.append(
                        dict(
                            method=m,
                            seed=seed,
                            epoch=epoch,
                            setting=setting,
                            hscl_le_hucl="True",
                            assumption_fraction=0.5 + 0.1 * epoch + 0.01 * seed,
                            **losses,
                        )
                    )
    for m in (*figures.CONTROLS, "scl", "hscl-beta", "hucl"):
        for seed in (0, 1):
            results.append(dict(method=m, seed=seed, linear_top1=0.9, knn_top1=0.85, linear_val_top1=0.9, epochs=2))
    return rows, results


def test_figures_4_and_5(tmp_path, saved):
    rows, results = _diagnostic_rows()
    figures._report(tmp_path, rows, results, ["scl", "hscl-beta", "hucl"], "cpu")
    for name in ("figure4_assumption.png", "figure5_losses.png"):
        fig = saved[name]
        check_legends_outside(fig)
        check_names_and_math(fig)
        assert check_integer_epochs(fig) == len(figures.PAPER_SETTINGS)
        assert [ax.get_title() for ax in fig.axes] == [
            r"$\tau$=$e^{-0.5}$",
            r"$\tau$=$e^{-0.1}$",
            r"$\beta$=1",
            r"$\beta$=2",
        ]
    assert r"H-SCL ($\beta$=1)" in legend_labels(saved["figure4_assumption.png"])


def test_recorder_figures(tmp_path, saved):
    recorder = DiagnosticsRecorder(tmp_path, title=f"({ARCHIVE}, trained with hscl-beta)")
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(16) % 4
    for epoch in (1, 2, 3):
        recorder.record(epoch, torch.randn(16, 2, 4, generator=g, dtype=torch.float64), labels)
    for name in ("diagnostics_losses.png", "diagnostics_assumption.png"):
        fig = saved[name]
        check_legends_outside(fig)
        check_names_and_math(fig)
        check_integer_epochs(fig)
        assert any("CIFAR-10" in t for t in _texts(fig)), "the data set by its name"
    assert r"$\beta$=2" in legend_labels(saved["diagnostics_assumption.png"])
