"""The tiled path with and without ``torch.compile`` of its tiles' element-wise work (``HSCL_COMPILE=1``).

    OMP_NUM_THREADS=1 python benchmarks/bench_tiled_compile.py

Forward + backward of ``contrastive_loss(..., backend="tiled")`` (H-SCL: other-class negatives, beta = 1 or
tau = e^-0.5, view or label positives; D = 128, 10 classes, float32) at M = 2048 and 8192, eager and compiled in
the same process on the same inputs: the median of the timed calls after the first, and the first compiled call
(which compiles, unless torch's compile caches already hold the graphs). Output: ``results/tiled_compile_cpu.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import hscl
from hscl._io import atomic_write_text
from hscl.functional import contrastive_loss

CONFIGS = {
    "H-SCL (beta=1), view positives": dict(hardening=hscl.ExponentialTilt(1.0)),
    "H-SCL (tau=e^-0.5), view positives": dict(hardening=hscl.Threshold(math.exp(-0.5))),
    "H-SCL (beta=1), label positives": dict(positives="labels", hardening=hscl.ExponentialTilt(1.0)),
    "H-SCL (tau=e^-0.5), label positives": dict(positives="labels", hardening=hscl.Threshold(math.exp(-0.5))),
}


def make_step(m: int, dim: int, classes: int, options: dict):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(m // 2, 2, dim, generator=g)
    y = torch.randint(classes, (m // 2,), generator=g)

    def step():
        zz = z.detach().requires_grad_(True)
        contrastive_loss(zz, y, negatives="other_class", backend="tiled", **options).backward()

    return step


def timed(step, repeats: int) -> tuple[float, float]:
    """(seconds of the first call, median seconds of ``repeats`` further calls)."""
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--note", default="", help="a line for the results file (e.g. what else ran)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tiled_compile_cpu.md")
    args = ap.parse_args(argv)
    rows = []
    for m in args.sizes:
        for name, options in CONFIGS.items():
            step, repeats = make_step(m, args.dim, args.classes, options), 3 if m <= 2048 else 2
            os.environ["HSCL_COMPILE"] = "0"
            _, eager = timed(step, repeats)
            os.environ["HSCL_COMPILE"] = "1"
            first, compiled = timed(step, repeats)
            rows.append((m, name, eager, compiled, first))
            print(f"M={m} {name}: eager {1e3 * eager:.1f} ms, compiled {1e3 * compiled:.1f} ms", flush=True)
    command = "python benchmarks/bench_tiled_compile.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Tiled path: eager against torch.compile (cpu)",
        "",
        f"Command: `{command.strip()}`  ",
        f"Machine: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; D = {args.dim}, {args.classes} classes, "
        "2 views, float32, forward + backward, tile 512; median of repeated calls after the first.  ",
        *([args.note + "  "] if args.note else []),
        "",
        "| M | loss | eager ms | compiled ms | compiled / eager | first compiled call s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for m, name, eager, compiled, first in rows:
        lines.append(
            f"| {m} | {name} | {1e3 * eager:.1f} | {1e3 * compiled:.1f} | {compiled / eager:.2f} | {first:.1f} |"
        )
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
