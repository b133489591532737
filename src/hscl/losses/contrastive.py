"""``ContrastiveLoss``: the loss family of :func:`hscl.functional.contrastive_loss` as an ``nn.Module``, with a
memory queue, data-parallel gathering and chunked computation (docs/math.md sections 2 and 3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import _engine
from .. import _validation as check
from .. import distributed as D
from ..functional import LossStats
from ..queue import EmbeddingQueue

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(nn.Module):
    r"""UCL, H-UCL, SCL and H-SCL (docs/math.md section 2) as a module.

    With s_ij = z_i . z_j / t and log-weights w_ij = log eta(s_ij) over the negative candidates N(i),

        log E_i = LSE_{j in N(i)} (w_ij + s_ij) - LSE_{j in N(i)} (w_ij)
        l_ip    = -s_ip + logaddexp(s_ip, log K + log E_i)

    The options are those of :func:`hscl.functional.contrastive_loss`, plus:

    Args:
        queue_size: keep a FIFO of the last ``queue_size`` embeddings (detached, with their labels and
            instance ids) that joins the negative candidates N(i) of later calls (pushed in training mode
            only, after the loss is computed); the default K counts it
            (K = M - V + queue length). Stored in the ``state_dict``.
        queue_positives: let queue entries also be positives (same instance id with ``positives="views"``,
            same label with ``positives="labels"``). Off by default: the queue only adds negatives.
        gather_distributed: under ``torch.distributed``, take P(i) and N(i) over the global batch of all
            processes (batch sizes may differ). The anchors are this process's; gradients are scaled for
            ``DistributedDataParallel``'s averaging, so parameter gradients equal those of one process on the
            concatenated batch, and the returned value is the global loss on every process. (With
            ``reduction="none"`` the local per-anchor values are returned unscaled.)
        chunk_size: process anchors in chunks of this many: memory O(chunk * M) with gradients (each chunk is
            recomputed in the backward pass), the same values and gradients (``backend="dense"`` only).
        backend: ``"auto"`` (default), ``"dense"`` or ``"tiled"``: as in
            :func:`hscl.functional.contrastive_loss`, with R = global batch + queue.
        tile_size: the tile edge of ``backend="tiled"``.

    ``forward(z, labels=None, *, instance_ids=None, return_stats=False)``: ``z`` is ``[B, V, D]``; ``labels``
    ``[B]``; ``instance_ids`` ``[B]`` identifies the samples (e.g. data-set indices) so that queue entries of
    the same sample are never its negatives; by default every sample of every call is a new instance.
    """

    def __init__(
        self,
        negatives: str = "all",
        hardening=None,
        temperature: float = 0.5,
        positives: str = "views",
        num_negatives: float | None = None,
        debias: float = 0.0,
        detach_weights: bool = False,
        normalize: bool = True,
        reduction: str = "mean",
        *,
        queue_size: int | None = None,
        queue_positives: bool = False,
        gather_distributed: bool = False,
        chunk_size: int | None = None,
        backend: str = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__()
        opts = check.check_options(
            negatives=negatives,
            positives=positives,
            hardening=hardening,
            temperature=temperature,
            num_negatives=num_negatives,
            debias=debias,
            reduction=reduction,
        )
        self.negatives = opts["negatives"]
        self.positives = opts["positives"]
        self.reduction = opts["reduction"]
        self.hardening = opts["hardening"]
        self.temperature = opts["temperature"]
        self.num_negatives = opts["num_negatives"]
        self.debias = opts["debias"]
        self.detach_weights = bool(detach_weights)
        self.normalize = bool(normalize)
        self.chunk_size = check.check_optional_count("chunk_size", chunk_size)
        self.backend, self.tile_size = _engine.check_backend(backend, tile_size, self.chunk_size)
        queue_size = check.check_optional_count("queue_size", queue_size)
        self.queue = EmbeddingQueue(queue_size) if queue_size is not None else None
        self.queue_positives = bool(queue_positives)
        self.gather_distributed = bool(gather_distributed)
        # Source of automatic instance ids (negative, so they never meet user ids >= 0), kept for resume.
        self.register_buffer("next_auto_id", torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Check the queue's entries too before anything loads, so that a bad checkpoint changes nothing.
        if self.queue is not None:
            self.queue._check_state(state_dict, prefix + "queue.")
        key = prefix + "next_auto_id"
        auto = state_dict.get(key)
        if isinstance(auto, Tensor):
            integer = not (auto.dtype == torch.bool or auto.is_floating_point() or auto.is_complex())
            if not integer or auto.dim() != 0 or (not auto.is_meta and int(auto) < 0):
                raise ValueError(f"invalid state in the checkpoint: {key} must be a 0-d integer >= 0, got {auto!r}")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        parts = [
            f"negatives={self.negatives!r}",
            f"hardening={self.hardening!r}",
            f"temperature={self.temperature:g}",
            f"positives={self.positives!r}",
        ]
        if self.debias:
            parts.append(f"debias={self.debias:g}")
        if self.chunk_size:
            parts.append(f"chunk_size={self.chunk_size}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        if self.gather_distributed:
            parts.append("gather_distributed=True")
        return ", ".join(parts)

    def _auto_ids(self, n: int, device: torch.device) -> Tensor:
        start = int(self.next_auto_id)
        self.next_auto_id.fill_(start + n)
        return -1 - (start + torch.arange(n, device=device))

    def forward(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        *,
        instance_ids: Tensor | None = None,
        return_stats: bool = False,
    ):
        batch = _engine.prepare(
            z,
            labels,
            positives=self.positives,
            normalize=self.normalize,
            temperature=self.temperature,
            labels_required_by=check.needs_labels(self.negatives, self.positives),
            instance_ids=instance_ids,
        )
        x, y, u, b, v = batch
        if self.queue is not None:
            self.queue.check_compatible(z.shape[-1], labels is not None)

        with _engine.full_precision(z.device):
            distributed = self.gather_distributed and D.is_distributed()
            if distributed:
                (xg, yg, ug), offset = D.gather(x, y, u)
            else:
                xg, yg, ug, offset = x, y, u, 0
            if ug is None:
                ug = self._auto_ids(xg.shape[0] // v, x.device).repeat_interleave(v)
            m = xg.shape[0]

            zr, ur, yr, pos_ok, qu = xg, ug, yg, None, None
            queued = 0 if self.queue is None else len(self.queue)
            if queued:
                qz, qy, qu = self.queue.entries()
                zr = torch.cat([xg, qz.to(xg.dtype)])
                ur = torch.cat([ug, qu])
                yr = None if yg is None else torch.cat([yg, qy])
                pos_ok = torch.cat(
                    [
                        torch.ones(m, dtype=torch.bool, device=x.device),
                        torch.full((queued,), self.queue_positives, dtype=torch.bool, device=x.device),
                    ]
                )
            local = slice(offset, offset + b * v)
            terms = _engine.terms(
                x,
                ug[local],
                None if yg is None else yg[local],
                torch.arange(offset, offset + b * v, device=x.device),
                zr,
                ur,
                yr,
                pos_ok,
                chunk_size=self.chunk_size,
                blocks=_engine.block_layout(
                    v,
                    ids=None if instance_ids is None else ug,
                    queue_ids=qu,
                    queue_positives=self.queue_positives,
                ),
                negatives=self.negatives,
                positives=self.positives,
                hardening=self.hardening,
                inv_t=1.0 / self.temperature,
                log_k=_engine.log_scale(self.num_negatives, num_embeddings=m, views=v, queued=queued),
                debias=self.debias,
                detach_weights=self.detach_weights,
                want_stats=bool(return_stats),
                backend=_engine.resolve_backend(self.backend, rows=b * v, cols=zr.shape[0], chunk_size=self.chunk_size),
                tile_size=self.tile_size,
            )
            loss = _engine.reduce(terms, self.reduction, shape=(b, v), distributed=distributed)

            if self.queue is not None and self.training:
                self.queue.push(xg.detach(), yg, ug)
        if return_stats:
            return loss, LossStats(**_engine.loss_stats(terms, b * v, labels is not None))
        return loss
