"""Augmentations. ``vector``: for feature vectors."""

from .vector import VectorAugment

__all__ = ["VectorAugment"]
