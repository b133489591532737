"""A FIFO memory queue of past embeddings that joins the negatives (docs/math.md section 3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._validation import check_int

__all__ = ["EmbeddingQueue"]


class EmbeddingQueue(nn.Module):
    """First-in first-out store of the last ``size`` embeddings with their labels and instance ids.

    The embeddings are stored detached (no gradient flows into the past). The storage is allocated at the
    first :meth:`push` (its width is the embedding dimension) and is part of the ``state_dict``, so a
    checkpoint restores the queue exactly. Entries are returned oldest first.

    Args:
        size: the number of embeddings kept, >= 1.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        check_int("queue_size", size, 1)
        self.size = size
        self.register_buffer("embeddings", torch.empty(0, 0))
        self.register_buffer("labels", torch.empty(0, dtype=torch.long))
        self.register_buffer("ids", torch.empty(0, dtype=torch.long))
        self.register_buffer("has_labels", torch.zeros((), dtype=torch.bool))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("head", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    def _allocate(self, dim: int, dtype: torch.dtype, device: torch.device) -> None:
        self.embeddings = torch.zeros(self.size, dim, dtype=dtype, device=device)
        self.labels = torch.full((self.size,), -1, dtype=torch.long, device=device)
        self.ids = torch.full((self.size,), -1, dtype=torch.long, device=device)

    def check_compatible(self, dim: int, with_labels: bool) -> None:
        """Raise if a batch of this width and label status cannot join the stored entries."""
        if len(self) == 0:
            return
        if self.embeddings.shape[1] != dim:
            raise ValueError(f"the queue holds embeddings of dimension {self.embeddings.shape[1]}, got {dim}")
        if bool(self.has_labels) != with_labels:
            held = "with" if bool(self.has_labels) else "without"
            raise ValueError(
                f"the queue holds embeddings {held} labels; pass labels consistently on every call (or call reset())"
            )

    def entries(self) -> tuple[Tensor, Tensor | None, Tensor]:
        """(embeddings, labels or None, ids) of the stored entries, oldest first."""
        n = len(self)
        if n < self.size:
            idx = torch.arange(n, device=self.embeddings.device)
        else:
            idx = (torch.arange(self.size, device=self.embeddings.device) + self.head) % self.size
        labels = self.labels[idx] if bool(self.has_labels) else None
        return self.embeddings[idx], labels, self.ids[idx]

    @torch.no_grad()
    def push(self, embeddings: Tensor, labels: Tensor | None, ids: Tensor) -> None:
        """Append a batch (oldest entries are overwritten once full)."""
        self.check_compatible(embeddings.shape[1], labels is not None)
        if self.embeddings.numel() == 0 or self.embeddings.shape[1] != embeddings.shape[1]:
            self._allocate(embeddings.shape[1], embeddings.dtype, embeddings.device)
        embeddings = embeddings.detach()[-self.size :]
        ids = ids[-self.size :]
        labels = None if labels is None else labels[-self.size :]
        n = embeddings.shape[0]
        pos = (torch.arange(n, device=self.embeddings.device) + self.head) % self.size
        self.embeddings[pos] = embeddings.to(self.embeddings.dtype)
        self.ids[pos] = ids.long()
        if labels is not None:
            self.labels[pos] = labels.long()
        self.has_labels.fill_(labels is not None)
        self.head.copy_((self.head + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    def reset(self) -> None:
        self.count.zero_()
        self.head.zero_()
        self.has_labels.fill_(False)

    def _check_state(self, state_dict, prefix: str = "") -> None:
        """Raise a ``ValueError`` naming the key if the queue entries of ``state_dict`` (under ``prefix``) could
        not have been written by a queue of this size: it is called by ``load_state_dict`` before anything is
        loaded. Keys that are absent are left to ``load_state_dict``'s own missing-key handling.

        * ``embeddings``: floating, finite, of shape ``[0, 0]`` (never pushed) or ``[size, D]``;
        * ``labels``, ``ids``: integer, one per row of ``embeddings``;
        * ``has_labels``: a 0-d bool; ``count``, ``head``: 0-d integers with 0 <= count <= rows,
          0 <= head < rows (0 when empty), and head = count while the queue is not full.
        """
        names = ("embeddings", "labels", "ids", "has_labels", "count", "head")
        state = {name: state_dict.get(prefix + name, getattr(self, name)) for name in names}

        def bad(name: str, what: str) -> ValueError:
            return ValueError(f"invalid queue state in the checkpoint: {prefix}{name} {what}")

        for name, value in state.items():
            if not isinstance(value, Tensor):
                raise bad(name, f"must be a tensor, got {type(value).__name__}")
        emb = state["embeddings"]
        if emb.dim() != 2 or not emb.is_floating_point():
            raise bad("embeddings", f"must be a floating [size, D] tensor, got {emb.dtype} of shape {tuple(emb.shape)}")
        if emb.numel() and emb.shape[0] != self.size:
            raise ValueError(
                f"the checkpoint's queue holds {emb.shape[0]} entries but this loss has queue_size={self.size}"
            )
        if not emb.numel() and emb.shape != (0, 0):
            raise bad("embeddings", f"must have shape [0, 0] (empty) or [{self.size}, D], got {tuple(emb.shape)}")
        rows = emb.shape[0]
        for name in ("labels", "ids"):
            value = state[name]
            if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
                raise bad(name, f"must have an integer dtype, got {value.dtype}")
            if value.shape != (rows,):
                raise bad(name, f"must have shape [{rows}] (one per row of embeddings), got {tuple(value.shape)}")
        flag = state["has_labels"]
        if flag.dtype != torch.bool or flag.dim() != 0:
            raise bad("has_labels", f"must be a 0-d bool tensor, got {flag.dtype} of shape {tuple(flag.shape)}")
        for name in ("count", "head"):
            value = state[name]
            if value.dtype == torch.bool or value.is_floating_point() or value.is_complex() or value.dim() != 0:
                raise bad(name, f"must be a 0-d integer tensor, got {value.dtype} of shape {tuple(value.shape)}")
        if any(state[name].is_meta for name in names):
            return  # no values to check
        count, head = int(state["count"]), int(state["head"])
        if not 0 <= count <= rows:
            raise bad("count", f"must be in [0, {rows}] (the queue's capacity), got {count}")
        if not 0 <= head < max(rows, 1):
            raise bad("head", f"must be in [0, {max(rows, 1) - 1}], got {head}")
        if count < rows and head != count:
            raise bad("head", f"must equal count ({count}) while the queue is not full, got {head}")
        if not bool(torch.isfinite(emb).all()):
            raise bad("embeddings", "contains NaN or inf; the stored embeddings must be finite")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._check_state(state_dict, prefix)
        stored = state_dict.get(prefix + "embeddings")
        if stored is not None and stored.shape != self.embeddings.shape:
            self.embeddings = torch.empty_like(stored, device=self.embeddings.device)
            self.labels = torch.empty(stored.shape[0], dtype=torch.long, device=self.labels.device)
            self.ids = torch.empty(stored.shape[0], dtype=torch.long, device=self.ids.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"size={self.size}, filled={len(self)}"
