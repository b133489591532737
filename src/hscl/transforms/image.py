"""The SimCLR image augmentation of docs/math.md section 6, batched on the input's device: every image of the batch
gets its own random parameters, V views at once, reproducible under a seed.

Recipe: RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3)), horizontal flip (p = 0.5), ColorJitter(0.4,
0.4, 0.4, 0.1) with p = 0.8, grayscale with p = 0.2, Gaussian blur (kernel 3, sigma in [0.1, 2]) with p = 0.5.

Each step is a handful of whole-batch tensor operations: crop, resize and flip are one ``grid_sample``
(bilinear), the colour jitter is ``hscl.transforms.color``, grayscale a luma copy, and the blur one grouped 3x3
convolution with per-image weights (reflect padding); grayscale and blur touch only their images. kornia's
equivalent ran the same recipe through generic per-sample parameter machinery and was slower than a per-image PIL
loop on a 2-core CPU (``benchmarks/bench_augment.py``). The tests check the crop against slicing +
``F.interpolate``, the blur against kornia, and the colour operations against float64 references.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_int
from .color import ColorJitter, luma

__all__ = ["SimCLRAugment", "crop_boxes", "gaussian_blur3", "resized_crop", "to_float_images"]


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


def crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    *,
    device=None,
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> Tensor:
    """RandomResizedCrop's boxes, ``[n, 4]`` as (left, top, width, height) in pixels (integers, as floats).

    As torchvision: up to ``attempts`` draws of an area fraction in ``scale`` and a log-uniform aspect ratio in
    ``ratio``, the first box that fits is kept, at a uniform integer position; an image with no fitting draw gets
    the centre crop of the largest box whose aspect ratio is within ``ratio``. Vectorised over images and draws."""
    area = height * width
    u = torch.rand(3, n, attempts, device=device, generator=generator, dtype=torch.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[1])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.to(torch.uint8), dim=1, keepdim=True)  # first fitting draw (0 when none fits)
    ok = fits.gather(1, first).squeeze(1)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    # fallback: centre crop with the aspect ratio clamped into ``ratio``
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    w = torch.where(ok, w, float(fw))
    h = torch.where(ok, h, float(fh))
    pos = torch.rand(2, n, device=device, generator=generator, dtype=torch.float64)
    left = torch.where(ok, torch.floor(pos[0] * (width - w + 1)), float((width - fw) // 2))
    top = torch.where(ok, torch.floor(pos[1] * (height - h + 1)), float((height - fh) // 2))
    return torch.stack([left, top, w, h], dim=1)


def resized_crop(x: Tensor, boxes: Tensor, size: int, flip: Tensor | None = None) -> Tensor:
    """Crop each image of ``x`` [N, C, H, W] to its box (left, top, width, height) and resize it to ``size`` x
    ``size`` by bilinear interpolation, mirrored where ``flip`` [N] is true. Equal to slicing each box and calling
    ``F.interpolate(mode="bilinear", align_corners=False)`` (sample points clamped inside the box), done as one
    ``grid_sample`` for the whole batch."""
    height, width = x.shape[-2:]
    boxes = boxes.to(device=x.device, dtype=torch.float64)
    t = (torch.arange(size, device=x.device, dtype=torch.float64) + 0.5) / size  # output pixel centres in [0, 1]

    def axis(start: Tensor, length: Tensor, extent: int) -> Tensor:
        pos = start[:, None] + t[None] * length[:, None] - 0.5  # source pixel coordinate of each output pixel
        pos = torch.minimum(pos.clamp_min(start[:, None]), (start + length - 1)[:, None])
        return 2 * pos / max(extent - 1, 1) - 1  # normalised, align_corners=True

    gx = axis(boxes[:, 0], boxes[:, 2], width)
    if flip is not None:
        gx = torch.where(flip[:, None], gx.flip(1), gx)
    gy = axis(boxes[:, 1], boxes[:, 3], height)
    gx, gy = gx.to(x.dtype), gy.to(x.dtype)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def gaussian_blur3(x: Tensor, sigma: Tensor) -> Tensor:
    """3x3 Gaussian blur with a per-image ``sigma`` [N] (reflect padding); sigma = 0 is the identity. One grouped
    convolution for the whole batch (each image's kernel is the outer product of its 3-tap Gaussian)."""
    n, c, h, w = x.shape
    if n == 0:
        return x
    sigma = sigma.to(device=x.device, dtype=x.dtype)
    side = torch.where(sigma > 0, torch.exp(-0.5 / sigma.clamp_min(1e-6).square()), 0.0)
    side = side / (1 + 2 * side)
    taps = torch.stack([side, 1 - 2 * side, side], dim=1)  # [N, 3]
    kernel = (taps[:, :, None] * taps[:, None, :]).repeat_interleave(c, dim=0)[:, None]  # [N * C, 1, 3, 3]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect").reshape(1, n * c, h + 2, w + 2)
    return F.conv2d(padded, kernel, groups=n * c).reshape(n, c, h, w)


class SimCLRAugment(nn.Module):
    """``augment(images, views=2, seed=None) -> [N, V, 3, size, size]`` float in [0, 1].

    Args:
        size: output side (32 for CIFAR).
        scale, ratio: RandomResizedCrop's area and aspect-ratio ranges.
        jitter: ColorJitter's (brightness, contrast, saturation, hue).
        p_flip, p_jitter, p_gray, p_blur: probabilities of flip, jitter, grayscale and blur.
        blur_sigma: Gaussian blur's sigma range (kernel 3).

    ``seed`` makes the views reproducible (a generator on the images' device); without it the global torch
    generator is used. Images larger than ``size`` are resized without antialiasing (the caches store images at
    the data set's resolution, which is the output size for CIFAR, STL-10 and Tiny-ImageNet).
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
        p_flip: float = 0.5,
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        super().__init__()
        check_int("size", size, 1)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        for name, p in (("p_flip", p_flip), ("p_gray", p_gray), ("p_blur", p_blur)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {blur_sigma}")
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)
        self.p_flip, self.p_gray, self.p_blur, self.blur_sigma = p_flip, p_gray, p_blur, tuple(blur_sigma)
        self.jitter = ColorJitter(*jitter, p=p_jitter)

    @torch.no_grad()
    def forward(self, images: Tensor, views: int = 2, seed: int | None = None) -> Tensor:
        check_int("views", views, 1)
        x = to_float_images(images)
        n, device = x.shape[0], x.device
        gen = None if seed is None else torch.Generator(device=device).manual_seed(int(seed))
        batch = x.repeat(views, 1, 1, 1)  # view-major: [V * N, 3, H, W], each row drawn independently
        m = batch.shape[0]
        boxes = crop_boxes(m, x.shape[2], x.shape[3], self.scale, self.ratio, device=device, generator=gen)
        flip = torch.rand(m, device=device, generator=gen) < self.p_flip
        out = resized_crop(batch, boxes, self.size, flip)
        out = self.jitter(out.clamp_(0.0, 1.0), generator=gen)
        gray = torch.nonzero(torch.rand(m, device=device, generator=gen) < self.p_gray).flatten()
        out[gray] = luma(out[gray]).expand(-1, 3, -1, -1)
        lo, hi = self.blur_sigma
        sigma = lo + (hi - lo) * torch.rand(m, device=device, generator=gen)
        blur = torch.nonzero(torch.rand(m, device=device, generator=gen) < self.p_blur).flatten()
        out[blur] = gaussian_blur3(out[blur], sigma[blur])
        return out.clamp_(0.0, 1.0).reshape(views, n, 3, self.size, self.size).transpose(0, 1)
