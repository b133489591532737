"""Data sets. ``vectors``: feature-vector data (scikit-learn's digits, embedded; or a ``.npz`` file); ``image_readers``
(the file formats) and ``image_sets`` (named sets as splits; the ``images`` extra), ``tu`` (the ``graphs`` extra)."""

from .._extras import require
from .vectors import load_digits, load_vector_dataset, load_vectors

require(__name__, "images", "graphs")

__all__ = ["load_digits", "load_vector_dataset", "load_vectors"]
