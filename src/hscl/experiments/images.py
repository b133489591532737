"""Image benchmarks end to end: every method x seed as one ``hscl train`` job, collected into one table.

Protocol (SPEC.md section 5): each job pre-trains a ResNet on the training split less a class-balanced
validation split, then fits a linear probe on frozen features whose settings are chosen on the validation split,
and reports it on the test split once; a weighted kNN (k = 200 by default) on test is the cheap second number.
Supervised methods (SCL, H-SCL, SupCon) see the training split's labels only; unsupervised ones (UCL, H-UCL) see
the same images without labels.

``run`` writes ``OUT/runs/<method>-seed<S>/`` (the job's own folder: config, logs, checkpoints, metrics) and
``OUT/results.csv`` (one row per method and seed, rewritten atomically after each job), and skips finished jobs;
a job killed half-way resumes from its last checkpoint. ``write_report`` writes ``table.md``, ``accuracy.png``
and ``curves.png`` (training loss and validation kNN per epoch).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import atomic_write_text
from .._plot import pyplot, save_png
from ..losses.registry import METHODS as LOSS_METHODS
from ._common import Manifest, bar_chart, load_results, read_rows, write_rows

__all__ = ["COLUMNS", "METHODS", "PUBLISHED", "run", "write_report"]

COLUMNS = ("dataset", "method", "seed", "linear_top1", "knn_top1", "linear_val_top1", "epochs", "train_images",
           "seconds")  # fmt: skip

#: The six methods of the tables (``hscl`` is an alias of ``hscl-beta`` and is not run twice).
METHODS = {k: v for k, v in LOSS_METHODS.items() if k != "hscl"}

#: Public reference numbers of SPEC.md section 6 (top-1 %, each from its own source and protocol).
PUBLISHED = (
    "SupCon / SimCLR, ResNet-50 (SupContrast README): CIFAR-10 96.0 / 93.6, CIFAR-100 76.5 / 70.7",
    "SupCon / SimCLR, ResNet-18, 1000 epochs (solo-learn README): CIFAR-10 93.82 / 90.74, CIFAR-100 70.38 / 65.78",
    "SimCLR / H-UCL (beta = 1), STL-10, ResNet-50 (HCL README): 80.15 / 87.44",
)


def run(
    out: str | Path,
    *,
    dataset: str,
    methods: Sequence[str] = tuple(METHODS),
    seeds: Sequence[int] = (0, 1),
    preset: str = "cpu",
    overrides: dict | None = None,
    progress: bool = True,
    train_fn=None,
) -> Path:
    """Run every missing (method, seed) job on ``dataset`` with the ``preset`` (name or YAML file) updated by
    ``overrides`` (``ImageConfig`` fields), and return the CSV's path."""
    from ..training.images import ImageConfig, config_differences, load_preset, train_images

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    base = {**load_preset(preset), **(overrides or {}), "dataset": dataset}
    for key in ("method", "seed"):
        base.pop(key, None)
    # seed-major order: a partial run has every method for its first seeds
    configs = {(m, s): ImageConfig(**base, method=m, seed=int(s)).validate() for s in seeds for m in methods}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    rows = read_rows(csv_path, COLUMNS)
    done = {(r["method"], r["seed"]) for r in rows if r["dataset"] == dataset}
    todo = [(m, s) for (m, s) in configs if (m, str(s)) not in done]
    manifest = Manifest(out / "run.json")
    train_fn = train_fn or train_images
    for m, s in todo:
        config = configs[m, s]
        folder = out / "runs" / f"{m}-seed{s}"
        if progress:
            print(f"[{len(rows) + 1}/{len(configs)}] {METHODS[m].label}, seed {s} -> {folder}", flush=True)
        start = time.perf_counter()
        metrics_path = folder / "metrics.json"
        metrics = None
        if metrics_path.is_file():  # finished before the CSV row was written
            metrics = json.loads(metrics_path.read_text())
            saved = folder / "config.json"
            if not saved.is_file() or config_differences(json.loads(saved.read_text()), config):
                metrics = None
        if metrics is None:
            metrics = train_fn(config, folder, progress=progress)
        rows.append(dict(dataset=dataset, method=m, seed=s, linear_top1=f"{metrics['linear_top1']:.6f}",
                         knn_top1=f"{metrics['knn_top1']:.6f}", linear_val_top1=f"{metrics['linear_val_top1']:.6f}",
                         epochs=metrics["epochs"], train_images=metrics["train_images"],
                         seconds=f"{time.perf_counter() - start:.1f}"))  # fmt: skip
        write_rows(csv_path, rows, COLUMNS)
        manifest.tick(len(rows), len(configs))
    return csv_path


def write_report(csv_path: str | Path) -> tuple[Path, Path]:
    """``table.md`` (linear probe and kNN top-1, mean ± std over seeds, per data set and method) and
    ``accuracy.png``."""
    csv_path = Path(csv_path)
    rows, datasets, methods = load_results(csv_path, COLUMNS, tuple(METHODS))
    stats = {}
    for d in datasets:
        for m in methods:
            sel = [r for r in rows if r["dataset"] == d and r["method"] == m]
            if sel:
                lin = 100 * np.array([float(r["linear_top1"]) for r in sel])
                knn = 100 * np.array([float(r["knn_top1"]) for r in sel])
                stats[d, m] = (lin.mean(), lin.std(), knn.mean(), knn.std(), len(sel))
    lines = ["| data set | method | linear probe top-1 | kNN top-1 | seeds |", "|---|---|---:|---:|---:|"]
    for d in datasets:
        best = max(v[0] for (dd, _), v in stats.items() if dd == d)
        for m in methods:
            if (d, m) in stats:
                lm, ls, km, ks, n = stats[d, m]
                text = f"{lm:.1f} ± {ls:.1f}"
                lines.append(f"| {Path(d).name} | {METHODS[m].label} | {f'**{text}**' if lm == best else text} | "
                             f"{km:.1f} ± {ks:.1f} | {n} |")  # fmt: skip
    epochs = sorted({r["epochs"] for r in rows})
    images = sorted({r["train_images"] for r in rows})
    lines += [
        "",
        f"Top-1 accuracy (%) on the test split, mean ± std over seeds; {', '.join(epochs)} pre-training epochs on "
        f"{', '.join(images)} training images. Linear probe: logistic regression on frozen features, its C chosen "
        "on a validation split held out of train; kNN: weighted, on the same features. Best linear probe per data "
        "set in bold. Supervised methods see the training labels; UCL and H-UCL see the same images without labels.",
        "",
        "Published reference numbers (other models, budgets and protocols; for orientation only):",
        "",
        *[f"* {p}" for p in PUBLISHED],
    ]
    table = csv_path.parent / "table.md"
    atomic_write_text(table, "\n".join(lines) + "\n")
    groups = [f"{Path(d).name}: {kind}" for d in datasets for kind in ("linear probe", "kNN")]
    missing = (np.nan, 0.0, np.nan, 0.0, 0)
    full = {METHODS[m].label: ([x for d in datasets for x in np.take(stats.get((d, m), missing), [0, 2])],
                               [x for d in datasets for x in np.take(stats.get((d, m), missing), [1, 3])])
            for m in methods}  # fmt: skip
    png = bar_chart(csv_path.parent / "accuracy.png", groups, full,
                    title="Images: top-1 on test from frozen features (mean ± std over seeds)")  # fmt: skip
    _learning_curves(csv_path.parent, methods)
    return table, png


def _epoch_logs(folder: Path) -> dict[int, dict[str, float]]:
    """Per epoch, the training loss and the validation kNN top-1 of one job (its newest Lightning CSV log)."""
    logs = sorted(folder.glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[-1]))
    out: dict[int, dict[str, float]] = {}
    for log in logs:  # later versions (resumed runs) overwrite earlier epochs
        with log.open(newline="") as fh:
            for row in csv.DictReader(fh):
                epoch = int(row["epoch"])
                for key in ("train/loss_epoch", "val/knn_top1"):
                    if row.get(key):
                        out.setdefault(epoch, {})[key] = float(row[key])
    return out


def _learning_curves(out: Path, methods: Sequence[str]) -> Path | None:
    """``curves.png``: training loss and validation kNN top-1 per epoch, one line per method (mean over seeds)."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    runs = {m: [_epoch_logs(f) for f in sorted((out / "runs").glob(f"{m}-seed*"))] for m in methods}
    if not any(any(r) for r in runs.values()):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for m, logs in runs.items():
        for ax, key, scale in ((axes[0], "train/loss_epoch", 1.0), (axes[1], "val/knn_top1", 100.0)):
            epochs = sorted({e for log in logs for e, v in log.items() if key in v})
            if epochs:
                means = [np.mean([log[e][key] for log in logs if key in log.get(e, {})]) * scale for e in epochs]
                ax.plot([e + 1 for e in epochs], means, marker="o", ms=3, label=METHODS[m].label)
    axes[0].set_ylabel("training loss (each method's own loss)")
    axes[1].set_ylabel("kNN top-1 on the validation split (%)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("Images: learning curves (mean over seeds)", fontsize=10)
    fig.tight_layout()
    path = out / "curves.png"
    save_png(fig, path)
    return path
