"""UCL: unsupervised contrastive learning (SimCLR's NT-Xent with K negatives)."""

from __future__ import annotations

from .contrastive import ContrastiveLoss

__all__ = ["UCL"]


class UCL(ContrastiveLoss):
    r"""UCL = (negatives="all", no hardening).

    Negatives are every other instance, class collisions included, all with the same weight:

        log E_i = LSE_{j : u_j != u_i} (s_ij) - log |{j : u_j != u_i}|
        l_ip    = -s_ip + log(e^{s_ip} + K E_i)

    With V = 2 views and K = 2B - 2 this is SimCLR's NT-Xent loss. Other options (``debias``, ``queue_size``,
    ``gather_distributed``, ``chunk_size``, ...) are those of :class:`hscl.ContrastiveLoss`.
    """

    def __init__(self, temperature: float = 0.5, **kwargs) -> None:
        super().__init__(negatives="all", hardening=None, temperature=temperature, **kwargs)
