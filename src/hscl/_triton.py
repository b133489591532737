r"""Triton kernels for log E_i of the built-in hardenings on the tiled path (private; needs the 'gpu' extra).

The math of :class:`hscl._tiled._TiledLogTiltedMean`, fused: each program owns a block of anchors (or, in the
backward for the reference, a block of reference rows) and walks the other side block by block, forming the
scores s = (za / t) zr^T of one (anchor block x reference block) tile in registers, the candidate mask from the
key vectors (``ka[i] != kr[j]``, and s_ij >= log tau for a threshold) and, per anchor, the online two-scale
statistics (running max m, Z1 = sum e^{(1 + beta)(s - m)}, Z2 = sum e^{beta (s - m)}, the candidate count).

* forward: one kernel over anchor blocks writes (m, Z1, Z2, count) per anchor;
* backward: G_ij = g1_i e^{(1+beta) x_ij} - g2_i e^{beta x_ij} (x = s - m, zero off the candidates) is
  recomputed tile by tile; one kernel over anchor blocks accumulates grad_za = G zr / t, one over reference
  blocks grad_zr = G^T za / t: no atomics, so the gradients are deterministic.

Dot products use ``input_precision="ieee"`` (no TF32) and accumulate in the input dtype (float32 or float64), so
that the numerics are those of the torch tiled path. Scalars (1/t, beta, the threshold) are passed as a tensor of
the input dtype, so that float64 runs keep them in float64. The kernels run under Triton's CPU interpreter
(``TRITON_INTERPRET=1`` before this module is imported) on CPU tensors, float32 and float64 alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._extras import require
from .hardening import ExponentialTilt, Threshold

require(__name__, "gpu")

import triton
import triton.language as tl


@triton.jit
def _tile(
    za, zr_ptr, ka, kr_ptr, r0, R, D, below, dims, HAS_BELOW: tl.constexpr, BLOCK_N: tl.constexpr
):  # pragma: no cover - traced by Triton
    """One tile: the reference rows of the block, and the scores of the anchors ``za`` (already / t) against
    them with -inf off the candidates."""
    cols = r0 + tl.arange(0, BLOCK_N)
    col_ok = cols < R
    zr = tl.load(zr_ptr + cols[:, None] * D + dims[None, :], mask=col_ok[:, None] & (dims[None, :] < D), other=0.0)
    kr = tl.load(kr_ptr + cols, mask=col_ok, other=0)
    s = tl.dot(za, tl.trans(zr), input_precision="ieee", out_dtype=za.dtype)
    keep = (ka[:, None] != kr[None, :]) & col_ok[None, :]
    if HAS_BELOW:
        keep = keep & (s > below)
    return zr, tl.where(keep, s, float("-inf")), keep


@triton.jit
def _anchors(za_ptr, ka_ptr, rows, row_ok, dims, D, inv_t):  # pragma: no cover - traced by Triton
    """The anchor rows ``rows`` of za scaled by 1/t (zero rows past C) and their keys: what every kernel loads."""
    za = tl.load(za_ptr + rows[:, None] * D + dims[None, :], mask=row_ok[:, None] & (dims[None, :] < D), other=0.0)
    return za * inv_t, tl.load(ka_ptr + rows, mask=row_ok, other=0)


@triton.jit
def _stats_kernel(
    za_ptr,
    zr_ptr,
    ka_ptr,
    kr_ptr,
    scalars_ptr,
    top_ptr,
    z1_ptr,
    z2_ptr,
    count_ptr,
    C,
    R,
    D,
    HAS_BETA: tl.constexpr,
    HAS_BELOW: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):  # pragma: no cover - traced by Triton
    """Per anchor of this program's block: the running max m and Z1, Z2 and the candidate count."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_ok = rows < C
    inv_t = tl.load(scalars_ptr)
    beta = tl.load(scalars_ptr + 1)
    below = tl.load(scalars_ptr + 2)
    za, ka = _anchors(za_ptr, ka_ptr, rows, row_ok, dims, D, inv_t)
    m = tl.full([BLOCK_M], float("-inf"), za.dtype)
    z1 = tl.zeros([BLOCK_M], za.dtype)
    z2 = tl.zeros([BLOCK_M], za.dtype)
    count = tl.zeros([BLOCK_M], za.dtype)
    for r0 in range(0, R, BLOCK_N):
        _zr, masked, keep = _tile(za, zr_ptr, ka, kr_ptr, r0, R, D, below, dims, HAS_BELOW, BLOCK_N)
        new = tl.maximum(m, tl.max(masked, axis=1))
        safe = tl.where(new > float("-inf"), new, 0.0)
        x = masked - safe[:, None]
        d = m - safe  # -inf while the row had no candidate (its sums are 0)
        if HAS_BETA:
            p2 = tl.exp(beta * x)
            rescale2 = tl.exp(beta * d)
            z1 = z1 * (tl.exp(d) * rescale2) + tl.sum(tl.exp(x) * p2, axis=1)
            z2 = z2 * rescale2 + tl.sum(p2, axis=1)
        else:
            z1 = z1 * tl.exp(d) + tl.sum(tl.exp(x), axis=1)
        count += tl.sum(keep.to(za.dtype), axis=1)
        m = new
    tl.store(top_ptr + rows, m, mask=row_ok)
    tl.store(z1_ptr + rows, z1, mask=row_ok)
    tl.store(z2_ptr + rows, z2, mask=row_ok)
    tl.store(count_ptr + rows, count, mask=row_ok)


@triton.jit
def _coefficients(masked, top, g1, g2, beta, HAS_BETA: tl.constexpr, HAS_G2: tl.constexpr):  # pragma: no cover
    """G of one tile: d log E_i / d s_ij times the upstream gradient (zero off the candidates)."""
    x = masked - top[:, None]
    if HAS_BETA:
        p2 = tl.exp(beta * x)
        g = tl.exp(x) * p2 * g1[:, None]
        if HAS_G2:
            g = g - p2 * g2[:, None]
    else:
        g = tl.exp(x) * g1[:, None]
    return g


@triton.jit
def _grad_anchor_kernel(
    za_ptr,
    zr_ptr,
    ka_ptr,
    kr_ptr,
    scalars_ptr,
    top_ptr,
    g1_ptr,
    g2_ptr,
    out_ptr,
    C,
    R,
    D,
    HAS_BETA: tl.constexpr,
    HAS_BELOW: tl.constexpr,
    HAS_G2: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):  # pragma: no cover - traced by Triton
    """grad_za of this program's anchor block: sum over the reference blocks of G zr / t."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_ok = rows < C
    inv_t = tl.load(scalars_ptr)
    beta = tl.load(scalars_ptr + 1)
    below = tl.load(scalars_ptr + 2)
    za, ka = _anchors(za_ptr, ka_ptr, rows, row_ok, dims, D, inv_t)
    top = tl.load(top_ptr + rows, mask=row_ok, other=0.0)
    g1 = tl.load(g1_ptr + rows, mask=row_ok, other=0.0)
    g2 = tl.load(g2_ptr + rows, mask=row_ok, other=0.0)
    acc = tl.zeros([BLOCK_M, BLOCK_D], za.dtype)
    for r0 in range(0, R, BLOCK_N):
        zr, masked, _keep = _tile(za, zr_ptr, ka, kr_ptr, r0, R, D, below, dims, HAS_BELOW, BLOCK_N)
        g = _coefficients(masked, top, g1, g2, beta, HAS_BETA, HAS_G2)
        acc += tl.dot(g, zr, input_precision="ieee", out_dtype=za.dtype)
    acc = acc * inv_t
    tl.store(out_ptr + rows[:, None] * D + dims[None, :], acc, mask=row_ok[:, None] & (dims[None, :] < D))


@triton.jit
def _grad_reference_kernel(
    za_ptr,
    zr_ptr,
    ka_ptr,
    kr_ptr,
    scalars_ptr,
    top_ptr,
    g1_ptr,
    g2_ptr,
    out_ptr,
    C,
    R,
    D,
    HAS_BETA: tl.constexpr,
    HAS_BELOW: tl.constexpr,
    HAS_G2: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):  # pragma: no cover - traced by Triton
    """grad_zr of this program's reference block: sum over the anchor blocks of G^T za / t."""
    r0 = tl.program_id(0) * BLOCK_N
    cols = r0 + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, BLOCK_D)
    col_ok = cols < R
    inv_t = tl.load(scalars_ptr)
    beta = tl.load(scalars_ptr + 1)
    below = tl.load(scalars_ptr + 2)
    acc = tl.zeros([BLOCK_N, BLOCK_D], za_ptr.dtype.element_ty)
    for a0 in range(0, C, BLOCK_M):
        rows = a0 + tl.arange(0, BLOCK_M)
        row_ok = rows < C
        za, ka = _anchors(za_ptr, ka_ptr, rows, row_ok, dims, D, inv_t)
        top = tl.load(top_ptr + rows, mask=row_ok, other=0.0)
        g1 = tl.load(g1_ptr + rows, mask=row_ok, other=0.0)
        g2 = tl.load(g2_ptr + rows, mask=row_ok, other=0.0)
        _zr, masked, _keep = _tile(za, zr_ptr, ka, kr_ptr, r0, R, D, below, dims, HAS_BELOW, BLOCK_N)
        g = _coefficients(masked, top, g1, g2, beta, HAS_BETA, HAS_G2)
        acc += tl.dot(tl.trans(g), za, input_precision="ieee", out_dtype=za.dtype)
    tl.store(out_ptr + cols[:, None] * D + dims[None, :], acc, mask=col_ok[:, None] & (dims[None, :] < D))


def _blocks(d: int, block: int | None) -> tuple[int, int]:
    """The block edge (rows per program: 64 up to D = 128, 32 beyond) and the padded dimension."""
    block_d = max(16, triton.next_power_of_2(d))
    if block is None:
        block = 64 if block_d <= 128 else 32
    return block, block_d


def _keys(ka: Tensor, kr: Tensor) -> tuple[Tensor, Tensor]:
    """The key vectors in one comparable dtype (int64, or float64 for floating keys), contiguous."""
    dtype = torch.float64 if ka.is_floating_point() or kr.is_floating_point() else torch.int64
    return ka.to(dtype).contiguous(), kr.to(dtype).contiguous()


class _Spec:
    """The launch settings of one call: the hardening's flags and scalars, the block edges."""

    def __init__(self, hardening, inv_t: float, detach_weights: bool, dtype: torch.dtype, d: int, block):
        self.beta = hardening.beta if isinstance(hardening, ExponentialTilt) else 0.0
        self.has_below = isinstance(hardening, Threshold)
        self.below = hardening.cut(dtype) if self.has_below else -math.inf  # s is kept when s > below
        self.inv_t = inv_t
        self.coef = (1.0 + self.beta, self.beta) if self.beta > 0 and not detach_weights else (1.0, 0.0)
        self.block, self.block_d = _blocks(d, block)

    def scalars(self, like: Tensor) -> Tensor:
        return torch.tensor([self.inv_t, self.beta, self.below], dtype=like.dtype, device=like.device)


class _TritonLogTiltedMean(torch.autograd.Function):
    """log E_i (None, ExponentialTilt, Threshold) by the kernels above; outputs ``(log_e, weighted)`` as
    :class:`hscl._tiled._TiledLogTiltedMean` does."""

    @staticmethod
    def forward(ctx, za, zr, ka, kr, spec):  # type: ignore[override]
        za, zr = za.contiguous(), zr.contiguous()
        ka, kr = _keys(ka, kr)
        c, r, d = za.shape[0], zr.shape[0], za.shape[1]
        top, z1, z2, count = (za.new_empty(c) for _ in range(4))
        scalars = spec.scalars(za)
        flags = {"HAS_BETA": spec.beta > 0, "HAS_BELOW": spec.has_below}
        blocks = {"BLOCK_M": spec.block, "BLOCK_N": spec.block, "BLOCK_D": spec.block_d}
        _stats_kernel[(triton.cdiv(c, spec.block),)](
            za, zr, ka, kr, scalars, top, z1, z2, count, c, r, d, **flags, **blocks
        )
        kept = count > 0
        if spec.beta > 0:
            log_e = top + z1.log() - z2.log()
        else:
            log_e = top + z1.log() - count.clamp_min(1).log()
        ctx.spec = spec
        ctx.save_for_backward(za, zr, ka, kr, scalars, torch.where(kept, top, 0.0), z1, z2, kept)
        ctx.mark_non_differentiable(kept)
        return torch.where(kept, log_e, 0.0), kept

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _):  # type: ignore[override]
        za, zr, ka, kr, scalars, top, z1, z2, kept = ctx.saved_tensors
        spec = ctx.spec
        c1, c2 = spec.coef
        zero = grad.new_zeros(())
        g1 = torch.where(kept, grad * c1 / z1, zero).to(za.dtype).contiguous()
        g2 = torch.where(kept, grad * c2 / z2, zero).to(za.dtype).contiguous()
        c, r, d = za.shape[0], zr.shape[0], za.shape[1]
        grad_za, grad_zr = torch.empty_like(za), torch.empty_like(zr)
        args = (za, zr, ka, kr, scalars, top, g1, g2)
        flags = {
            "HAS_BETA": spec.beta > 0,
            "HAS_BELOW": spec.has_below,
            "HAS_G2": c2 != 0,
            "BLOCK_M": spec.block,
            "BLOCK_N": spec.block,
            "BLOCK_D": spec.block_d,
        }
        _grad_anchor_kernel[(triton.cdiv(c, spec.block),)](*args, grad_za, c, r, d, **flags)
        _grad_reference_kernel[(triton.cdiv(r, spec.block),)](*args, grad_zr, c, r, d, **flags)
        return grad_za, grad_zr, None, None, None


def log_tilted_mean(
    za: Tensor, zr: Tensor, ka: Tensor, kr: Tensor, hardening, *, inv_t: float, detach_weights: bool, block=None
) -> tuple[Tensor, Tensor]:
    """log E_i of the anchors ``za`` [c, D] over the reference ``zr`` [R, D] (candidates: ``kr[j] != ka[i]``,
    and s_ij >= log tau for a threshold) by the Triton kernels, for ``hardening`` None, an
    :class:`~hscl.hardening.ExponentialTilt` or a :class:`~hscl.hardening.Threshold`; ``(log_e, weighted)``.
    ``za`` and ``zr`` are float32 or float64 tensors of one dtype; ``block`` sets the block edge (a power of 2,
    at least 16; default 64, or 32 for D > 128)."""
    if hardening is not None and not isinstance(hardening, (ExponentialTilt, Threshold)):
        raise ValueError(f"the Triton path takes None, ExponentialTilt or Threshold, got {type(hardening).__name__}")
    if za.dtype not in (torch.float32, torch.float64) or zr.dtype != za.dtype:
        raise ValueError(f"the Triton path needs float32 or float64 za and zr of one dtype, got {za.dtype}, {zr.dtype}")
    if block is not None and (block < 16 or block & (block - 1)):
        raise ValueError(f"block must be a power of 2 of at least 16, got {block}")
    spec = _Spec(hardening, inv_t, detach_weights, za.dtype, za.shape[1], block)
    return _TritonLogTiltedMean.apply(za, zr, ka, kr, spec)
