"""Data sets. ``vectors``: feature-vector data (scikit-learn's digits, embedded; or a ``.npz`` file)."""

from .vectors import load_digits, load_vector_dataset, load_vectors

__all__ = ["load_digits", "load_vector_dataset", "load_vectors"]
