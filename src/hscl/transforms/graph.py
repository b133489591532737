"""Graph augmentations of GraphCL (You et al. 2020), batched: node dropping, edge perturbation, subgraph
(connected, grown from a random node) and attribute masking, one chosen at random per graph, applied to a whole
PyG batch at once.

Every random draw comes from the given generator (which must live on the batch's device), so a seed gives the
same views. Each graph keeps at least one node; edges stay inside their graph and symmetric.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["OPS", "GraphAugment"]

OPS = ("node_drop", "edge_perturb", "subgraph", "attr_mask")


class GraphAugment:
    """Apply one augmentation per graph, chosen uniformly among ``ops``, each with strength ``ratio``.

    * ``node_drop``: each node is removed with probability ``ratio`` (with its edges).
    * ``edge_perturb``: each undirected edge is removed with probability ``ratio``, and ``ratio`` x (number of
      edges) random node pairs of the same graph are connected.
    * ``subgraph``: a connected subgraph of about (1 - ratio) x n nodes grown from a random node, breadth-first
      layer by layer with the last layer sampled at random (GraphCL grows one random neighbour at a time).
    * ``attr_mask``: each node's features are zeroed with probability ``ratio``.

    Called on a PyG ``Batch``; returns a ``torch_geometric.data.Batch`` with ``x``, ``edge_index``, ``batch`` and
    ``y`` and the same number of graphs.
    """

    def __init__(self, ops=OPS, ratio: float = 0.2, generator: torch.Generator | None = None) -> None:
        ops = tuple(ops)
        unknown = [o for o in ops if o not in OPS]
        if not ops or unknown:
            raise ValueError(f"ops must be a non-empty subset of {OPS}, got {ops}")
        if not 0 <= ratio < 1:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        self.ops, self.ratio, self.generator = ops, float(ratio), generator

    def _rand(self, *shape, device) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=device)

    def __call__(self, batch):
        from torch_geometric.data import Batch
        from torch_geometric.utils import subgraph

        x, edge_index, node_graph = batch.x, batch.edge_index, batch.batch
        device, n, g = x.device, x.shape[0], batch.num_graphs
        ptr = torch.zeros(g + 1, dtype=torch.long, device=device)
        ptr[1:] = torch.bincount(node_graph, minlength=g).cumsum(0)
        sizes = ptr[1:] - ptr[:-1]
        choice = torch.tensor([OPS.index(o) for o in self.ops], device=device)[
            torch.randint(len(self.ops), (g,), generator=self.generator, device=device)
        ]
        node_op = choice[node_graph]

        if "edge_perturb" in self.ops:
            edge_index = self._perturb_edges(edge_index, node_graph, choice, ptr, sizes)
        keep = torch.ones(n, dtype=torch.bool, device=device)
        if "node_drop" in self.ops:
            keep &= ~((self._rand(n, device=device) < self.ratio) & (node_op == OPS.index("node_drop")))
        if "subgraph" in self.ops:
            grown = self._grow_subgraph(edge_index, node_graph, ptr, sizes, choice == OPS.index("subgraph"))
            keep &= grown | (node_op != OPS.index("subgraph"))
        # every graph keeps at least one node: its first, if nothing else survived
        kept_per_graph = torch.bincount(node_graph[keep], minlength=g)
        keep[ptr[:-1][(kept_per_graph == 0) & (sizes > 0)]] = True
        if "attr_mask" in self.ops:
            masked = (self._rand(n, device=device) < self.ratio) & (node_op == OPS.index("attr_mask"))
            x = x.masked_fill(masked[:, None], 0.0)
        edge_index, _ = subgraph(keep, edge_index, relabel_nodes=True, num_nodes=n)
        out = Batch(x=x[keep], edge_index=edge_index, batch=node_graph[keep], y=batch.y)
        out._num_graphs = g
        return out

    def _perturb_edges(self, edge_index, node_graph, choice, ptr, sizes) -> Tensor:
        device = edge_index.device
        n = node_graph.shape[0]
        active = choice == OPS.index("edge_perturb")
        src, dst = edge_index
        # one decision per undirected edge: both directions share the key (min, max)
        key = torch.minimum(src, dst) * n + torch.maximum(src, dst)
        unique, inverse = torch.unique(key, return_inverse=True)
        drop = (self._rand(unique.numel(), device=device) < self.ratio)[inverse] & active[node_graph[src]]
        edge_index = edge_index[:, ~drop]
        # add about ratio x (undirected edges) random pairs inside each active graph
        undirected = torch.bincount(node_graph[src[src < dst]], minlength=sizes.numel())
        add = torch.where(active & (sizes > 1), (undirected.float() * self.ratio).round().long(), 0)
        if int(add.sum()) == 0:
            return edge_index
        owner = torch.repeat_interleave(torch.arange(sizes.numel(), device=device), add)
        u = ptr[owner] + (self._rand(owner.numel(), device=device) * sizes[owner]).long()
        v = ptr[owner] + (self._rand(owner.numel(), device=device) * sizes[owner]).long()
        ok = u != v
        u, v = u[ok], v[ok]
        new = torch.cat([edge_index, torch.stack([u, v]), torch.stack([v, u])], dim=1)
        key = new[0] * n + new[1]
        _, first = _unique_first(key)
        return new[:, first]

    def _grow_subgraph(self, edge_index, node_graph, ptr, sizes, active) -> Tensor:
        """A connected subgraph of each active graph: grown from a random node one breadth-first layer at a time
        until it holds ceil((1 - ratio) x n) nodes, the last layer sampled at random. The loop runs once per layer
        (at most the largest eccentricity), not once per node, so large graphs (DD, REDDIT) cost a few dozen
        vectorised steps. A graph whose component is smaller than the target keeps the whole component."""
        device = edge_index.device
        n, g = node_graph.shape[0], sizes.numel()
        chosen = torch.zeros(n, dtype=torch.bool, device=device)
        graphs = torch.nonzero(active & (sizes > 0)).flatten()
        if graphs.numel() == 0 or self.ratio == 0:
            return chosen | active[node_graph]
        start = ptr[graphs] + (self._rand(graphs.numel(), device=device) * sizes[graphs]).long()
        chosen[start] = True
        limit = torch.where(active, torch.ceil((1 - self.ratio) * sizes.float()).long(), 0)
        src, dst = edge_index
        for _ in range(n):  # at most one layer per node; ends as soon as no active graph can grow
            need = (limit - torch.bincount(node_graph[chosen], minlength=g)).clamp_min(0)
            reach = chosen[src] & ~chosen[dst] & (need[node_graph[dst]] > 0)
            if not bool(reach.any()):
                break
            frontier = torch.zeros(n, dtype=torch.bool, device=device)
            frontier[dst[reach]] = True
            nodes = torch.nonzero(frontier).flatten()
            # random order inside each graph: shuffle, then a stable sort by graph keeps the shuffle per graph
            nodes = nodes[torch.argsort(self._rand(nodes.numel(), device=device))]
            nodes = nodes[torch.argsort(node_graph[nodes], stable=True)]
            owner = node_graph[nodes]
            per_graph = torch.bincount(owner, minlength=g)
            rank = torch.arange(nodes.numel(), device=device) - (per_graph.cumsum(0) - per_graph)[owner]
            chosen[nodes[rank < need[owner]]] = True
        return chosen


def _unique_first(key: Tensor) -> tuple[Tensor, Tensor]:
    """Unique values of ``key`` and the index of each one's first occurrence."""
    unique, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((unique.numel(),), key.numel(), dtype=torch.long, device=key.device)
    first.scatter_reduce_(0, inverse, torch.arange(key.numel(), device=key.device), reduce="amin")
    return unique, torch.sort(first).values
