"""Evaluation of frozen representations (SPEC.md section 5): a linear SVM with inner CV (graphs), a linear
probe selected on a validation split (images), and a weighted kNN monitor."""

from .knn import knn_accuracy, knn_predict
from .linear import linear_probe
from .svm import svm_accuracy

__all__ = ["knn_accuracy", "knn_predict", "linear_probe", "svm_accuracy"]
