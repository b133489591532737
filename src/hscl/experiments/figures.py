"""The paper's Figures 4 and 5, reproduced: the fraction of anchors satisfying Assumption 1 and the four asymptotic
losses at the end of every epoch, at tau = e^-0.5, e^-0.1 and beta = 1, 2 (docs/math.md section 4), for encoders trained
with each method, several seeds.

Presets:

* ``cpu`` (minutes on 2 cores, no download): an MLP on scikit-learn's digits (75% class-balanced training split,
  feature-noise/dropout views), 30 epochs, diagnostics every fifth epoch with the training split as reference set.
* ``paper`` (a GPU job, hours; the data set must be downloaded): ``hscl train`` with the authors' settings
  (ResNet-50, CIFAR stem, Adam 1e-3, batch 256, t = 0.5, 200 epochs, bf16) on CIFAR-100, diagnostics every epoch
  on 10,000 training images. One ResNet-50 run is ~200 GPU-epochs: on one H100/H200-class GPU roughly a few
  hours per method and seed.

Every table method is trained by default (both configurations of SCL and H-SCL), and every run is also scored by
the linear probe (C chosen on a validation split of train, reported on test) and a weighted kNN, next to two
controls through the identical protocol and split of each seed: the same encoder untrained (the seed's
initialisation, which every method starts from) and the same probe on the raw pixels (digits: the 64 features).
A seed fixes the initialisation, the augmentation stream and the batch order for every method.

``run`` binds ``OUT`` to one resolved configuration (``OUT/settings.json``; a rerun with other settings is refused
naming them) and writes ``OUT/<method>-seed<S>/`` (each run's ``diagnostics.csv`` and its own two figures),
``OUT/diagnostics.csv`` (all runs), ``OUT/results.csv`` (accuracy of every method and control per seed), both
with the configuration's ``fingerprint`` in every row, ``OUT/figure4_assumption.png`` (one panel per setting, one
line per training method, mean over seeds with the min-max band), ``OUT/figure5_losses.png`` (the four losses per
setting for the H-SCL (beta) runs, or the first method) and ``OUT/table.md`` (last epoch; accuracies with the
seed-paired comparisons to the controls and between methods, and their verdicts). Finished runs are kept on a
rerun.
"""

from __future__ import annotations

from .._extras import require
from .._validation import check_int

require(__name__, "images")  # before the imports below: name the extra, not a missing module

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, check_output_folder, write_csv_atomic
from .._plot import ASYMPTOTIC_LABEL, epoch_axis, legend_outside, math_text, pyplot, save_png
from ..diagnostics.asymptotic import LOSS_NAMES, PAPER_SETTINGS
from ..losses.registry import DEFAULT_BETA, DEFAULT_TAU, TABLE_METHODS
from ..losses.registry import METHODS as LOSS_METHODS
from ..training.runs import bind_settings, check_fingerprints, read_rows
from ..training.vectors import DIGITS, digits_controls, digits_split, train_digits
from .images import CONTROLS, comparison_tables

__all__ = ["CONTROLS", "METHODS", "PRESETS", "FigureRun", "configure", "main", "run"]

METHODS = TABLE_METHODS
PRESETS = ("cpu", "paper")

RESULT_COLUMNS = ("method", "seed", "linear_top1", "knn_top1", "linear_val_top1", "epochs", "fingerprint")


def _paper_config(method: str, seed: int, *, dataset: str, data_root, download: bool, epochs: int | None):
    from ..config import read_preset
    from ..training.images import ImageConfig

    values = {
        **read_preset("train", "paper"),
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "diagnostics": 10000,
        "data_root": data_root,
        "download": download,
    }
    if epochs is not None:
        values["epochs"] = epochs
    return ImageConfig(**values).validate()


def _paper_run(name: str, seed: int, folder: Path, *, progress: bool, **options) -> dict:
    """One job of the paper preset (``hscl train`` with the authors' settings): a method, or a control through
    the same code (``untrained``: 0 epochs; ``raw-pixels``: the probe on pixels). Returns its metrics."""
    from ..training.images import raw_pixel_probe, train_images

    if name == "raw-pixels":
        return raw_pixel_probe(_paper_config(METHODS[0], seed, **options), folder, progress=progress)
    if name == "untrained":
        config = _paper_config(METHODS[0], seed, **options)
        config.epochs, config.diagnostics = 0, 0
        return train_images(config, folder, progress=progress)
    return train_images(_paper_config(name, seed, **options), folder, progress=progress)


def _settings(preset: str, epochs: int | None, **options) -> dict:
    """The resolved configuration ``OUT`` is bound to (methods and seeds are per row)."""
    from ..evaluation.linear import DEFAULT_CS
    from .images import settings

    if preset == "paper":
        return settings(_paper_config(METHODS[0], 0, epochs=epochs, **options), experiment="figures", preset=preset)
    return {
        "experiment": "figures",
        "preset": preset,
        "data": "digits",
        "digits": DIGITS,
        "epochs": epochs or 30,
        "temperature": 0.5,
        "model": "MLPEncoder(64) defaults",
        "diagnostics": list(PAPER_SETTINGS),
        "hardening_defaults": {"beta": DEFAULT_BETA, "tau": DEFAULT_TAU},
        "probe": {"Cs": list(DEFAULT_CS), "max_iter": 1000, "selection": "validation split"},
        "controls": {"untrained": "same encoder and seed, 0 epochs", "raw-pixels": "the 64 raw features"},
    }


def run(
    out: str | Path,
    *,
    preset: str = "cpu",
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    dataset: str = "cifar100",
    data_root=None,
    download: bool = False,
    progress: bool = True,
    resolved=None,
) -> Path:
    """Train with each method and seed while recording the diagnostics, score them and the two controls; write
    the figures and the table (module doc). Returns the path of ``figure4_assumption.png``. ``resolved``: the
    command's resolved configuration (a :class:`FigureRun`), written to ``OUT/config.json`` once ``OUT`` is bound
    to the settings."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {list(methods)}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if epochs is not None:
        check_int("epochs", epochs, 1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"dataset": dataset, "data_root": data_root, "download": download}
    results_path = out / "results.csv"
    old = read_rows(results_path, RESULT_COLUMNS)
    fp = bind_settings(out, _settings(preset, epochs, **options))
    if resolved is not None:
        from ..config import save

        save(resolved, out)
    check_fingerprints(old, fp, results_path)
    runs = [(m, int(s)) for s in seeds for m in (*CONTROLS, *methods)]
    bar = None
    if progress and preset == "cpu":
        from tqdm.auto import tqdm

        bar = tqdm(total=len(runs), desc="figures", unit="run")
    rows, results = [], []
    splits: dict[int, dict] = {}  # the digits split of each seed, made once
    controls: dict[int, dict] = {}
    for m, s in runs:
        folder = out / f"{m}-seed{s}"
        if preset == "cpu":
            if s not in splits:
                splits[s] = digits_split(s)
            if m in CONTROLS:
                controls.setdefault(s, digits_controls(splits[s], s))
                result = controls[s][m]
            else:
                result = train_digits(m, folder, splits[s], epochs=epochs or 30, seed=s, temperature=0.5)
            path = folder / "diagnostics.csv"
        else:
            result = _paper_run(m, s, folder, progress=progress, epochs=epochs, **options)
            path = folder / "diagnostics" / "diagnostics.csv"
        results.append(
            {
                "method": m,
                "seed": s,
                **{k: f"{result[k]:.6f}" for k in RESULT_COLUMNS[2:5]},
                "epochs": result["epochs"],
                "fingerprint": fp,
            }
        )
        if m not in CONTROLS:
            rows += [{"method": m, "seed": s, **r, "fingerprint": fp} for r in csv.DictReader(path.open())]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    write_csv_atomic(out / "diagnostics.csv", rows, list(rows[0]))
    write_csv_atomic(results_path, results, RESULT_COLUMNS)
    return _report(out, rows, results, methods, preset)


#: The presets' folder under ``hscl/configs/`` (``cpu``, ``paper``).
COMMAND = "reproduce-figures"


@dataclass
class FigureRun:
    """``hscl reproduce figures``: the ``recipe`` (``cpu``: an MLP on digits; ``paper``: ``hscl train`` with the
    authors' settings on ``dataset``), the methods and seeds, and the pre-training ``epochs`` (None: the recipe's,
    30 or the paper train preset's). Its presets are ``hscl/configs/reproduce-figures/`` (:func:`configure`)."""

    recipe: str = "cpu"  # one of PRESETS
    methods: tuple[str, ...] = tuple(METHODS)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None
    dataset: str = "cifar100"  # the paper recipe's image data set
    data_root: str | None = None
    download: bool = False


def configure(preset: str | Path | None = "cpu", overrides: Mapping | None = None, *, sources=None) -> FigureRun:
    """The :class:`FigureRun` of the ``preset`` (a name of ``configs/reproduce-figures/`` or a YAML file) updated by
    ``overrides`` (``{key: value}``; :func:`hscl.config.resolve`). ``sources``: how the command line names each
    key."""
    from ..config import resolve

    return resolve(FigureRun, COMMAND, preset, overrides, sources=sources)


def main(config: FigureRun, out: str | Path, *, progress: bool = True, sources=None) -> Path:
    """Run ``config`` into ``out`` (:func:`run`; ``OUT/config.json`` holds ``config``); return the path of
    ``figure4_assumption.png``."""
    check_output_folder(out, (sources or {}).get("out", "out"))
    return run(
        out,
        preset=config.recipe,
        methods=list(config.methods),
        seeds=list(config.seeds),
        epochs=config.epochs,
        dataset=config.dataset,
        data_root=config.data_root,
        download=config.download,
        progress=progress,
        resolved=config,
    )


def _curves(rows, method: str, setting: str, key: str):
    """Epochs and, per epoch, the values over seeds of ``key`` for runs trained with ``method``."""
    sel = [r for r in rows if r["method"] == method and r["setting"] == setting]
    epochs = sorted({int(r["epoch"]) for r in sel})
    values = [[float(r[key]) for r in sel if int(r["epoch"]) == e] for e in epochs]
    return np.array(epochs), values


def _band(ax, epochs, values, label: str) -> None:
    """The mean over seeds as a line, with the min-max band."""
    line = ax.plot(epochs, [np.mean(v) for v in values], marker="o", ms=3, label=label)[0]
    ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values], color=line.get_color(), alpha=0.15)


def _report(out: Path, rows: list[dict], results: list[dict], methods: Sequence[str], preset: str) -> Path:
    plt = pyplot()

    settings = [s for s in PAPER_SETTINGS if any(r["setting"] == s for r in rows)]
    where = "digits, MLP" if preset == "cpu" else "images, ResNet-50 (paper preset)"
    fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 3.6), squeeze=False, sharey=True)
    for ax, setting in zip(axes[0], settings, strict=True):
        for m in methods:
            _band(ax, *_curves(rows, m, setting, "assumption_fraction"), LOSS_METHODS[m].label)
        ax.set_title(math_text(setting))
        epoch_axis(ax)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of anchors satisfying Assumption 1")
    legend_outside(axes[0][-1], title="trained with", title_fontsize=8)
    fig.suptitle(
        f"Figure 4: anchors satisfying Assumption 1 at the end of each epoch ({where}; mean, min-max over seeds)",
        fontsize=10,
    )
    fig.tight_layout()
    fig4 = out / "figure4_assumption.png"
    save_png(fig, fig4)

    focus = "hscl-beta" if "hscl-beta" in methods else methods[0]
    fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 3.6), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        for loss in LOSS_NAMES:
            _band(ax, *_curves(rows, focus, setting, loss), loss)
        ax.set_title(math_text(setting))
        epoch_axis(ax)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ASYMPTOTIC_LABEL)
    legend_outside(axes[0][-1], title="asymptotic loss", title_fontsize=8)
    fig.suptitle(
        f"Figure 5: the four asymptotic losses across epochs, encoder trained with "
        f"{math_text(LOSS_METHODS[focus].label)} ({where})",
        fontsize=10,
    )
    fig.tight_layout()
    save_png(fig, out / "figure5_losses.png")

    last = max(int(r["epoch"]) for r in rows)
    lines = [
        "| trained with | "
        + " | ".join(f"Assumption 1, {s}" for s in settings)
        + " | L_H-SCL <= L_H-UCL (runs, all settings) |",
        "|---|" + "---:|" * len(settings) + "---:|",
    ]
    for m in methods:
        final = [r for r in rows if r["method"] == m and int(r["epoch"]) == last]
        cells = []
        for s in settings:
            v = np.array([float(r["assumption_fraction"]) for r in final if r["setting"] == s])
            cells.append(
                f"{100 * v.mean():.1f}% ± {100 * v.std(ddof=1):.1f}"
                if v.size > 1
                else f"{100 * v.mean():.1f}%"
                if v.size
                else ""
            )
        holds = sum(r["hscl_le_hucl"] == "True" for r in final)
        lines.append(f"| {LOSS_METHODS[m].label} | " + " | ".join(cells) + f" | {holds}/{len(final)} |")
    seeds = sorted({r["seed"] for r in rows})
    lines += [
        "",
        f"Last epoch ({last}); mean ± std (ddof = 1) over seeds {', '.join(map(str, seeds))}; {where}. "
        "Reference set: the recorded training images, two views each.",
    ]
    for key, metric in (("linear_top1", "linear probe top-1"), ("knn_top1", "kNN top-1")):
        per_seed = {}
        for r in results:
            per_seed.setdefault(r["method"], {})[r["seed"]] = float(r[key])
        lines += ["", f"### {metric} (%) on test, with the controls", "", *comparison_tables(per_seed, metric=metric)]
    lines += [
        "",
        "Controls through the same probe and split of each seed: the same encoder untrained (the seed's "
        "initialisation) and raw pixels (digits: the 64 features). Differences are paired by seed (same "
        "initialisation, augmentations and batch order for every method); 95% t interval over seeds; "
        "'better' / 'worse' when it excludes zero, else 'no difference detected'.",
    ]
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")
    return fig4
