"""SCL: supervised contrastive learning with label-conditioned negatives."""

from __future__ import annotations

from .contrastive import ContrastiveLoss

__all__ = ["SCL"]


class SCL(ContrastiveLoss):
    r"""SCL = (negatives="other_class", no hardening). Needs labels.

    Negatives are the samples of other classes only (no class collisions), all with the same weight:

        log E_i = LSE_{j : y_j != y_i} (s_ij) - log |{j : y_j != y_i}|
        l_ip    = -s_ip + log(e^{s_ip} + K E_i)

    K defaults to M - V as for UCL, so the four losses share one scale.
    """

    def __init__(self, temperature: float = 0.5, **kwargs) -> None:
        super().__init__(negatives="other_class", hardening=None, temperature=temperature, **kwargs)
