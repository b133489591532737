"""Train an MLP on scikit-learn's digits with a loss of the family and record the paper's diagnostics every epoch.

    python examples/digits_diagnostics.py --loss hscl-beta --epochs 30 --out results/diagnostics/digits

(the command that wrote the committed ``results/diagnostics/digits``; without ``--out`` it writes to
``./out/digits-diagnostics``, so that a trial run never overwrites committed results).

Writes OUT/diagnostics.csv, OUT/diagnostics_losses.png (the four asymptotic losses across epochs, one panel per
hardening setting, as the paper's Figure 5), OUT/diagnostics_assumption.png (the fraction of anchors satisfying
Assumption 1, as its Figure 4) and OUT/model.pt, which `hscl diagnose --checkpoint OUT/model.pt` reads. The
diagnostics use the whole data set (1,797 samples, two augmented views each) as reference set.
"""

from __future__ import annotations

import argparse
import time

import torch

from hscl.checkpoint import save_model
from hscl.datasets import load_digits
from hscl.diagnostics import DiagnosticsRecorder
from hscl.losses.registry import METHODS, make_loss
from hscl.models import MLPEncoder
from hscl.transforms import VectorAugment

#: Where a run writes without --out: a scratch folder (git-ignored), never the committed results.
DEFAULT_OUT = "out/digits-diagnostics"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss", choices=sorted(METHODS), default="hscl-beta")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    x, y = load_digits()
    model = MLPEncoder(x.shape[1])
    augment = VectorAugment(noise=0.1, drop=0.2)
    loss_fn = make_loss(args.loss, args.temperature)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-6)
    rec = DiagnosticsRecorder(args.out, temperature=args.temperature, title=f"(digits, trained with {args.loss})")
    start = time.perf_counter()
    rec.record_model(0, model, (x, y), augment=augment)  # before training
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(x.shape[0]).split(args.batch_size):
            xb = x[idx]
            loss = loss_fn(model(torch.stack([augment(xb), augment(xb)], dim=1)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        rows = rec.record_model(epoch, model, (x, y), augment=augment)
        fractions = ", ".join(f"{r['setting']}: {r['assumption_fraction']:.3f}" for r in rows)
        print(f"epoch {epoch:3d}  train loss {total / x.shape[0]:.4f}  Assumption 1: {fractions}", flush=True)
    save_model(f"{args.out}/model.pt", model, temperature=args.temperature, augment=augment.config(),
               loss=args.loss, epochs=args.epochs, seed=args.seed)  # fmt: skip
    print(f"{time.perf_counter() - start:.0f} s; written to {args.out}/: diagnostics.csv, diagnostics_losses.png, "
          "diagnostics_assumption.png, model.pt")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
