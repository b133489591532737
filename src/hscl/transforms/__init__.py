"""Augmentations, batched: ``image`` (SimCLR), ``color`` (colour jitter), ``graph`` (GraphCL), ``vector``."""

from .color import ColorJitter
from .graph import GraphAugment
from .image import SimCLRAugment
from .vector import VectorAugment

__all__ = ["ColorJitter", "GraphAugment", "SimCLRAugment", "VectorAugment"]
