"""Training loops. ``graphs``: contrastive pre-training of graph encoders (a plain loop: the graph protocol runs
hundreds of short fits on a CPU, where a Trainer's start-up would cost more than the fits)."""

from .graphs import embed_graphs, pretrain_graphs

__all__ = ["embed_graphs", "pretrain_graphs"]
