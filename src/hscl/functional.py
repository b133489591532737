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

from dataclasses import dataclass

import torch
from torch import Tensor

from . import _engine
from . import _validation as check

__all__ = ["LossStats", "contrastive_loss", "log_tilted_mean", "supcon_loss"]


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

    hscl computes log E_i in one place, which this function, the losses and the diagnostics all share.

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
    return _engine.log_tilted_mean(
        scores, exclude, hardening, detach_weights=detach_weights, num_candidates=num_candidates
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
    backend: str = "auto",
    tile_size: int | None = None,
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
        chunk_size: process anchors in chunks of this many: memory O(chunk * M), same values and gradients
            (the dense path only: refused with ``backend="tiled"``; with ``"auto"`` it selects ``"dense"``).
        return_stats: also return a :class:`LossStats`.
        backend: ``"dense"`` forms the [M, R] score matrix (R = M here): memory O(M R);
            ``"tiled"`` forms it tile by tile, keeping per-anchor running statistics only and recomputing each
            tile in the backward pass: memory O(M D + tile_size^2), the same values and gradients (to rounding);
            ``"auto"`` (default) is dense while M R <= 2^24 score entries (and whenever ``chunk_size`` is
            given), tiled beyond, on every device. The tiled path is first-order (a double backward raises)
            and refuses a hardening ``nn.Module`` with trainable parameters (it would get no gradient).
        tile_size: the tile edge of ``backend="tiled"`` (default 512, measured on CPU).

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
    opts = check.check_options(
        negatives=negatives,
        positives=positives,
        hardening=hardening,
        temperature=temperature,
        num_negatives=num_negatives,
        debias=debias,
        reduction=reduction,
    )
    batch = _engine.prepare(
        z,
        labels,
        positives=opts["positives"],
        normalize=normalize,
        temperature=opts["temperature"],
        labels_required_by=check.needs_labels(negatives, positives),
    )
    chunk_size = check.check_optional_count("chunk_size", chunk_size)
    backend, tile_size = _engine.check_backend(backend, tile_size, chunk_size)
    x, y, b, v = batch.x, batch.y, batch.b, batch.v
    with _engine.full_precision(z.device):
        m = b * v
        backend = _engine.resolve_backend(backend, rows=m, cols=m, chunk_size=chunk_size)
        ids = torch.arange(b, device=z.device).repeat_interleave(v)
        terms = _engine.terms(
            x,
            ids,
            y,
            torch.arange(m, device=z.device),
            x,
            ids,
            y,
            None,
            chunk_size=chunk_size,
            blocks=_engine.block_layout(v),
            negatives=opts["negatives"],
            positives=opts["positives"],
            hardening=opts["hardening"],
            inv_t=1.0 / opts["temperature"],
            log_k=_engine.log_scale(opts["num_negatives"], num_embeddings=m, views=v),
            debias=opts["debias"],
            detach_weights=bool(detach_weights),
            want_stats=bool(return_stats),
            backend=backend,
            tile_size=tile_size,
        )
        loss = _engine.reduce(terms, opts["reduction"], shape=(b, v))
    if return_stats:
        return loss, LossStats(**_engine.loss_stats(terms, m, labels is not None))
    return loss


def supcon_loss(
    z: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    backend: str = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""Supervised contrastive loss L_out of Khosla et al. (2020), the baseline of docs/math.md section 2.

    With P_L(i) = {j != i : y_j = y_i} over the M = B*V flattened embeddings and s_ij = z_i . z_j / t,

        l_i = -(1 / |P_L(i)|) * sum_{p in P_L(i)} [ s_ip - LSE_{j != i} s_ij ],

    averaged over the anchors with P_L(i) not empty (0, with a warning, when there is none).

    Args:
        z: embeddings ``[B, V, D]`` (V >= 1).
        labels: class labels ``[B]``, integer dtype.
        temperature: t > 0, in the range of :func:`contrastive_loss` (t >= 5.4e-20 in float32).
        normalize: L2-normalise the embeddings first (at any scale), as in :func:`contrastive_loss`.
        backend: ``"auto"``, ``"dense"`` or ``"tiled"``, as in :func:`contrastive_loss` (tiled: the denominator
            by an online log-sum-exp, the positive sums from per-class sums of the embeddings).
        tile_size: the tile edge of ``backend="tiled"``.
    """
    temperature = check.check_temperature(temperature)
    backend, tile_size = _engine.check_backend(backend, tile_size, None)
    x, y, _, _, _ = _engine.prepare(
        z, labels, positives="labels", normalize=normalize, temperature=temperature, labels_required_by="supcon_loss"
    )
    with _engine.full_precision(z.device):
        m = x.shape[0]
        backend = _engine.resolve_backend(backend, rows=m, cols=m, chunk_size=None)
        terms = _engine.supcon_terms(x, y, 0, x, y, temperature, backend=backend, tile_size=tile_size)
        return _engine.reduce(terms, "mean", shape=tuple(z.shape[:2]))
