"""SupCon: Khosla et al.'s supervised contrastive loss L_out, the baseline."""

from __future__ import annotations

from torch import Tensor, nn

from .. import _engine
from .. import _validation as check
from .. import distributed as D
from ..functional import supcon_loss

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
    concatenated batch (as in :class:`hscl.ContrastiveLoss`). ``backend`` and ``tile_size`` are those of
    :func:`hscl.functional.supcon_loss`.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        normalize: bool = True,
        gather_distributed: bool = False,
        *,
        backend: str = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = check.check_temperature(temperature)
        self.backend, self.tile_size = _engine.check_backend(backend, tile_size, None)
        self.normalize = bool(normalize)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        if not (self.gather_distributed and D.is_distributed()):
            return supcon_loss(
                z,
                labels,
                temperature=self.temperature,
                normalize=self.normalize,
                backend=self.backend,
                tile_size=self.tile_size,
            )
        x, y, _, _, _ = _engine.prepare(
            z,
            labels,
            positives="labels",
            normalize=self.normalize,
            temperature=self.temperature,
            labels_required_by="SupConLoss",
        )
        with _engine.full_precision(z.device):
            (xg, yg), offset = D.gather(x, y)
            backend = _engine.resolve_backend(self.backend, rows=x.shape[0], cols=xg.shape[0], chunk_size=None)
            terms = _engine.supcon_terms(
                x, y, offset, xg, yg, self.temperature, backend=backend, tile_size=self.tile_size
            )
            return _engine.reduce(terms, "mean", shape=tuple(z.shape[:2]), distributed=True)

    def extra_repr(self) -> str:
        extra = ", gather_distributed=True" if self.gather_distributed else ""
        return f"temperature={self.temperature:g}{extra}"
