import math
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import hscl
import reference as R


def make_batch(b=6, v=2, d=5, classes=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, v, d, generator=g, dtype=dtype)
    labels = torch.randint(classes, (b,), generator=g)
    return z, labels


# (name, hscl hardening, reference scalar hardening)
HARDENINGS = [
    ("none", None, None),
    ("tilt0.7", hscl.ExponentialTilt(0.7), R.tilt(0.7)),
    ("tilt3", hscl.ExponentialTilt(3.0), R.tilt(3.0)),
    ("tau-0.5", hscl.Threshold(math.exp(-0.5)), R.threshold(math.exp(-0.5))),
    ("tau+0.9", hscl.Threshold(math.exp(0.9)), R.threshold(math.exp(0.9))),  # leaves some anchors without negatives
    (
        "user-logsigmoid",
        lambda s: torch.nn.functional.logsigmoid(4.0 * (s + 0.5)),
        lambda s: torch.nn.functional.logsigmoid(4.0 * (s + 0.5)),
    ),
]


@pytest.fixture(params=HARDENINGS, ids=[h[0] for h in HARDENINGS])
def hardening_pair(request):
    return request.param[1], request.param[2]


@pytest.fixture
def one_thread():
    """One intra-op thread here and, through the environment it yields, in subprocesses: tiny training steps run
    far faster than on two threads of busy cores, and float reductions come out the same in both."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {**os.environ, "OMP_NUM_THREADS": "1"}
    torch.set_num_threads(before)
