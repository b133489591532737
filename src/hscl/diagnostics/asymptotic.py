r"""The paper's theory made measurable: the four asymptotic losses and Assumption 1 (docs/math.md section 4).

As K grows, l_ip - log K tends to the asymptotic pair loss

    L_inf(i, p) = -s_ip + log E_i

so the four asymptotic losses differ only in the negative distribution behind E_i. Given anchors with one
positive each (``z`` of shape ``[B, 2, D]``: the other view) and a reference set R (the batch, or a whole data set
embedded once), L_UCL, L_H-UCL, L_SCL and L_H-SCL are the means of -s_ip + log E_i over the anchors, with N(i)
taken in R: {j : u_j != u_i} for UCL and H-UCL, {j : y_j != y_i} for SCL and H-SCL.

Assumption 1 (per anchor i and hardening eta): with the collision set C(i) = {j in R : y_j = y_i, u_j != u_i}
and the true-negative set D(i) = {j in R : y_j != y_i}, and E_C(i), E_D(i) the eta-tilted means of e^{s_ij} over
each set, the anchor satisfies Assumption 1 when E_C(i) >= E_D(i). If C(i) carries no weight it satisfies it
trivially (counted, and reported apart as *vacuous*); if D(i) carries none, H-SCL is undefined for it and it is
*excluded*. Since E_H-UCL(i) = (m_C E_C + m_D E_D) / (m_C + m_D) (m_C, m_D the total weights),
E_H-UCL(i) >= E_H-SCL(i) exactly when E_C(i) >= E_D(i); so when every anchor satisfies Assumption 1,
L_H-SCL <= L_H-UCL (the paper's main result).

The four losses are averaged over the same anchors, the non-excluded ones, so that they can be compared.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .. import _engine, _tiled
from .. import _validation as check
from .._extras import progress_bar
from ..hardening import ExponentialTilt, Threshold

__all__ = [
    "LOSS_NAMES",
    "PAPER_SETTINGS",
    "AssumptionReport",
    "assumption_fraction",
    "assumption_report",
    "asymptotic_losses",
    "default_chunk_size",
]

LOSS_NAMES = ("UCL", "H-UCL", "SCL", "H-SCL")

#: The four hardening settings of the paper's Figures 4 and 5.
PAPER_SETTINGS = {
    "tau=e^-0.5": Threshold(math.exp(-0.5)),
    "tau=e^-0.1": Threshold(math.exp(-0.1)),
    "beta=1": ExponentialTilt(1.0),
    "beta=2": ExponentialTilt(2.0),
}

#: Bytes of working memory per (anchor, reference) entry of one chunk: about eight float32 [chunk, R]
#: matrices and four boolean masks alive at once.
BYTES_PER_ENTRY = 36


def default_chunk_size(reference_size: int, budget_bytes: int = 1 << 30) -> int:
    """Anchors per chunk so that one chunk's working memory, ~36 * chunk * R bytes, stays within the budget."""
    return max(1, min(reference_size, budget_bytes // (BYTES_PER_ENTRY * max(reference_size, 1))))


@dataclass(frozen=True)
class AssumptionReport:
    """Assumption 1 and the four asymptotic losses for one hardening, per anchor and overall.

    Per-anchor tensors are indexed like the flattened embeddings: anchor ``2*b + v`` is view v of sample b.

    Attributes:
        hardening: the hardening's ``repr``.
        temperature: t.
        satisfied: ``[M]`` bool, E_C(i) >= E_D(i) or C(i) without weight (False for excluded anchors).
        vacuous: ``[M]`` bool, C(i) carries no weight.
        excluded: ``[M]`` bool, D(i) carries no weight (H-SCL undefined).
        per_anchor: loss name -> ``[M]`` asymptotic pair losses -s_ip + log E_i (0 where excluded).
        losses: loss name -> mean over the non-excluded anchors (NaN, with a warning, if all are excluded).
    """

    hardening: str
    temperature: float
    satisfied: Tensor
    vacuous: Tensor
    excluded: Tensor
    per_anchor: dict[str, Tensor] = field(repr=False)
    losses: dict[str, float]

    @property
    def num_anchors(self) -> int:
        return int(self.satisfied.numel())

    @property
    def num_satisfied(self) -> int:
        return int(self.satisfied.sum())

    @property
    def num_vacuous(self) -> int:
        return int(self.vacuous.sum())

    @property
    def num_excluded(self) -> int:
        return int(self.excluded.sum())

    @property
    def fraction(self) -> float:
        """Satisfied anchors over non-excluded anchors (vacuous ones count as satisfied)."""
        included = self.num_anchors - self.num_excluded
        return self.num_satisfied / included if included else math.nan

    def _holds(self, lhs: str, rhs: str) -> Tensor:
        return (self.per_anchor[lhs] <= self.per_anchor[rhs]) & ~self.excluded

    @property
    def hscl_le_hucl_per_anchor(self) -> Tensor:
        """``[M]`` bool: L_H-SCL(i) <= L_H-UCL(i) (False for excluded anchors)."""
        return self._holds("H-SCL", "H-UCL")

    @property
    def hscl_ge_ucl_per_anchor(self) -> Tensor:
        """``[M]`` bool: L_H-SCL(i) >= L_UCL(i) (False for excluded anchors)."""
        return self._holds("UCL", "H-SCL")

    @property
    def hscl_le_hucl(self) -> bool:
        """Overall: L_H-SCL <= L_H-UCL."""
        return self.losses["H-SCL"] <= self.losses["H-UCL"]

    @property
    def hscl_ge_ucl(self) -> bool:
        """Overall: L_H-SCL >= L_UCL."""
        return self.losses["H-SCL"] >= self.losses["UCL"]

    def summary(self) -> dict[str, float | int | bool | str]:
        """One flat row (for CSV files and tables)."""
        included = max(self.num_anchors - self.num_excluded, 1)
        return {
            "hardening": self.hardening,
            "temperature": self.temperature,
            **{name: self.losses[name] for name in LOSS_NAMES},
            "assumption_fraction": self.fraction,
            "anchors": self.num_anchors,
            "satisfied": self.num_satisfied,
            "vacuous": self.num_vacuous,
            "excluded": self.num_excluded,
            "hscl_le_hucl": self.hscl_le_hucl,
            "hscl_ge_ucl": self.hscl_ge_ucl,
            "frac_anchors_hscl_le_hucl": int(self.hscl_le_hucl_per_anchor.sum()) / included,
            "frac_anchors_hscl_ge_ucl": int(self.hscl_ge_ucl_per_anchor.sum()) / included,
        }


def _prepare(z, labels, hardening, temperature, chunk_size) -> tuple[Tensor, Tensor, float, int | None]:
    """Validate (in the order of the losses' checks) and embed: ``(x [2B, D], y [2B], temperature, chunk)``."""
    temperature = check.check_temperature(temperature)
    x, y, _, _, _ = _engine.prepare(
        z,
        labels,
        positives="views",
        normalize=True,
        temperature=temperature,
        labels_required_by="the diagnostics",
        num_views=2,
    )
    if hardening is None:
        raise ValueError("hardening is required (e.g. hscl.ExponentialTilt(1.0) or hscl.Threshold(math.exp(-0.5)))")
    check.check_hardening(hardening)
    return x, y, temperature, check.check_optional_count("chunk_size", chunk_size)


@torch.no_grad()
def assumption_report(
    z: Tensor,
    labels: Tensor,
    *,
    hardening,
    temperature: float = 0.5,
    chunk_size: int | None = None,
    progress: bool = False,
    backend: str = "auto",
    tile_size: int | None = None,
) -> AssumptionReport:
    """Assumption 1 and the four asymptotic losses, with the batch ``z`` (``[B, 2, D]``) as reference set.

    ``backend="dense"`` processes the anchors in chunks of ``chunk_size`` (default: :func:`default_chunk_size`,
    about 1 GiB of working memory), so a whole data set embedded once (the large-N limit) fits: memory is about
    36 * chunk * 2B bytes beyond the embeddings. ``backend="tiled"`` never forms a [chunk, 2B] matrix: one pass
    over (``tile_size`` x ``tile_size``) tiles of the scores keeps online statistics per anchor and set (memory
    O(2B D + tile^2); the same values to rounding). ``"auto"`` (default) is dense when ``chunk_size`` is given
    or (2B)^2 is at most 2^24, else tiled, as for :func:`hscl.functional.contrastive_loss`.
    """
    x, y, temperature, chunk_size = _prepare(z, labels, hardening, temperature, chunk_size)  # x L2-normalised
    backend, tile = _engine.check_backend(backend, tile_size, chunk_size)
    m = x.shape[0]
    if _engine.resolve_backend(backend, rows=m, cols=m, chunk_size=chunk_size) == "tiled":
        with _engine.full_precision(z.device):
            out = _tiled.reference_log_means(x, y, hardening, inv_t=1.0 / temperature, tile=tile)
            out["s_neg"] = -(x * x[torch.arange(m, device=x.device) ^ 1]).sum(1) / temperature
        return _report(out, hardening, temperature)
    chunk_size = chunk_size or default_chunk_size(m)
    with _engine.full_precision(z.device):
        starts = range(0, m, chunk_size)
        if progress:  # a bar where tqdm is installed
            starts = progress_bar(starts, desc="assumption 1", unit="chunk", leave=False)
        parts = []
        for start in starts:
            idx = torch.arange(start, min(start + chunk_size, m), device=x.device)
            parts.append(_chunk(x, y, idx, hardening, 1.0 / temperature))
        out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return _report(out, hardening, temperature)


def _report(out: dict[str, Tensor], hardening, temperature: float) -> AssumptionReport:
    """The report from the per-anchor ``s_neg`` (-s_ip), log means and weighted flags of :func:`_chunk`."""
    excluded = ~out["weighted_d"]
    vacuous = ~out["weighted_c"]
    satisfied = (vacuous | (out["log_e_c"] >= out["log_e_hscl"])) & ~excluded
    per_anchor = {
        name: torch.where(excluded, 0.0, out["s_neg"] + out[key])
        for name, key in zip(LOSS_NAMES, ("log_e_ucl", "log_e_hucl", "log_e_scl", "log_e_hscl"), strict=True)
    }
    included = int((~excluded).sum())
    if included == 0:
        warnings.warn(
            "hscl diagnostics: no anchor has a weighted true negative (every D(i) is empty or below the "
            "threshold); the losses and the fraction are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        losses = {name: math.nan for name in LOSS_NAMES}
    else:
        losses = {name: float(v.sum()) / included for name, v in per_anchor.items()}
    return AssumptionReport(
        hardening=repr(hardening),
        temperature=temperature,
        satisfied=satisfied.cpu(),
        vacuous=vacuous.cpu(),
        excluded=excluded.cpu(),
        per_anchor={k: v.cpu() for k, v in per_anchor.items()},
        losses=losses,
    )


def _chunk(x: Tensor, y: Tensor, idx: Tensor, hardening, inv_t: float) -> dict[str, Tensor]:
    scores = (x[idx] * inv_t) @ x.T
    r = x.shape[0]
    block = (idx // 2)[:, None] * 2 + torch.arange(2, device=x.device)  # both views of the anchor's sample
    partner = idx ^ 1
    same_label = y[idx, None] == y[None, :]
    same_instance = torch.zeros_like(same_label).scatter_(1, block, True)
    not_collision = ~same_label | same_instance  # complement of C(i)
    log_e_ucl, _ = _engine.log_tilted_mean(scores, block, None, num_candidates=torch.full_like(idx, r - 2))
    log_e_hucl, _ = _engine.log_tilted_mean(scores, block, hardening)
    log_e_scl, _ = _engine.log_tilted_mean(scores, same_label, None)
    log_e_hscl, weighted_d = _engine.log_tilted_mean(scores, same_label, hardening)
    log_e_c, weighted_c = _engine.log_tilted_mean(scores, not_collision, hardening)
    return dict(
        s_neg=-scores[torch.arange(idx.numel(), device=x.device), partner],
        log_e_ucl=log_e_ucl,
        log_e_hucl=log_e_hucl,
        log_e_scl=log_e_scl,
        log_e_hscl=log_e_hscl,
        log_e_c=log_e_c,
        weighted_d=weighted_d,
        weighted_c=weighted_c,
    )


def asymptotic_losses(
    z: Tensor,
    labels: Tensor,
    *,
    hardening,
    temperature: float = 0.5,
    chunk_size: int | None = None,
    backend: str = "auto",
    tile_size: int | None = None,
) -> dict[str, float]:
    """The four asymptotic losses ``{"UCL", "H-UCL", "SCL", "H-SCL"}``: the mean of -s_ip + log E_i over the
    anchors (those whose D(i) carries weight), with the batch ``z`` (``[B, 2, D]``) as reference set
    (``chunk_size``, ``backend`` and ``tile_size`` as in :func:`assumption_report`).

    >>> import torch
    >>> from hscl import ExponentialTilt
    >>> from hscl.diagnostics import asymptotic_losses, assumption_fraction
    >>> z = torch.randn(64, 2, 8, generator=torch.Generator().manual_seed(0))
    >>> y = torch.arange(64) % 4
    >>> losses = asymptotic_losses(z, y, hardening=ExponentialTilt(1.0))
    >>> sorted(losses)
    ['H-SCL', 'H-UCL', 'SCL', 'UCL']
    >>> 0.0 <= assumption_fraction(z, y, hardening=ExponentialTilt(1.0)) <= 1.0
    True
    """
    return assumption_report(
        z,
        labels,
        hardening=hardening,
        temperature=temperature,
        chunk_size=chunk_size,
        backend=backend,
        tile_size=tile_size,
    ).losses


def assumption_fraction(
    z: Tensor,
    labels: Tensor,
    *,
    hardening,
    temperature: float = 0.5,
    chunk_size: int | None = None,
    backend: str = "auto",
    tile_size: int | None = None,
) -> float:
    """The fraction of anchors satisfying Assumption 1 (vacuous anchors counted as satisfied, anchors without
    weighted true negatives left out). The full picture, and the options, are :func:`assumption_report`."""
    return assumption_report(
        z,
        labels,
        hardening=hardening,
        temperature=temperature,
        chunk_size=chunk_size,
        backend=backend,
        tile_size=tile_size,
    ).fraction
