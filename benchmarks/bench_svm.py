"""The linear SVM's C search: the GridSearchCV version (frozen here as it was) against ``svm_accuracy`` now.

Features are those of a randomly initialised GIN (``torch.manual_seed(0)``, hidden 32 x 3 layers: [n, 96]) of
each data set, which are rank-deficient like trained ones (dead ReLU units); one outer fold (fold 0 of a
stratified 10-fold split, seed 0) per data set, SVM seed 0. Both versions run on the same inputs in one process,
alternately, ``--repeats`` times; the table gives the fastest wall time of each, the process CPU time (all
threads; robust to other jobs on a shared machine, not meaningful for the process pool of GridSearchCV with
n_jobs > 1, whose workers are other processes) and checks that the chosen C and the test accuracy are identical.

    python benchmarks/bench_svm.py                                   # NCI1, PROTEINS, ENZYMES, DD; n_jobs 1 and 2
    python benchmarks/bench_svm.py --datasets PROTEINS --jobs 1 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch

from hscl._io import atomic_write_text
from hscl.datasets.tu import default_data_root, load_tu
from hscl.evaluation import svm_accuracy
from hscl.models import GINEncoder
from hscl.training import embed_graphs

HERE = Path(__file__).resolve().parent


def svm_accuracy_gridsearch(train_x, train_y, test_x, test_y, *, cs, inner_folds=5, seed=0, n_jobs=None):
    """``hscl.evaluation.svm_accuracy`` as it was before (GridSearchCV over a scaler + LinearSVC pipeline)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    train_x, test_x = np.asarray(train_x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"features must be [n, d] with the same d, got {train_x.shape} and {test_x.shape}")
    if len(np.unique(train_y)) < 2:
        raise ValueError("the training labels hold a single class: nothing to fit")
    folds = min(inner_folds, int(np.bincount(np.unique(train_y, return_inverse=True)[1]).min()))
    pipe = make_pipeline(StandardScaler(), LinearSVC(dual=False, max_iter=1000, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if folds >= 2:
            search = GridSearchCV(
                pipe,
                {"linearsvc__C": list(cs)},
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                scoring="accuracy",
                n_jobs=n_jobs,
            )
            search.fit(train_x, train_y)
            best, c = search.best_estimator_, float(search.best_params_["linearsvc__C"])
        else:  # too few samples per class for an inner split
            c = 1.0
            best = pipe.set_params(linearsvc__C=c).fit(train_x, train_y)
    return float((best.predict(test_x) == test_y).mean()), c


def gin_features(name: str, data_root) -> tuple[np.ndarray, np.ndarray]:
    ds = load_tu(name, data_root=data_root)
    torch.manual_seed(0)
    return embed_graphs(GINEncoder(ds.num_features), ds).numpy().astype(np.float64), ds.labels.numpy()


def fits_alone(train_x, train_y, test_x, cs, chosen, seed=0) -> float:
    """CPU seconds of the 31 LinearSVC fits (+ predictions) alone (5 inner folds x the grid, and the refit with the
    chosen C), on inputs standardised beforehand (untimed): the floor of any C search making these fits in turn."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    jobs = []
    for a, b in StratifiedKFold(5, shuffle=True, random_state=seed).split(train_x, train_y):
        scaler = StandardScaler().fit(train_x[a])
        jobs += [(scaler.transform(train_x[a]), train_y[a], scaler.transform(train_x[b]), c) for c in cs]
    scaler = StandardScaler().fit(train_x)
    jobs.append((scaler.transform(train_x), train_y, scaler.transform(test_x), chosen))
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x, y, x_eval, c in jobs:
            start = time.process_time()
            LinearSVC(C=c, dual=False, max_iter=1000, random_state=seed).fit(x, y).predict(x_eval)
            total += time.process_time() - start
    return total


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    from sklearn.model_selection import StratifiedKFold

    from hscl.evaluation.svm import DEFAULT_CS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["NCI1", "PROTEINS", "ENZYMES", "DD"])
    parser.add_argument("--data-root", default=None, help="folder of TU data sets (default: the usual places)")
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2], help="n_jobs values to compare")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "svm_cpu.md"))
    command = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(command)
    data_root = args.data_root or default_data_root() or HERE.parent.parent / "shared" / "data" / "TU"
    torch.set_num_threads(1)

    if any(j != 1 for j in args.jobs):  # start the process pool once, as a long experiment would
        x = np.random.default_rng(0).normal(size=(40, 3))
        svm_accuracy_gridsearch(x, np.arange(40) % 2, x, np.arange(40) % 2, cs=(1.0,), n_jobs=max(args.jobs))

    load_before = os.getloadavg()[0]
    rows, identical = [], True
    for name in args.datasets:
        x, y = gin_features(name, data_root)
        train, test = next(StratifiedKFold(10, shuffle=True, random_state=0).split(x, y))
        rank = int(np.linalg.matrix_rank(x[train]))
        for jobs in args.jobs:
            best = {"before": [np.inf, np.inf, None], "after": [np.inf, np.inf, None]}
            for _ in range(args.repeats):
                for label, fn in (("before", svm_accuracy_gridsearch), ("after", svm_accuracy)):
                    out, wall, cpu = timed(fn, x[train], y[train], x[test], y[test], cs=DEFAULT_CS, n_jobs=jobs)
                    entry = best[label]
                    entry[0], entry[1] = min(entry[0], wall), min(entry[1], cpu)
                    if entry[2] is not None and entry[2] != out:
                        raise RuntimeError(f"{name}: {label} is not deterministic: {entry[2]} then {out}")
                    entry[2] = out
            floor, cpu_ratio = "-", "-"
            if jobs == 1:
                chosen = best["after"][2][1]
                floor = min(fits_alone(x[train], y[train], x[test], DEFAULT_CS, chosen) for _ in range(args.repeats))
                floor, cpu_ratio = f"{floor:.2f}", f"**{best['before'][1] / best['after'][1]:.2f}x**"
            same = best["before"][2] == best["after"][2]
            identical &= same
            (acc, c), (acc2, c2) = best["before"][2], best["after"][2]
            rows.append(
                f"| {name} | {len(train)} x {x.shape[1]} (rank {rank}) | {jobs} | {best['before'][0]:.2f} | "
                f"{best['after'][0]:.2f} | **{best['before'][0] / best['after'][0]:.2f}x** | "
                f"{best['before'][1]:.2f} | {best['after'][1]:.2f} | {cpu_ratio} | {floor} | {c:g} / {c2:g} | "
                f"{acc:.4f} / {acc2:.4f} | "
                f"{'yes' if same else 'NO'} |"
            )
            print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Linear SVM C search: GridSearchCV (before) vs svm_accuracy (after)",
            "",
            "`" + " ".join(["python", f"benchmarks/{Path(__file__).name}", *command]) + "`",
            "",
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
            f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
            f"fastest of {args.repeats} alternating runs. Random-init GIN features, outer fold 0 of 10, "
            f"C grid {list(DEFAULT_CS)}, 5 inner folds, seed 0. Load average (1 min) {load_before:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end: other jobs shared the cores, so wall times with n_jobs > 1 say "
            "little; CPU times are steadier. 'fits alone': the LinearSVC fits only (n_jobs = 1), the floor for any "
            "exact version.",
            "",
            "| data set | train x d | n_jobs | before s (wall) | after s (wall) | ratio (wall) | before s (CPU) | "
            "after s (CPU) | ratio (CPU) | fits alone s (CPU) | C before / after | test acc before / after | "
            "identical |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Selected C and test accuracy identical everywhere: {'yes' if identical else 'NO'}.",
            "",
        ]
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    print(f"wrote {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
