"""A linear SVM on frozen features, its C chosen by inner cross-validation on the training data only."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["DEFAULT_CS", "svm_accuracy"]

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


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
    ``n_jobs`` fits the grid in parallel processes (the result does not depend on it).

    The SVM is liblinear's primal solver (squared hinge, L2), capped at 1,000 iterations: the dual solver ran to
    its cap for large C (50x slower), and on rank-deficient GIN features (dead ReLU units) large C costs seconds
    per fit; C = 1000 is left out of the grid for the same reason (measured on PTC_MR and PROTEINS features)."""
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
