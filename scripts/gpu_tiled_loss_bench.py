"""Forward + backward of H-SCL on one GPU: the Triton tiled path against the dense path and pytorch-metric-learning.

    PYTHONPATH=src python3 scripts/gpu_tiled_loss_bench.py [--out DIR] [--sizes 4096,8192,...] [--reps 5]

Made for a lent H200 (under 10 minutes all included) and runnable on any CUDA GPU with triton installed (the
'gpu' extra). Each cell times forward + backward of one loss on M = 2 B embeddings (two views of B samples,
D = 128, 100 classes, float32, unit norm) with CUDA events: one warm-up call, then the median of ``--reps`` calls
(fewer where one call takes over ``--cell-seconds`` / ``--reps``), and ``torch.cuda.max_memory_allocated`` over
the cell. Rows: H-SCL (t = 0.5) with beta = 1 and with tau = e^-0.5, on ``backend="tiled"`` (the Triton kernels
of ``hscl._triton``) and ``backend="dense"``; pytorch-metric-learning's ``SupConLoss`` (t = 0.1) where it is
installed. The dense cells are skipped where their [M, M] float32 tensors (about 12 of them) would not fit in
the GPU's memory, and report "OOM" where they do not fit after all.

First, at M = 2048, the Triton path's values and gradients are compared with the dense path's (the largest
difference relative to the largest entry is printed; float32 and float64).

Writes ``OUT/gpu_tiled_loss_bench.md`` and ``.json`` (``--out``, default ``$OUT`` or ``.``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

#: The [M, M] float32 tensors the dense path holds at its peak (forward and backward), for the skip rule.
DENSE_MATRICES = 12
DEFAULT_SIZES = ",".join(str(2**k) for k in range(12, 19))  # 4096 ... 262144


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="M values, powers of 2, comma-separated")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5, help="timed calls per cell (the median is reported)")
    ap.add_argument("--cell-seconds", type=float, default=40.0, help="time budget of the timed calls of one cell")
    ap.add_argument("--no-check", action="store_true", help="skip the Triton-against-dense check at M = 2048")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not args.sizes or any(m < 4 or m & (m - 1) for m in args.sizes):
        ap.error(f"--sizes must be powers of 2 of at least 4, got {args.sizes}")
    if args.reps < 1 or args.dim < 1 or args.classes < 1 or args.cell_seconds <= 0:
        ap.error("--reps, --dim, --classes and --cell-seconds must be positive")
    return args


def batch(m: int, dim: int, classes: int, dtype=torch.float32, seed: int = 0):
    """Two views of m // 2 samples: z [m // 2, 2, dim] (unit norm), labels [m // 2]."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    z = torch.randn(m // 2, 2, dim, device="cuda", dtype=dtype, generator=g)
    z = torch.nn.functional.normalize(z, dim=-1)
    labels = torch.randint(classes, (m // 2,), device="cuda", generator=g)
    return z, labels


def losses():
    """name -> (fn(z, labels) -> loss, dense?): the rows of the table."""
    import hscl
    from hscl.functional import contrastive_loss

    rows = {}
    for hname, hardening in (("beta=1", hscl.ExponentialTilt(1.0)), ("tau=e^-0.5", hscl.Threshold(math.exp(-0.5)))):
        for backend in ("tiled", "dense"):

            def fn(z, y, hardening=hardening, backend=backend):
                return contrastive_loss(
                    z, y, negatives="other_class", hardening=hardening, temperature=0.5, backend=backend
                )

            label = "Triton tiled" if backend == "tiled" else "dense"
            rows[f"H-SCL {hname}, {label}"] = (fn, backend == "dense")
    try:
        from pytorch_metric_learning.losses import SupConLoss
    except ImportError:
        print("pytorch-metric-learning is not installed: its row is left out")
    else:
        pml = SupConLoss(temperature=0.1)
        rows["pytorch-metric-learning SupConLoss"] = (lambda z, y: pml(z.flatten(0, 1), y.repeat_interleave(2)), True)
    return rows


def check(dim: int, classes: int) -> list[str]:
    """At M = 2048: the largest difference of the Triton path from the dense path, relative to the largest entry,
    of the per-anchor losses and of the gradient, float32 and float64 (HSCL_TRITON=force for float64)."""
    import hscl
    from hscl.functional import contrastive_loss

    lines = []
    for dtype in (torch.float32, torch.float64):
        os.environ["HSCL_TRITON"] = "force" if dtype == torch.float64 else "auto"
        for hardening in (hscl.ExponentialTilt(1.0), hscl.Threshold(math.exp(-0.5))):
            z, y = batch(2048, dim, classes, dtype=dtype, seed=1)
            out = {}
            try:
                for backend in ("tiled", "dense"):
                    x = z.clone().requires_grad_(True)
                    loss = contrastive_loss(
                        x, y, negatives="other_class", hardening=hardening, backend=backend, reduction="none"
                    )
                    (g,) = torch.autograd.grad(loss.sum(), x)
                    out[backend] = (loss.detach(), g)
            except Exception as err:  # a kernel that does not build here (float64 dot?) is reported, not fatal
                lines.append(f"{dtype} {hardening!r}: FAILED {type(err).__name__}: {str(err)[:300]}")
                continue
            rel = [float((a - b).abs().max() / b.abs().max()) for a, b in zip(out["tiled"], out["dense"], strict=True)]
            lines.append(f"{dtype} {hardening!r}: loss {rel[0]:.2e}, gradient {rel[1]:.2e}")
    os.environ.pop("HSCL_TRITON", None)
    return lines


def time_cell(fn, m: int, args) -> dict:
    """Median milliseconds and peak GiB of forward + backward of ``fn`` at M = m, or the failure."""
    torch.cuda.empty_cache()
    z, y = batch(m, args.dim, args.classes)
    z.requires_grad_(True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()

    def call() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(z, y).backward()
        end.record()
        torch.cuda.synchronize()
        z.grad = None
        return start.elapsed_time(end)

    try:
        first = call()  # warm-up (Triton compiles its kernels here)
        reps = max(1, min(args.reps, int(args.cell_seconds * 1000 / max(first, 1e-3))))
        times = [call() for _ in range(reps)]
    except torch.OutOfMemoryError:
        z.grad = None
        torch.cuda.empty_cache()
        return {"ms": None, "peak_gib": None, "note": "OOM"}
    return {"ms": statistics.median(times), "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "reps": reps}


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script times the Triton kernels on a GPU (nothing to do here)")
    import triton  # the 'gpu' extra: pip install 'hscl[gpu]'

    began = time.perf_counter()
    gpu = torch.cuda.get_device_name()
    total_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"GPU: {gpu} ({total_gib:.0f} GiB), torch {torch.__version__}, triton {triton.__version__}")
    checked = [] if args.no_check else check(args.dim, args.classes)
    for line in checked:
        print("check (Triton vs dense, max |diff| / max |dense|):", line)

    rows = losses()
    results = {name: {} for name in rows}
    for m in args.sizes:
        for name, (fn, dense) in rows.items():
            need_gib = DENSE_MATRICES * 4 * m * m / 2**30
            if dense and need_gib > 0.9 * total_gib:
                results[name][m] = {"ms": None, "peak_gib": None, "note": f"skipped (~{need_gib:.0f} GiB)"}
            else:
                results[name][m] = time_cell(fn, m, args)
            cell = results[name][m]
            shown = cell.get("note") or f"{cell['ms']:.1f} ms, {cell['peak_gib']:.2f} GiB"
            print(f"M = {m:>6}  {name:<40} {shown}   [{time.perf_counter() - began:.0f} s]", flush=True)

    table = [
        f"Forward + backward on {gpu}: median ms / peak GiB (D = {args.dim}, {args.classes} classes, float32)",
        "",
        "| loss | " + " | ".join(f"M = {m}" for m in args.sizes) + " |",
        "|---|" + "---|" * len(args.sizes),
    ]
    for name, cells in results.items():
        shown = [c.get("note") or f"{c['ms']:.1f} ms / {c['peak_gib']:.2f} GiB" for c in (cells[m] for m in args.sizes)]
        table.append(f"| {name} | " + " | ".join(shown) + " |")
    if checked:
        table += ["", "Check at M = 2048 (max |Triton - dense| / max |dense|):", *(f"* {c}" for c in checked)]
    text = "\n".join(table) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_tiled_loss_bench.md").write_text(text)
    record = {"gpu": gpu, "torch": torch.__version__, "check": checked, "seconds": time.perf_counter() - began}
    record["cells"] = {name: {str(m): c for m, c in cells.items()} for name, cells in results.items()}
    (out / "gpu_tiled_loss_bench.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
