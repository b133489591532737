"""The ``hscl`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hscl", description="Supervised contrastive learning with hard negatives")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compare the losses on synthetic embeddings (no download)")
    demo.add_argument("--samples", type=int, default=512, help="samples per batch (default 512)")
    demo.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run

        if args.samples < 2 or args.classes < 2:
            parser.error("--samples and --classes must be >= 2")
        print(run(num_samples=args.samples, num_classes=args.classes, seed=args.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
