r"""The loss family of hscl, as functions (the math lives here, once).

Notation (docs/math.md sections 1-2). A batch holds B samples with V views each, ``z`` of shape ``[B, V, D]``,
flattened to M = B*V embeddings z_1..z_M (row-major: embedding ``b*V + v`` is view v of sample b). Embedding i
has an instance id u_i (its sample) and, with labels, a class y_i. The critic is

    s_ij = z_i . z_j / t          (t = temperature; z is L2-normalised first unless normalize=False,
                                   at any scale: the loss does not change when z is multiplied by c > 0)

For an anchor i:

* positives P(i): ``positives="views"``: {j != i : u_j = u_i}; ``positives="labels"``: {j != i : y_j = y_i}.
* negative candidates N(i): ``negatives="all"`` (UCL family): {j : u_j != u_i}, class collisions included;
  ``negatives="other_class"`` (SCL family): {j : y_j != y_i}.
* log-weights w_ij = log eta(s_ij) from the hardening function (none: w = 0; ExponentialTilt: w = beta s;
  Threshold: w = 0 if s >= log tau else -inf; or a user function, see :mod:`hscl.hardening`).
* tilted mean of e^s over the negatives (self-normalised importance weights):

      log E_i = LSE_{j in N(i)} (w_ij + s_ij) - LSE_{j in N(i)} (w_ij)

* scale K (``num_negatives``), default M - V (other-instance embeddings in the batch, plus the queue).
* debiasing (Chuang et al., ``debias`` = tau_plus, only with ``negatives="all"``):

      K E_i  <-  max( (K E_i - tau_plus K e^{s_ip}) / (1 - tau_plus),  K e^{-1/t} )

* pair loss, p in P(i):

      l_ip = -s_ip + log(e^{s_ip} + K E_i) = -s_ip + logaddexp(s_ip, log K + log E_i)

* anchor loss: mean of l_ip over P(i); ``reduction="mean"``: mean over valid anchors; ``"pairs"``: mean over
  all pairs of valid anchors (the authors' script); ``"none"``: per-anchor values of shape ``[B, V]`` (0 for
  an invalid anchor).
* an anchor is valid when P(i) is not empty and some w_ij > -inf over N(i). Invalid anchors are left out and
  counted; a batch with no valid anchor gives a loss of 0 that still back-propagates, with a warning.

The four losses: UCL = (all, none), H-UCL = (all, eta), SCL = (other_class, none), H-SCL = (other_class, eta).

Every sum of exponentials is a log-sum-exp; inputs in half precision are computed in float32 (float64 stays
float64), with autocast disabled inside.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from . import _validation as V
from .hardening import ExponentialTilt, Threshold

__all__ = ["LossStats", "contrastive_loss", "log_tilted_mean", "supcon_loss"]

# Tests set this to run every call through the instance-id comparison path instead of the block layout.
_GENERIC_LAYOUT = False


@dataclass(frozen=True)
class LossStats:
    """Statistics of one loss call, for logging. Tensors are 0-d, detached, on the input's device.

    Attributes:
        num_anchors: anchors in the call (B*V, or the local ones under ``gather_distributed``).
        num_valid: anchors with a positive and a weighted negative.
        mean_positive_score: mean s_ip = z_i . z_p / t over the positive pairs of valid anchors.
        mean_negative_score: mean s_ij over the negative candidates N(i) of valid anchors (unweighted).
        effective_negatives: mean over valid anchors of exp(entropy of the normalised weights over N(i)):
            |N(i)| without hardening, fewer the harder the tilt.
        collision_share: with labels, the share of UCL negatives {j : u_j != u_i} that are same-class
            collisions; ``None`` without labels.
    """

    num_anchors: Tensor
    num_valid: Tensor
    mean_positive_score: Tensor
    mean_negative_score: Tensor
    effective_negatives: Tensor
    collision_share: Tensor | None

    def as_dict(self) -> dict[str, float]:
        """Plain floats (one host sync), with ``None`` entries left out."""
        return {k: float(v) for k, v in vars(self).items() if v is not None}


class _Terms(NamedTuple):
    loss_sum: Tensor  # [c] sum over P(i) of l_ip (0 for invalid anchors)
    num_pos: Tensor  # [c] |P(i)| as a float
    valid: Tensor  # [c] bool
    stats: Tensor | None  # [7] float64 partial sums (see _chunk_terms)


@contextmanager
def _full_precision(device: torch.device):
    """Disable autocast: the loss is computed in the dtype chosen by ``_compute_dtype``."""
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # pragma: no cover - devices without autocast
        yield


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _l2_normalize(x: Tensor) -> Tensor:
    """The rows of ``x`` (``[N, D]``) divided by their L2 norm, at every finite scale: hscl's one normalisation.

    Each row is first divided by 2^k, the power of two with 1 <= max_d |x_d| / 2^k < 2, so that the sum of
    squares can neither overflow nor underflow: ``x`` and ``c * x`` give the same rows for every c > 0 that
    keeps them finite (``F.normalize`` returns 0 below a norm of 1e-12 and overflows above about 1e19 in
    float32). Dividing by a power of two is exact, so wherever ``F.normalize`` is exact this gives the same
    bits, values and gradients. The factor is detached: x / |x| does not depend on the scale of x, so the
    gradient is unchanged. A zero row stays zero (the losses refuse zero rows before they get here).
    """
    with torch.no_grad():
        top = x.abs().amax(1, keepdim=True)
        mantissa, _ = torch.frexp(top)  # top = mantissa * 2^e, mantissa in [0.5, 1): 2^(e-1) = top / (2 mantissa)
        scale = torch.where(top > 0, top / (2 * mantissa), 1.0)
    y = x / scale
    return y / torch.linalg.vector_norm(y, dim=1, keepdim=True).clamp_min(0.5)  # the norm is >= 1 unless y = 0


def _embed(z: Tensor, normalize: bool) -> Tensor:
    """Flatten ``[B, V, D]`` to ``[B*V, D]`` in the compute dtype, L2-normalised (scale-safely) if asked."""
    x = z.reshape(-1, z.shape[-1]).to(_compute_dtype(z.dtype))
    return _l2_normalize(x) if normalize else x


def _log_debiased(log_k: float, log_e: Tensor, s_pos: Tensor, tau_plus: float, inv_t: float) -> Tensor:
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


def _user_log_weights(hardening: Callable[[Tensor], Tensor], scores: Tensor) -> Tensor:
    logw = hardening(scores)
    if not isinstance(logw, Tensor) or logw.shape != scores.shape or not logw.is_floating_point():
        got = tuple(logw.shape) if isinstance(logw, Tensor) else type(logw).__name__
        raise ValueError(
            f"hardening must return floating log-weights of the scores' shape {tuple(scores.shape)}, got {got}"
        )
    if bool((torch.isnan(logw) | torch.isposinf(logw)).any()):
        raise ValueError("hardening returned NaN or +inf log-weights; only finite values and -inf are allowed")
    return logw.to(scores.dtype)


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
    r"""The tilted mean of e^s over the negative candidates, in the log domain, for every row (anchor) i:

        log E_i = LSE_{j in N(i)} (w_ij + s_ij) - LSE_{j in N(i)} (w_ij),      w_ij = log eta(s_ij)

    This is the one place where hscl computes log E_i; the losses and the diagnostics all call it.

    Args:
        scores: s_ij, ``[c, R]`` (anchors x reference set).
        exclude: the entries outside N(i): a boolean mask ``[c, R]`` (True = not a candidate), or a long
            tensor ``[c, k]`` of excluded column indices (distinct within a row).
        hardening: ``None``, :class:`ExponentialTilt`, :class:`Threshold` or a user function.
        detach_weights: stop the gradient through the normalised weights.
        num_candidates: |N(i)| if already known (saves a pass over the mask).

    Returns:
        ``(log_e, weighted)``: ``log_e`` ``[c]``, and whether some w_ij > -inf over N(i). Rows without a
        weighted candidate get ``log_e = 0`` and a zero gradient.
    """
    r = scores.shape[1]
    is_mask = exclude.dtype == torch.bool
    if hardening is None or isinstance(hardening, (ExponentialTilt, Threshold)):
        if is_mask:
            masked = torch.where(exclude, -math.inf, scores.detach())
        else:
            masked = scores.detach().clone().scatter_(1, exclude, -math.inf)
        if isinstance(hardening, Threshold):
            # keep s >= log tau: F.threshold keeps x > t, so t is the next float below log tau
            log_tau = torch.tensor(hardening.log_tau, dtype=scores.dtype)
            below = torch.nextafter(log_tau, torch.tensor(-math.inf, dtype=scores.dtype)).item()
            masked = F.threshold(masked, below, -math.inf, inplace=True)
            num_candidates = torch.isfinite(masked).to(scores.dtype).sum(1)  # a float sum: far faster than bool
        elif num_candidates is None:
            num_candidates = r - (exclude.to(scores.dtype).sum(1) if is_mask else exclude.shape[1])
        beta = hardening.beta if isinstance(hardening, ExponentialTilt) else 0.0
        log_count = torch.as_tensor(num_candidates, device=scores.device).clamp_min(1).to(scores.dtype).log()
        log_e = _LogTiltedMean.apply(scores, masked, beta, detach_weights, log_count)
        return log_e, num_candidates > 0
    logw = _user_log_weights(hardening, scores)
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
) -> _Terms:
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
        same_instance = ua[:, None] == ur[None, :]

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
        log_ke = _log_debiased(log_k, log_e[pi], s_pos, debias, inv_t)
    else:
        log_ke = log_k + log_e[pi]
    pair = torch.where(valid[pi], torch.logaddexp(s_pos, log_ke) - s_pos, 0.0)
    loss_sum = scores.new_zeros(c).index_add(0, pi, pair)

    stats = None
    if want_stats:
        with torch.no_grad():
            stats = _chunk_stats(scores.detach(), s_pos.detach(), pi, valid, exclude, same_label, same_instance,
                                 block, hardening)  # fmt: skip
    return _Terms(loss_sum, num_pos.to(scores.dtype), valid, stats)


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


def _log_weights(hardening, scores: Tensor) -> Tensor:
    """w = log eta(s) for any hardening (0 without one)."""
    if hardening is None:
        return torch.zeros_like(scores)
    if isinstance(hardening, (ExponentialTilt, Threshold)):
        return hardening.log_weights(scores)
    return _user_log_weights(hardening, scores)


def _chunk_stats(scores, s_pos, pi, valid, exclude, same_label, same_instance, block, hardening):
    """Partial sums for :class:`LossStats`: [sum s+, #pairs, sum s-, #negatives, sum eff. negatives,
    #collisions, #other-instance], over valid anchors (the last two over all anchors), in float64."""
    f64 = torch.float64
    excluded = _as_mask(exclude, scores.shape)
    if same_instance is None:
        same_instance = _as_mask(block, scores.shape)
    neg_ok = ~excluded & valid[:, None]
    pair_ok = valid[pi]
    logw = _log_weights(hardening, scores)
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


def _terms(
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
    **options,
) -> _Terms:
    """Anchors in chunks of ``chunk_size``: memory O(chunk * R) with gradients (each chunk is recomputed in
    the backward pass instead of keeping its [chunk, R] intermediates), the same values and gradients."""
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
    return _Terms(
        torch.cat([p.loss_sum for p in parts]),
        torch.cat([p.num_pos for p in parts]),
        torch.cat([p.valid for p in parts]),
        stats,
    )


def _reduce_local(terms: _Terms, reduction: str) -> tuple[Tensor, Tensor, Tensor]:
    """(per-anchor losses, numerator, denominator) of the reduction; loss = numerator / max(denominator, 1)."""
    per_anchor = terms.loss_sum / terms.num_pos.clamp_min(1)
    if reduction == "pairs":
        return per_anchor, terms.loss_sum.sum(), (terms.num_pos * terms.valid).sum()
    return per_anchor, per_anchor.sum(), terms.valid.sum().to(per_anchor.dtype)


def _warn_if_empty(num_valid: Tensor) -> None:
    if not bool(num_valid):
        warnings.warn(
            "hscl: no valid anchor in this batch (none has both a positive and a weighted negative); "
            "the loss is 0 and its gradient is zero",
            RuntimeWarning,
            stacklevel=3,
        )


def _make_stats(terms: _Terms, num_anchors: int, has_labels: bool) -> LossStats:
    s = terms.stats
    num_valid = terms.valid.sum()
    return LossStats(
        num_anchors=torch.tensor(num_anchors, device=s.device),
        num_valid=num_valid,
        mean_positive_score=s[0] / s[1].clamp_min(1),
        mean_negative_score=s[2] / s[3].clamp_min(1),
        effective_negatives=s[4] / num_valid.clamp_min(1),
        collision_share=(s[5] / s[6].clamp_min(1)) if has_labels else None,
    )


def contrastive_loss(
    z: Tensor,
    labels: Tensor | None = None,
    *,
    negatives: str = "all",
    hardening=None,
    temperature: float = 0.5,
    positives: str = "views",
    num_negatives: float | None = None,
    debias: float = 0.0,
    detach_weights: bool = False,
    normalize: bool = True,
    reduction: str = "mean",
    chunk_size: int | None = None,
    return_stats: bool = False,
):
    r"""UCL, H-UCL, SCL and H-SCL: the contrastive loss family of docs/math.md section 2.

    With s_ij = z_i . z_j / t, log-weights w_ij = log eta(s_ij) and the negative candidates N(i),

        log E_i = LSE_{j in N(i)} (w_ij + s_ij) - LSE_{j in N(i)} (w_ij)
        l_ip    = -s_ip + logaddexp(s_ip, log K + log E_i),     p in P(i)

    averaged over P(i), then over the valid anchors (see the module docstring for every term).

    ==========  ===============================  ===========================
    loss        ``negatives``                    ``hardening``
    ==========  ===============================  ===========================
    UCL         ``"all"``                        ``None``
    H-UCL       ``"all"``                        ExponentialTilt / Threshold
    SCL         ``"other_class"``                ``None``
    H-SCL       ``"other_class"``                ExponentialTilt / Threshold
    ==========  ===============================  ===========================

    Args:
        z: embeddings ``[B, V, D]``: B samples, V views each (V >= 2 with ``positives="views"``).
        labels: class labels ``[B]``, integer dtype; required by ``negatives="other_class"`` and
            ``positives="labels"``.
        negatives: ``"all"`` (every other instance) or ``"other_class"`` (other labels only).
        hardening: ``None``, :class:`hscl.ExponentialTilt`, :class:`hscl.Threshold`, or a callable mapping
            scores to log-weights (contract in :mod:`hscl.hardening`).
        temperature: t > 0 with 1/t <= sqrt(finfo.max) of the compute dtype: t >= 5.4e-20 for float32 and
            half-precision ``z``, t >= 7.5e-155 for float64; smaller values raise a ``ValueError`` (the scores
            would overflow). The loss is tested finite for t in [0.01, 1].
        positives: ``"views"`` (other views of the same sample) or ``"labels"`` (every other same-class
            embedding).
        num_negatives: the scale K; default M - V.
        debias: class prior tau_plus in [0, 1) for Chuang et al.'s debiasing (``negatives="all"`` only).
        detach_weights: stop the gradient through the normalised weights.
        normalize: L2-normalise the embeddings first, at any scale: the loss does not depend on the scale of
            ``z`` over the whole finite range of its dtype. With ``normalize=False`` the largest score,
            max_i |z_i|^2 / t, must stay below sqrt(finfo.max) of the compute dtype (about 1.8e19 in float32),
            else a ``ValueError``.
        reduction: ``"mean"`` (over valid anchors), ``"pairs"`` (over their positive pairs) or ``"none"``
            (``[B, V]``, 0 where the anchor is invalid).
        chunk_size: process anchors in chunks of this many: memory O(chunk * M), same values and gradients.
        return_stats: also return a :class:`LossStats`.

    Returns:
        The loss (a 0-d tensor, or ``[B, V]`` with ``reduction="none"``) in float32 or float64, and with
        ``return_stats=True`` a ``(loss, LossStats)`` pair.

    Example (H-SCL with an exponential tilt, beta = 1; then SCL per anchor):

    >>> import torch
    >>> from hscl import ExponentialTilt
    >>> from hscl.functional import contrastive_loss
    >>> g = torch.Generator().manual_seed(0)
    >>> z = torch.randn(8, 2, 16, generator=g)
    >>> y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> loss = contrastive_loss(z, y, negatives="other_class", hardening=ExponentialTilt(1.0), temperature=0.5)
    >>> loss.shape, bool(torch.isfinite(loss))
    (torch.Size([]), True)
    >>> per_anchor = contrastive_loss(z, y, negatives="other_class", reduction="none")
    >>> per_anchor.shape
    torch.Size([8, 2])
    """
    opts = V.check_options(
        negatives=negatives,
        positives=positives,
        hardening=hardening,
        temperature=temperature,
        num_negatives=num_negatives,
        debias=debias,
        reduction=reduction,
    )
    V.check_embeddings(z, positives=opts["positives"], normalize=normalize, temperature=opts["temperature"])
    b, v, _ = z.shape
    V.check_ids("labels", labels, batch=b, device=z.device, required_by=V.needs_labels(negatives, positives))
    chunk_size = V.check_optional_count("chunk_size", chunk_size)

    with _full_precision(z.device):
        x = _embed(z, normalize)
        m = b * v
        ids = torch.arange(b, device=z.device).repeat_interleave(v)
        y = None if labels is None else labels.long().repeat_interleave(v)
        k = opts["num_negatives"] if opts["num_negatives"] is not None else max(m - v, 1)
        terms = _terms(
            x, ids, y, torch.arange(m, device=z.device), x, ids, y, None,
            chunk_size=chunk_size,
            blocks=None if _GENERIC_LAYOUT else v,
            negatives=opts["negatives"],
            positives=opts["positives"],
            hardening=opts["hardening"],
            inv_t=1.0 / opts["temperature"],
            log_k=math.log(k),
            debias=opts["debias"],
            detach_weights=bool(detach_weights),
            want_stats=bool(return_stats),
        )  # fmt: skip
        per_anchor, num, den = _reduce_local(terms, opts["reduction"])
        _warn_if_empty(terms.valid.any())
        loss = per_anchor.reshape(b, v) if opts["reduction"] == "none" else num / den.clamp_min(1)
    if return_stats:
        return loss, _make_stats(terms, m, labels is not None)
    return loss


def supcon_loss(z: Tensor, labels: Tensor, *, temperature: float = 0.1, normalize: bool = True) -> Tensor:
    r"""Supervised contrastive loss L_out of Khosla et al. (2020), the baseline of docs/math.md section 2.

    With P_L(i) = {j != i : y_j = y_i} over the M = B*V flattened embeddings and s_ij = z_i . z_j / t,

        l_i = -(1 / |P_L(i)|) * sum_{p in P_L(i)} [ s_ip - LSE_{j != i} s_ij ],

    averaged over the anchors with P_L(i) not empty (0, with a warning, when there is none).

    Args:
        z: embeddings ``[B, V, D]`` (V >= 1).
        labels: class labels ``[B]``, integer dtype.
        temperature: t > 0, in the range of :func:`contrastive_loss` (t >= 5.4e-20 in float32).
        normalize: L2-normalise the embeddings first (at any scale), as in :func:`contrastive_loss`.
    """
    temperature = V.check_temperature(temperature)
    V.check_embeddings(z, positives="labels", normalize=normalize, temperature=temperature)
    b, v, _ = z.shape
    V.check_ids("labels", labels, batch=b, device=z.device, required_by="supcon_loss")
    with _full_precision(z.device):
        x = _embed(z, normalize)
        y = labels.long().repeat_interleave(v)
        per_anchor, valid = _supcon_terms(x, y, 0, x, y, temperature)
        _warn_if_empty(valid.any())
        return per_anchor.masked_fill(~valid, 0.0).sum() / valid.sum().clamp_min(1)


def _supcon_terms(
    x: Tensor, y: Tensor, offset: int, xr: Tensor, yr: Tensor, temperature: float
) -> tuple[Tensor, Tensor]:
    """Per-anchor SupCon terms of the anchors ``x`` [m, D] (labels ``y``), which are rows ``offset ..
    offset + m`` of the reference set ``xr`` [M, D] (labels ``yr``; the global batch under data parallelism).
    Returns ``(per_anchor, valid)``: l_i (0 where P_L(i) is empty) and whether P_L(i) is non-empty."""
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
    return per_anchor.masked_fill(~valid, 0.0), valid
