"""SupCon: Khosla et al.'s supervised contrastive loss L_out, the baseline."""

from __future__ import annotations

from torch import Tensor, nn

from .. import _validation as V
from ..functional import supcon_loss

__all__ = ["SupConLoss"]


class SupConLoss(nn.Module):
    r"""Supervised contrastive loss L_out (Khosla et al. 2020). Needs labels.

    With P_L(i) = {j != i : y_j = y_i} over the B*V flattened embeddings and s_ij = z_i . z_j / t,

        l_i = -(1 / |P_L(i)|) * sum_{p in P_L(i)} [ s_ip - LSE_{j != i} s_ij ],

    averaged over the anchors with P_L(i) not empty. Unlike the SCL family, same-class samples sit in the
    denominator and there is no hardening.
    """

    def __init__(self, temperature: float = 0.1, normalize: bool = True) -> None:
        super().__init__()
        self.temperature = V.check_positive_real("temperature", temperature)
        self.normalize = bool(normalize)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return supcon_loss(z, labels, temperature=self.temperature, normalize=self.normalize)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:g}"
