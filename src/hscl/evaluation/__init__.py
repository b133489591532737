"""Evaluation of frozen representations (docs/math.md section 5): a linear SVM with inner CV (graphs), a linear
probe selected on a validation split (images), a weighted kNN monitor, and the Weisfeiler-Lehman subtree
control (features, kernel, and an SVM on the precomputed kernel under the same protocol). Needs the ``images``
or the ``graphs`` extra (scikit-learn, SciPy)."""

from .._extras import require
from .knn import knn_accuracy, knn_predict
from .linear import linear_probe
from .svm import kernel_svm_accuracy, svm_accuracy
from .wl import initial_node_labels, wl_kernel, wl_subtree_features

require(__name__, "images", "graphs")

__all__ = [
    "initial_node_labels",
    "kernel_svm_accuracy",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "svm_accuracy",
    "wl_kernel",
    "wl_subtree_features",
]
