"""The Triton kernels of the tiled path (:mod:`hscl._triton`) under Triton's CPU interpreter, and the dispatch
rule of :func:`hscl._extras.use_triton`. The kernel cases (tests/triton_cases.py: values and gradients equal the
dense path's, float32 to 1e-5 of the largest entry and float64 to 1e-12, for both negative sets, both positive
sets, no hardening / a tilt / a threshold that leaves anchors without candidates, M not a multiple of the block)
run in a subprocess with ``TRITON_INTERPRET=1``: the variable must be set before triton is first imported, which
this process may have done. Timing on a GPU: scripts/gpu_tiled_loss_bench.py."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hscl import _extras

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_under_the_interpreter_equal_the_dense_path():
    pytest.importorskip("triton", reason="triton is not installed (the 'gpu' extra; the 'test' extra on Linux)")
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HSCL_TRITON", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "triton_cases.py")]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


def test_use_triton_rule(monkeypatch):
    x32, x64, x16 = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.half)
    monkeypatch.delenv("HSCL_TRITON", raising=False)
    assert not _extras.use_triton(x32, x32)  # auto: CUDA tensors only
    monkeypatch.setenv("HSCL_TRITON", "force")
    assert _extras.use_triton(x32, x32) and _extras.use_triton(x64, x64)
    assert not _extras.use_triton(x16, x16) and not _extras.use_triton(x32, x64)
    monkeypatch.setenv("HSCL_TRITON", "off")
    assert not _extras.use_triton(x32, x32)
    monkeypatch.setenv("HSCL_TRITON", "yes")
    with pytest.raises(ValueError, match="HSCL_TRITON must be one of auto, force, off, got 'yes'"):
        _extras.use_triton(x32, x32)
