"""SVMs scored under one protocol: C chosen by stratified inner CV on the training data only, a refit on all of
it, one score on the test data. ``svm_accuracy``: a linear SVM on standardised features (the GIN features);
``kernel_svm_accuracy``: an SVM on a precomputed kernel (the WL control). Both go through ``_select_fit_score``.

The C search is the selection GridSearchCV made, without GridSearchCV: each inner fold is standardised once and
the C grid is fitted on it in one loop (GridSearchCV refits the scaler, clones the pipeline and validates the
input for every (C, fold) pair), the score of a C is ``np.average`` of its fold accuracies, and the first best C
in grid order wins, as GridSearchCV's ``rank_test_score`` / ``best_index_`` do. No warm start: every fit is
the same fresh fit GridSearchCV made, so C and the test accuracy are identical (``benchmarks/bench_svm.py``
measures the speed and checks the identity; ``tests/evaluation/test_svm.py`` checks it against GridSearchCV).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .._validation import check_int

__all__ = ["DEFAULT_CS", "kernel_svm_accuracy", "svm_accuracy"]

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


# ---------------------------------------------------------------------------------------------------- checks
def _check_common(cs, inner_folds, seed, n_jobs) -> tuple[float, ...]:
    try:
        grid = np.asarray(cs, dtype=np.float64)
    except (TypeError, ValueError):
        grid = None
    if grid is None or grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid) & (grid > 0)):
        raise ValueError(f"cs must be a non-empty sequence of finite positive numbers, got {cs!r}")
    check_int("inner_folds", inner_folds, 2, numpy=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero int (-1: all cores), got {n_jobs!r}")
    return tuple(cs)


def _check_labels(name: str, y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must be 1-D with one label per sample ({n}), got shape {y.shape}")
    return y


def _check_two_classes(train_y: np.ndarray) -> None:
    if len(np.unique(train_y)) < 2:
        raise ValueError("the training labels hold a single class: nothing to fit")


# ------------------------------------------------------------------------------------------ the shared protocol
def _select_fit_score(
    split: Callable,
    fit: Callable,
    data,
    labels: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    cs: tuple,
    inner_folds: int,
    seed: int,
    n_jobs: int | None,
) -> tuple[float, float]:
    """Pick C by stratified inner CV on ``train_idx``, refit on all of it and score ``test_idx`` once.

    ``split(data, labels, fit_idx, eval_idx)`` returns ``(fit data, fit labels, eval data, eval labels)`` (the
    standardisation or kernel slicing of one split, done once for the whole C grid); ``fit(fit data, fit labels,
    c, seed)`` a fitted estimator. The inner splits and the outer step go through the same two functions."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold

    train_y = labels[train_idx]
    folds = min(inner_folds, int(np.bincount(np.unique(train_y, return_inverse=True)[1]).min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if folds >= 2:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
            splits = [(train_idx[a], train_idx[b]) for a, b in splitter.split(np.zeros((len(train_y), 1)), train_y)]
            scores = _grid_scores(split, fit, data, labels, splits, cs, seed, n_jobs)
            # GridSearchCV: mean_test_score = np.average over the splits of a [candidates, splits] array;
            # best_index_ = argmin of rankdata(-means, "min"), i.e. the first best C in grid order.
            c = cs[int(np.argmax(np.average(scores, axis=1)))]
        else:  # too few samples per class for an inner split
            c = 1.0
        return _score(split(data, labels, train_idx, test_idx), fit, c, seed), float(c)


def _score(fold, fit: Callable, c, seed: int) -> float:
    fit_x, fit_y, eval_x, eval_y = fold
    return float(np.mean(fit(fit_x, fit_y, c, seed).predict(eval_x) == eval_y))  # sklearn's "accuracy"


def _grid_scores(split, fit, data, labels, splits, cs, seed, n_jobs) -> np.ndarray:
    """Validation accuracy ``[len(cs), len(splits)]`` of every C on every inner split.

    Sequential: split by split, the grid on each. Parallel (``n_jobs`` threads; liblinear and libsvm release
    the GIL): every split is prepared first, then the (C, split) fits run largest C first (the slowest), so
    the threads stay busy. Every fit is a pure function of its inputs: the scores do not depend on ``n_jobs``."""
    scores = np.empty((len(cs), len(splits)), dtype=np.float64)
    workers = 1 if n_jobs is None else min(_effective_jobs(n_jobs), len(cs) * len(splits))
    if workers <= 1:
        for f, (a, b) in enumerate(splits):
            fold = split(data, labels, a, b)
            for j, c in enumerate(cs):
                scores[j, f] = _score(fold, fit, c, seed)
        return scores
    from concurrent.futures import ThreadPoolExecutor

    prepared = [split(data, labels, a, b) for a, b in splits]
    order = sorted(range(len(cs)), key=lambda j: -float(cs[j]))
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            (j, f): pool.submit(_score, prepared[f], fit, cs[j], seed) for j in order for f in range(len(splits))
        }
        for (j, f), future in futures.items():
            scores[j, f] = future.result()
    return scores


def _effective_jobs(n_jobs: int) -> int:
    from joblib import effective_n_jobs

    return int(effective_n_jobs(int(n_jobs)))


# ----------------------------------------------------------------------------------- linear SVM on features
def _linear_split(x, y, fit_idx, eval_idx):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x[fit_idx])  # once per split, for the whole C grid
    return scaler.transform(x[fit_idx]), y[fit_idx], scaler.transform(x[eval_idx]), y[eval_idx]


def _linear_fit(x, y, c, seed: int):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=c, dual=False, max_iter=1000, random_state=seed).fit(x, y)


def svm_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    cs=DEFAULT_CS,
    inner_folds: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
) -> tuple[float, float]:
    """Standardise (fitted on train), pick C of a linear SVM by stratified inner CV on train, refit on all of
    train, and score on test. Returns ``(test accuracy, chosen C)``. The test data is used once, at the end.
    ``n_jobs`` fits the grid in parallel threads (the result does not depend on it).

    The SVM is liblinear's primal solver (squared hinge, L2), capped at 1,000 iterations: the dual solver ran to
    its cap for large C (50x slower), and on rank-deficient GIN features (dead ReLU units) large C costs seconds
    per fit; C = 1000 is left out of the grid for the same reason (measured on PTC_MR and PROTEINS features).
    The selection is exactly GridSearchCV's over ``make_pipeline(StandardScaler(), LinearSVC(...))``."""
    train_x, test_x = np.asarray(train_x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1] or train_x.shape[1] == 0:
        raise ValueError(f"features must be [n, d] with the same d >= 1, got {train_x.shape} and {test_x.shape}")
    if len(train_x) == 0 or len(test_x) == 0:
        raise ValueError(f"train_x and test_x must hold at least one sample, got {train_x.shape} and {test_x.shape}")
    train_y = _check_labels("train_y", train_y, len(train_x))
    test_y = _check_labels("test_y", test_y, len(test_x))
    for name, x in (("train_x", train_x), ("test_x", test_x)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    cs = _check_common(cs, inner_folds, seed, n_jobs)
    _check_two_classes(train_y)
    n = len(train_x)
    return _select_fit_score(
        _linear_split,
        _linear_fit,
        np.concatenate([train_x, test_x]),
        np.concatenate([train_y, test_y]),
        np.arange(n),
        np.arange(n, n + len(test_x)),
        cs,
        inner_folds,
        seed,
        n_jobs,
    )


# ------------------------------------------------------------------------------ SVM on a precomputed kernel
def _kernel_split(k, y, fit_idx, eval_idx):
    return k[np.ix_(fit_idx, fit_idx)], y[fit_idx], k[np.ix_(eval_idx, fit_idx)], y[eval_idx]


def _kernel_fit(k, y, c, seed: int):
    from sklearn.svm import SVC

    return SVC(C=c, kernel="precomputed", random_state=seed).fit(k, y)


def _check_index(name: str, idx, n: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D array of integer indices, got {idx.dtype} {idx.shape}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"{name} must index the {n} samples of the kernel (0..{n - 1}), got {idx.min()}..{idx.max()}")
    if len(np.unique(idx)) != len(idx):
        raise ValueError(f"{name} repeats an index")
    return idx


def kernel_svm_accuracy(
    kernel: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    cs=DEFAULT_CS,
    inner_folds: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
) -> tuple[float, float]:
    """The protocol of :func:`svm_accuracy` with ``SVC(kernel="precomputed")`` on a kernel over all samples
    (e.g. :func:`hscl.evaluation.wl_kernel` of every graph): C by stratified inner CV on ``train_idx`` (the
    same splits for the same ``seed`` and training labels), fitted on ``kernel[train, train]``, scored on
    ``kernel[test, train]``. Returns ``(test accuracy, chosen C)``. No standardisation: the kernel is used as
    given. With ``n_jobs`` > 1 the inner [fit, fit] and [val, fit] blocks of every inner split are held at once."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] == 0:
        raise ValueError(f"kernel must be a square [n, n] matrix over all samples, got shape {kernel.shape}")
    n = kernel.shape[0]
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel must be finite (it holds NaN or inf)")
    if np.abs(kernel - kernel.T).max() > 1e-10 * max(np.abs(kernel).max(), 1e-300):
        raise ValueError("kernel must be symmetric")
    labels = _check_labels("labels", labels, n)
    train_idx, test_idx = _check_index("train_idx", train_idx, n), _check_index("test_idx", test_idx, n)
    if np.intersect1d(train_idx, test_idx).size:
        raise ValueError("train_idx and test_idx must be disjoint")
    cs = _check_common(cs, inner_folds, seed, n_jobs)
    _check_two_classes(labels[train_idx])
    return _select_fit_score(
        _kernel_split, _kernel_fit, kernel, labels, train_idx, test_idx, cs, inner_folds, seed, n_jobs
    )
