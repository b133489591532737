"""One full-width ResNet-18 two-view CIFAR-10 epoch of H-SCL pre-training on one GPU, timed.

    PYTHONPATH=src python3 scripts/h200_resnet18_epoch.py [--data cifar10-jpeg.tar.gz] [--out DIR] [--compile]

Made for a lent H200 (about 10 minutes all included) and runnable on any CUDA GPU. The whole training set lives on
the GPU as uint8; each step makes two SimCLR views on the GPU (``hscl.transforms.SimCLRAugment``), runs the
encoder in bf16 autocast with channels-last memory, the H-SCL (beta = 1) loss in float32, and an Adam step. After
``--warmup`` steps it times one full epoch (every training image once, batch 512) and then, on a few more steps,
the split between augmentation, forward + loss and backward + step (CUDA events). Without ``--data`` (or when the
file is missing) random uint8 images of CIFAR-10's shape stand in: the timing does not depend on the pixels.

Writes ``OUT/h200_epoch.json`` (``--out``, default ``$OUT`` or ``.``) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="CIFAR-10 as an ImageFolder archive (the JPEG copy) or folder")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--split-steps", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="torch.compile the encoder (compile time reported apart)")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test of the script)")
    ap.add_argument("--limit", type=int, default=None, help="use only this many training images")
    ap.add_argument("--width", type=int, default=64, help="ResNet-18 width (64 = full width)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script measures a GPU epoch (--device cpu for a smoke test)")
    from hscl.losses import HSCL
    from hscl.models import ResNetEncoder
    from hscl.transforms import SimCLRAugment

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    t0 = time.perf_counter()
    source = "random uint8 (CIFAR-10 shape)"
    if args.data and Path(args.data).exists():
        from hscl.datasets.image_sets import load_image_splits

        train = load_image_splits(args.data, progress=False)["train"]
        images = torch.from_numpy(train.images[:]).to(dev)
        labels = torch.from_numpy(train.labels[:].astype("int64")).to(dev)
        source = str(args.data)
    else:
        g = torch.Generator(device=dev).manual_seed(0)
        images = torch.randint(0, 256, (50000, 32, 32, 3), generator=g, device=dev, dtype=torch.uint8)
        labels = torch.randint(0, 10, (50000,), generator=g, device=dev)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    load_s = time.perf_counter() - t0
    n = images.shape[0]
    if n <= args.batch:
        raise SystemExit(f"need more than --batch={args.batch} images, got {n}")

    torch.manual_seed(0)
    model = ResNetEncoder(18, args.width, 3, 512, 128).to(dev).to(memory_format=torch.channels_last)
    augment = SimCLRAugment(32)
    loss_fn = HSCL(beta=1.0, temperature=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    mean = torch.tensor([0.49, 0.48, 0.45], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.24, 0.26], device=dev).view(1, 3, 1, 1)
    encoder = model
    compile_s = None
    if args.compile:
        encoder = torch.compile(model)
    params = sum(p.numel() for p in model.parameters())

    def mark(marks):
        if marks is None:
            return
        if cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            marks.append(ev)
        else:
            marks.append(time.perf_counter())

    def step(idx, marks=None):
        x, y = images[idx], labels[idx]
        mark(marks)
        views = augment(x, views=2)  # [B, 2, 3, 32, 32]
        b = views.shape[0]
        inp = ((views.flatten(0, 1) - mean) / std).contiguous(memory_format=torch.channels_last)
        mark(marks)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            z = encoder(inp)
        loss = loss_fn(z.float().view(b, 2, -1), y)
        mark(marks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mark(marks)
        return loss

    perm = torch.randperm(n, device=dev)
    t = time.perf_counter()
    for i in range(args.warmup):
        step(perm[(i * args.batch) % (n - args.batch) :][: args.batch])
    sync()
    warmup_s = time.perf_counter() - t
    if args.compile:
        compile_s = warmup_s
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    perm = torch.randperm(n, device=dev)
    steps = (n + args.batch - 1) // args.batch
    sync()
    t = time.perf_counter()
    for i in range(steps):
        loss = step(perm[i * args.batch : (i + 1) * args.batch])
    sync()
    epoch_s = time.perf_counter() - t
    final_loss = float(loss.detach())
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    split = {"augmentation": 0.0, "forward + loss": 0.0, "backward + step": 0.0}
    for i in range(args.split_steps):
        marks = []
        step(perm[(i * args.batch) % (n - args.batch) :][: args.batch], marks)
        sync()
        for k, (a, b) in zip(split, [(0, 1), (1, 2), (2, 3)], strict=True):
            ms = marks[a].elapsed_time(marks[b]) if cuda else 1000 * (marks[b] - marks[a])
            split[k] += ms / args.split_steps
    result = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "data": source,
        "model": f"ResNet-18 (width {args.width}, CIFAR stem), head 512-512-128, {params / 1e6:.2f} M parameters",
        "batch": args.batch,
        "views": 2,
        "precision": "bf16 autocast, channels-last; loss in float32",
        "compiled": bool(args.compile),
        "epoch_seconds": round(epoch_s, 3),
        "images_per_second": round(n / epoch_s, 1),
        "views_per_second": round(2 * n / epoch_s, 1),
        "peak_memory_gib": None if not cuda else round(peak_gib, 2),
        "ms_per_step": {k: round(v, 3) for k, v in split.items()},
        "final_loss": round(final_loss, 4),
        "data_load_seconds": round(load_s, 1),
        "warmup_seconds": round(warmup_s, 1),
        "compile_seconds": None if compile_s is None else round(compile_s, 1),
        "images": n,
        "target_epoch_under_10_s": bool(epoch_s < 10) if n == 50000 else None,
    }
    text = json.dumps(result, indent=1)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "h200_epoch.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
