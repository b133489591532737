"""Contrastive pre-training of a graph encoder on two augmented views per graph, and frozen embedding.

The graphs are collated once into flat tensors (:class:`_Collated`); each mini-batch is then cut out by index
arithmetic on the node and edge offsets (the same tensors, in the same order, as PyG's ``DataLoader`` with the
same shuffling generator, without collating ``Data`` objects every epoch). All views of a mini-batch are drawn in
one :meth:`GraphAugment.apply` call, then go through the encoder one view at a time, as before: BatchNorm
normalises each view with its own statistics. (One forward over all views together was measured slower on the
CPU for the large graphs of DD and REDDIT-BINARY, whose activations then leave the caches, and no faster on
NCI1; see ``benchmarks/README.md``.)

:func:`train_graph_encoder` is the entry point by method name: the GIN of the paper or your own encoder (an
``nn.Module`` or a factory ``"package.module:function"`` mapping a PyG ``Batch`` to ``[num_graphs, D]``) with the
projection head built on its output size, optionally saved for :func:`hscl.checkpoint.load_model`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._extras import require
from .._validation import check_int
from ..transforms.graph import GraphAugment
from .runs import embed_frozen

require(__name__, "graphs")

__all__ = ["embed_graphs", "graph_batches", "pretrain_graphs", "train_graph_encoder"]


class _Collated:
    """Every graph's ``x`` and ``edge_index`` concatenated once (edges renumbered to the concatenation), with
    node and edge offsets per graph, so that any list of graphs becomes a batch by index arithmetic."""

    def __init__(self, graphs) -> None:
        graphs = list(graphs)
        if not graphs:
            raise ValueError("no graphs given")
        device = graphs[0].x.device
        nodes = torch.tensor([g.x.shape[0] for g in graphs], dtype=torch.long, device=device)
        edges = torch.tensor([g.edge_index.shape[1] for g in graphs], dtype=torch.long, device=device)
        self.node_ptr = torch.cat([nodes.new_zeros(1), nodes.cumsum(0)])
        self.edge_ptr = torch.cat([edges.new_zeros(1), edges.cumsum(0)])
        self.nodes, self.edges = nodes, edges
        self.x = torch.cat([g.x for g in graphs])
        shift = torch.repeat_interleave(self.node_ptr[:-1], edges)
        self.edge_index = torch.cat([g.edge_index for g in graphs], dim=1) + shift
        self.num_graphs = len(graphs)
        self.symmetric = _is_symmetric(self.edge_index, self.x.shape[0])

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, edge_index, batch)`` of the graphs ``idx`` in that order, as ``Batch.from_data_list`` makes it."""
        device = self.x.device
        idx = idx.to(device)
        nodes, edges = self.nodes[idx], self.edges[idx]
        graph = torch.arange(idx.numel(), device=device)
        owner_n = torch.repeat_interleave(graph, nodes)
        owner_e = torch.repeat_interleave(graph, edges)
        node_shift = self.node_ptr[idx] - (nodes.cumsum(0) - nodes)  # old first node - new first node
        edge_shift = self.edge_ptr[idx] - (edges.cumsum(0) - edges)
        node_ids = torch.arange(owner_n.numel(), device=device) + node_shift[owner_n]
        edge_ids = torch.arange(owner_e.numel(), device=device) + edge_shift[owner_e]
        return self.x[node_ids], self.edge_index[:, edge_ids] - node_shift[owner_e], owner_n


def _is_symmetric(edge_index: Tensor, num_nodes: int) -> bool:
    """Whether every edge's reverse is an edge too (as a multiset): then so is it in every GraphCL view."""
    src, dst = edge_index
    forward = src * num_nodes + dst
    if forward.numel() > 1 and not bool((forward[1:] >= forward[:-1]).all()):  # PyG's edges are usually sorted
        forward = torch.sort(forward).values
    return torch.equal(forward, torch.sort(dst * num_nodes + src).values)


def _as_batch(x: Tensor, edge_index: Tensor, node_graph: Tensor, num_graphs: int, symmetric: bool = False):
    """A PyG ``Batch``; ``symmetric`` (every edge's reverse is an edge) lets ``GINEncoder`` build one sparse
    matrix for its forward and backward instead of two (other models ignore it)."""
    from torch_geometric.data import Batch

    out = Batch(x=x, edge_index=edge_index, batch=node_graph)
    out._num_graphs = num_graphs
    if symmetric:
        out.symmetric = True
    return out


def _split_views(x, edge_index, node_graph, num_graphs: int, views: int, symmetric: bool) -> list:
    """One ``Batch`` of ``num_graphs`` graphs per view, from the views laid out as in :meth:`GraphAugment.views`
    (view ``v`` of graph ``i`` is graph ``v * num_graphs + i``, nodes in graph order)."""
    starts = [0, *torch.bincount(node_graph // num_graphs, minlength=views).cumsum(0).tolist()]
    edge_view = node_graph[edge_index[0]] // num_graphs
    out = []
    for v in range(views):
        nodes = slice(starts[v], starts[v + 1])
        edges = edge_index[:, edge_view == v] - starts[v]
        out.append(_as_batch(x[nodes], edges, node_graph[nodes] - v * num_graphs, num_graphs, symmetric))
    return out


def _shuffled(n: int, seed: int) -> Tensor:
    """The order in which PyG's (torch's) ``DataLoader(shuffle=True, generator=Generator().manual_seed(seed))``
    visits ``n`` items: the loader's iterator first draws one int64 base seed from the generator, then its
    ``RandomSampler`` draws ``randperm(n)``. Keeping it keeps the mini-batches of earlier runs."""
    gen = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=gen)
    return torch.randperm(n, generator=gen)


def graph_batches(graphs, batch_size: int, shuffle: bool, seed: int):
    """Mini-batches ``(graph indices, Batch)`` of ``graphs`` (a list or a :class:`_Collated`): in order, or in
    the order of :func:`_shuffled` under ``seed``."""
    data = graphs if isinstance(graphs, _Collated) else _Collated(graphs)
    order = _shuffled(data.num_graphs, seed) if shuffle else torch.arange(data.num_graphs)
    for idx in order.split(batch_size):
        yield idx, _as_batch(*data.batch(idx), idx.numel(), data.symmetric)


def pretrain_graphs(
    model: nn.Module,
    graphs,
    loss_fn: Callable,
    *,
    labels: Tensor | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    augment_ratio: float = 0.2,
    views: int = 2,
    seed: int = 0,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train ``model`` with ``loss_fn(z [B, V, D], labels)`` on ``views`` GraphCL views per graph (Adam).

    ``labels`` are those the loss may see (``None`` for unsupervised methods); they are attached to ``graphs``
    in order, so only the graphs given here (the training folds) ever reach the loss. Returns the mean loss
    per epoch. ``on_epoch_end(epoch, model)`` runs after each epoch (e.g. diagnostics).

    The mini-batches (shuffled by a generator seeded from ``seed`` and the epoch) and the views (a generator
    seeded from ``seed``) depend on nothing else, neither the loss nor the labels, so methods compared under one
    seed see the same batches and views. A mini-batch of fewer than two graphs is skipped. Each view of a
    mini-batch goes through ``model`` as one PyG ``Batch`` (``z[:, v] = model(view v)``).
    """
    check_int("views", views, 2)
    graphs = list(graphs)
    if labels is not None:
        if len(labels) != len(graphs):
            raise ValueError(f"labels must have one entry per graph: {len(graphs)}, got {len(labels)}")
        labels = torch.as_tensor(labels).view(len(graphs))
    data = _Collated(graphs)
    torch.manual_seed(seed)
    augment = GraphAugment(ratio=augment_ratio, generator=torch.Generator().manual_seed(seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for idx, batch in graph_batches(data, batch_size, True, seed + 1000 * epoch):
            b = batch.num_graphs
            if b < 2:
                continue
            x, edge_index, node_graph = augment.apply(batch.x, batch.edge_index, batch.batch, b, views=views)
            per_view = _split_views(x, edge_index, node_graph, b, views, data.symmetric)
            z = torch.stack([model(view) for view in per_view], dim=1)
            loss = loss_fn(z, labels[idx] if labels is not None else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * b
            count += b
        history.append(total / max(count, 1))
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


def embed_graphs(model: nn.Module, graphs, *, batch_size: int = 256) -> Tensor:
    """Frozen representations ``model.features(batch)`` of every graph, in order (eval mode, no augmentation)."""
    return embed_frozen(model, (b for _, b in graph_batches(graphs, batch_size, False, 0)))


def train_graph_encoder(
    graphs,
    labels: Tensor | None = None,
    *,
    method: str = "hscl-beta",
    encoder: nn.Module | str | None = None,
    feature_dim: int | None = None,
    hidden: int = 32,
    layers: int = 3,
    projection: int | None = None,
    temperature: float = 0.5,
    beta: float | None = None,
    tau: float | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    augment_ratio: float = 0.2,
    views: int = 2,
    seed: int = 0,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
    save: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
) -> tuple[nn.Module, list[float]]:
    """Pre-train a graph encoder with the loss of ``method`` (a name of :data:`hscl.losses.registry.METHODS`,
    ``beta``/``tau`` overriding its default hardening) by :func:`pretrain_graphs`; returns ``(model, history)``.

    ``encoder``: ``None`` for the GIN of the paper (``hidden``, ``layers``, ``projection``), or your own network,
    an ``nn.Module`` (trained in place) or a factory ``"package.module:function"`` (imported and called without
    arguments after seeding with ``seed``): it maps a PyG ``Batch`` (``x``, ``edge_index``, ``batch``,
    ``num_graphs``) to representations ``[num_graphs, D]``. ``D`` is ``feature_dim`` or read from one forward of
    two graphs; the projection head (:class:`hscl.models.ProjectedEncoder`: ``D -> D -> projection``, default
    ``D``) is built on it. ``model.features`` gives the representations (:func:`embed_graphs`).

    ``labels`` (one per graph; default each graph's ``y``) reach the loss only for supervised methods. ``save``
    writes the model with :func:`hscl.checkpoint.save_model` (``meta``: ``kind="graphs"``, method, hardening used,
    temperature, epochs, seed, augmentation, history, and ``dataset``: the TU name or folder the graphs came from,
    which ``hscl diagnose`` then reads by default); your own encoder must then be given as a factory string, so
    that :func:`hscl.checkpoint.load_model` can rebuild it."""
    from ..losses.registry import METHODS, make_loss
    from ..models import GINEncoder, encoder_argument, projected_encoder
    from .records import hardening_used

    graphs = list(graphs)
    if not graphs:
        raise ValueError("no graphs given")
    loss_fn = make_loss(method, temperature, beta=beta, tau=tau)  # refuses an unknown method or hardening
    given, _ = encoder_argument(encoder)  # a bad one (a missing module, ...) is reported before any work
    if save is not None and given is not None:  # a module, not a factory
        raise ValueError("save needs your encoder as a factory string 'package.module:function' to rebuild it from")
    supervised = METHODS[method].supervised
    if supervised:
        if labels is None:
            if any(getattr(g, "y", None) is None for g in graphs):
                raise ValueError(f"method {method!r} is supervised: give labels or graphs with a label y")
            labels = torch.cat([torch.as_tensor(g.y).view(-1)[:1] for g in graphs])
    else:
        labels = None
    torch.manual_seed(seed)
    if encoder is None:
        model = GINEncoder(graphs[0].x.shape[1], hidden=hidden, layers=layers, projection=projection)
    else:
        example = None if feature_dim is not None else next(graph_batches(graphs[:2], 2, False, 0))[1]
        model = projected_encoder(encoder, example, feature_dim=feature_dim, projection=projection)
    history = pretrain_graphs(
        model,
        graphs,
        loss_fn,
        labels=labels,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        augment_ratio=augment_ratio,
        views=views,
        seed=seed,
        on_epoch_end=on_epoch_end,
    )
    if save is not None:
        from ..checkpoint import save_model
        from .records import provenance

        used_beta, used_tau = hardening_used(method, beta, tau)
        save_model(
            save,
            model,
            kind="graphs",  # what the model embeds: hscl diagnose cannot tell it from your own encoder's spec
            dataset=None if dataset is None else str(dataset),
            method=method,
            beta=used_beta,
            tau=used_tau,
            temperature=temperature,
            epochs=epochs,
            seed=seed,
            augment={"ratio": augment_ratio, "views": views},
            history=history,
            **provenance(),
        )
    return model, history
