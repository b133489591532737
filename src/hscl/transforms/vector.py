"""A random augmentation for feature vectors: Gaussian noise, then random feature dropout."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["VectorAugment"]


class VectorAugment:
    """x -> (x + noise * N(0, 1)) * mask / (1 - drop), mask ~ Bernoulli(1 - drop) per feature and sample.

    Batched and on the input's device; each sample gets its own noise and mask. With ``generator`` the draws are
    reproducible (the generator must live on the input's device).
    """

    def __init__(self, noise: float = 0.1, drop: float = 0.1, generator: torch.Generator | None = None) -> None:
        if not (noise >= 0):
            raise ValueError(f"noise must be >= 0, got {noise}")
        if not (0 <= drop < 1):
            raise ValueError(f"drop must be in [0, 1), got {drop}")
        self.noise, self.drop, self.generator = float(noise), float(drop), generator

    def __call__(self, x: Tensor) -> Tensor:
        g = self.generator
        out = x + self.noise * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        if self.drop:
            keep = torch.rand(x.shape, generator=g, device=x.device) >= self.drop
            out = out * keep / (1.0 - self.drop)
        return out

    def config(self) -> dict:
        return {"noise": self.noise, "drop": self.drop}

    def __repr__(self) -> str:
        return f"VectorAugment(noise={self.noise:g}, drop={self.drop:g})"
