"""Two CPU processes (gloo) train a model under DistributedDataParallel with gather_distributed=True: the
parameter gradients equal those of one process on the concatenated batch (docs/math.md section 3)."""

import math
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hscl

WORLD = 2
IN, OUT = 6, 4

# (name, loss factory (given the backend), sizes per rank, labelled, steps); chunk_size is the dense path's
SCENARIOS = [
    ("hscl-beta-equal", lambda b: hscl.losses.HSCL(beta=1.0, gather_distributed=True, backend=b), (4, 4), True, 1),
    (
        "scl-tau-uneven-pairs",
        lambda b: hscl.losses.HSCL(tau=math.exp(-0.5), reduction="pairs", gather_distributed=True, backend=b),
        (3, 5),
        True,
        1,
    ),
    ("ucl-chunked-uneven", lambda b: hscl.losses.UCL(chunk_size=3, gather_distributed=True), (5, 2), False, 1),
    (
        "hucl-queue-two-steps",
        lambda b: hscl.losses.HUCL(beta=1.0, queue_size=6, gather_distributed=True, backend=b),
        (4, 4),
        True,
        2,
    ),
    (
        "scl-labels-positives",
        lambda b: hscl.losses.SCL(positives="labels", gather_distributed=True, backend=b),
        (3, 5),
        True,
        1,
    ),
    (
        "supcon-uneven",
        lambda b: hscl.losses.SupConLoss(temperature=0.5, gather_distributed=True, backend=b),
        (3, 5),
        True,
        1,
    ),
]


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(IN, 8), torch.nn.Tanh(), torch.nn.Linear(8, OUT)).double()


def _data(sizes, step):
    g = torch.Generator().manual_seed(100 + step)
    n = sum(sizes)
    return torch.randn(n, 2, IN, generator=g, dtype=torch.float64), torch.randint(3, (n,), generator=g)


def _worker(rank, init_file, out_dir, backend):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        results = {}
        for name, factory, sizes, labelled, steps in SCENARIOS:
            model = torch.nn.parallel.DistributedDataParallel(_model())
            loss_fn = factory(backend)
            start = sum(sizes[:rank])
            for step in range(steps):
                x, y = _data(sizes, step)
                x, y = x[start : start + sizes[rank]], y[start : start + sizes[rank]]
                model.zero_grad()
                loss = loss_fn(model(x), y if labelled else None)
                loss.backward()
            results[name] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # no rank tears gloo down while the other still communicates (one SIGABRT seen)
    finally:
        dist.destroy_process_group()


def _single_process(factory, sizes, labelled, steps):
    model = _model()
    loss_fn = factory("dense")
    for step in range(steps):
        x, y = _data(sizes, step)
        model.zero_grad()
        loss = loss_fn(model(x), y if labelled else None)
        loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.skipif(not dist.is_available() or sys.platform == "win32", reason="needs torch.distributed with gloo")
@pytest.mark.parametrize("backend", ["dense", "tiled"])
def test_ddp_gradients_equal_single_process(tmp_path, backend):
    """On both backends, against one dense process."""
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), backend), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for name, factory, sizes, labelled, steps in SCENARIOS:
        loss, grads = _single_process(factory, sizes, labelled, steps)
        for r in range(WORLD):
            got_loss, got_grads = ranks[r][name]
            torch.testing.assert_close(got_loss, loss, rtol=1e-10, atol=1e-12, msg=f"{name}: loss on rank {r}")
            for g_dist, g_single in zip(got_grads, grads, strict=True):
                torch.testing.assert_close(g_dist, g_single, rtol=1e-9, atol=1e-12, msg=f"{name}: gradient on rank {r}")
