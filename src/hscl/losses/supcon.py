"""SupCon: Khosla et al.'s supervised contrastive loss L_out, the baseline."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import _validation as V
from .. import distributed as D
from ..functional import _embed, _full_precision, _supcon_terms, _warn_if_empty, supcon_loss

__all__ = ["SupConLoss"]


class SupConLoss(nn.Module):
    r"""Supervised contrastive loss L_out (Khosla et al. 2020). Needs labels.

    With P_L(i) = {j != i : y_j = y_i} over the B*V flattened embeddings and s_ij = z_i . z_j / t,

        l_i = -(1 / |P_L(i)|) * sum_{p in P_L(i)} [ s_ip - LSE_{j != i} s_ij ],

    averaged over the anchors with P_L(i) not empty. Unlike the SCL family, same-class samples sit in the
    denominator and there is no hardening. ``temperature`` and ``normalize`` are those of
    :func:`hscl.functional.supcon_loss` (same accepted range, scale-safe normalisation).

    ``gather_distributed=True``: under ``torch.distributed``, P_L(i) and the denominator range over the global
    batch (embeddings gathered with gradient), each process keeps its own anchors, and the value is the global
    mean on every process; gradients are scaled so that DDP's averaging gives those of one process on the
    concatenated batch (as in :class:`hscl.ContrastiveLoss`).
    """

    def __init__(self, temperature: float = 0.1, normalize: bool = True, gather_distributed: bool = False) -> None:
        super().__init__()
        self.temperature = V.check_temperature(temperature)
        self.normalize = bool(normalize)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        if not (self.gather_distributed and D.is_distributed()):
            return supcon_loss(z, labels, temperature=self.temperature, normalize=self.normalize)
        V.check_embeddings(z, positives="labels", normalize=self.normalize, temperature=self.temperature)
        b, v, _ = z.shape
        V.check_ids("labels", labels, batch=b, device=z.device, required_by="SupConLoss")
        with _full_precision(z.device):
            x = _embed(z, self.normalize)
            y = labels.long().repeat_interleave(v)
            (xg, yg), offset = D.gather(x, y)
            per_anchor, valid = _supcon_terms(x, y, offset, xg, yg, self.temperature)
            num, den = per_anchor.sum(), valid.sum()
            total = D.all_reduce_sum(torch.stack([num.detach(), den.to(num.dtype)]))
            _warn_if_empty(total[1] > 0)
            den_global = total[1].clamp_min(1)
            scaled = num * (D.world_size() / den_global)
            return scaled + (total[0] / den_global - scaled).detach()

    def extra_repr(self) -> str:
        extra = ", gather_distributed=True" if self.gather_distributed else ""
        return f"temperature={self.temperature:g}{extra}"
