"""Does the image cpu preset's default budget train a small folder? (issue 11, "budgets that train")

Builds a small CIFAR-10 ImageFolder (the first ``--per-class`` training and ``--test-per-class`` test images of
each class, from the JPEG archive in ``../shared/data/cifar10-jpeg``), then runs through one split and one probe:

* ``raw``: the linear probe on raw pixels (the classical control);
* ``untrained``: the same ResNet, not trained (``epochs = 0``);
* ``default``: ``--method`` trained with the cpu preset as ``hscl train`` runs it without ``--epochs``
  (the budget rule: at least ``min_steps`` optimizer steps).

Writes ``OUT/budget.json`` with each probe's accuracy and wall time. On 2 CPU cores with 2,000 training images,
the cpu preset's default is 38 epochs (304 steps); a run takes about 15 minutes.

    python scripts/image_budget_check.py --out /tmp/budget            # 200 + 100 images per class, UCL
    python scripts/image_budget_check.py --method hscl-beta --out /tmp/budget-hscl
"""

from __future__ import annotations

import argparse
import json
import tarfile
import time
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"


def small_folder(archive: Path, out: Path, per_class: int, test_per_class: int) -> Path:
    """``out/train/<class>/`` and ``out/test/<class>/`` with the first images of each class (sorted names)."""
    keep = {"train": per_class, "test": test_per_class}
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")), key=lambda m: m.name)
        taken: dict[tuple[str, str], int] = {}
        for m in members:
            parts = Path(m.name).parts  # cifar10-jpeg/<split>/<class>/<file>
            if len(parts) != 4 or parts[1] not in keep:
                continue
            key = (parts[1], parts[2])
            if taken.get(key, 0) >= keep[parts[1]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = out / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(m).read())
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE, help="CIFAR-10 JPEG archive (default: %(default)s)")
    parser.add_argument("--folder", type=Path, help="use this ImageFolder (train/, test/) instead of the archive")
    parser.add_argument("--per-class", type=int, default=200, help="training images per class (default: 200)")
    parser.add_argument("--test-per-class", type=int, default=100, help="test images per class (default: 100)")
    parser.add_argument("--method", default="ucl", help="loss (hscl.losses.registry.METHODS; default: ucl)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--min-steps", type=int, help="override the preset's min_steps (smoke tests only)")
    parser.add_argument("--width", type=int, help="override the preset's width (smoke tests only)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)

    import torch

    from hscl.config import read_preset
    from hscl.training.images import ImageConfig, raw_pixel_probe, train_images

    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)
    folder = args.folder or small_folder(args.archive, args.out / "data", args.per_class, args.test_per_class)
    base = {**read_preset("train", "cpu"), "dataset": str(folder), "seed": args.seed, "method": args.method}
    for name in ("min_steps", "width"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    found = {"settings": base}
    runs = {
        "raw": lambda: raw_pixel_probe(ImageConfig(**base), args.out / "raw", progress=False),
        "untrained": lambda: train_images(ImageConfig(**{**base, "epochs": 0}), args.out / "untrained", progress=False),
        "default": lambda: train_images(ImageConfig(**base), args.out / "default", progress=False),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        metrics = run()
        found[name] = {
            "linear_top1": metrics["linear_top1"],
            "knn_top1": metrics.get("knn_top1"),
            "epochs": metrics.get("epochs"),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(name, found[name], flush=True)
    (args.out / "budget.json").write_text(json.dumps(found, indent=2) + "\n")
    return found


if __name__ == "__main__":
    main()
