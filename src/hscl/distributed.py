"""Gathering embeddings across processes with correct gradients (docs/math.md section 3).

``gather(x)`` concatenates every process's ``x`` along dim 0 (ranks in order; batch sizes may differ between
processes). Its backward sums the gradient of the gathered tensor over all processes and returns each process
the slice of its own rows, so that a loss computed on the global batch back-propagates into every process's
embeddings exactly as it would on one process holding the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_sum", "gather", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def _sizes(n: int, device: torch.device) -> list[int]:
    local = torch.tensor([n], dtype=torch.long, device=device)
    out = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(out, local)
    return [int(t) for t in out]


def _gather_padded(x: Tensor, sizes: list[int]) -> Tensor:
    largest = max(sizes)
    padded = x.new_zeros((largest, *x.shape[1:]))
    padded[: x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded.contiguous())
    return torch.cat([t[:n] for t, n in zip(out, sizes, strict=True)])


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int]) -> Tensor:  # type: ignore[override]
        me = dist.get_rank()
        ctx.start = sum(sizes[:me])
        ctx.stop = ctx.start + sizes[me]
        return _gather_padded(x, sizes)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None


def gather(*tensors: Tensor | None) -> tuple[tuple[Tensor | None, ...], int]:
    """Gather tensors that share their first dimension across processes.

    Returns the gathered tensors (``None`` stays ``None``) and the offset of this process's rows in them.
    Floating tensors that require grad are gathered with the summed-gradient backward described above.
    """
    first = next(t for t in tensors if t is not None)
    if not is_distributed():
        return tensors, 0
    sizes = _sizes(first.shape[0], first.device)
    offset = sum(sizes[: dist.get_rank()])
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
        elif t.requires_grad:
            out.append(_GatherWithGrad.apply(t, sizes))
        else:
            out.append(_gather_padded(t, sizes))
    return tuple(out), offset


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum of ``x`` over processes (no gradient); ``x`` itself when not distributed."""
    if not is_distributed():
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x
