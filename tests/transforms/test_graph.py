"""Graph augmentations (:mod:`hscl.transforms.graph`): invariants (sizes, valid and symmetric edges inside each
graph, every graph kept), determinism under a seed, several views in one call."""

import pytest
import torch

from hscl.transforms import GraphAugment
from hscl.transforms.graph import OPS


def _check(out, batch):
    assert out.num_graphs == batch.num_graphs
    assert torch.bincount(out.batch, minlength=batch.num_graphs).min() >= 1, "a graph lost all its nodes"
    assert out.x.shape == (out.batch.numel(), batch.x.shape[1])
    ei = out.edge_index
    if ei.numel():
        assert int(ei.min()) >= 0 and int(ei.max()) < out.x.shape[0]
        assert torch.equal(out.batch[ei[0]], out.batch[ei[1]]), "an edge crosses graphs"
        assert bool((ei[0] != ei[1]).all()), "self loop"
        fwd = set(map(tuple, ei.t().tolist()))
        assert fwd == {(b, a) for a, b in fwd}, "edges must stay symmetric"
    assert torch.equal(out.y, batch.y)


@pytest.mark.parametrize("ops", [(op,) for op in OPS] + [OPS])
@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.6])
def test_invariants(batch, ops, ratio):
    out = GraphAugment(ops, ratio=ratio, generator=torch.Generator().manual_seed(0))(batch)
    _check(out, batch)
    if ratio == 0.0:
        assert out.x.shape == batch.x.shape and out.edge_index.shape == batch.edge_index.shape
    elif ops == ("node_drop",) or ops == ("subgraph",):
        assert out.x.shape[0] < batch.x.shape[0]
    elif ops == ("attr_mask",):
        assert (out.x.abs().sum(1) == 0).sum() > (batch.x.abs().sum(1) == 0).sum()
    elif ops == ("edge_perturb",):
        before = set(map(tuple, batch.edge_index.t().tolist()))
        after = set(map(tuple, out.edge_index.t().tolist()))
        assert before - after and after - before, "some edges removed and some added"


def _components(edges, nodes):
    """Connected components (as frozensets) of the undirected graph on ``nodes`` with ``edges``."""
    adj = {v: set() for v in nodes}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen, comps = set(), []
    for v in nodes:
        if v not in seen:
            comp, todo = set(), [v]
            while todo:
                u = todo.pop()
                if u not in comp:
                    comp.add(u)
                    todo.extend(adj[u] - comp)
            seen |= comp
            comps.append(frozenset(comp))
    return comps


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.9])
def test_subgraph_is_connected_with_the_target_size(batch, ratio):
    out = GraphAugment(("subgraph",), ratio=ratio, generator=torch.Generator().manual_seed(1))(batch)
    kept = torch.bincount(out.batch, minlength=batch.num_graphs)
    full = torch.bincount(batch.batch, minlength=batch.num_graphs)
    edges = out.edge_index.t().tolist()
    for gi in range(batch.num_graphs):
        nodes = torch.nonzero(out.batch == gi).flatten().tolist()
        comps = _components([e for e in edges if e[0] in set(nodes)], nodes)
        assert len(comps) == 1, f"graph {gi}: the subgraph is not connected"
        orig_nodes = torch.nonzero(batch.batch == gi).flatten().tolist()
        orig_edges = [e for e in batch.edge_index.t().tolist() if e[0] in set(orig_nodes)]
        largest = max(len(c) for c in _components(orig_edges, orig_nodes))
        target = int(torch.ceil((1 - ratio) * full[gi].float()))
        assert int(kept[gi]) <= target
        if largest == len(orig_nodes):  # a connected graph reaches the target exactly
            assert int(kept[gi]) == target


def test_subgraph_on_a_path_and_disconnected_graphs():
    from torch_geometric.data import Batch, Data

    path = torch.tensor([[i, i + 1] for i in range(49)] + [[i + 1, i] for i in range(49)]).t()
    two = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2]]).t()  # two components of two nodes
    batch = Batch.from_data_list([Data(x=torch.ones(50, 1), edge_index=path), Data(x=torch.ones(4, 1), edge_index=two)])
    for seed in range(5):
        out = GraphAugment(("subgraph",), ratio=0.2, generator=torch.Generator().manual_seed(seed))(batch)
        kept = torch.bincount(out.batch, minlength=2)
        assert kept.tolist() == [40, 2]  # the path reaches its target; the other keeps its start's component
        assert out.edge_index.shape[1] == 2 * 39 + 2


def test_seeded_determinism(batch):
    a = GraphAugment(generator=torch.Generator().manual_seed(7))(batch)
    b = GraphAugment(generator=torch.Generator().manual_seed(7))(batch)
    c = GraphAugment(generator=torch.Generator().manual_seed(8))(batch)
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    assert not (a.x.shape == c.x.shape and torch.equal(a.edge_index, c.edge_index))


def test_bad_arguments():
    with pytest.raises(ValueError, match="ops must be a non-empty subset"):
        GraphAugment(("rotate",))
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
        GraphAugment(ratio=1.0)


def _view(out, v, g):
    """View ``v`` of a ``views`` output of a batch of ``g`` graphs, renumbered as a batch of its own."""
    from types import SimpleNamespace

    nodes = torch.nonzero(out.batch // g == v).flatten()
    edges = out.edge_index[:, out.batch[out.edge_index[0]] // g == v]
    y = out.y[v * g : (v + 1) * g]
    return SimpleNamespace(
        num_graphs=g, x=out.x[nodes], edge_index=edges - nodes[0], batch=out.batch[nodes] - v * g, y=y
    )


@pytest.mark.parametrize("ops", [(op,) for op in OPS] + [OPS])
def test_several_views_in_one_call(batch, ops):
    g = batch.num_graphs
    out = GraphAugment(ops, ratio=0.3, generator=torch.Generator().manual_seed(2)).views(batch, 3)
    assert out.num_graphs == 3 * g and torch.equal(out.y, batch.y.repeat(3))
    assert bool((out.batch[1:] >= out.batch[:-1]).all()), "nodes stay in graph order"
    views = [_view(out, v, g) for v in range(3)]
    for view in views:
        _check(view, batch)
    if ops != ("edge_perturb",):  # the views are drawn independently
        assert not torch.equal(views[0].x, views[1].x) or not torch.equal(views[1].x, views[2].x)
    same = GraphAugment(ops, ratio=0.0, generator=torch.Generator().manual_seed(2)).views(batch, 2)
    for v in range(2):  # ratio 0: every view is the batch itself
        view = _view(same, v, g)
        assert torch.equal(view.x, batch.x) and torch.equal(view.batch, batch.batch)
        assert set(map(tuple, view.edge_index.t().tolist())) == set(map(tuple, batch.edge_index.t().tolist()))
