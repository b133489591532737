"""H-SCL: supervised contrastive learning with hard negatives (Jiang, Nguyen, Ishwar, Aeron)."""

from __future__ import annotations

from ..hardening import from_beta_tau
from .contrastive import ContrastiveLoss

__all__ = ["HSCL"]


class HSCL(ContrastiveLoss):
    r"""H-SCL = (negatives="other_class", hardening eta). Needs labels.

    Negatives are the samples of other classes, tilted toward those closest to the anchor by eta (exponential
    tilt ``beta``, the default, beta = 1; or threshold ``tau``, e.g. tau = e^{-0.5}):

        log E_i = LSE_{j : y_j != y_i} (w_ij + s_ij) - LSE_{j : y_j != y_i} (w_ij),   w_ij = log eta(s_ij)
        l_ip    = -s_ip + log(e^{s_ip} + K E_i)

    In the limit of infinitely many negatives and under Assumption 1, L_H-SCL <= L_H-UCL (the paper's main
    result). With a threshold, anchors without any other-class sample above it carry no weighted negative
    and are left out of the mean.

    Example (``model`` maps each of the V views to an embedding: ``[B, V, ...] -> [B, V, D]``):

    >>> import torch
    >>> import hscl
    >>> loss_fn = hscl.losses.HSCL(beta=1.0, temperature=0.5)
    >>> z = torch.randn(16, 2, 32, requires_grad=True)   # stands in for model(views)
    >>> labels = torch.arange(16) % 4
    >>> loss = loss_fn(z, labels)
    >>> loss.backward()
    >>> z.grad.shape
    torch.Size([16, 2, 32])
    """

    def __init__(self, beta: float | None = None, tau: float | None = None, temperature: float = 0.5, **kwargs):
        super().__init__(negatives="other_class", hardening=from_beta_tau(beta, tau), temperature=temperature, **kwargs)
