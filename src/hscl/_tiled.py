r"""The tiled loss path: the terms of :mod:`hscl._engine` without any [M, R] tensor (private).

The scores s_ij = z_i . z_j / t are formed tile by tile, over (anchor tile x reference tile) blocks of at most
``tile`` x ``tile`` entries; per anchor only running statistics are kept. Memory O(M D + tile^2) with gradients.

* :func:`log_tilted_mean`: log E_i by an online log-sum-exp (a running max and the sums at the two scales of
  the exponential tilt, rescaled when the max grows; a compare inside the tile for the threshold) in an
  autograd function whose backward recomputes each tile from the saved per-row (max, Z1, Z2) and accumulates
  grad_za += G @ zr / t, grad_zr += G^T @ za / t. User hardening functions take a generic path (online
  log-sum-exps of w + s and of w; the backward runs autograd on each recomputed tile, weighted by the detached
  softmax coefficients).
* :func:`terms`: the contrastive family's per-anchor terms. The candidate and positive sets are built inside
  each tile from key vectors: an entry (i, j) is excluded when ``ka[i] == kr[j]`` (labels, instance ids, or
  the block layout's sample index (position // V)). View positives of the block layout come from the
  per-sample V x V Gram matrices (O(M V D)), computed inside :class:`_TiledLogTiltedMean` so that their gradient
  joins the tiles' in one buffer. Other positives (labels, or the generic layout) with a built-in hardening and
  no debiasing: :class:`_TiledLabelTerms`, a second forward pass for the pair terms and one backward pass over
  the tiles for both gradients. Otherwise (debiasing, a user hardening function, the Triton kernels) a second
  tiled pass whose backward recomputes each tile with autograd on it (:class:`_TiledPairTerms`).
* :func:`supcon_terms`: SupCon's denominator by the same online log-sum-exp; the positive sum from per-class
  sums of the embeddings (sum_p s_ip = z_i . (sum of its class - z_i) / t), O(M D).

* :func:`reference_log_means`: the five tilted means of :mod:`hscl.diagnostics.asymptotic` (UCL, H-UCL, SCL,
  H-SCL and the collision set C(i), kept when the labels are equal) in one forward-only pass over the tiles.
* :func:`tile_kernel`: the element-wise work of a tile of :func:`log_tilted_mean` (built-in hardenings), eager,
  or through ``torch.compile(dynamic=True)`` with ``HSCL_COMPILE=1`` (an eager fallback, warned once).

Rows without a candidate give log E_i = 0 and a zero gradient, as on the dense path.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._extras import use_triton
from .hardening import ExponentialTilt, Threshold

#: The default tile edge on CPU: forward and backward of H-SCL (beta = 1, view positives) at M = 4096, D = 128,
#: one thread, took 0.32 s (T = 256), 0.30 s (512), 0.31 s (1024), 0.48 s (2048); dense 0.34 s.
DEFAULT_TILE = 512


def user_log_weights(hardening: Callable[[Tensor], Tensor], scores: Tensor) -> Tensor:
    """w = hardening(s), checked: floating log-weights of the scores' shape, no NaN and no +inf."""
    logw = hardening(scores)
    if not isinstance(logw, Tensor) or logw.shape != scores.shape or not logw.is_floating_point():
        got = tuple(logw.shape) if isinstance(logw, Tensor) else type(logw).__name__
        raise ValueError(
            f"hardening must return floating log-weights of the scores' shape {tuple(scores.shape)}, got {got}"
        )
    if bool((torch.isnan(logw) | torch.isposinf(logw)).any()):
        raise ValueError("hardening returned NaN or +inf log-weights; only finite values and -inf are allowed")
    return logw.to(scores.dtype)


def log_debiased(log_k: float, log_e: Tensor, s_pos: Tensor, tau_plus: float, inv_t: float) -> Tensor:
    """log of max((K E - tau_plus K e^{s_p}) / (1 - tau_plus), K e^{-1/t}), per pair, in the log domain."""
    floor = -inv_t
    shift = math.log(tau_plus) + s_pos - log_e  # log(tau_plus e^{s_p} / E)
    with torch.no_grad():
        first = log_e + torch.log1p(-torch.exp(shift.clamp_max(0.0))) - math.log1p(-tau_plus)
        wins = first > floor
    # Evaluate the first branch only where it wins, so that log1p(-1) never enters the graph.
    shift = torch.where(wins, shift, -1.0)
    first = log_e + torch.log1p(-torch.exp(shift)) - math.log1p(-tau_plus)
    return log_k + torch.where(wins, first, floor)


def pair_losses(s_pos: Tensor, log_ke: Tensor, ok: Tensor) -> Tensor:
    """l_ip = log(1 + K E_i e^{-s_ip}) = logaddexp(s_ip, log K E_i) - s_ip where ``ok``, 0 elsewhere."""
    return torch.where(ok, torch.logaddexp(s_pos, log_ke) - s_pos, 0.0)


def _builtin(hardening) -> bool:
    """None, ExponentialTilt or Threshold: the hardenings with fused kernels (the rest are user functions)."""
    return hardening is None or isinstance(hardening, (ExponentialTilt, Threshold))


def log_weights(hardening, scores: Tensor) -> Tensor:
    """w = log eta(s) for any hardening (0 without one)."""
    if hardening is None:
        return torch.zeros_like(scores)
    if isinstance(hardening, (ExponentialTilt, Threshold)):
        return hardening.log_weights(scores)
    return user_log_weights(hardening, scores)


class _Spec(NamedTuple):
    """What a tile needs besides the tensors: the hardening, 1/t, the tile edge, ``detach_weights``, and V
    when the view positives' scores of the block layout are computed alongside (see :func:`log_tilted_mean`)."""

    hardening: object
    inv_t: float
    tile: int
    detach_weights: bool
    blocks: int | None = None


def _full_precision(device: torch.device):
    """Autocast off in a backward pass (which may run inside the caller's autocast region): the tiles are
    recomputed in the dtype of the forward pass."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()  # pragma: no cover - devices without autocast


def _spans(n: int, tile: int):
    return [(s, min(s + tile, n)) for s in range(0, n, tile)]


def _threshold_below(hardening, dtype: torch.dtype) -> float | None:
    """For a threshold: the largest float below log tau (s is kept when s > it, i.e. s >= log tau)."""
    return hardening.cut(dtype) if isinstance(hardening, Threshold) else None


def _below_or_inf(below: float | None) -> float:
    return -math.inf if below is None else below


def _dropped(s, ka, kr, below: float):
    """The entries of a tile that are not candidates: equal keys, or (a threshold) s <= ``below``."""
    drop = ka[:, None] == kr[None, :]
    return drop if below == -math.inf else drop | (s <= below)


def _forward_tile(s, ka, kr, m, s1, s2, n, beta: float, below: float):
    """One tile's update of the per-row running (max, Z1, Z2, count) (see :class:`_TiledLogTiltedMean`): the
    candidates are the entries with ``ka[i] != kr[j]`` and s > ``below``; returns the four new statistics.
    The tile's temporaries are updated in place (e^{beta x} is e^x itself at beta = 1: the same bits)."""
    drop = _dropped(s, ka, kr, below)
    x = s.masked_fill(drop, -math.inf)
    new = torch.maximum(m, x.amax(1))
    safe = torch.where(torch.isfinite(new), new, 0.0)
    x.sub_(safe[:, None])
    d = m - safe  # -inf while the row had no kept entry (its sums are 0)
    count = n + drop.logical_not().sum(1, dtype=s.dtype)
    if beta > 0:
        p2 = x.exp() if beta == 1 else (x * beta).exp_()
        rescale2 = torch.exp(beta * d)
        z1 = (p2 * p2).sum(1) if beta == 1 else x.exp_().mul_(p2).sum(1)
        return new, s1 * (torch.exp(d) * rescale2) + z1, s2 * rescale2 + p2.sum(1), count
    return new, s1 * torch.exp(d) + x.exp_().sum(1), s2, count


def _backward_tile(s, ka, kr, top, g1, g2, beta: float, below: float, with_g2: bool):
    """One recomputed tile's weights dL/ds_ij: g1_i e^{(1+beta)(s - m_i)} - g2_i e^{beta (s - m_i)} on the
    candidates (0 elsewhere; the g2 term only ``with_g2``)."""
    x = s.masked_fill(_dropped(s, ka, kr, below), -math.inf).sub_(top[:, None])
    if beta > 0:
        p2 = x.exp() if beta == 1 else (x * beta).exp_()
        g = (p2 * p2) if beta == 1 else x.exp_().mul_(p2)
        g.mul_(g1[:, None])
        return g.sub_(p2.mul_(g2[:, None])) if with_g2 else g
    return x.exp_().mul_(g1[:, None])


_COMPILED: dict[str, Callable] = {}
_COMPILE_BROKEN: list[str] = []


def compile_enabled() -> bool:
    """Whether the tiles' element-wise work runs through ``torch.compile``: environment variable
    ``HSCL_COMPILE=1`` (default off: ``0``)."""
    return os.environ.get("HSCL_COMPILE", "0") == "1" and not _COMPILE_BROKEN


def tile_kernel(name: str, fn: Callable) -> Callable:
    """``fn`` itself, or with ``HSCL_COMPILE=1`` its ``torch.compile(dynamic=True)`` version (one graph for
    every tile shape), falling back to ``fn`` for good, with one warning, if compiling or running it fails."""
    if not compile_enabled():
        return fn
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=True)

    def run(*args):
        if _COMPILE_BROKEN:
            return fn(*args)
        try:
            return _COMPILED[name](*args)
        except Exception as exc:  # any compiler failure: eager gives the same numbers
            _COMPILE_BROKEN.append(f"{type(exc).__name__}: {exc}")
            warnings.warn(
                f"hscl: torch.compile of the tiled path failed ({type(exc).__name__}); running eager from now on",
                RuntimeWarning,
                stacklevel=2,
            )
            return fn(*args)

    return run


def _grad_buffers(za: Tensor, zr: Tensor, shared: bool) -> tuple[Tensor, Tensor]:
    """Zeroed gradient buffers for ``za`` and ``zr``; one buffer for both when ``shared`` (the forward got
    the same tensor twice: the usual call, without a queue or a gather), which the backward then returns for
    ``za`` only, so that autograd neither keeps a second M x D buffer nor adds the two."""
    grad_za = torch.zeros_like(za)
    return grad_za, grad_za if shared else torch.zeros_like(zr)


def _tilt_pass(za: Tensor, zr: Tensor, ka: Tensor, kr: Tensor, spec, beta: float, below: float | None):
    """The forward pass over the tiles: per anchor the running (max, Z1, Z2, count) of :func:`_forward_tile`."""
    c = za.shape[0]
    top = za.new_full((c,), -math.inf)
    z1, z2, count = za.new_zeros(c), za.new_zeros(c), za.new_zeros(c)
    step = tile_kernel("forward", _forward_tile)
    for a0, a1 in _spans(c, spec.tile):
        za_t = za[a0:a1] * spec.inv_t
        m, s1, s2, n = top[a0:a1], z1[a0:a1], z2[a0:a1], count[a0:a1]
        for r0, r1 in _spans(zr.shape[0], spec.tile):
            s = za_t @ zr[r0:r1].T
            stats = step(s, ka[a0:a1], kr[r0:r1], m, s1, s2, n, beta, _below_or_inf(below))
            for old, value in zip((m, s1, s2, n), stats, strict=True):
                old.copy_(value)
    return top, z1, z2, count


def _tilt_setup(ctx, za, zr, ka, kr, spec) -> tuple[Tensor, Tensor]:
    """Run :func:`_tilt_pass`, keep what the backward needs on ``ctx``; ``(log_e, kept)``."""
    h = spec.hardening
    beta = h.beta if isinstance(h, ExponentialTilt) else 0.0
    below = _threshold_below(h, za.dtype)
    top, z1, z2, count = _tilt_pass(za, zr, ka, kr, spec, beta, below)
    kept = count > 0
    if beta > 0:
        log_e = top + z1.log() - z2.log()
        ctx.coef = (1.0, 0.0) if spec.detach_weights else (1.0 + beta, beta)
    else:
        log_e = top + z1.log() - count.clamp_min(1).log()
        ctx.coef = (1.0, 0.0)
    ctx.spec, ctx.beta, ctx.below, ctx.shared = spec, beta, below, za is zr
    ctx.tilt = (torch.where(kept, top, 0.0), z1, z2)
    ctx.mark_non_differentiable(kept)
    return torch.where(kept, log_e, 0.0), kept


def _tilt_sweep(ctx, za, zr, ka, kr, kept, grad_log_e, pair=None) -> tuple[Tensor, Tensor]:
    """The backward pass over the tiles: each tile's scores recomputed once, its weights dL/ds_ij from
    :func:`_backward_tile` (for ``grad_log_e``) plus, with ``pair``, the positives' -g_i sigmoid(log K E_i -
    s_ij) of :class:`_TiledLabelTerms`; ``grad_za += G zr / t``, ``grad_zr += G^T za / t``."""
    spec, beta, below = ctx.spec, ctx.beta, ctx.below
    top, z1, z2 = ctx.tilt
    c1, c2 = ctx.coef
    zero = grad_log_e.new_zeros(())
    g1 = torch.where(kept, grad_log_e * c1 / z1, zero)
    g2 = torch.where(kept, grad_log_e * c2 / z2, zero) if c2 else None
    g2b = g1 if g2 is None else g2  # unused by the tile when g2 is None
    step = tile_kernel("backward", _backward_tile)
    grad_za, grad_zr = _grad_buffers(za, zr, ctx.shared)
    for a0, a1 in _spans(za.shape[0], spec.tile):
        za_t = za[a0:a1] * spec.inv_t
        for r0, r1 in _spans(zr.shape[0], spec.tile):
            zr_t = zr[r0:r1]
            s = za_t @ zr_t.T
            rows = (ka[a0:a1], kr[r0:r1], top[a0:a1], g1[a0:a1], g2b[a0:a1])
            g = step(s, *rows, beta, _below_or_inf(below), g2 is not None)
            if pair is not None:
                pspec, log_ke, grad_loss = pair
                ok = _positive_mask(pspec.keys, pspec.pos_ok, pspec.positives, a0, a1, r0, r1, za.device)
                ok &= kept[a0:a1, None]
                g.sub_(torch.sigmoid(log_ke[a0:a1, None] - s).mul_(grad_loss[a0:a1, None]).masked_fill_(~ok, 0.0))
            grad_za[a0:a1].addmm_(g, zr_t, alpha=spec.inv_t)
            grad_zr[r0:r1].addmm_(g.T, za_t)
    return grad_za, grad_zr


class _TiledLogTiltedMean(torch.autograd.Function):
    """log E_i for None, ExponentialTilt(beta) and Threshold(tau), tile by tile (the math of
    :class:`hscl._engine._LogTiltedMean`, with online statistics). Outputs ``(log_e, weighted, s_pos)``,
    ``s_pos`` the view positives' scores of :func:`block_scores` with ``spec.blocks`` (else empty), whose
    gradient the backward adds into the same buffer as the tiles'."""

    @staticmethod
    def forward(ctx, za, zr, ka, kr, spec):  # type: ignore[override]
        log_e, kept = _tilt_setup(ctx, za, zr, ka, kr, spec)
        ctx.save_for_backward(za, zr, ka, kr, kept)
        s_pos = block_scores(za, spec.blocks, spec.inv_t) if spec.blocks else za.new_zeros(0)
        return log_e, kept, s_pos

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _, grad_pos):  # type: ignore[override]
        za, zr, ka, kr, kept = ctx.saved_tensors
        with _full_precision(za.device):
            grad_za, grad_zr = _tilt_sweep(ctx, za, zr, ka, kr, kept, grad)
            if ctx.spec.blocks:  # the positives' gradient, added in place: no second M x D buffer
                add_block_grad_(grad_za, za, grad_pos, ctx.spec.blocks, ctx.spec.inv_t)
            return grad_za, None if ctx.shared else grad_zr, None, None, None


class _TiledLabelTerms(torch.autograd.Function):
    """``(loss_sum, num_pos, weighted)`` for positives other than the block layout's views (label positives,
    or any positives of the generic layout) with a built-in hardening and no debiasing, in one function: the
    forward pass of :func:`_tilt_pass`, then a second pass for l_ip = logaddexp(s_ip, log K E_i) - s_ip that
    also sums dl/dlog E_i = sigmoid(log K E_i - s_ip) per anchor; the backward recomputes each tile once for
    both gradients (three tile products instead of six for :class:`_TiledLogTiltedMean` followed by
    :class:`_TiledPairTerms`)."""

    @staticmethod
    def forward(ctx, za, zr, ka, kr, spec, pspec):  # type: ignore[override]
        log_e, kept = _tilt_setup(ctx, za, zr, ka, kr, spec)
        c = za.shape[0]
        log_ke = pspec.log_k + log_e
        loss_sum, num_pos, dlog = za.new_zeros(c), za.new_zeros(c), za.new_zeros(c)
        for a0, a1 in _spans(c, spec.tile):
            za_t = za[a0:a1] * spec.inv_t
            for r0, r1 in _spans(zr.shape[0], spec.tile):
                pos = _positive_mask(pspec.keys, pspec.pos_ok, pspec.positives, a0, a1, r0, r1, za.device)
                counts = pos.sum(1, dtype=za.dtype)
                if not bool(counts.any()):
                    continue
                num_pos[a0:a1] += counts
                s = za_t @ zr[r0:r1].T
                ok = pos & kept[a0:a1, None]
                le = log_ke[a0:a1, None]
                loss_sum[a0:a1] += pair_losses(s, le, ok).sum(1)
                dlog[a0:a1] += torch.where(ok, torch.sigmoid(le - s), 0.0).sum(1)
        ctx.pspec = pspec
        ctx.save_for_backward(za, zr, ka, kr, kept, log_ke, dlog)
        ctx.mark_non_differentiable(num_pos)
        return loss_sum, num_pos, kept

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _, __):  # type: ignore[override]
        za, zr, ka, kr, kept, log_ke, dlog = ctx.saved_tensors
        with _full_precision(za.device):
            grad_za, grad_zr = _tilt_sweep(ctx, za, zr, ka, kr, kept, grad * dlog, pair=(ctx.pspec, log_ke, grad))
            return grad_za, None if ctx.shared else grad_zr, None, None, None, None


class _TiledUserLogTiltedMean(torch.autograd.Function):
    """log E_i = LSE(w + s) - LSE(w) over the candidates for a user hardening function, tile by tile: two
    online log-sum-exps; the backward recomputes each tile with autograd (through the user function) and
    weights it by the detached softmax coefficients. Outputs ``(log_e, weighted)``."""

    @staticmethod
    def forward(ctx, za, zr, ka, kr, spec):  # type: ignore[override]
        c = za.shape[0]
        m1, m2 = za.new_full((c,), -math.inf), za.new_full((c,), -math.inf)
        z1, z2 = za.new_zeros(c), za.new_zeros(c)
        for a0, a1 in _spans(c, spec.tile):
            za_t = za[a0:a1] * spec.inv_t
            for r0, r1 in _spans(zr.shape[0], spec.tile):
                s = za_t @ zr[r0:r1].T
                w = user_log_weights(spec.hardening, s)
                cand = (ka[a0:a1, None] != kr[None, r0:r1]) & (w > -math.inf)
                for top, total, v in ((m1, z1, w + s), (m2, z2, w)):
                    v = v.masked_fill(~cand, -math.inf)
                    m, zs = top[a0:a1], total[a0:a1]
                    new = torch.maximum(m, v.amax(1))
                    safe = torch.where(torch.isfinite(new), new, 0.0)
                    zs.mul_(torch.exp(m - safe)).add_(torch.exp(v - safe[:, None]).sum(1))
                    m.copy_(new)
        weighted = torch.isfinite(m2)
        lse1 = torch.where(weighted, m1 + z1.log(), 0.0)
        lse2 = torch.where(weighted, m2 + z2.log(), 0.0)
        ctx.spec, ctx.shared = spec, za is zr
        ctx.save_for_backward(za, zr, ka, kr, lse1, lse2, weighted)
        ctx.mark_non_differentiable(weighted)
        return torch.where(weighted, lse1 - lse2, 0.0), weighted

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _):  # type: ignore[override]
        za, zr, ka, kr, lse1, lse2, weighted = ctx.saved_tensors
        with _full_precision(za.device):
            spec = ctx.spec
            g = torch.where(weighted, grad, 0.0)
            grad_za, grad_zr = _grad_buffers(za, zr, ctx.shared)
            for a0, a1 in _spans(za.shape[0], spec.tile):
                for r0, r1 in _spans(zr.shape[0], spec.tile):
                    with torch.enable_grad():
                        xa = za[a0:a1].detach().requires_grad_(True)
                        xr = zr[r0:r1].detach().requires_grad_(True)
                        s = (xa * spec.inv_t) @ xr.T
                        w = user_log_weights(spec.hardening, s)
                        if spec.detach_weights:
                            w = w.detach()
                        with torch.no_grad():
                            cand = (ka[a0:a1, None] != kr[None, r0:r1]) & (w > -math.inf)
                            ga = g[a0:a1, None]
                            p1 = torch.exp((w + s).masked_fill(~cand, -math.inf) - lse1[a0:a1, None]) * ga
                            p2 = torch.exp(w.masked_fill(~cand, -math.inf) - lse2[a0:a1, None]) * ga
                        w0 = torch.where(cand, w, 0.0)
                        objective = (p1 * (w0 + s)).sum() - (p2 * w0).sum()
                        da, dr = torch.autograd.grad(objective, (xa, xr), allow_unused=True)
                    if da is not None:
                        grad_za[a0:a1] += da
                    if dr is not None:
                        grad_zr[r0:r1] += dr
            return grad_za, None if ctx.shared else grad_zr, None, None, None


def log_tilted_mean(
    za: Tensor,
    zr: Tensor,
    ka: Tensor,
    kr: Tensor,
    hardening,
    *,
    inv_t: float,
    detach_weights: bool,
    tile: int,
    blocks: int | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """log E_i of the anchors ``za`` [c, D] over the reference ``zr`` [R, D], the candidates of anchor i being
    the columns j with ``kr[j] != ka[i]`` (and, for a threshold, s_ij >= log tau); ``(log_e, weighted, s_pos)``,
    ``s_pos`` the view positives' scores of :func:`block_scores` when ``blocks`` (V) is given, else ``None``."""
    spec = _Spec(hardening, inv_t, tile, detach_weights, blocks)
    if _builtin(hardening):
        if not use_triton(za, zr):
            log_e, weighted, s_pos = _TiledLogTiltedMean.apply(za, zr, ka, kr, spec)
            return log_e, weighted, s_pos if blocks else None
        from . import _triton  # the Triton kernels (CUDA, or HSCL_TRITON=force); triton is imported only here

        log_e, weighted = _triton.log_tilted_mean(za, zr, ka, kr, hardening, inv_t=inv_t, detach_weights=detach_weights)
    else:
        if isinstance(hardening, torch.nn.Module) and any(p.requires_grad for p in hardening.parameters()):
            raise ValueError(
                "backend='tiled' gives no gradient to the parameters of a hardening module; "
                "use backend='dense' for a learnable hardening function"
            )
        log_e, weighted = _TiledUserLogTiltedMean.apply(za, zr, ka, kr, spec)
    return log_e, weighted, _BlockPositives.apply(za, blocks, inv_t) if blocks else None


class Keys(NamedTuple):
    """The key vectors of one call, anchors then reference: labels (``None`` without), instance keys (the
    instance ids, or position // V in the block layout), and the positions of the anchors in the reference."""

    ya: Tensor | None
    yr: Tensor | None
    ua: Tensor
    ur: Tensor
    ia: Tensor


def _pair_tile(za_t, zr_t, log_e_t, weighted_t, span, spec) -> Tensor:
    """Sum over the positives of each row of one tile of l_ip = logaddexp(s_ip, log K E_i) - s_ip (the
    positive mask is rebuilt here from the key vectors)."""
    pos = _positive_mask(spec.keys, spec.pos_ok, spec.positives, *span, za_t.device)
    s = (za_t * spec.inv_t) @ zr_t.T
    log_e = log_e_t[:, None]
    if spec.debias > 0:
        log_ke = log_debiased(spec.log_k, log_e, s, spec.debias, spec.inv_t)
    else:
        log_ke = spec.log_k + log_e
    return pair_losses(s, log_ke, pos & weighted_t[:, None]).sum(1)


def _positive_mask(keys: Keys, pos_ok, positives, a0, a1, r0, r1, device) -> Tensor:
    pa, pr = (keys.ua, keys.ur) if positives == "views" else (keys.ya, keys.yr)
    cols = torch.arange(r0, r1, device=device)
    pos = (pa[a0:a1, None] == pr[None, r0:r1]) & (keys.ia[a0:a1, None] != cols[None, :])
    if pos_ok is not None:
        pos &= pos_ok[None, r0:r1]
    return pos


class _PairSpec(NamedTuple):
    keys: Keys
    pos_ok: Tensor | None
    positives: str
    inv_t: float
    log_k: float
    debias: float
    tile: int


class _TiledPairTerms(torch.autograd.Function):
    """``(loss_sum, num_pos)``: per anchor, the sum over its positives of l_ip and their number, tile by tile
    (a second pass after log E_i). The backward recomputes each tile with autograd on it (through
    :func:`_pair_tile`), so that memory stays O(tile^2) beside the inputs."""

    @staticmethod
    def forward(ctx, za, zr, log_e, weighted, spec):  # type: ignore[override]
        c = za.shape[0]
        loss_sum, num_pos = za.new_zeros(c), za.new_zeros(c)
        for span in _tile_spans(c, zr.shape[0], spec.tile):
            a0, a1 = span[:2]
            counts = _positive_mask(spec.keys, spec.pos_ok, spec.positives, *span, za.device).to(za.dtype).sum(1)
            if bool(counts.any()):
                num_pos[a0:a1] += counts
                loss_sum[a0:a1] += _pair_tile(
                    za[a0:a1], zr[span[2] : span[3]], log_e[a0:a1], weighted[a0:a1], span, spec
                )
        ctx.spec, ctx.shared = spec, za is zr
        ctx.save_for_backward(za, zr, log_e, weighted)
        ctx.mark_non_differentiable(num_pos)
        return loss_sum, num_pos

    @staticmethod
    @once_differentiable
    def backward(ctx, grad, _):  # type: ignore[override]
        za, zr, log_e, weighted = ctx.saved_tensors
        with _full_precision(za.device):
            spec = ctx.spec
            grad_za, grad_zr = _grad_buffers(za, zr, ctx.shared)
            grad_log_e = torch.zeros_like(log_e)
            for span in _tile_spans(za.shape[0], zr.shape[0], spec.tile):
                a0, a1, r0, r1 = span
                if not bool(_positive_mask(spec.keys, spec.pos_ok, spec.positives, *span, za.device).any()):
                    continue
                with torch.enable_grad():
                    xa = za[a0:a1].detach().requires_grad_(True)
                    xr = zr[r0:r1].detach().requires_grad_(True)
                    le = log_e[a0:a1].detach().requires_grad_(True)
                    out = _pair_tile(xa, xr, le, weighted[a0:a1], span, spec)
                    da, dr, dl = torch.autograd.grad((out * grad[a0:a1]).sum(), (xa, xr, le))
                grad_za[a0:a1] += da
                grad_zr[r0:r1] += dr
                grad_log_e[a0:a1] += dl
            return grad_za, None if ctx.shared else grad_zr, grad_log_e, None, None


def block_scores(za: Tensor, blocks: int, inv_t: float) -> Tensor:
    """The view positives' scores s_ip [c, V-1] of anchors in the block layout (samples of V consecutive
    views; a view's positives are the other views of its sample, in order), from the per-sample V x V Gram
    matrices: no gathered M x D copy of the partners."""
    views = za.reshape(za.shape[0] // blocks, blocks, za.shape[1])
    gram = torch.bmm(views, views.transpose(1, 2)) * inv_t
    return gram[:, ~torch.eye(blocks, dtype=torch.bool, device=za.device)].reshape(za.shape[0], blocks - 1)


def add_block_grad_(out: Tensor, za: Tensor, grad: Tensor, blocks: int, inv_t: float) -> Tensor:
    """Add the gradient of :func:`block_scores` (``grad`` [c, V-1]) with respect to ``za`` into ``out``
    [c, D], in place: (G + G^T) V / t per sample, one batched matmul into ``out``."""
    b = za.shape[0] // blocks
    g = grad.new_zeros(b, blocks, blocks)
    g[:, ~torch.eye(blocks, dtype=torch.bool, device=za.device)] = grad.reshape(b, blocks * (blocks - 1))
    views = za.reshape(b, blocks, za.shape[1])
    out.view(b, blocks, za.shape[1]).baddbmm_(g + g.transpose(1, 2), views, alpha=inv_t)
    return out


class _BlockPositives(torch.autograd.Function):
    """:func:`block_scores` with only the anchors kept for the backward pass (the Triton and user-hardening
    paths; the built-in tiled path computes the scores inside :class:`_TiledLogTiltedMean`)."""

    @staticmethod
    def forward(ctx, za, blocks: int, inv_t: float):  # type: ignore[override]
        ctx.save_for_backward(za)
        ctx.blocks, ctx.inv_t = blocks, inv_t
        return block_scores(za, blocks, inv_t)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        (za,) = ctx.saved_tensors
        return add_block_grad_(torch.zeros_like(za), za, grad, ctx.blocks, ctx.inv_t), None, None


def _tile_spans(c: int, r: int, tile: int):
    return [(a0, a1, r0, r1) for a0, a1 in _spans(c, tile) for r0, r1 in _spans(r, tile)]


def terms(
    za: Tensor,
    zr: Tensor,
    keys: Keys,
    pos_ok: Tensor | None,
    *,
    blocks: int | None,
    negatives: str,
    positives: str,
    hardening,
    inv_t: float,
    log_k: float,
    debias: float,
    detach_weights: bool,
    want_stats: bool,
    tile: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """The per-anchor ``(loss_sum, num_pos, valid, stats)`` of :func:`hscl._engine.terms`, tiled.

    ``keys.ua`` / ``keys.ur`` are compared to find instances (with ``blocks = V``: position // V); the
    excluded entries are those of equal label (``negatives="other_class"``) or equal instance key."""
    c = za.shape[0]
    ka, kr = (keys.ya, keys.yr) if negatives == "other_class" else (keys.ua, keys.ur)
    view_blocks = blocks if blocks and positives == "views" else None
    pair_spec = _PairSpec(keys, pos_ok, positives, inv_t, log_k, debias, tile)
    if not view_blocks and debias == 0 and _builtin(hardening) and not use_triton(za, zr):
        spec = _Spec(hardening, inv_t, tile, detach_weights)
        loss_sum, num_pos, weighted = _TiledLabelTerms.apply(za, zr, ka, kr, spec, pair_spec)
    else:
        log_e, weighted, s_pos = log_tilted_mean(
            za, zr, ka, kr, hardening, inv_t=inv_t, detach_weights=detach_weights, tile=tile, blocks=view_blocks
        )
        if view_blocks:
            log_ke = log_k + log_e[:, None]
            if debias > 0:
                log_ke = log_debiased(log_k, log_e[:, None], s_pos, debias, inv_t)
            loss_sum = pair_losses(s_pos, log_ke, weighted[:, None]).sum(1)
            num_pos = za.new_full((c,), float(blocks - 1))
        else:
            loss_sum, num_pos = _TiledPairTerms.apply(za, zr, log_e, weighted, pair_spec)
    valid = (num_pos > 0) & weighted

    stats = None
    if want_stats:
        with torch.no_grad():
            stats = _stats(za.detach(), zr.detach(), keys, pos_ok, valid, ka, kr, positives, hardening, inv_t, tile)
    return loss_sum, num_pos, valid, stats


def _stats(za, zr, keys: Keys, pos_ok, valid, ka, kr, positives, hardening, inv_t, tile) -> Tensor:
    """The [7] float64 partial sums of :func:`hscl._engine._chunk_stats`, tile by tile (the effective number of
    negatives by an online entropy: running max m, Z = sum e^{w - m} and A = sum e^{w - m} (w - m))."""
    f64, c, dev = torch.float64, za.shape[0], za.device
    acc = torch.zeros(7, dtype=f64, device=dev)
    for a0, a1 in _spans(c, tile):
        za_t = za[a0:a1] * inv_t
        ok = valid[a0:a1, None]
        m = za.new_full((a1 - a0,), -math.inf)
        zs, ent = za.new_zeros(a1 - a0), za.new_zeros(a1 - a0)
        for r0, r1 in _spans(zr.shape[0], tile):
            s = za_t @ zr[r0:r1].T
            pos = _positive_mask(keys, pos_ok, positives, a0, a1, r0, r1, dev) & ok
            excluded = ka[a0:a1, None] == kr[None, r0:r1]
            neg = ~excluded & ok
            lw = log_weights(hardening, s).masked_fill(excluded, -math.inf)
            new = torch.maximum(m, lw.amax(1))
            safe = torch.where(torch.isfinite(new), new, 0.0)
            d = torch.where(torch.isfinite(m), m - safe, 0.0)
            x = lw - safe[:, None]
            e = torch.exp(x)
            ent.mul_(torch.exp(d)).add_(torch.exp(d) * d * zs).add_((e * torch.where(e > 0, x, 0.0)).sum(1))
            zs.mul_(torch.exp(d)).add_(e.sum(1))
            m.copy_(new)
            if keys.ya is not None:
                other = keys.ua[a0:a1, None] != keys.ur[None, r0:r1]
                coll = (other & (keys.ya[a0:a1, None] == keys.yr[None, r0:r1])).sum()
                n_other = other.sum()
            else:
                coll = n_other = 0
            acc += torch.stack(
                [
                    torch.as_tensor(v, device=dev).to(f64)
                    for v in (
                        s.masked_fill(~pos, 0.0).to(f64).sum(),
                        pos.sum(),
                        s.masked_fill(~neg, 0.0).sum(1).to(f64).sum(),
                        neg.sum(),
                        0.0,
                        coll,
                        n_other,
                    )
                ]
            )
        eff = torch.exp(zs.log() - ent / zs).to(f64)
        acc[4] += eff[valid[a0:a1]].sum()
    return acc


def supcon_terms(
    x: Tensor, y: Tensor, offset: int, xr: Tensor, yr: Tensor, temperature: float, *, tile: int
) -> tuple[Tensor, Tensor]:
    """SupCon's per-anchor l_i (0 where P_L(i) is empty) and validity, tiled: the denominator
    LSE_{j != i} s_ij by the online log-sum-exp, sum_{p in P_L(i)} s_ip from the per-class sums of ``xr``."""
    m, total, dev = x.shape[0], xr.shape[0], x.device
    ia = torch.arange(offset, offset + m, device=dev)
    log_e, _, _ = log_tilted_mean(
        x, xr, ia, torch.arange(total, device=dev), None, inv_t=1.0 / temperature, detach_weights=False, tile=tile
    )
    log_den = log_e + math.log(total - 1) if total > 1 else torch.zeros_like(log_e)
    classes, inverse = torch.unique(torch.cat([yr, y]), return_inverse=True)
    sums = xr.new_zeros(classes.shape[0], xr.shape[1]).index_add(0, inverse[:total], xr)
    counts = torch.bincount(inverse[:total], minlength=classes.shape[0])
    mine = inverse[total:]
    num_pos = counts[mine] - 1
    valid = num_pos > 0
    pos_sum = (x * (sums[mine] - xr[ia])).sum(1) / temperature
    per_anchor = log_den - pos_sum / num_pos.clamp_min(1)
    return per_anchor.masked_fill(~valid, 0.0), valid


class _SetSums:
    """Per anchor row, two online log-sum-exps: over the *collision* entries of a tile (the mask kind "keep when
    equal": same label, other instance) and over the other candidates, each with its own running max."""

    def __init__(self, rows: int, like: Tensor):
        self.tops = [like.new_full((rows,), -math.inf), like.new_full((rows,), -math.inf)]
        self.sums = [like.new_zeros(rows), like.new_zeros(rows)]

    def update(self, v: Tensor, coll: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Add the tile ``v`` (-inf off the candidates); ``(x, e, rescale)``: x = v - its set's new max (-inf
        off the candidates), e = exp(x) (0 there), and per set the factor exp(old max - new max) applied."""
        rescale, safes = [], []
        for k, top in enumerate(self.tops):
            part = v.masked_fill(~coll if k == 0 else coll, -math.inf)
            new = torch.maximum(top, part.amax(1))
            safe = torch.where(torch.isfinite(new), new, 0.0)
            rescale.append(torch.exp(top - safe))  # 0 while the set had no entry (its sum is 0)
            safes.append(safe)
            top.copy_(new)
        x = v - torch.where(coll, safes[0][:, None], safes[1][:, None])
        e = torch.exp(x)
        for k, total in enumerate(self.sums):
            total.mul_(rescale[k]).add_(torch.where(coll if k == 0 else ~coll, e, 0.0).sum(1))
        return x, e, rescale

    def logs(self) -> tuple[Tensor, Tensor]:
        """log of each set's sum of e^{v}: ``max + log(sum)`` (-inf for a set without entries)."""
        return tuple(
            torch.where(total > 0, top + total.log(), -math.inf)
            for top, total in zip(self.tops, self.sums, strict=True)
        )


@torch.no_grad()
def reference_log_means(x: Tensor, y: Tensor, hardening, *, inv_t: float, tile: int) -> dict[str, Tensor]:
    """The log tilted means of :mod:`hscl.diagnostics.asymptotic` for every row of ``x`` [2B, D] (view v of
    sample b at row 2b + v) with all of ``x`` as reference set, tile by tile, in one pass over the scores.

    Each tile splits the other-instance candidates U(i) (instance key row // 2) into the collision set C(i)
    (same label: kept when the labels are equal) and D(i) (other label); per set and anchor only online
    statistics are kept, so memory is O(N D + tile^2). Returns ``log_e_ucl``, ``log_e_hucl`` (over U),
    ``log_e_scl``, ``log_e_hscl`` (over D), ``log_e_c`` (hardened, over C), ``weighted_d``, ``weighted_c``
    (whether D(i), C(i) carry weight); a mean over a set without weight is 0, as on the dense path."""
    n, dev = x.shape[0], x.device
    u = torch.arange(n, device=dev) // 2
    _, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    beta = hardening.beta if isinstance(hardening, ExponentialTilt) and hardening.beta > 0 else None
    below = _threshold_below(hardening, x.dtype)
    user = not isinstance(hardening, (ExponentialTilt, Threshold))
    parts: dict[str, list[Tensor]] = {}
    for a0, a1 in _spans(n, tile):
        c, xa = a1 - a0, x[a0:a1] * inv_t
        base, num, den = _SetSums(c, x), _SetSums(c, x), _SetSums(c, x)  # num, den: user hardening only
        h1, h2 = [x.new_zeros(c), x.new_zeros(c)], [x.new_zeros(c), x.new_zeros(c)]  # built-in hardening
        for r0, r1 in _spans(n, tile):
            s = xa @ x[r0:r1].T
            other = u[a0:a1, None] != u[None, r0:r1]
            coll = other & (y[a0:a1, None] == y[None, r0:r1])
            xs, e, rescale = base.update(s.masked_fill(~other, -math.inf), coll)
            if user:
                w = user_log_weights(hardening, s)
                off = ~other | (w == -math.inf)
                num.update((w + s).masked_fill(off, -math.inf), coll)
                den.update(w.masked_fill(off, -math.inf), coll)
                continue
            if beta is not None:  # weights e^{beta (s - max)}: numerator e^{(1 + beta)(s - max)}
                q2 = torch.exp(beta * xs)
                q1, r1s, r2s = e * q2, [r ** (1 + beta) for r in rescale], [r**beta for r in rescale]
            else:  # threshold or beta = 0: weights 0 or 1, the denominator a count
                keep = (other if below is None else (s > below) & other).to(x.dtype)
                q1, q2, r1s, r2s = e * keep, keep, rescale, [None, None]
            for k, mask in enumerate((coll, ~coll)):
                h1[k].mul_(r1s[k]).add_(torch.where(mask, q1, 0.0).sum(1))
                if r2s[k] is not None:
                    h2[k].mul_(r2s[k])
                h2[k].add_(torch.where(mask, q2, 0.0).sum(1))
        lc, ld = base.logs()
        n_d = (n - counts[inverse[a0:a1]]).to(x.dtype)
        if user:
            (n1c, n1d), (n2c, n2d) = num.logs(), den.logs()
        else:
            s1 = 1.0 + beta if beta is not None else 1.0
            log = [torch.where(h > 0, h.log(), -math.inf) for h in (*h1, *h2)]
            n1c, n1d = s1 * base.tops[0] + log[0], s1 * base.tops[1] + log[1]
            if beta is not None:
                n2c, n2d = beta * base.tops[0] + log[2], beta * base.tops[1] + log[3]
            else:  # counts
                n2c, n2d = log[2], log[3]
        weighted_c, weighted_d = n2c > -math.inf, n2d > -math.inf
        weighted_u = weighted_c | weighted_d
        found = {
            "log_e_ucl": (torch.logaddexp(lc, ld) - math.log(max(n - 2, 1)), torch.full_like(weighted_c, n > 2)),
            "log_e_hucl": (torch.logaddexp(n1c, n1d) - torch.logaddexp(n2c, n2d), weighted_u),
            "log_e_scl": (ld - n_d.clamp_min(1).log(), n_d > 0),
            "log_e_hscl": (n1d - n2d, weighted_d),
            "log_e_c": (n1c - n2c, weighted_c),
        }
        for key, (value, ok) in found.items():
            parts.setdefault(key, []).append(torch.where(ok, value, 0.0))
        parts.setdefault("weighted_d", []).append(weighted_d)
        parts.setdefault("weighted_c", []).append(weighted_c)
    return {k: torch.cat(v) for k, v in parts.items()}
