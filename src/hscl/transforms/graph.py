"""Graph augmentations of GraphCL (You et al. 2020), batched: node dropping, edge perturbation, subgraph
(connected, grown from a random node) and attribute masking, one chosen at random per graph, applied to a whole
PyG batch at once, and to several views of it in one call.

Every random draw comes from the given generator (which must live on the batch's device), so a seed gives the
same views. Each graph keeps at least one node; edges stay inside their graph and symmetric.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["OPS", "GraphAugment"]

OPS = ("node_drop", "edge_perturb", "subgraph", "attr_mask")
_DROP, _PERTURB, _SUBGRAPH, _MASK = range(4)


class GraphAugment:
    """Apply one augmentation per graph, chosen uniformly among ``ops``, each with strength ``ratio``.

    * ``node_drop``: each node is removed with probability ``ratio`` (with its edges).
    * ``edge_perturb``: each undirected edge is removed with probability ``ratio``, and ``ratio`` x (number of
      edges) random node pairs of the same graph are connected.
    * ``subgraph``: a connected subgraph of about (1 - ratio) x n nodes grown from a random node, breadth-first
      layer by layer with the last layer sampled at random (GraphCL grows one random neighbour at a time).
    * ``attr_mask``: each node's features are zeroed with probability ``ratio``.

    Called on a PyG ``Batch``; returns a ``torch_geometric.data.Batch`` with ``x``, ``edge_index``, ``batch`` and
    ``y`` and the same number of graphs. :meth:`views` makes several views in one call and :meth:`apply` works on
    plain tensors (what the training loop uses). The nodes of each graph must be contiguous and in graph order
    (as in every PyG batch).
    """

    def __init__(self, ops=OPS, ratio: float = 0.2, generator: torch.Generator | None = None) -> None:
        ops = tuple(ops)
        unknown = [o for o in ops if o not in OPS]
        if not ops or unknown:
            raise ValueError(f"ops must be a non-empty subset of {OPS}, got {ops}")
        if not 0 <= ratio < 1:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        self.ops, self.ratio, self.generator = ops, float(ratio), generator
        self._op_ids = [OPS.index(o) for o in ops]

    def _rand(self, *shape, device) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=device)

    def __call__(self, batch):
        return self.views(batch, 1)

    def views(self, batch, views: int = 2):
        """``views`` augmented views of a PyG batch of ``g`` graphs as one ``Batch`` of ``views * g`` graphs: view
        ``v`` of graph ``i`` is graph ``v * g + i``; ``y`` (when the batch has one) is repeated accordingly."""
        from torch_geometric.data import Batch

        g = batch.num_graphs
        x, edge_index, node_graph = self.apply(batch.x, batch.edge_index, batch.batch, g, views=views)
        y = getattr(batch, "y", None)
        out = Batch(x=x, edge_index=edge_index, batch=node_graph, y=y if y is None or views == 1 else y.repeat(views))
        out._num_graphs = views * g
        return out

    def apply(
        self, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int, *, views: int = 1
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The tensors ``(x, edge_index, batch)`` of ``views`` augmented views of a batch of ``num_graphs`` graphs
        (node features, edges, each node's graph; nodes contiguous per graph, in graph order), laid out as in
        :meth:`views`. Each view of each graph draws its own operation and randomness."""
        device, n0, g = x.device, x.shape[0], int(num_graphs)
        sizes = torch.bincount(batch, minlength=g)
        if views > 1:  # the views as one batch of views * g graphs, without copying the features
            offsets = torch.arange(views, device=device)
            batch = (batch + offsets[:, None] * g).flatten()
            edge_index = (edge_index[:, None, :] + (offsets * n0)[None, :, None]).flatten(1)
            sizes = sizes.repeat(views)
        n, g = n0 * views, g * views
        ptr = torch.zeros(g + 1, dtype=torch.long, device=device)
        ptr[1:] = sizes.cumsum(0)
        pick = torch.randint(len(self._op_ids), (g,), generator=self.generator, device=device)
        choice = torch.tensor(self._op_ids, device=device)[pick]
        node_op = choice[batch]

        if _PERTURB in self._op_ids:
            edge_index = self._perturb_edges(edge_index, batch, choice == _PERTURB, ptr, sizes, n)
        keep = torch.ones(n, dtype=torch.bool, device=device)
        if _DROP in self._op_ids:
            keep &= ~((self._rand(n, device=device) < self.ratio) & (node_op == _DROP))
        if _SUBGRAPH in self._op_ids:
            grown = self._grow_subgraph(edge_index, batch, ptr, sizes, choice == _SUBGRAPH)
            keep &= grown | (node_op != _SUBGRAPH)
        # every graph keeps at least one node: its first, if nothing else survived
        kept_per_graph = torch.bincount(batch[keep], minlength=g)
        keep[ptr[:-1][(kept_per_graph == 0) & (sizes > 0)]] = True
        kept = torch.nonzero(keep).flatten()
        x = x[kept % n0] if views > 1 else x[kept]
        if _MASK in self._op_ids:
            masked = (self._rand(n, device=device) < self.ratio) & (node_op == _MASK)
            x[torch.nonzero(masked[kept]).flatten()] = 0.0  # x is a fresh copy: zero only the masked rows
        # the edges between kept nodes, renumbered
        new_id = keep.cumsum(0) - 1
        edge_index = edge_index[:, keep[edge_index[0]] & keep[edge_index[1]]]
        return x, new_id[edge_index], batch[kept]

    def _perturb_edges(self, edge_index, node_graph, active, ptr, sizes, n) -> Tensor:
        """Drop each undirected edge of the active graphs with probability ``ratio`` and add about ``ratio`` x
        (their undirected edges) random pairs inside each; the other graphs' edges are kept as they are."""
        device = edge_index.device
        in_active = active[node_graph[edge_index[0]]]
        if not bool(in_active.any()):  # no active graph has an edge: nothing to drop, nothing to add
            return edge_index
        own = edge_index[:, in_active]
        a, b = own
        # one decision per undirected edge: both directions share the key (min, max)
        key = torch.minimum(a, b) * n + torch.maximum(a, b)
        unique, inverse = torch.unique(key, return_inverse=True)
        own = own[:, ~(self._rand(unique.numel(), device=device) < self.ratio)[inverse]]
        # add about ratio x (undirected edges) random pairs inside each active graph
        undirected = torch.bincount(node_graph[a[a < b]], minlength=sizes.numel())
        add = torch.where(active & (sizes > 1), (undirected.float() * self.ratio).round().long(), 0)
        owner = torch.repeat_interleave(torch.arange(sizes.numel(), device=device), add)
        u = ptr[owner] + (self._rand(owner.numel(), device=device) * sizes[owner]).long()
        v = ptr[owner] + (self._rand(owner.numel(), device=device) * sizes[owner]).long()
        ok = u != v
        u, v = u[ok], v[ok]
        # the kept and new edges of the active graphs, each directed pair once
        key = torch.unique(torch.cat([own[0] * n + own[1], u * n + v, v * n + u]))
        return torch.cat([edge_index[:, ~in_active], torch.stack([key // n, key % n])], dim=1)

    def _grow_subgraph(self, edge_index, node_graph, ptr, sizes, active) -> Tensor:
        """A connected subgraph of each active graph: the ceil((1 - ratio) x n) nodes first reached by a
        breadth-first search from a random node, ties inside the last layer taken in a random order (so that layer
        is sampled uniformly). The search advances one layer per pass (at most the largest eccentricity) over the
        edges into nodes not reached yet, which shrink as it goes, so large graphs (DD, REDDIT) cost a few dozen
        small vectorised steps; the selection is one sort at the end. A graph whose component is smaller than the
        target keeps the whole component."""
        device = edge_index.device
        n, g = node_graph.shape[0], sizes.numel()
        graphs = torch.nonzero(active & (sizes > 0)).flatten()
        if graphs.numel() == 0 or self.ratio == 0:
            return active[node_graph]
        start = ptr[graphs] + (self._rand(graphs.numel(), device=device) * sizes[graphs]).long()
        limit = torch.where(active, torch.ceil((1 - self.ratio) * sizes.float()).long(), 0)
        # work on the active graphs' nodes only, renumbered 0..m-1 (in order)
        members = torch.nonzero(active[node_graph]).flatten()
        local = torch.full((n,), -1, dtype=torch.long, device=device)
        local[members] = torch.arange(members.numel(), device=device)
        owner_of = node_graph[members]
        edges = local[edge_index[:, active[node_graph[edge_index[0]]]]]
        depth = torch.full((members.numel(),), -1, dtype=torch.long, device=device)  # BFS layer; -1: not reached
        depth[local[start]] = 0
        layer = 0
        while True:  # one breadth-first layer per pass, over the edges into nodes not reached yet
            edges = edges[:, depth[edges[1]] < 0]
            new = edges[1, depth[edges[0]] == layer]
            if new.numel() == 0:
                break
            layer += 1
            depth[new] = layer
        # per graph, the first `limit` reached nodes by (layer, random key): the last layer is sampled at random
        nodes = torch.nonzero(depth >= 0).flatten()
        owner = owner_of[nodes]
        key = (owner * (layer + 1) + depth[nodes]).double() + self._rand(nodes.numel(), device=device).double()
        order = torch.argsort(key, stable=True)
        nodes, owner = nodes[order], owner[order]
        per_graph = torch.bincount(owner, minlength=g)
        rank = torch.arange(nodes.numel(), device=device) - (per_graph.cumsum(0) - per_graph)[owner]
        chosen = torch.zeros(n, dtype=torch.bool, device=device)
        chosen[members[nodes[rank < limit[owner]]]] = True
        return chosen
