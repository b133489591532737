"""Batched colour jitter: brightness, contrast, saturation and hue, each image with its own factors and its own
random order of the four, as a few element-wise tensor operations on the images' device.

Semantics follow torchvision's ``ColorJitter`` (and kornia's): for ``jitter = (b, c, s, h)`` each image draws
``brightness ~ U[1 - b, 1 + b]``, ``contrast ~ U[1 - c, 1 + c]``, ``saturation ~ U[1 - s, 1 + s]`` (floored at
0) and ``hue ~ U[-h, h]`` (a fraction of the colour wheel), and applies them in a random order:

* brightness ``f``: ``x * f``;
* contrast ``f``: ``(x - m) * f + m`` with ``m`` the image's mean grey level (ITU-R 601-2 luma);
* saturation ``f``: ``(x - g) * f + g`` with ``g`` the pixel's grey level;
* hue ``d``: the HSV hue rotated by ``d`` turns, saturation and value kept.

Every step clamps to [0, 1]. kornia's ``ColorJitter`` does the same per image but loops over the four operations
with generic per-sample parameter handling and was two thirds of the SimCLR recipe's time on a 2-core CPU
(``benchmarks/bench_augment.py`` measures the whole recipe).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ColorJitter", "adjust_brightness", "adjust_contrast", "adjust_hue", "adjust_saturation", "luma"]

_LUMA = (0.299, 0.587, 0.114)


def _per_image(factor: Tensor, x: Tensor) -> Tensor:
    return factor.to(x.dtype).reshape(-1, 1, 1, 1)


def luma(x: Tensor) -> Tensor:
    """Grey level [N, 1, H, W] of RGB ``x`` [N, 3, H, W] (ITU-R 601-2: 0.299 R + 0.587 G + 0.114 B)."""
    return _LUMA[0] * x[:, 0:1] + _LUMA[1] * x[:, 1:2] + _LUMA[2] * x[:, 2:3]


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """``x`` [N, 3, H, W] in [0, 1] times ``factor`` [N], clamped."""
    return (x * _per_image(factor, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend with each image's mean grey level: ``(x - m) * f + m``, clamped."""
    mean = luma(x).mean(dim=(1, 2, 3), keepdim=True)
    return torch.lerp(mean.expand_as(x), x, _per_image(factor, x)).clamp_(0.0, 1.0)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend with each pixel's grey level: ``(x - g) * f + g``, clamped."""
    return torch.lerp(luma(x).expand_as(x), x, _per_image(factor, x)).clamp_(0.0, 1.0)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue by ``shift`` [N] turns (in [-0.5, 0.5]); saturation and value are kept."""
    value = x.amax(dim=1, keepdim=True)
    delta = value - x.amin(dim=1, keepdim=True)
    inv = torch.where(delta > 0, 1.0 / delta.clamp_min(1e-12), 0.0)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    # hue in sextants [0, 6); the channel holding the maximum decides the formula (red first on ties, as colorsys)
    hue = torch.where(g == value, (b - r) * inv + 2, (r - g) * inv + 4)
    hue = torch.where(r == value, (g - b) * inv, hue)
    hue = torch.remainder(hue + 6 * _per_image(shift, x), 6)
    # back to RGB: channel c is v - delta * clamp(min(k, 4 - k), 0, 1) with k = (n_c + hue) mod 6, n = 5, 3, 1
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    k = torch.remainder(n + hue, 6)
    return (value - delta * torch.minimum(k, 4 - k).clamp_(0.0, 1.0)).clamp_(0.0, 1.0)


_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


class ColorJitter(nn.Module):
    """``ColorJitter(brightness, contrast, saturation, hue, p)(x [N, 3, H, W] in [0, 1])``: with probability ``p``
    per image, the four adjustments with per-image random factors in a per-image random order (module doc).
    Random draws use ``generator`` if given (on ``x``'s device), else the global torch generator."""

    def __init__(
        self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1, p: float = 1.0
    ) -> None:
        super().__init__()
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.ranges = (brightness, contrast, saturation, hue)
        self.p = float(p)

    @torch.no_grad()
    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ValueError(f"x must be float [N, 3, H, W], got {x.dtype} {tuple(x.shape)}")
        n, device = x.shape[0], x.device
        apply = torch.rand(n, device=device, generator=generator) < self.p
        u = torch.rand(4, n, device=device, generator=generator) * 2 - 1  # per image and operation, in [-1, 1]
        b, c, s, h = self.ranges
        factors = torch.stack([1 + b * u[0], 1 + c * u[1], (1 + s * u[2]).clamp_min(0), h * u[3]])
        identity = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device)[:, None]
        factors = torch.where(apply[None], factors, identity)
        # a random permutation of the four operations per image
        order = torch.argsort(torch.rand(n, 4, device=device, generator=generator), dim=1)
        out = x.clone()
        for step in range(4):
            for op_index, op in enumerate(_OPS):
                if self.ranges[op_index] == 0:
                    continue
                rows = torch.nonzero((order[:, step] == op_index) & apply).flatten()
                if rows.numel():
                    out[rows] = op(out[rows], factors[op_index, rows])
        return out
