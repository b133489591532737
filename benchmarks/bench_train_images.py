"""Image pre-training throughput and where a step's time goes: augmentation, encoder forward + backward, loss
forward + backward, optimiser step.

    python benchmarks/bench_train_images.py --config cpu --steps 20 [--method hscl-beta] [--out FILE.md]

One training step of ``hscl train`` (the LightningModule's pieces, without Lightning's loop) on random uint8 32 x 32
images, timed piece by piece after warm-up steps: the views are made by ``SimCLRAugment``, the encoder runs on them
with the loss's input ``z`` detached so that the loss's forward and backward (down to ``z``) are timed apart from the
encoder's backward (``z.backward(grad)``). Images/s counts source images (each makes ``views`` crops).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from hscl.config import resolve
from hscl.training.images import ImageConfig, ImageContrastive


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="cpu", help="preset name or YAML file (default: cpu)")
    ap.add_argument("--method", default="hscl-beta")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = resolve(ImageConfig, "train", args.config, {"method": args.method})
    config.validate()
    module = ImageContrastive(config, [0.5] * 3, [0.25] * 3, args.size)
    opt = module.configure_optimizers() if config.optimizer == "adam" else torch.optim.SGD(module.parameters(), 0.1)
    g = torch.Generator().manual_seed(0)
    b = config.batch_size
    images = torch.randint(0, 256, (b, args.size, args.size, 3), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (b,), generator=g)
    supervised = module.supervised
    parts = {"augmentation": 0.0, "encoder forward": 0.0, "loss forward + backward": 0.0,
             "encoder backward": 0.0, "optimiser step": 0.0}  # fmt: skip
    module.train()
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        views = module.augment(images, views=config.views)
        t1 = time.perf_counter()
        z = module.encoder(module.normalize(views.flatten(0, 1))).view(b, config.views, -1)
        t2 = time.perf_counter()
        zd = z.detach().requires_grad_(True)
        loss = module.loss(zd, labels if supervised else None)
        loss.backward()
        t3 = time.perf_counter()
        z.backward(zd.grad)
        t4 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        if step >= args.warmup:
            for key, (a, c) in zip(parts, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)], strict=True):
                parts[key] += c - a
    total = sum(parts.values())
    lines = [
        f"`python benchmarks/bench_train_images.py --config {args.config} --method {args.method} --steps {args.steps}`",
        "",
        f"ResNet-{config.depth} width {config.width}, batch {b} x {config.views} views of {args.size}x{args.size}, "
        f"{config.method}, torch {torch.__version__}, {os.cpu_count()} CPUs ({torch.get_num_threads()} threads), "
        f"{platform.processor() or platform.machine()}",
        "",
        f"**{args.steps * b / total:.0f} images/s** ({total / args.steps * 1000:.0f} ms per step)",
        "",
        "| part | ms per step | share |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {v / args.steps * 1000:.1f} | {100 * v / total:.1f}% |" for k, v in parts.items()]
    text = "\n".join(lines)
    print(text)
    if args.out:
        from hscl._io import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
