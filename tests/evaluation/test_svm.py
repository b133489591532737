"""The SVMs (:mod:`hscl.evaluation.svm`): the C search selects as GridSearchCV did (linear and kernel), on
training data only; the WL kernel control on MUTAG; bad input."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from hscl.evaluation import (
    kernel_svm_accuracy,
    svm_accuracy,
    wl_kernel,
    wl_subtree_features,
)
from hscl.evaluation.svm import DEFAULT_CS


# ------------------------------------------------------------------------------------ SVMs against GridSearchCV
def gridsearch_reference(train_x, train_y, test_x, test_y, *, cs=DEFAULT_CS, seed=0, kernel=False):
    """The C search as it was written with GridSearchCV: the selection the new code must reproduce exactly."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    folds = min(5, int(np.bincount(np.unique(train_y, return_inverse=True)[1]).min()))
    if kernel:
        est, name = SVC(kernel="precomputed", random_state=seed), "C"
    else:
        est = make_pipeline(StandardScaler(), LinearSVC(dual=False, max_iter=1000, random_state=seed))
        name = "linearsvc__C"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if folds < 2:
            best, c = est.set_params(**{name: 1.0}).fit(train_x, train_y), 1.0
        else:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            search = GridSearchCV(est, {name: list(cs)}, cv=cv, scoring="accuracy").fit(train_x, train_y)
            best, c = search.best_estimator_, float(search.best_params_[name])
    return float((best.predict(test_x) == test_y).mean()), c


def svm_problems():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 6))
    yield "noisy", x, (x[:, 0] + 0.8 * rng.normal(size=90) > 0).astype(int), 3
    # Ties at the best mean inner accuracy, where the first C in grid order must win: C = 1 and 10 here, 10 and
    # 100 in the rank-deficient case, 1e-3..1e-1 with 3 inner folds (as GridSearchCV reports them).
    x = rng.normal(size=(60, 4))
    yield "separable, tied best", x, (x[:, 0] > 0).astype(int), 5
    base = rng.normal(size=(120, 3))  # rank 3 in 12 columns: zero, constant and collinear columns
    x = np.column_stack([base, np.zeros(120), np.ones(120), base @ rng.normal(size=(3, 7))])
    yield "rank-deficient, 3 classes", x, np.digitize(base[:, 1] + 0.5 * rng.normal(size=120), [-0.5, 0.5]), 11
    x = rng.normal(size=(40, 3))
    yield "3 per class in training: 3 inner folds", x, np.r_[[0] * 4, [1] * 36], 7
    yield "1 per class in training: no inner CV", x, np.r_[[0] * 2, [1] * 38], 0


@pytest.mark.parametrize("case", list(svm_problems()), ids=lambda c: c[0])
def test_svm_accuracy_selects_as_gridsearchcv(case):
    _, x, y, seed = case
    train, test = np.arange(len(y)) % 4 != 0, np.arange(len(y)) % 4 == 0
    if case[0].startswith(("3 per", "1 per")):
        train = np.ones(len(y), dtype=bool)
        train[[0, 20, 30, 39] if case[0].startswith("3") else [0, 20, 30]] = False
        test = ~train
    expected = gridsearch_reference(x[train], y[train], x[test], y[test], seed=seed)
    assert svm_accuracy(x[train], y[train], x[test], y[test], seed=seed) == expected
    assert svm_accuracy(x[train], y[train], x[test], y[test], seed=seed, n_jobs=2) == expected


@pytest.mark.parametrize("case", list(svm_problems())[:3], ids=lambda c: c[0])
def test_kernel_svm_accuracy_selects_as_gridsearchcv(case):
    _, x, y, seed = case
    k = np.tanh(x @ x.T / x.shape[1]) + (x @ x.T) / 10  # any symmetric kernel will do for the protocol
    k = (k + k.T) / 2
    train, test = np.flatnonzero(np.arange(len(y)) % 3 != 1), np.flatnonzero(np.arange(len(y)) % 3 == 1)
    kt, ke = k[np.ix_(train, train)], k[np.ix_(test, train)]
    expected = gridsearch_reference(kt, y[train], ke, y[test], seed=seed, kernel=True)
    assert kernel_svm_accuracy(k, y, train, test, seed=seed) == expected
    assert kernel_svm_accuracy(k, y, train, test, seed=seed, n_jobs=-1) == expected


def test_wl_control_on_mutag():
    from hscl.datasets.tu import load_tu

    ds = load_tu("MUTAG")
    labels = ds.labels.numpy()
    k = wl_kernel(wl_subtree_features(ds, 3))
    order = np.random.default_rng(0).permutation(len(ds))
    train, test = order[:150], order[150:]
    acc, c = kernel_svm_accuracy(k, labels, train, test)
    assert acc > 0.75 and c in DEFAULT_CS
    flipped, c2 = kernel_svm_accuracy(k, 1 - labels, train, test)  # labels flipped everywhere: same problem
    assert (flipped, c2) == (acc, c)


def test_svm_bad_input():
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    cases = [
        (dict(train_x=x[:, :2]), "features must be"),
        (dict(train_y=y[:5]), "train_y must be 1-D with one label per sample"),
        (dict(test_y=y[:3]), "test_y must be 1-D"),
        (dict(test_x=x[:0], test_y=y[:0]), "must hold at least one sample"),
        (dict(train_x=np.where(x > 1, np.nan, x)), "train_x must be finite"),
        (dict(cs=()), "cs must be a non-empty sequence"),
        (dict(cs=(1.0, -1.0)), "cs must be a non-empty sequence of finite positive"),
        (dict(inner_folds=1), "inner_folds must be an int >= 2"),
        (dict(seed=-1), "seed must be an int"),
        (dict(n_jobs=0), "n_jobs must be None or a non-zero int"),
        (dict(train_y=np.zeros(20)), "single class"),
    ]
    for change, message in cases:
        args = dict(train_x=x, train_y=y, test_x=x[:5], test_y=y[:5]) | change
        train_x, train_y, test_x, test_y = (args.pop(k) for k in ("train_x", "train_y", "test_x", "test_y"))
        with pytest.raises(ValueError, match=message):
            svm_accuracy(train_x, train_y, test_x, test_y, **args)
    k = x @ x.T
    train, test = np.arange(15), np.arange(15, 20)
    cases = [
        (dict(kernel=k[:, :5]), "kernel must be a square"),
        (dict(kernel=k + np.triu(np.ones_like(k), 1)), "kernel must be symmetric"),
        (dict(kernel=np.full_like(k, np.inf)), "kernel must be finite"),
        (dict(labels=y[:5]), "labels must be 1-D"),
        (dict(train_idx=train.astype(float)), "train_idx must be a non-empty 1-D array of integer indices"),
        (dict(test_idx=np.array([], dtype=int)), "test_idx must be a non-empty"),
        (dict(test_idx=np.array([19, 20])), "test_idx must index the 20 samples"),
        (dict(train_idx=np.r_[train, 3]), "train_idx repeats an index"),
        (dict(test_idx=np.array([14, 15])), "must be disjoint"),
        (dict(labels=np.r_[np.zeros(15), np.ones(5)]), "single class"),
        (dict(cs=[0.0]), "cs must be"),
    ]
    for change, message in cases:
        args = dict(kernel=k, labels=y, train_idx=train, test_idx=test) | change
        kernel, labels, tr, te = (args.pop(k) for k in ("kernel", "labels", "train_idx", "test_idx"))
        with pytest.raises(ValueError, match=message):
            kernel_svm_accuracy(kernel, labels, tr, te, **args)


def test_svm_picks_c_on_training_data_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] > 0).astype(int)
    acc, c = svm_accuracy(x[:60], y[:60], x[60:], y[60:])
    flipped, c2 = svm_accuracy(x[:60], y[:60], x[60:], 1 - y[60:])  # test labels never influence C
    assert c == c2 and acc == pytest.approx(1 - flipped) and acc > 0.8
    with pytest.raises(ValueError, match="single class"):
        svm_accuracy(x[:10], np.zeros(10), x[10:], y[10:])
