"""GIN graph encoder (Xu et al. 2019) as in InfoGraph / GraphCL: sum pooling of every layer, concatenated.

The neighbourhood sum of every layer is one sparse CSR matrix product (the adjacency is built once per forward
and shared by the layers) with a hand-written backward, instead of PyG's generic message passing, which gathers
one message per edge and scatters them back. It computes the same function as ``torch_geometric.nn.GINConv``
(``eps`` = 0, sum aggregation) with the same parameters, state_dict keys and seeded initialisation.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .._validation import check_int

__all__ = ["Adjacency", "GINEncoder", "GINLayer"]


def _csr(rows: Tensor, cols: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """The ``n x n`` CSR matrix with a one at (rows[k], cols[k]) for every k (repeated pairs add up). Its indices
    are int32 when they fit: the CPU sparse product (MKL) converts int64 indices at every call otherwise."""
    index = torch.int32 if max(n, rows.numel()) < 2**31 else torch.long
    if rows.numel() > 1 and not bool((rows[1:] >= rows[:-1]).all()):  # PyG's edges are usually sorted already
        order = torch.argsort(rows, stable=True)
        rows, cols = rows[order], cols[order]
    crow = torch.zeros(n + 1, dtype=index, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    values = torch.ones(rows.numel(), dtype=dtype, device=rows.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, cols.to(index), values, (n, n), check_invariants=False)


class _SelfPlusSum(torch.autograd.Function):
    """``h + A @ h`` for the constant adjacency ``A`` of an :class:`Adjacency`; the backward multiplies by
    ``A^T`` (built on first use, or ``A`` itself for a symmetric graph)."""

    @staticmethod
    def forward(ctx, adj: Adjacency, h: Tensor) -> Tensor:
        ctx.adj = adj
        return torch.addmm(h, adj.matrix(h.dtype), h)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous()
        return None, torch.addmm(grad, ctx.adj.matrix(grad.dtype, transposed=True), grad)


class Adjacency:
    """The neighbourhood sum with a self loop, ``out[i] = h[i] + sum of h[j] over edges j -> i``, of
    ``edge_index`` (PyG's convention: ``edge_index[0]`` the source, ``edge_index[1]`` the target) on ``num_nodes``
    nodes, as a differentiable map ``h -> (I + A) h`` (one sparse CSR product) in ``h``'s dtype and on
    ``edge_index``'s device. ``symmetric=True`` says that every edge's reverse is an edge too (``A = A^T``, as in
    the TU data sets and their GraphCL views), so one matrix serves the forward and the backward. The matrices are
    built on first use and reused by the later calls (the layers of one forward)."""

    def __init__(self, edge_index: Tensor, num_nodes: int, *, symmetric: bool = False) -> None:
        self.edge_index, self.num_nodes, self.symmetric = edge_index, int(num_nodes), bool(symmetric)
        self._mats: dict[tuple[torch.dtype, bool], Tensor] = {}

    def matrix(self, dtype: torch.dtype, transposed: bool = False) -> Tensor:
        """``A`` (rows are targets) or ``A^T`` as a CSR matrix of ``dtype``."""
        transposed = transposed and not self.symmetric
        key = (dtype, transposed)
        if key not in self._mats:
            src, dst = self.edge_index
            # A^T (rows = sources) needs no reordering of PyG's usual edge order; so does A = A^T when symmetric
            rows, cols = (src, dst) if transposed or self.symmetric else (dst, src)
            self._mats[key] = _csr(rows, cols, self.num_nodes, dtype)
        return self._mats[key]

    def __call__(self, h: Tensor) -> Tensor:
        return _SelfPlusSum.apply(self, h)


class GINLayer(nn.Module):
    """``nn((1 + eps) x + sum of the neighbours' x)`` with ``nn`` = Linear-ReLU-Linear: ``torch_geometric``'s
    ``GINConv(nn)`` with a fixed ``eps`` (a buffer, 0), the same attribute names (``nn``, ``eps``) and the same use
    of the random number generator at construction. When the input is wider than the hidden layer, the first
    Linear's weight is applied before the neighbourhood sum (it is linear, so the result is the same) to sum
    narrower rows."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.nn = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        for module in self.nn:  # GINConv re-initialises its MLP once built: keep the same draws
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.register_buffer("eps", torch.zeros(1))

    def forward(self, x: Tensor, adj: Adjacency) -> Tensor:
        first, act, second = self.nn
        project_first = first.in_features > first.out_features
        h = F.linear(x, first.weight) if project_first else x
        out = adj(h)  # h + the neighbours' sum
        if bool(self.eps.any()):
            out = out + self.eps * h
        out = out + first.bias if project_first else first(out)
        if isinstance(act, nn.ReLU):  # in place on a fresh tensor that no backward needs
            return second(out.relu_())
        return second(act(out))


class GINEncoder(nn.Module):
    """h = [sum-pool(x_1), ..., sum-pool(x_L)] with x_l = BN(ReLU(GINConv_l(x_{l-1}))), z = head(h).

    Each GINConv's MLP is Linear-ReLU-Linear. ``forward(batch)`` takes a PyG batch (``x``, ``edge_index``,
    ``batch``, ``num_graphs``) and returns the projections ``[num_graphs, projection]``; ``features(batch)`` the
    representations ``[num_graphs, hidden * layers]`` used for evaluation. A batch attribute ``symmetric=True``
    (set by :func:`hscl.training.pretrain_graphs` and ``embed_graphs`` when every edge's reverse is an edge) saves
    building the transposed adjacency; without it the encoder makes no assumption on the edges.
    """

    def __init__(self, in_features: int, hidden: int = 32, layers: int = 3, projection: int | None = None) -> None:
        super().__init__()
        for name, value in dict(in_features=in_features, hidden=hidden, layers=layers).items():
            check_int(name, value, 1)
        out = hidden * layers
        projection = out if projection is None else projection
        kwargs = dict(in_features=in_features, hidden=hidden, layers=layers, projection=projection)
        self.spec = {"name": "gin", "kwargs": kwargs}
        dims = [in_features] + [hidden] * layers
        self.convs = nn.ModuleList(GINLayer(a, hidden) for a in dims[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(out, out), nn.ReLU(inplace=True), nn.Linear(out, projection))

    def features(self, batch) -> Tensor:
        x, graph_of = batch.x, batch.batch
        adj = Adjacency(batch.edge_index, x.shape[0], symmetric=bool(getattr(batch, "symmetric", False)))
        pooled = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(conv(x, adj).relu_())
            pooled.append(x.new_zeros(batch.num_graphs, x.shape[1]).index_add_(0, graph_of, x))
        return torch.cat(pooled, dim=1)

    def forward(self, batch) -> Tensor:
        return self.head(self.features(batch))
