"""Evaluation of frozen representations (SPEC.md section 5)."""

from .svm import svm_accuracy

__all__ = ["svm_accuracy"]
