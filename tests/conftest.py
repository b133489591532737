"""Fixtures and helpers shared by the test modules of more than one folder (import the helpers from
``tests.conftest``): the batches, hardenings and float64 tolerance of the loss checks, one intra-op thread, the rows
of a results CSV, the command line's one error line, MUTAG and the PyG reference encoder."""

import csv
import math
import os
import warnings

import pytest
import torch
from torch import nn

import hscl
import reference as R

# ------------------------------------------------------------------------------------------ the loss checks

#: Agreement to rounding in float64.
TOL = dict(rtol=1e-9, atol=1e-9)


def value_and_grad(fn, z):
    """``fn(z)`` (RuntimeWarnings of empty batches silenced) and the gradient of a fixed, non-uniform weighting of
    its entries with respect to ``z``: one probe of value and gradient for comparing two paths."""
    z = z.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = fn(z)
    w = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    (g,) = torch.autograd.grad((out * w).sum(), z)
    return out.detach(), g


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


def assert_raises(exc, match, fn, *args, **kw):
    """``fn(*args, **kw)`` raises ``exc`` with a message matching ``match``."""
    with pytest.raises(exc, match=match):
        fn(*args, **kw)


@pytest.fixture
def one_thread():
    """One intra-op thread here and, through the environment it yields, in subprocesses: tiny training steps run
    far faster than on two threads of busy cores, and float reductions come out the same in both."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {**os.environ, "OMP_NUM_THREADS": "1"}
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------- results and the command line


def csv_rows(path):
    """The rows of a CSV file, as dicts keyed by its header."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def one_error_line(capsys, command: str) -> str:
    """The one ``hscl COMMAND: error: ...`` line a refused command line printed (nothing else, no traceback)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hscl {command}: error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def train_argv(out, *extra):
    """``hscl train`` of a tiny job on the embedded digits into ``out``, with ``extra`` flags."""
    return ["train", "--dataset", "digits", "--method", "scl", "--epochs", "1", "--width", "4", *extra, "--out", out]


# ------------------------------------------------------------------- graphs: MUTAG and the PyG reference encoder


class PyGEncoder(nn.Module):
    """The encoder as it was written with torch_geometric (GINConv, eps = 0, global_add_pool): the reference."""

    def __init__(self, in_features, hidden=32, layers=3, projection=None, eps=0.0):
        super().__init__()
        from torch_geometric.nn import GINConv

        out = hidden * layers
        projection = out if projection is None else projection
        dims = [in_features] + [hidden] * layers
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(a, hidden), nn.ReLU(), nn.Linear(hidden, hidden)), eps=eps)
            for a in dims[:-1]
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(out, out), nn.ReLU(inplace=True), nn.Linear(out, projection))

    def features(self, batch):
        from torch_geometric.nn import global_add_pool

        x, pooled = batch.x, []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(conv(x, batch.edge_index).relu())
            pooled.append(global_add_pool(x, batch.batch, size=batch.num_graphs))
        return torch.cat(pooled, dim=1)

    def forward(self, batch):
        return self.head(self.features(batch))


def pyg_batch(graphs):
    """``graphs`` as one PyG batch."""
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(graphs))


@pytest.fixture(scope="module")
def mutag(tmp_path_factory):
    """MUTAG (bundled), read into a cache of its own."""
    from hscl.datasets.tu import load_tu

    return load_tu("MUTAG", cache=tmp_path_factory.mktemp("c"))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The first 64 graphs of MUTAG as one PyG batch."""
    from torch_geometric.loader import DataLoader

    from hscl.datasets.tu import load_tu

    ds = load_tu("MUTAG", cache=tmp_path_factory.mktemp("c"))
    return next(iter(DataLoader(list(ds), batch_size=64)))


def saved_storages(fn, x: torch.Tensor) -> set[int]:
    """The storages of the tensors of ``x``'s size that autograd keeps for the backward pass of ``fn(x)``."""
    kept = set()

    def pack(t):
        if t.numel() == x.numel():
            kept.add(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return kept
