"""Time and peak memory of the data-set-scale diagnostics (the whole data set as reference set).

    python benchmarks/bench_diagnostics.py --samples 50000 --dim 128 --classes 10

Embeddings are synthetic (class-clustered); the point is the cost: one Assumption 1 report (the five
tilted means per anchor) with 2N anchors against 2N references, in chunks. Peak memory is the process's
maximum resident set (ru_maxrss), which includes Python and torch themselves.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

import hscl
from hscl.diagnostics import assumption_report, default_chunk_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--chunk-size", type=int, default=None)
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(args.classes, (args.samples,), generator=g)
    centres = torch.randn(args.classes, args.dim, generator=g)
    z = centres[y][:, None, :] + 1.5 * torch.randn(args.samples, 2, args.dim, generator=g)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    chunk = args.chunk_size or default_chunk_size(2 * args.samples)
    start = time.perf_counter()
    rep = assumption_report(z, y, hardening=hscl.ExponentialTilt(1.0), chunk_size=chunk, progress=True)
    sec = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"N={args.samples} samples x 2 views, D={args.dim}, chunk={chunk}: {sec:.0f} s, "
          f"peak RSS {peak:.2f} GiB (before the report: {base:.2f} GiB), fraction={rep.fraction:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
