"""Time and peak memory of the data-set-scale diagnostics (the whole data set as reference set), dense vs tiled.

    python benchmarks/bench_diagnostics.py --samples 50000 --dim 128 --classes 10

Embeddings are synthetic (class-clustered); the point is the cost: one Assumption 1 report (the five tilted
means per anchor) with 2N anchors against 2N references, per hardening setting, on the dense path (chunks of
anchors, :func:`hscl.diagnostics.default_chunk_size`: about 1 GiB of working memory) and on the tiled path
(``backend="tiled"``: one pass over score tiles, memory O(N D + tile^2)). Each cell runs once, in a fresh child
process; its peak memory is the growth of the resident set during the report (VmHWM after resetting it through
/proc/self/clear_refs), beyond the embeddings. The child keeps glibc's default allocator settings (pinning the
mmap threshold, as bench_losses.py does for its memory cells, makes every tile's temporaries fresh mappings and
the tiled path about 3x slower). Output: ``results/diagnostics_cpu.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import hscl
from hscl._io import atomic_write_text
from hscl.diagnostics import assumption_report, default_chunk_size

SETTINGS = {"beta=1": hscl.ExponentialTilt(1.0), "tau=e^-0.5": hscl.Threshold(math.exp(-0.5))}


def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def one_cell(args) -> dict:
    """Run one report (``args.cell`` = "setting|backend") and return its seconds, peak MiB and summary."""
    setting, backend = args.cell.split("|")
    g = torch.Generator().manual_seed(0)
    y = torch.randint(args.classes, (args.samples,), generator=g)
    centres = torch.randn(args.classes, args.dim, generator=g)
    z = centres[y][:, None, :] + 1.5 * torch.randn(args.samples, 2, args.dim, generator=g)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _kib("VmRSS")
    start = time.perf_counter()
    rep = assumption_report(z, y, hardening=SETTINGS[setting], backend=backend)
    sec = time.perf_counter() - start
    peak = (_kib("VmHWM") - base) / 1024
    return dict(seconds=sec, peak_mib=peak, fraction=rep.fraction, losses=rep.losses)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--cell", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--note", default="", help="a line for the results file (e.g. what else ran)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "diagnostics_cpu.md")
    args = ap.parse_args(argv)
    if args.cell:
        print(json.dumps(one_cell(args)))
        return 0

    rows = []
    for setting in args.settings:
        for backend in ("dense", "tiled"):
            cmd = [sys.executable, __file__, "--cell", f"{setting}|{backend}", "--samples", str(args.samples),
                   "--dim", str(args.dim), "--classes", str(args.classes)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(dict(setting=setting, backend=backend, **json.loads(out.strip().splitlines()[-1])))
            print(
                f"{setting:12s} {backend:6s} {rows[-1]['seconds']:8.1f} s {rows[-1]['peak_mib']:8.0f} MiB", flush=True
            )

    n = 2 * args.samples
    command = "python benchmarks/bench_diagnostics.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Diagnostics benchmark (cpu)",
        "",
        f"Command: `{command.strip()}`  ",
        f"Machine: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.samples} samples x 2 views = {n} "
        f"anchors against {n} references, D = {args.dim}, {args.classes} classes, float32; one report per cell "
        f"in a fresh child process; dense chunks of {default_chunk_size(n)} anchors.",
        *([args.note + "  "] if args.note else []),
        "",
        "| setting | backend | s | x dense | peak MiB (beyond the embeddings) | fraction | H-SCL |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        dense = next(x for x in rows if x["setting"] == r["setting"] and x["backend"] == "dense")
        lines.append(
            f"| {r['setting']} | {r['backend']} | {r['seconds']:.1f} | {r['seconds'] / dense['seconds']:.2f} | "
            f"{r['peak_mib']:.0f} | {r['fraction']:.4f} | {r['losses']['H-SCL']:.6f} |"
        )
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
