"""H-UCL: hard-negative unsupervised contrastive learning (Robinson et al.'s HCL)."""

from __future__ import annotations

from ..hardening import from_beta_tau
from .contrastive import ContrastiveLoss

__all__ = ["HUCL"]


class HUCL(ContrastiveLoss):
    r"""H-UCL = (negatives="all", hardening eta).

    Negatives are every other instance, tilted toward the hard ones by eta (exponential tilt ``beta``, the
    default, beta = 1; or threshold ``tau``):

        log E_i = LSE_{j : u_j != u_i} (w_ij + s_ij) - LSE_{j : u_j != u_i} (w_ij),   w_ij = log eta(s_ij)
        l_ip    = -s_ip + log(e^{s_ip} + K E_i)

    Class collisions are tilted along with true negatives: the hardest "negatives" are often same-class.
    With ``debias=tau_plus`` this is HCL (Robinson et al. 2021).
    """

    def __init__(self, beta: float | None = None, tau: float | None = None, temperature: float = 0.5, **kwargs):
        super().__init__(negatives="all", hardening=from_beta_tau(beta, tau), temperature=temperature, **kwargs)
