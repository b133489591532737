r"""The loss engine: the stages that every loss of hscl runs, in one place (private).

:mod:`hscl.functional` (``contrastive_loss``, ``supcon_loss``), the modules of :mod:`hscl.losses`
(``ContrastiveLoss`` and its presets, ``SupConLoss``) and :mod:`hscl.diagnostics.asymptotic` are thin callers of
these stages, the way torchmetrics' functional and modular metrics share ``_update`` and ``_compute``:

1. :func:`prepare`: validate ``z`` and its ids, then embed (flatten ``[B, V, D]`` to ``[B*V, D]`` in the compute
   dtype, L2-normalised at any scale) with the labels and instance ids per embedding; :func:`log_scale` is
   the scale K (its default, M - V plus the queue, is defined here only) and :func:`block_layout` the
   reference layout.
2. :func:`terms` (the contrastive family, by anchor chunks) or :func:`supcon_terms`: per-anchor positive and
   negative terms, against a reference set (the batch, the global batch, plus a queue); the negative term is
   :func:`log_tilted_mean`. :func:`check_backend` and :func:`resolve_backend` choose the dense path (here) or
   the tiled one (:mod:`hscl._tiled`, no [M, R] tensor).
3. :func:`reduce`: the ``mean`` / ``pairs`` / ``none`` reduction, the data-parallel global mean and the warning
   when no anchor is valid; :func:`loss_stats` the fields of :class:`hscl.functional.LossStats`.

The math (and its notation) is documented where users read it: :mod:`hscl.functional` and docs/math.md.
Hardening options travel by name (``hardening=``, ``negatives=``, ...), never as ``**options``.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from . import _tiled
from . import _validation as check
from . import distributed as D
from .hardening import ExponentialTilt, Threshold

# Tests set this (here, and only here) to run every call through the instance-id comparison path instead of
# the block layout; read by :func:`block_layout` only.
_GENERIC_LAYOUT = False
# Tests set this (here, and only here) to make ``backend="auto"`` pick the tiled path at every size (unless
# ``chunk_size`` is given); read by :func:`resolve_backend` only.
_AUTO_TILED = False

#: The loss backends: ``"dense"`` forms the [M, R] score matrix (by anchor chunks with ``chunk_size``),
#: ``"tiled"`` only (tile x tile) blocks of it (:mod:`hscl._tiled`), ``"auto"`` picks by size.
BACKENDS = ("auto", "dense", "tiled")
#: ``backend="auto"`` stays dense while the score matrix holds at most this many entries (M * R).
AUTO_DENSE_MAX_SCORES = 1 << 24  # M = 4096; see README's API section for the measurements behind it


class Terms(NamedTuple):
    """Per-anchor terms of one call (anchors in reference order)."""

    loss_sum: Tensor  # [c] sum over P(i) of l_ip (0 for invalid anchors); SupCon: l_i itself
    num_pos: Tensor | None  # [c] |P(i)| as a float; None when loss_sum is already the per-anchor mean
    valid: Tensor  # [c] bool
    stats: Tensor | None  # [7] float64 partial sums (see _chunk_stats)


class Batch(NamedTuple):
    """A prepared batch: ``x`` ``[B*V, D]`` in the compute dtype, labels ``y`` and instance ids ``u`` per
    embedding (``None`` when not given), and the batch's ``b`` samples of ``v`` views."""

    x: Tensor
    y: Tensor | None
    u: Tensor | None
    b: int
    v: int


# ---------------------------------------------------------------------------------------------------- prepare


@contextmanager
def full_precision(device: torch.device):
    """Disable autocast: the loss is computed in the dtype chosen by ``compute_dtype``."""
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # pragma: no cover - devices without autocast
        yield


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _power_of_two_scale(x: Tensor) -> Tensor:
    """Per row of ``x``, the power of two 2^k with 1 <= max_d |x_d| / 2^k < 2 (1 for a zero row)."""
    with torch.no_grad():
        top = x.abs().amax(1, keepdim=True)
        mantissa, _ = torch.frexp(top)  # top = mantissa * 2^e, mantissa in [0.5, 1): 2^(e-1) = top / (2 mantissa)
        return torch.where(top > 0, top / (2 * mantissa), 1.0)


def _normalize_rows(x: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(y / n, |y|, n)`` with y = x / scale and n = max(|y|, 0.5): the norm is >= 1 unless y = 0."""
    y = x / scale
    norm = torch.linalg.vector_norm(y, dim=1, keepdim=True)
    n = norm.clamp_min(0.5)
    return y / n, norm, n


class _L2Normalize(torch.autograd.Function):
    """:func:`l2_normalize` keeping only x, its output and three row vectors for the backward pass, which
    computes autograd's gradient of the same operations, operation for operation (the same bits), with at most
    two [N, D] temporaries at a time (autograd's composite keeps y = x / 2^k as well and makes four). Under
    ``create_graph`` the backward differentiates the composite itself, so second derivatives still work."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        scale = _power_of_two_scale(x)
        out, norm, n = _normalize_rows(x, scale)
        ctx.save_for_backward(x, scale, norm, n, out)
        return out

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, scale, norm, n, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # a double backward: the composite's own, differentiable gradient
            return torch.autograd.grad(_normalize_rows(x, scale)[0], x, g, create_graph=True)[0]
        # out = y / n: d/dn = -g (y / n) / n summed over the row (y / n is `out`, the same bits), then
        # clamp_min's mask, then d|y|/dy = y / |y| (0 where |y| = 0) times that, plus g / n; finally / scale.
        grad_n = (out / n).mul_(g).sum(1, keepdim=True).neg_()
        grad_norm = torch.where(norm >= 0.5, grad_n, 0.0)
        grad_y = (x / scale).div_(norm).masked_fill_(norm == 0, 0.0).mul_(grad_norm)
        return grad_y.add_(g / n).div_(scale)


def l2_normalize(x: Tensor) -> Tensor:
    """The rows of ``x`` (``[N, D]``) divided by their L2 norm, at every finite scale: hscl's one normalisation.

    Each row is first divided by 2^k, the power of two with 1 <= max_d |x_d| / 2^k < 2, so that the sum of
    squares can neither overflow nor underflow: ``x`` and ``c * x`` give the same rows for every c > 0 that
    keeps them finite (``F.normalize`` returns 0 below a norm of 1e-12 and overflows above about 1e19 in
    float32). Dividing by a power of two is exact, so wherever ``F.normalize`` is exact this gives the same
    bits, values and gradients. The factor is detached: x / |x| does not depend on the scale of x, so the
    gradient is unchanged. A zero row stays zero (the losses refuse zero rows before they get here). The
    backward pass keeps one [N, D] copy (the output) instead of two (:class:`_L2Normalize`).
    """
    return _L2Normalize.apply(x)


def embed(z: Tensor, normalize: bool) -> Tensor:
    """Flatten ``[B, V, D]`` to ``[B*V, D]`` in the compute dtype, L2-normalised (scale-safely) if asked."""
    x = z.reshape(-1, z.shape[-1]).to(compute_dtype(z.dtype))
    return l2_normalize(x) if normalize else x


def prepare(
    z: Tensor,
    labels: Tensor | None = None,
    *,
    positives: str,
    normalize: bool,
    temperature: float,
    labels_required_by: str | None,
    instance_ids: Tensor | None = None,
    num_views: int | None = None,
) -> Batch:
    """Validate ``z`` (``[B, V, D]``), ``labels`` and ``instance_ids`` (``[B]``; labels required when
    ``labels_required_by`` names who needs them; exactly ``num_views`` views when given), then embed.

    The options themselves (``temperature`` included) are checked by the caller, once (at construction for
    the modules)."""
    check.check_embeddings(z, positives=positives, normalize=normalize, temperature=temperature)
    b, v, _ = z.shape
    if num_views is not None and v != num_views:
        raise ValueError(
            f"z must hold exactly {num_views} views per sample (one positive per anchor), got shape {tuple(z.shape)}"
        )
    check.check_ids("labels", labels, batch=b, device=z.device, required_by=labels_required_by)
    check.check_ids("instance_ids", instance_ids, batch=b, device=z.device)
    with full_precision(z.device):
        x = embed(z, normalize)
    y = None if labels is None else labels.long().repeat_interleave(v)
    u = None if instance_ids is None else instance_ids.long().repeat_interleave(v)
    return Batch(x, y, u, b, v)


def check_backend(backend, tile_size, chunk_size: int | None) -> tuple[str, int]:
    """Validate ``backend`` (one of :data:`BACKENDS`) and ``tile_size`` (a count, default
    :data:`hscl._tiled.DEFAULT_TILE`); ``chunk_size`` belongs to the dense path and is refused with "tiled"."""
    backend = check.check_choice("backend", backend, BACKENDS)
    tile = check.check_optional_count("tile_size", tile_size)
    if backend == "tiled" and chunk_size is not None:
        raise ValueError("chunk_size applies to backend='dense' only; backend='tiled' takes tile_size instead")
    return backend, _tiled.DEFAULT_TILE if tile is None else tile


def resolve_backend(backend: str, *, rows: int, cols: int, chunk_size: int | None) -> str:
    """The path a call takes: ``"auto"`` is ``"dense"`` when ``chunk_size`` is given or the score matrix has
    at most :data:`AUTO_DENSE_MAX_SCORES` entries (``rows * cols``), else ``"tiled"`` (on every device)."""
    if backend != "auto":
        return backend
    if chunk_size is not None:
        return "dense"
    return "tiled" if _AUTO_TILED or rows * cols > AUTO_DENSE_MAX_SCORES else "dense"


def log_scale(num_negatives: float | None, *, num_embeddings: int, views: int, queued: int = 0) -> float:
    """log K: ``num_negatives`` if given, else the default K = M - V + (queue length), at least 1."""
    k = num_negatives if num_negatives is not None else max(num_embeddings - views + queued, 1)
    return math.log(k)


def block_layout(
    v: int, *, ids: Tensor | None = None, queue_ids: Tensor | None = None, queue_positives: bool = False
) -> int | None:
    """``v`` when the reference set has the block layout of :func:`terms` (``blocks=v``), else ``None``.

    ``ids`` are the instance ids of the (global) batch per embedding, ``None`` for fresh ids (every sample of
    every call a new instance, never in the queue); ``queue_ids`` those of the queued entries, if any."""
    queued = queue_ids is not None and queue_ids.numel() > 0
    if _GENERIC_LAYOUT or (queued and queue_positives):
        return None
    if ids is None:
        return v
    samples = ids[::v]
    if torch.unique(samples).numel() != samples.numel():
        return None
    if queued and bool(torch.isin(queue_ids, samples).any()):
        return None
    return v


# ------------------------------------------------------------------------------------------------------ terms


class _LogTiltedMean(torch.autograd.Function):
    """log E_i for the built-in hardenings, fused: values and an analytic gradient without keeping the
    intermediates of two autograd log-sum-exps.

    ``masked`` holds the scores with every entry outside the weighted candidates set to -inf (it is owned
    and overwritten). With x = s - max_j s over the kept entries of row i:

    * beta > 0 (exponential tilt):  log E_i = max + log sum e^{(1+beta) x} - log sum e^{beta x}
      d log E_i / d s_ij = (1+beta) p1_ij - beta p2_ij  (p1, p2 the two softmaxes; p1 alone with
      ``detach_weights``, whose weights carry no gradient).
    * beta = 0 (no hardening, or a threshold's 0/-inf weights): log E_i = max + log sum e^{x} - log |kept|
      d log E_i / d s_ij = p1_ij.

    Rows without a kept entry return 0 and get a zero gradient (the caller leaves those anchors out).
    """

    @staticmethod
    def forward(ctx, scores, masked, beta, detach_weights, log_count):  # type: ignore[override]
        top = masked.amax(1, keepdim=True)
        kept = torch.isfinite(top.squeeze(1))
        top = torch.where(kept[:, None], top, 0.0)
        x = masked.sub_(top)
        if beta > 0:
            p2 = torch.mul(x, beta).exp_()
            p1 = x.exp_().mul_(p2)  # e^{x} e^{beta x} = e^{(1+beta) x}
            z1, z2 = p1.sum(1), p2.sum(1)
            log_e = top.squeeze(1) + z1.log() - z2.log()
            ctx.coef = (1.0, 0.0) if detach_weights else (1.0 + beta, beta)
        else:
            p1, p2 = x.exp_(), None
            z1, z2 = p1.sum(1), None
            log_e = top.squeeze(1) + z1.log() - log_count
            ctx.coef = (1.0, 0.0)
        ctx.save_for_backward(p1, p2, z1, z2, kept)
        return torch.where(kept, log_e, 0.0)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        p1, p2, z1, z2, kept = ctx.saved_tensors
        c1, c2 = ctx.coef
        zero = grad.new_zeros(())
        grad_scores = p1 * torch.where(kept, grad * c1 / z1, zero)[:, None]
        if c2:
            grad_scores.addcmul_(p2, torch.where(kept, grad * c2 / z2, zero)[:, None], value=-1.0)
        return grad_scores, None, None, None, None


def log_tilted_mean(
    scores: Tensor,
    exclude: Tensor,
    hardening=None,
    *,
    detach_weights: bool = False,
    num_candidates: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """log E_i over the negative candidates: :func:`hscl.functional.log_tilted_mean` (documented there)."""
    r = scores.shape[1]
    is_mask = exclude.dtype == torch.bool
    if hardening is None or isinstance(hardening, (ExponentialTilt, Threshold)):
        if is_mask:
            masked = torch.where(exclude, -math.inf, scores.detach())
        else:
            masked = scores.detach().clone().scatter_(1, exclude, -math.inf)
        if isinstance(hardening, Threshold):
            # keep s >= log tau: F.threshold keeps x > t, so t is the next float below log tau
            masked = F.threshold(masked, hardening.cut(scores.dtype), -math.inf, inplace=True)
            num_candidates = torch.isfinite(masked).to(scores.dtype).sum(1)  # a float sum: far faster than bool
        elif num_candidates is None:
            num_candidates = r - (exclude.to(scores.dtype).sum(1) if is_mask else exclude.shape[1])
        beta = hardening.beta if isinstance(hardening, ExponentialTilt) else 0.0
        log_count = torch.as_tensor(num_candidates, device=scores.device).clamp_min(1).to(scores.dtype).log()
        log_e = _LogTiltedMean.apply(scores, masked, beta, detach_weights, log_count)
        return log_e, num_candidates > 0
    logw = _tiled.user_log_weights(hardening, scores)
    cand = ~_as_mask(exclude, scores.shape) & (logw > -math.inf)
    weighted = cand.to(scores.dtype).sum(1) > 0
    # Rows without candidates are left unmasked so that every log-sum-exp (and its gradient) stays finite.
    fill = ~cand & weighted[:, None]
    if detach_weights:
        logw = logw.detach()
    logw = torch.where(weighted[:, None], logw, 0.0)
    log_e = torch.logsumexp((logw + scores).masked_fill(fill, -math.inf), 1) - torch.logsumexp(
        logw.masked_fill(fill, -math.inf), 1
    )
    return torch.where(weighted, log_e, 0.0), weighted


def _chunk_terms(
    za: Tensor,
    ua: Tensor,
    ya: Tensor | None,
    ia: Tensor,
    zr: Tensor,
    ur: Tensor,
    yr: Tensor | None,
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
) -> Terms:
    """Loss terms of anchors ``za`` (positions ``ia`` in the reference set) against the reference ``zr``.

    ``blocks = V`` declares the common layout, which needs no [c, R] instance mask: the reference starts with
    the batch, sample-major with V views per sample and one sample per instance id; the rest (a queue) shares
    no instance id with the batch and holds no positive. The same-instance set of the anchor at reference
    position a is then the V columns (a // V) * V + [0, V). ``blocks=None`` compares instance ids.
    """
    scores = (za * inv_t) @ zr.T  # s_ij, [c, R]
    c, r = scores.shape
    rows = torch.arange(c, device=za.device)
    cols = torch.arange(r, device=za.device)
    same_label = ya[:, None] == yr[None, :] if ya is not None else None
    if blocks:
        same_instance = None
        block = (ia // blocks)[:, None] * blocks + torch.arange(blocks, device=za.device)  # [c, V]
    else:
        same_instance, block = ua[:, None] == ur[None, :], None

    # Positive pairs (pi, pj) and |P(i)|.
    if blocks and positives == "views":
        others = block[block != ia[:, None]].reshape(c, blocks - 1)
        pi, pj = rows.repeat_interleave(blocks - 1), others.reshape(-1)
        num_pos = torch.full((c,), blocks - 1, device=za.device)
    else:
        pos = (same_instance if positives == "views" else same_label) & (ia[:, None] != cols[None, :])
        if pos_ok is not None:
            pos = pos & pos_ok[None, :]
        pi, pj = pos.nonzero(as_tuple=True)
        num_pos = torch.bincount(pi, minlength=c)

    # The negative candidates N(i): excluded entries (a mask, or the instance block's columns) and |N(i)|.
    if negatives == "other_class":
        exclude, num_cand = same_label, r - _same_key_counts(ya, yr)
    elif blocks:
        exclude, num_cand = block, torch.full((c,), r - blocks, device=za.device)
    else:
        exclude, num_cand = same_instance, r - _same_key_counts(ua, ur)
    log_e, weighted = log_tilted_mean(
        scores, exclude, hardening, detach_weights=detach_weights, num_candidates=num_cand
    )
    valid = (num_pos > 0) & weighted

    s_pos = scores[pi, pj]
    if debias > 0:
        log_ke = _tiled.log_debiased(log_k, log_e[pi], s_pos, debias, inv_t)
    else:
        log_ke = log_k + log_e[pi]
    pair = _tiled.pair_losses(s_pos, log_ke, valid[pi])
    loss_sum = scores.new_zeros(c).index_add(0, pi, pair)

    stats = None
    if want_stats:
        with torch.no_grad():
            stats = _chunk_stats(
                scores.detach(), s_pos.detach(), pi, valid, exclude, same_label, same_instance, block, hardening
            )
    return Terms(loss_sum, num_pos.to(scores.dtype), valid, stats)


def _same_key_counts(anchor_keys: Tensor, ref_keys: Tensor) -> Tensor:
    """For each anchor, how many reference entries share its key (label or instance id): O(R log R)."""
    keys, inverse = torch.unique(torch.cat([ref_keys, anchor_keys]), return_inverse=True)
    counts = torch.bincount(inverse[: ref_keys.shape[0]], minlength=keys.shape[0])
    return counts[inverse[ref_keys.shape[0] :]]


def _as_mask(exclude: Tensor, shape: torch.Size) -> Tensor:
    """A boolean [c, R] mask from either form of ``exclude`` (a mask, or excluded column indices)."""
    if exclude.dtype == torch.bool:
        return exclude
    return torch.zeros(shape, dtype=torch.bool, device=exclude.device).scatter_(1, exclude, True)


def _chunk_stats(scores, s_pos, pi, valid, exclude, same_label, same_instance, block, hardening):
    """Partial sums for :class:`LossStats`: [sum s+, #pairs, sum s-, #negatives, sum eff. negatives,
    #collisions, #other-instance], over valid anchors (the last two over all anchors), in float64."""
    f64 = torch.float64
    excluded = _as_mask(exclude, scores.shape)
    if same_instance is None:
        same_instance = _as_mask(block, scores.shape)
    neg_ok = ~excluded & valid[:, None]
    pair_ok = valid[pi]
    logw = _tiled.log_weights(hardening, scores)
    cand = ~excluded & (logw > -math.inf)
    lw = logw.masked_fill(~cand, -math.inf)
    top = lw.amax(1, keepdim=True)  # the entropy is shift-invariant: shifting keeps it exact at any scale
    lw = lw - torch.where(torch.isfinite(top), top, 0.0)
    lz = torch.logsumexp(lw, 1, keepdim=True)
    q = torch.exp(lw - lz)
    eff = torch.exp(lz.squeeze(1) - (q * lw.masked_fill(~cand, 0.0)).sum(1)).to(f64)  # exp(entropy of q)
    if same_label is not None:
        other = ~same_instance
        coll = (other & same_label).sum().to(f64)
        n_other = other.sum().to(f64)
    else:
        coll = n_other = torch.zeros((), dtype=f64, device=scores.device)
    return torch.stack(
        [
            s_pos.to(f64)[pair_ok].sum(),
            pair_ok.sum().to(f64),
            scores.masked_fill(~neg_ok, 0.0).sum(1).to(f64).sum(),
            neg_ok.sum().to(f64),
            eff[valid].sum(),
            coll,
            n_other,
        ]
    )


def terms(
    za: Tensor,
    ua: Tensor,
    ya: Tensor | None,
    ia: Tensor,
    zr: Tensor,
    ur: Tensor,
    yr: Tensor | None,
    pos_ok: Tensor | None,
    *,
    chunk_size: int | None,
    blocks: int | None,
    negatives: str,
    positives: str,
    hardening,
    inv_t: float,
    log_k: float,
    debias: float,
    detach_weights: bool,
    want_stats: bool,
    backend: str = "dense",
    tile_size: int = _tiled.DEFAULT_TILE,
) -> Terms:
    """Anchors in chunks of ``chunk_size``: memory O(chunk * R) with gradients (each chunk is recomputed in
    the backward pass instead of keeping its [chunk, R] intermediates), the same values and gradients.
    ``backend="tiled"`` (resolved by :func:`resolve_backend`): :func:`hscl._tiled.terms`, memory
    O(M D + tile_size^2)."""
    options = dict(
        blocks=blocks,
        negatives=negatives,
        positives=positives,
        hardening=hardening,
        inv_t=inv_t,
        log_k=log_k,
        debias=debias,
        detach_weights=detach_weights,
        want_stats=want_stats,
    )
    if backend == "tiled":
        if blocks:  # the instance key of reference position j is its sample, j // V
            ua = ia // blocks
            ur = torch.arange(zr.shape[0], device=zr.device) // blocks
        return Terms(*_tiled.terms(za, zr, _tiled.Keys(ya, yr, ua, ur, ia), pos_ok, **options, tile=tile_size))
    fn = partial(_chunk_terms, **options)
    c = za.shape[0]
    if chunk_size is None or chunk_size >= c:
        return fn(za, ua, ya, ia, zr, ur, yr, pos_ok)
    recompute = torch.is_grad_enabled() and (za.requires_grad or zr.requires_grad)
    parts = []
    for start in range(0, c, chunk_size):
        sl = slice(start, start + chunk_size)
        args = (za[sl], ua[sl], None if ya is None else ya[sl], ia[sl], zr, ur, yr, pos_ok)
        if recompute:
            parts.append(checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False))
        else:
            parts.append(fn(*args))
    stats = None if parts[0].stats is None else torch.stack([p.stats for p in parts]).sum(0)
    return Terms(
        torch.cat([p.loss_sum for p in parts]),
        torch.cat([p.num_pos for p in parts]),
        torch.cat([p.valid for p in parts]),
        stats,
    )


def supcon_terms(
    x: Tensor,
    y: Tensor,
    offset: int,
    xr: Tensor,
    yr: Tensor,
    temperature: float,
    *,
    backend: str = "dense",
    tile_size: int = _tiled.DEFAULT_TILE,
) -> Terms:
    """Per-anchor SupCon terms of the anchors ``x`` [m, D] (labels ``y``), which are rows ``offset ..
    offset + m`` of the reference set ``xr`` [M, D] (labels ``yr``; the global batch under data parallelism).
    ``loss_sum`` holds l_i itself (0 where P_L(i) is empty): its ``num_pos`` is ``None``. ``backend="tiled"``:
    :func:`hscl._tiled.supcon_terms`, memory O(M D + tile_size^2)."""
    if backend == "tiled":
        per_anchor, valid = _tiled.supcon_terms(x, y, offset, xr, yr, temperature, tile=tile_size)
        return Terms(per_anchor, None, valid, None)
    m, total = x.shape[0], xr.shape[0]
    scores = (x @ xr.T) / temperature
    eye = torch.zeros(m, total, dtype=torch.bool, device=x.device)
    eye[torch.arange(m, device=x.device), torch.arange(offset, offset + m, device=x.device)] = True
    pos = (y[:, None] == yr[None, :]) & ~eye
    log_denominator = torch.logsumexp(scores.masked_fill(eye, -math.inf), 1) if total > 1 else scores.new_zeros(m)
    num_pos = pos.sum(1)
    valid = num_pos > 0
    log_prob_pos = (scores - log_denominator[:, None]).masked_fill(~pos, 0.0).sum(1)
    per_anchor = -log_prob_pos / num_pos.clamp_min(1)
    return Terms(per_anchor.masked_fill(~valid, 0.0), None, valid, None)


# ----------------------------------------------------------------------------------------------------- reduce


def warn_if_empty(any_valid: Tensor, *, stacklevel: int) -> None:
    """Warn (``RuntimeWarning``) when no anchor is valid; ``stacklevel`` as in ``warnings.warn``, counted from
    here (the callers point it at the code that called the public loss)."""
    if not bool(any_valid):
        warnings.warn(
            "hscl: no valid anchor in this batch (none has both a positive and a weighted negative); "
            "the loss is 0 and its gradient is zero",
            RuntimeWarning,
            stacklevel=stacklevel,
        )


def global_mean(num: Tensor, den: Tensor) -> Tensor:
    """num / den summed over processes, on every process, with gradients scaled for DDP's averaging (each
    process back-propagates world_size * num / den_global, so the averaged parameter gradients are those of one
    process on the concatenated batch). Warns when no process has a valid anchor."""
    total = D.all_reduce_sum(torch.stack([num.detach(), den.to(num.dtype)]))
    warn_if_empty(total[1] > 0, stacklevel=5)
    den_global = total[1].clamp_min(1)
    scaled = num * (D.world_size() / den_global)
    return scaled + (total[0] / den_global - scaled).detach()


def reduce(terms: Terms, reduction: str, *, shape: tuple[int, int], distributed: bool = False) -> Tensor:
    """The loss from the per-anchor terms: ``"mean"`` over valid anchors, ``"pairs"`` over their positive pairs
    (numerator and denominator summed over processes when ``distributed``), or ``"none"``: the (local)
    per-anchor values reshaped to ``shape`` = (B, V). Warns when no anchor is valid."""
    if terms.num_pos is None:
        per_anchor = terms.loss_sum
    else:
        per_anchor = terms.loss_sum / terms.num_pos.clamp_min(1)
    if reduction == "none":
        warn_if_empty(terms.valid.any(), stacklevel=4)
        return per_anchor.reshape(shape)
    if reduction == "pairs":
        num, den = terms.loss_sum.sum(), (terms.num_pos * terms.valid).sum()
    else:
        num, den = per_anchor.sum(), terms.valid.sum().to(per_anchor.dtype)
    if distributed:
        return global_mean(num, den)
    warn_if_empty(den > 0, stacklevel=4)
    return num / den.clamp_min(1)


def loss_stats(terms: Terms, num_anchors: int, has_labels: bool) -> dict[str, Tensor | None]:
    """The fields of :class:`hscl.functional.LossStats` from the terms of a ``want_stats=True`` call."""
    s = terms.stats
    num_valid = terms.valid.sum()
    return dict(
        num_anchors=torch.tensor(num_anchors, device=s.device),
        num_valid=num_valid,
        mean_positive_score=s[0] / s[1].clamp_min(1),
        mean_negative_score=s[2] / s[3].clamp_min(1),
        effective_negatives=s[4] / num_valid.clamp_min(1),
        collision_share=(s[5] / s[6].clamp_min(1)) if has_labels else None,
    )
