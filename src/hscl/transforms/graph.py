"""Graph augmentations of GraphCL (You et al. 2020), batched: node dropping, edge perturbation, subgraph (random
walk) and attribute masking, one chosen at random per graph, applied to a whole PyG batch at once.

Every random draw comes from the given generator (which must live on the batch's device), so a seed gives the
same views. Each graph keeps at least one node; edges stay inside their graph and symmetric.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["OPS", "GraphAugment"]

OPS = ("node_drop", "edge_perturb", "subgraph", "attr_mask")


class GraphAugment:
    """Apply one augmentation per graph, chosen uniformly among ``ops``, each with strength ``ratio``.

    * ``node_drop``: each node is removed with probability ``ratio`` (with its edges).
    * ``edge_perturb``: each undirected edge is removed with probability ``ratio``, and ``ratio`` x (number of
      edges) random node pairs of the same graph are connected.
    * ``subgraph``: the nodes visited by a random walk from a random start, about (1 - ratio) x n of them.
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
            walk = self._random_walk(edge_index, node_graph, ptr, sizes, choice == OPS.index("subgraph"))
            keep &= walk | (node_op != OPS.index("subgraph"))
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

    def _random_walk(self, edge_index, node_graph, ptr, sizes, active) -> Tensor:
        """Nodes visited by one random walk per active graph, long enough to visit ~(1 - ratio) x n nodes."""
        device = edge_index.device
        n = node_graph.shape[0]
        visited = torch.zeros(n, dtype=torch.bool, device=device)
        graphs = torch.nonzero(active & (sizes > 0)).flatten()
        if graphs.numel() == 0 or self.ratio == 0:
            return visited | active[node_graph]
        order = torch.argsort(edge_index[0], stable=True)
        col = edge_index[1, order]
        rowptr = torch.zeros(n + 1, dtype=torch.long, device=device)
        rowptr[1:] = torch.bincount(edge_index[0], minlength=n).cumsum(0)
        cur = ptr[graphs] + (self._rand(graphs.numel(), device=device) * sizes[graphs]).long()
        visited[cur] = True
        target = max(1, math.ceil((1 - self.ratio) * int(sizes[graphs].max())))
        for _ in range(3 * target):
            deg = rowptr[cur + 1] - rowptr[cur]
            step = rowptr[cur] + (self._rand(cur.numel(), device=device) * deg).long()
            cur = torch.where(deg > 0, col[step.clamp_max(max(col.numel() - 1, 0))], cur)
            visited[cur] = True
        # trim each graph to about (1 - ratio) x its size: its visited nodes in index order, up to that count
        counts = torch.cat([visited.new_zeros(1, dtype=torch.long), torch.cumsum(visited.long(), 0)])
        rank = counts[1:] - 1 - counts[ptr[node_graph]]
        limit = torch.ceil((1 - self.ratio) * sizes.float()).long()[node_graph]
        return visited & (rank < limit)


def _unique_first(key: Tensor) -> tuple[Tensor, Tensor]:
    """Unique values of ``key`` and the index of each one's first occurrence."""
    unique, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((unique.numel(),), key.numel(), dtype=torch.long, device=key.device)
    first.scatter_reduce_(0, inverse, torch.arange(key.numel(), device=key.device), reduce="amin")
    return unique, torch.sort(first).values
