"""Augmentations, batched: ``image`` (SimCLR, kornia), ``graph`` (GraphCL), ``vector`` (feature vectors)."""

from .graph import GraphAugment
from .image import SimCLRAugment
from .vector import VectorAugment

__all__ = ["GraphAugment", "SimCLRAugment", "VectorAugment"]
