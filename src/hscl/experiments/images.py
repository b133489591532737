"""Image benchmarks end to end: every method x seed as one ``hscl train`` job, with two controls, in one table.

Protocol (docs/math.md section 5): each job pre-trains a ResNet on the training split less a class-balanced
validation split, then fits a linear probe on frozen features whose settings are chosen on the validation split,
and reports it on the test split once; a weighted kNN (k = 200 by default) on test is the cheap second number.
Supervised methods (SCL, H-SCL, SupCon) see the training split's labels only; unsupervised ones (UCL, H-UCL) see
the same images without labels. Two controls go through the identical protocol and splits, per seed:

* ``untrained``: the same encoder, untrained (the initialisation of that seed, which every method starts from;
  0 epochs), with the same probe and kNN;
* ``raw-pixels``: the same probe (and kNN) on the flattened, standardised pixels.

A seed fixes the initialisation, the batch order and the augmentations identically for every method
(:mod:`hscl.training.images`), so per-seed differences isolate the loss: the report gives, per method, the
paired comparison with each control, and the comparisons of the issue (H-SCL vs SCL in both configurations, SCL
vs UCL, H-SCL vs H-UCL), each a 95% t interval over seeds and its verdict
(:func:`hscl.evaluation.stats.seed_interval`). Standard deviations use ddof = 1.

``run`` binds ``OUT`` to one resolved configuration (``OUT/settings.json``; a rerun with other settings is
refused, naming them), writes ``OUT/runs/<method>-seed<S>/`` (the job's own folder: config, logs, checkpoints,
metrics) and ``OUT/results.csv`` (one row per method or control and seed, with the configuration's fingerprint,
rewritten atomically after each job), and skips finished jobs; a job killed half-way resumes from its last
checkpoint. ``write_report`` writes ``table.md``, ``accuracy.png`` (bars from 0), ``paired.png`` (each method
and the raw-pixel control minus the untrained encoder, paired by seed, with 95% intervals) and ``curves.png``
(training loss and validation kNN per epoch).
"""

from __future__ import annotations

from .._extras import require

require(__name__, "images")  # before the imports below: name the extra, not a missing module

import csv
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .._io import atomic_write_text, check_output_folder, write_csv_atomic
from .._plot import bar_chart, dataset_name, epoch_axis, legend_outside, paired_chart, pyplot, save_png
from ..evaluation.stats import mean_std, seed_interval
from ..losses.registry import DEFAULT_BETA, DEFAULT_TAU, TABLE_METHODS
from ..losses.registry import METHODS as LOSS_METHODS
from ..training.runs import Manifest, bind_settings, check_fingerprints, load_results, read_rows

if TYPE_CHECKING:
    from ..training.images import ImageConfig

__all__ = [
    "COLUMNS",
    "CONTROLS",
    "METHODS",
    "PAIRS",
    "PUBLISHED",
    "ImageRun",
    "comparison_tables",
    "configure",
    "main",
    "run",
    "write_report",
]

COLUMNS = (
    "dataset",
    "method",
    "seed",
    "linear_top1",
    "knn_top1",
    "linear_val_top1",
    "epochs",
    "train_images",
    "seconds",
    "fingerprint",
)

#: The methods of the tables, in table order (both configurations of SCL and H-SCL; ``hscl`` is an alias).
METHODS = {k: LOSS_METHODS[k] for k in TABLE_METHODS}

#: The controls (rows of every table, run through the same protocol): name -> label.
CONTROLS = {"untrained": "untrained encoder", "raw-pixels": "raw pixels"}

#: The paired comparisons of the issue: (a, b, what a - b tests).
PAIRS = (
    ("hscl-beta", "scl", "H-SCL vs SCL"),
    ("hscl-tau", "scl", "H-SCL vs SCL"),
    ("hscl-beta-labels", "scl-labels", "H-SCL vs SCL"),
    ("hscl-tau-labels", "scl-labels", "H-SCL vs SCL"),
    ("scl", "ucl", "SCL vs UCL"),
    ("scl-labels", "ucl", "SCL vs UCL"),
    ("hscl-beta", "hucl", "H-SCL vs H-UCL"),
    ("hscl-beta-labels", "hucl", "H-SCL vs H-UCL"),
)

#: Public reference numbers of docs/math.md section 6 (top-1 %, each from its own source and protocol).
PUBLISHED = (
    "SupCon / SimCLR, ResNet-50 (SupContrast README): CIFAR-10 96.0 / 93.6, CIFAR-100 76.5 / 70.7",
    "SupCon / SimCLR, ResNet-18, 1000 epochs (solo-learn README): CIFAR-10 93.82 / 90.74, CIFAR-100 70.38 / 65.78",
    "SimCLR / H-UCL (beta = 1), STL-10, ResNet-50 (HCL README): 80.15 / 87.44",
)

#: The (unused) method recorded in the controls' job configurations.
_CONTROL_METHOD = TABLE_METHODS[0]

#: Settings that change where data is read from or how fast, never a result: left out of the fingerprint.
_NOT_RESULTS = ("method", "seed", "data_root", "download", "num_workers", "diagnostics")


def label(name: str) -> str:
    """The table label of a method or control."""
    return CONTROLS.get(name) or LOSS_METHODS[name].label


def settings(config, *, experiment: str = "images", **extra) -> dict:
    """The resolved configuration an output folder is bound to: every setting of ``config`` (an ``ImageConfig``)
    that can change a result (the method and seed are per row), the budget rule, the probe and the controls."""
    from ..evaluation.linear import DEFAULT_CS

    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_RESULTS}
    return {
        "experiment": experiment,
        "config": fields,
        "budget": "epochs = max(epochs, ceil(min_steps / ceil(train_images / batch_size))); controls: 0",
        "hardening_defaults": {"beta": DEFAULT_BETA, "tau": DEFAULT_TAU},
        "probe": {"Cs": list(DEFAULT_CS), "max_iter": 1000, "selection": "validation split"},
        "controls": {"untrained": "same encoder and seed, 0 epochs", "raw-pixels": "flattened standardised pixels"},
        # how the subset is drawn (exactly N since hscl 0.1.0's issue 12; a folder drawn otherwise is refused)
        **({"train_subset_rule": "exactly N, class-balanced by largest remainder"} if config.train_subset else {}),
        **extra,
    }


def run(
    out: str | Path,
    *,
    dataset: str,
    methods: Sequence[str] = TABLE_METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    preset: str = "cpu",
    overrides: dict | None = None,
    controls: bool = True,
    progress: bool = True,
    train_fn=None,
    resolved=None,
) -> Path:
    """Run every missing (method or control, seed) job on ``dataset`` with the ``train`` preset ``preset`` (name or
    YAML file) updated by ``overrides`` (``ImageConfig`` fields), and return the CSV's path. ``controls=False``
    skips the two controls (their rows are then missing from the table). ``resolved``: the command's resolved
    configuration (an :class:`ImageRun`), written to ``OUT/config.json`` once ``OUT`` is bound to the settings."""
    from ..config import read_preset, save
    from ..training.images import ImageConfig, config_differences, raw_pixel_probe, train_images

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {', '.join(METHODS)}; unknown: {unknown}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    # every method pre-trains on the same labeled training images (an unlabeled split such as STL-10's would give
    # the unsupervised methods other batches and more steps, breaking the pairing)
    base = {**read_preset("train", preset), **(overrides or {}), "dataset": dataset, "use_unlabeled": False}
    for key in ("method", "seed"):
        base.pop(key, None)
    template = ImageConfig(**base, method=_CONTROL_METHOD, seed=0).validate()
    names = [*(CONTROLS if controls else ()), *methods]
    # seed-major order: a partial run has the controls and every method for its first seeds
    configs = {}
    for s in seeds:
        for m in names:
            if m in CONTROLS:  # the method is never used at 0 epochs; the encoder's initialisation is the seed's
                config = ImageConfig(**{**base, "epochs": 0, "min_steps": 0}, method=_CONTROL_METHOD, seed=int(s))
            else:
                config = ImageConfig(**base, method=m, seed=int(s))
            configs[m, int(s)] = config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    rows = read_rows(csv_path, COLUMNS)  # refuses a CSV of another layout before anything is bound
    fp = bind_settings(out, settings(template))
    if resolved is not None:
        save(resolved, out)
    check_fingerprints(rows, fp, csv_path)
    done = {(r["method"], r["seed"]) for r in rows if r["dataset"] == dataset}
    todo = [(m, s) for (m, s) in configs if (m, str(s)) not in done]
    manifest = Manifest(out / "run.json")
    train_fn = train_fn or train_images
    for m, s in todo:
        config = configs[m, s]
        folder = out / "runs" / f"{m}-seed{s}"
        if progress:
            print(f"[{len(rows) + 1}/{len(configs)}] {label(m)}, seed {s} -> {folder}", flush=True)
        start = time.perf_counter()
        metrics_path = folder / "metrics.json"
        metrics = None
        if metrics_path.is_file():  # finished before the CSV row was written
            metrics = json.loads(metrics_path.read_text())
            saved = folder / "config.json"
            saved = json.loads(saved.read_text()) if saved.is_file() else None
            if (
                saved is None
                or config_differences(saved, config)
                or (saved.get("epochs"), saved.get("min_steps", 0)) != (config.epochs, config.min_steps)
            ):
                metrics = None  # finished under another budget or configuration: run it again
        if metrics is None:
            job = raw_pixel_probe if m == "raw-pixels" else train_fn
            metrics = job(config, folder, progress=progress)
        rows.append(
            dict(
                dataset=dataset,
                method=m,
                seed=s,
                linear_top1=f"{metrics['linear_top1']:.6f}",
                knn_top1=f"{metrics['knn_top1']:.6f}",
                linear_val_top1=f"{metrics['linear_val_top1']:.6f}",
                epochs=metrics["epochs"],
                train_images=metrics["train_images"],
                seconds=f"{time.perf_counter() - start:.1f}",
                fingerprint=fp,
            )
        )
        write_csv_atomic(csv_path, rows, COLUMNS)
        manifest.tick(len(rows), len(configs))
    return csv_path


#: The presets' folder under ``hscl/configs/`` (``cpu``, ``paper``).
COMMAND = "reproduce-images"


def _default_image() -> ImageConfig:
    from ..training.images import ImageConfig

    return ImageConfig()


@dataclass
class ImageRun:
    """``hscl reproduce images``: the methods and seeds to run, and ``image``, the settings of every job (its
    ``method`` and ``seed`` are each job's own, its ``dataset`` the run's). ``image`` starts from the ``train``
    preset named by ``config`` (``configs/train/``, or a YAML file), then the run's preset
    (``configs/reproduce-images/``), then the overrides. ``train_subset_cap``: a cap, "at most N" training images
    (none when the training split holds no more), used when ``image.train_subset`` (exactly N) is not given."""

    PRESET_SECTIONS: ClassVar[dict] = {"image": ("train", "config")}

    methods: tuple[str, ...] = tuple(TABLE_METHODS)
    seeds: tuple[int, ...] = (0, 1, 2)
    config: str = "cpu"  # the train preset (a name or a YAML file) whose values fill the image section
    train_subset_cap: int | None = None
    image: ImageConfig = field(default_factory=_default_image)


def configure(preset: str | Path | None = "cpu", overrides: Mapping | None = None, *, sources=None) -> ImageRun:
    """The :class:`ImageRun` of the ``preset`` (a name of ``configs/reproduce-images/`` or a YAML file) updated by
    ``overrides`` (``{dotted key: value}``, e.g. ``{"image.dataset": "cifar10", "image.width": 16}``;
    :func:`hscl.config.resolve`). An explicit ``image.epochs`` without ``image.min_steps`` pins the budget
    (``min_steps`` 0). The cap ``train_subset_cap`` becomes ``image.train_subset`` when that is not given (none
    when the training split holds no more: the data are read). Checked here: the accelerator is available, the
    subset is at least the number of classes. ``sources``: how the command line names each key."""
    from ..config import resolve
    from ..training import images
    from .train import check_job

    overrides = dict(overrides or {})
    if "image.epochs" in overrides and "image.min_steps" not in overrides:
        overrides["image.min_steps"] = 0  # an explicit epochs pins the budget
    config = resolve(ImageRun, COMMAND, preset, overrides, sources=sources)
    image = config.image
    if image.train_subset is None and config.train_subset_cap is not None:  # a cap: at most N
        cap = config.train_subset_cap
        image = replace(image, train_subset=cap if cap < images.training_split_size(image) else None)
        config = replace(config, image=image)
    check_job(image, overrides, sources, f"{(sources or {}).get('config', 'config')} {config.config}", "image.")
    return config


def main(config: ImageRun, out: str | Path, *, progress: bool = True, sources=None) -> tuple[Path, Path, Path]:
    """Run ``config`` into ``out`` (:func:`run`; ``OUT/config.json`` holds ``config``) and write its report
    (:func:`write_report`); return the paths of the CSV, ``table.md`` and ``accuracy.png``. Checked first:
    ``out`` is a folder or can be created, and every checkpoint it would resume from loads with
    ``torch.load(weights_only=True)``."""
    from .train import check_resumable

    check_output_folder(out, (sources or {}).get("out", "out"))
    check_resumable(out)
    skip = ("dataset", "method", "seed")  # the run's data set; each job's method and seed
    csv_path = run(
        out,
        dataset=config.image.dataset,
        methods=list(config.methods),
        seeds=list(config.seeds),
        preset=config.config,
        overrides={k: v for k, v in dataclasses.asdict(config.image).items() if k not in skip},
        progress=progress,
        resolved=config,
    )
    table, png = write_report(csv_path)
    return csv_path, table, png


def _paired(a: Mapping, b: Mapping):
    """The seed-paired comparison of two ``{seed: accuracy}`` maps (None when they share no seed)."""

    seeds = sorted(set(a) & set(b), key=str)
    if not seeds:
        return None
    return seed_interval([a[s] - b[s] for s in seeds])


def _versus(a: Mapping, b: Mapping) -> str:
    c = _paired(a, b)
    return "no common seed" if c is None else f"{c.interval(100)} {c.verdict}"


def comparison_tables(per_seed: Mapping[str, Mapping], *, metric: str = "linear probe top-1") -> list[str]:
    """Markdown for one data set from ``{method or control: {seed: accuracy in [0, 1]}}``: the table of methods
    and controls (mean ± std over seeds, ddof = 1; per method the seed-paired difference to each control with its
    95% interval and verdict), then the comparisons of :data:`PAIRS` present."""
    present_controls = [c for c in CONTROLS if c in per_seed]
    methods = [m for m in per_seed if m not in CONTROLS]
    head = f"| method | {metric} | seeds |" + "".join(f" vs {CONTROLS[c]} |" for c in present_controls)
    lines = [head, "|---|---:|---:|" + "---|" * len(present_controls)]
    dash = " — |" * len(present_controls)
    for c in present_controls:
        v = per_seed[c]
        lines.append(f"| *control: {CONTROLS[c]}* | {mean_std(list(v.values()), 100)} | {len(v)} |{dash}")
    for m in methods:
        v = per_seed[m]
        cells = "".join(f" {_versus(v, per_seed[c])} |" for c in present_controls)
        lines.append(f"| {label(m)} | {mean_std(list(v.values()), 100)} | {len(v)} |{cells}")
    pairs = [(a, b, what) for a, b, what in PAIRS if a in per_seed and b in per_seed]
    if pairs:
        lines += ["", "| comparison | a - b (points, 95% interval) | verdict | seeds |", "|---|---:|---|---:|"]
        for a, b, what in pairs:
            c = _paired(per_seed[a], per_seed[b])
            cells = "— | no common seed | 0" if c is None else f"{c.interval(100)} | {c.verdict} | {c.n}"
            lines.append(f"| {what}: {label(a)} - {label(b)} | {cells} |")
    return lines


_VERDICT_NOTE = (
    "Differences are paired by seed (same initialisation, batch order and augmentations for every method): the "
    "mean difference in points and its 95% t interval over seeds (df = seeds - 1); 'better' / 'worse' when the "
    "interval excludes zero, else 'no difference detected' (always so with one seed). Std over seeds with ddof = 1."
)


def write_report(csv_path: str | Path) -> tuple[Path, Path]:
    """``table.md`` (per data set: the linear probe and kNN top-1 of every method and control, mean ± std over
    seeds, the comparisons with the controls and of :data:`PAIRS`), ``accuracy.png``, ``paired.png`` and
    ``curves.png``."""
    csv_path = Path(csv_path)
    names = (*CONTROLS, *METHODS)
    rows, datasets, present = load_results(csv_path, COLUMNS, names)
    check_fingerprints(rows, rows[0]["fingerprint"], csv_path)
    acc = {
        (d, m, key): {r["seed"]: float(r[key]) for r in rows if r["dataset"] == d and r["method"] == m}
        for d in datasets
        for m in present
        for key in ("linear_top1", "knn_top1")
    }
    lines = []
    for d in datasets:
        here = [m for m in present if acc[d, m, "linear_top1"]]
        epochs = sorted({r["epochs"] for r in rows if r["dataset"] == d and r["method"] in METHODS}, key=int)
        images = sorted({r["train_images"] for r in rows if r["dataset"] == d}, key=int)
        lines += [
            f"## {Path(d).name}",
            "",
            f"{', '.join(epochs) or '0'} pre-training epochs on {', '.join(images)} training images; "
            f"fingerprint {rows[0]['fingerprint']}.",
            "",
        ]
        for key, metric in (("linear_top1", "linear probe top-1"), ("knn_top1", "kNN top-1")):
            lines += [f"### {metric} (%) on test", ""]
            lines += [*comparison_tables({m: acc[d, m, key] for m in here}, metric=metric), ""]
    lines += [
        "Top-1 accuracy (%) on the test split, mean ± std over seeds. Linear probe: logistic regression on frozen "
        "features, its C chosen on a validation split held out of train; kNN: weighted, on the same features. "
        "Controls, through the same protocol and splits: the same encoder untrained (the seed's initialisation, "
        "0 epochs) and the same probe on raw pixels. Supervised methods see the training labels; UCL and H-UCL "
        "see the same images without labels (and, on STL-10, its unlabeled split too).",
        "",
        _VERDICT_NOTE,
        "",
        "Published reference numbers (other models, budgets and protocols; for orientation only):",
        "",
        *[f"* {p}" for p in PUBLISHED],
    ]
    table = csv_path.parent / "table.md"
    atomic_write_text(table, "\n".join(lines) + "\n")
    groups = [f"{dataset_name(d)}: {kind}" for d in datasets for kind in ("linear probe", "kNN")]

    def stat(d, m, key, fn):
        v = 100 * np.array(list(acc[d, m, key].values()))
        return fn(v) if v.size else np.nan

    full = {
        label(m): (
            [stat(d, m, k, np.mean) for d in datasets for k in ("linear_top1", "knn_top1")],
            [
                stat(d, m, k, lambda v: v.std(ddof=1) if v.size > 1 else 0.0)
                for d in datasets
                for k in ("linear_top1", "knn_top1")
            ],
        )
        for m in present
    }
    png = bar_chart(
        csv_path.parent / "accuracy.png",
        groups,
        full,
        title="Images: top-1 on test from frozen features (mean ± std over seeds)",
        controls=[CONTROLS[c] for c in CONTROLS],
    )
    _paired_figure(csv_path.parent / "paired.png", groups, datasets, acc, present)
    _learning_curves(csv_path.parent, [m for m in present if m in METHODS])
    return table, png


def _paired_figure(path: Path, groups: Sequence[str], datasets: Sequence[str], acc: Mapping, present) -> Path:
    """``paired.png``: every method and the raw-pixel control minus the untrained encoder, per data set and
    metric, paired by seed: the mean difference as a dot and its 95% t interval over seeds as whiskers."""
    series = {}
    for m in present:
        if m == "untrained":
            continue
        got = []
        for d in datasets:
            for key in ("linear_top1", "knn_top1"):
                c = _paired(acc[d, m, key], acc[d, "untrained", key]) if (d, "untrained", key) in acc else None
                got.append(c if c is not None and np.isfinite(c.se) else None)
        series[label(m)] = tuple(
            [100 * getattr(c, k) if c is not None else np.nan for c in got] for k in ("mean", "low", "high")
        )
    return paired_chart(
        path,
        groups,
        series,
        title="Images: paired difference to the untrained encoder (mean, 95% t interval over seeds)",
        ylabel="top-1 − untrained encoder (points)",
        empty="no seed paired with the untrained encoder (or a single seed: no interval)",
        controls=[label(m) for m in present if m in CONTROLS],
    )


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
                ax.plot([e + 1 for e in epochs], means, marker="o", ms=3, label=label(m))
    axes[0].set_ylabel("training loss (each method's own loss)")
    axes[1].set_ylabel("kNN top-1 on the validation split (%)")
    for ax in axes:
        epoch_axis(ax)
        ax.grid(alpha=0.3)
    legend_outside(axes[1])
    fig.suptitle("Images: learning curves (mean over seeds)", fontsize=10)
    fig.tight_layout()
    path = out / "curves.png"
    save_png(fig, path)
    return path
