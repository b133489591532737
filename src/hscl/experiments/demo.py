"""``hscl demo``: the methods compared on two embedded real data sets, with controls and figures, in a few minutes
on a CPU.

* **digits** (scikit-learn's 1,797 8x8 handwritten digits, 10 classes): an MLP encoder pre-trained on a
  class-balanced 75% training split with feature-noise/dropout views; a logistic-regression probe on frozen
  features, its C chosen on a validation split of train, scored once on the held-out 25%; three seeds. Two
  controls through the same probe and split of each seed: the same MLP untrained (the seed's initialisation,
  which every method starts from) and the raw 64 features. Each method is compared with both controls and the
  issue's pairs (H-SCL vs SCL in both configurations, SCL vs UCL, H-SCL vs H-UCL), paired by seed, with a 95%
  interval and a verdict. For the first seed the paper's diagnostics are recorded every fifth epoch on the
  training split (the four asymptotic losses and the fraction of anchors satisfying Assumption 1, at
  tau = e^-0.5, e^-0.1 and beta = 1, 2).
* **MUTAG** (188 molecules, 2 classes; bundled): GIN with GraphCL views under the graph protocol of
  ``hscl reproduce graphs`` (10-fold stratified CV, supervised methods pre-trained on the training folds only,
  linear SVM with C by inner CV), the first seed, with the untrained GIN as control.

The demo runs six of the nine table methods (:data:`METHODS`: the ones the issue's comparisons need; H-SCL (tau)
in both configurations and SupCon are in ``hscl reproduce figures``). Writes ``OUT/table.md``,
``OUT/accuracy.png`` (accuracy bars, as the paper's Figure 1), ``OUT/digits/<method>/diagnostics_losses.png`` and
``diagnostics_assumption.png`` (as its Figures 5 and 4), ``OUT/digits/results.csv`` and ``OUT/mutag/`` (the graph
run's CSV, table and figure), and ``OUT/config.json`` (the :class:`DemoConfig`). Finished parts are kept when run
again with the same OUT and settings.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_text, check_output_folder, write_csv_atomic
from .._validation import check_int
from ..evaluation.stats import mean_std
from ..losses.registry import METHODS as LOSS_METHODS
from ..losses.registry import table_methods

__all__ = ["METHODS", "DemoConfig", "configure", "main", "run"]

#: The demo's methods, in table order: what the issue's paired comparisons need.
METHODS = table_methods(tau=False, supcon=False)


def _std(v: np.ndarray) -> float:
    return float(v.std(ddof=1)) if v.size > 1 else 0.0


def run(
    out: str | Path = "hscl-demo",
    *,
    digits_epochs: int = 30,
    graph_epochs: int = 10,
    seeds: Sequence[int] = (0, 1, 2),
    temperature: float = 0.5,
    progress: bool = True,
    resolved=None,
) -> str:
    """Run the demo into ``out`` and return the printed summary (see the module doc). ``resolved``: the command's
    configuration (a :class:`DemoConfig`), written to ``OUT/config.json`` once the arguments are checked."""
    from .._plot import bar_chart
    from ..config import save
    from ..training.vectors import digits_controls, digits_split, train_digits
    from . import graphs
    from .images import CONTROLS, comparison_tables

    for name, value in (("digits_epochs", digits_epochs), ("graph_epochs", graph_epochs)):
        check_int(name, value, 1)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must hold at least one seed, each once, got {seeds}")
    out = check_output_folder(out, "out")
    out.mkdir(parents=True, exist_ok=True)
    if resolved is not None:
        save(resolved, out)
    start = time.perf_counter()
    first = seeds[0]
    digits: dict[str, dict[int, dict]] = {name: {} for name in (*CONTROLS, *METHODS)}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(METHODS) * len(seeds), desc="digits", unit="run")
    for s in seeds:
        split = digits_split(s)
        for name, result in digits_controls(split, s).items():
            digits[name][s] = result
        for m in METHODS:
            folder = out / "digits" / (m if s == first else f"{m}-seed{s}")
            digits[m][s] = train_digits(
                m, folder, split, epochs=digits_epochs, seed=s, temperature=temperature, diagnostics=s == first
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{LOSS_METHODS[m].label}, seed {s}: {100 * digits[m][s]['linear_top1']:.1f}%")
    if bar is not None:
        bar.close()
    settings = list(digits[METHODS[0]][first]["assumption_fraction"])
    rows = []
    for name, per_seed in digits.items():
        for s, r in per_seed.items():
            fractions = r.get("assumption_fraction", {})
            rows.append(
                {
                    "method": name,
                    "seed": s,
                    "linear_top1": f"{r['linear_top1']:.6f}",
                    "knn_top1": f"{r['knn_top1']:.6f}",
                    **{f"assumption_{k}": f"{fractions[k]:.6f}" if k in fractions else "" for k in settings},
                }
            )
    columns = ["method", "seed", "linear_top1", "knn_top1", *(f"assumption_{k}" for k in settings)]
    write_csv_atomic(out / "digits" / "results.csv", rows, columns)

    graph_methods = [m for m in ("untrained", *METHODS) if m in graphs.ENTRIES]
    graph_csv = graphs.run(
        out / "mutag",
        datasets=["MUTAG"],
        methods=graph_methods,
        seeds=(first,),
        config=graphs.GraphConfig(epochs=graph_epochs, temperature=temperature),
        progress=progress,
    )
    graphs.write_report(graph_csv)
    rows = [r for r in csv.DictReader(graph_csv.open()) if r["dataset"] == "MUTAG"]
    mutag = {m: 100 * np.array([float(r["accuracy"]) for r in rows if r["method"] == m]) for m in digits}

    def label(name: str) -> str:
        return f"*control: {CONTROLS[name]}*" if name in CONTROLS else LOSS_METHODS[name].label

    setting = "beta=1"
    lines = [
        "| method | digits: linear probe top-1 | MUTAG: SVM accuracy (10-fold) | digits: Assumption 1 holds "
        f"({setting}, last epoch) | digits: L_H-SCL <= L_H-UCL |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, per_seed in digits.items():
        acc = 100 * np.array([r["linear_top1"] for r in per_seed.values()])

        if name in CONTROLS:
            extra = "— | —"
        else:
            r = per_seed[first]
            holds = "yes" if r["hscl_le_hucl"][setting] else "no"
            extra = f"{100 * r['assumption_fraction'][setting]:.0f}% | {holds}"
        lines.append(f"| {label(name)} | {mean_std(acc)} | {mean_std(mutag[name])} | {extra} |")
    lines += [
        "",
        f"digits: MLP, {digits_epochs} epochs, seeds {', '.join(map(str, seeds))} (mean ± std, ddof = 1); test = a "
        "class-balanced 25% never seen in pre-training or probe selection. MUTAG: GIN, "
        f"{graph_epochs} epochs, seed {first}, mean ± std over the 10 folds; UCL and H-UCL pre-train without labels. "
        "Assumption 1 and the loss inequality: seed "
        f"{first}, on the digits training split as reference set, with the encoder trained by that row's method.",
        "",
        "digits, paired by seed (same initialisation, augmentations and batch order for every method; 95% t "
        "interval over seeds, points; 'better' / 'worse' when it excludes zero):",
        "",
        *comparison_tables(
            {name: {s: r["linear_top1"] for s, r in per_seed.items()} for name, per_seed in digits.items()}
        ),
    ]
    table = "\n".join(lines)
    atomic_write_text(out / "table.md", table + "\n")
    series = {}
    for name, per_seed in digits.items():
        acc = 100 * np.array([r["linear_top1"] for r in per_seed.values()])
        g = mutag[name]
        series[label(name).strip("*")] = ([acc.mean(), g.mean() if g.size else np.nan], [_std(acc), _std(g)])
    png = bar_chart(
        out / "accuracy.png",
        ["digits (linear probe)", "MUTAG (SVM, 10-fold)"],
        series,
        title="hscl demo: methods and controls on embedded data",
        controls=[label(name).strip("*") for name in CONTROLS],
    )
    seconds = time.perf_counter() - start
    where = out.resolve()
    return (
        f"{table}\n\n{seconds:.0f} s. Figures and tables in {where}/:\n"
        f"  {png.name}: accuracy of every method and control (as the paper's Figure 1)\n"
        f"  digits/hscl-beta/diagnostics_losses.png: the four asymptotic losses across epochs (Figure 5)\n"
        f"  digits/hscl-beta/diagnostics_assumption.png: Assumption 1 fractions across epochs (Figure 4)\n"
        f"  digits/<method>/: the same for every method; mutag/: the graph run (results.csv, table.md, accuracy.png)"
    )


@dataclass(frozen=True)
class DemoConfig:
    """``hscl demo``: the arguments of :func:`run` (no named presets: these defaults are the demo)."""

    digits_epochs: int = 30
    graph_epochs: int = 10
    seeds: tuple[int, ...] = (0, 1, 2)  # digits seeds; MUTAG runs the first
    temperature: float = 0.5


def configure(overrides: Mapping | None = None, *, sources=None) -> DemoConfig:
    """The :class:`DemoConfig` of its defaults updated by ``overrides`` (:func:`hscl.config.resolve`)."""
    from ..config import resolve

    return resolve(DemoConfig, overrides=overrides, sources=sources)


def main(config: DemoConfig, out: str | Path = "hscl-demo", *, progress: bool = True, sources=None) -> str:
    """Run the demo of ``config`` into ``out`` (:func:`run`; ``OUT/config.json`` holds ``config``) and return the
    printed summary."""
    check_output_folder(out, (sources or {}).get("out", "out"))
    return run(
        out,
        digits_epochs=config.digits_epochs,
        graph_epochs=config.graph_epochs,
        seeds=config.seeds,
        temperature=config.temperature,
        progress=progress,
        resolved=config,
    )
