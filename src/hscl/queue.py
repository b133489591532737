"""A FIFO memory queue of past embeddings that joins the negatives (SPEC.md section 3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

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
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {size!r}")
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

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        stored = state_dict.get(prefix + "embeddings")
        if stored is not None and stored.numel() and stored.shape[0] != self.size:
            raise ValueError(
                f"the checkpoint's queue holds {stored.shape[0]} entries but this loss has queue_size={self.size}"
            )
        if stored is not None and stored.shape != self.embeddings.shape:
            self.embeddings = torch.empty_like(stored, device=self.embeddings.device)
            self.labels = torch.empty(stored.shape[0], dtype=torch.long, device=self.labels.device)
            self.ids = torch.empty(stored.shape[0], dtype=torch.long, device=self.ids.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"size={self.size}, filled={len(self)}"
