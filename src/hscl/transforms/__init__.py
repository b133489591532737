"""Augmentations. ``vector``: for feature vectors; ``graph``: GraphCL's, batched."""

from .graph import GraphAugment
from .vector import VectorAugment

__all__ = ["GraphAugment", "VectorAugment"]
