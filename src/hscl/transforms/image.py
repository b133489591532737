"""The SimCLR image augmentation of SPEC.md section 6, batched on the input's device (kornia): every image of
the batch gets its own random parameters, V views at once, reproducible under a seed.

Recipe: RandomResizedCrop(size, scale=(0.08, 1)), horizontal flip (p = 0.5), ColorJitter(0.4, 0.4, 0.4, 0.1)
with p = 0.8, grayscale with p = 0.2, Gaussian blur (kernel 3, sigma in [0.1, 2]) with p = 0.5.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SimCLRAugment", "to_float_images"]


def to_float_images(images: Tensor) -> Tensor:
    """uint8 ``[N, H, W, C]`` (the data cache's layout) or float ``[N, C, H, W]`` -> float ``[N, 3, H, W]`` in
    [0, 1]; one-channel images are repeated to three."""
    if images.dtype == torch.uint8:
        if images.dim() != 4:
            raise ValueError(f"uint8 images must be [N, H, W, C], got shape {tuple(images.shape)}")
        images = images.permute(0, 3, 1, 2).float().div_(255.0)
    elif not images.is_floating_point() or images.dim() != 4:
        raise ValueError(
            f"images must be uint8 [N, H, W, C] or float [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
        )
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    return images


class SimCLRAugment(nn.Module):
    """``augment(images, views=2, seed=None) -> [N, V, 3, size, size]`` float in [0, 1].

    Args:
        size: output side (32 for CIFAR).
        scale: RandomResizedCrop's area range.
        jitter: ColorJitter's (brightness, contrast, saturation, hue).
        p_jitter, p_gray, p_blur: probabilities of jitter, grayscale and blur.
        blur_sigma: Gaussian blur's sigma range (kernel 3).
    """

    def __init__(
        self,
        size: int = 32,
        scale: tuple[float, float] = (0.08, 1.0),
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        p_jitter: float = 0.8,
        p_gray: float = 0.2,
        p_blur: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        super().__init__()
        import kornia.augmentation as K

        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.pipeline = K.AugmentationSequential(
            K.RandomResizedCrop((size, size), scale=scale),
            K.RandomHorizontalFlip(p=0.5),
            K.ColorJitter(*jitter, p=p_jitter),
            K.RandomGrayscale(p=p_gray),
            K.RandomGaussianBlur((3, 3), blur_sigma, p=p_blur),
        )

    @torch.no_grad()
    def forward(self, images: Tensor, views: int = 2, seed: int | None = None) -> Tensor:
        if isinstance(views, bool) or not isinstance(views, int) or views < 1:
            raise ValueError(f"views must be an int >= 1, got {views!r}")
        x = to_float_images(images)
        n = x.shape[0]
        batch = x.repeat(views, 1, 1, 1)  # view-major: [V * N, 3, H, W], each row drawn independently
        if seed is None:
            out = self.pipeline(batch)
        else:
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                out = self.pipeline(batch)
        return out.clamp_(0.0, 1.0).reshape(views, n, 3, self.size, self.size).transpose(0, 1)
