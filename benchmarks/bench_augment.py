"""Images per second of hscl's batched SimCLR augmentation against a per-image PIL loop doing the same recipe.

    python benchmarks/bench_augment.py --images 2048 --size 32

Both produce two views per image: RandomResizedCrop(size, scale 0.08-1), horizontal flip, ColorJitter(0.4, 0.4,
0.4, 0.1) with p = 0.8, grayscale with p = 0.2, Gaussian blur (sigma 0.1-2) with p = 0.5. The PIL loop is what a
torchvision-style Dataset does per sample on the CPU (without torchvision, which does not install beside the CPU
torch here): it is written with PIL and NumPy alone.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from hscl.transforms import SimCLRAugment


def _resized_crop_params(w: int, h: int, rng: random.Random, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, w - cw), rng.randint(0, h - ch), cw, ch
    return 0, 0, w, h


def _hue_shift(im: Image.Image, shift: float) -> Image.Image:
    hsv = np.array(im.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(shift * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def pil_simclr(im: Image.Image, size: int, rng: random.Random) -> Image.Image:
    x, y, cw, ch = _resized_crop_params(*im.size, rng)
    im = im.crop((x, y, x + cw, y + ch)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        im = ImageOps.mirror(im)
    if rng.random() < 0.8:
        ops = [
            lambda i: ImageEnhance.Brightness(i).enhance(rng.uniform(0.6, 1.4)),
            lambda i: ImageEnhance.Contrast(i).enhance(rng.uniform(0.6, 1.4)),
            lambda i: ImageEnhance.Color(i).enhance(rng.uniform(0.6, 1.4)),
            lambda i: _hue_shift(i, rng.uniform(-0.1, 0.1)),
        ]
        rng.shuffle(ops)
        for op in ops:
            im = op(im)
    if rng.random() < 0.2:
        im = ImageOps.grayscale(im).convert("RGB")
    if rng.random() < 0.5:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.1, 2.0)))
    return im


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=512, help="batch size of the batched augmentation")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, like the PIL loop)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (args.images, args.size, args.size, 3), generator=g, dtype=torch.uint8)

    aug = SimCLRAugment(args.size)
    aug(data[: args.batch], views=2, seed=0)  # warm-up
    start = time.perf_counter()
    for i in range(0, args.images, args.batch):
        aug(data[i : i + args.batch], views=2, seed=i)
    batched = args.images / (time.perf_counter() - start)

    rng = random.Random(0)
    pil_images = [Image.fromarray(a.numpy()) for a in data]
    start = time.perf_counter()
    for im in pil_images:
        views = [np.asarray(pil_simclr(im, args.size, rng), dtype=np.float32) / 255.0 for _ in range(2)]
        torch.from_numpy(np.stack(views))
    loop = args.images / (time.perf_counter() - start)
    print(f"{args.images} images of {args.size}x{args.size}, 2 views, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads)")  # fmt: skip
    print(f"hscl SimCLRAugment (batch {args.batch}):         {batched:8.0f} images/s")
    print(f"per-image PIL loop:                      {loop:8.0f} images/s")
    print(f"ratio: {batched / loop:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
