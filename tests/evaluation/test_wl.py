"""WL subtree features and kernel against grakel's WeisfeilerLehman + VertexHistogram (the oracle), on toy graphs
and on the bundled MUTAG; the recovery of the initial node labels; bad input."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from hscl.datasets.tu import GraphDataset, load_tu
from hscl.evaluation import initial_node_labels, wl_kernel, wl_subtree_features

SHARED_TU = Path(__file__).resolve().parents[3] / "shared" / "data" / "TU"
needs_shared = pytest.mark.skipif(not SHARED_TU.is_dir(), reason="../shared/data/TU is not beside this checkout")


def graph(edges, labels, *, num_labels=4, undirected=True):
    e = torch.tensor(edges, dtype=torch.long).view(-1, 2).t()
    if undirected:
        e = torch.cat([e, e.flip(0)], 1)
    x = torch.nn.functional.one_hot(torch.tensor(labels), num_labels).float()
    return Data(x=x, edge_index=e, num_nodes=len(labels))


def oracle_kernel(graphs, labels, h, normalize=False):
    """grakel's WL kernel on the same graphs (neighbours: the targets of a node's edges) and node labels."""
    grakel = pytest.importorskip("grakel")
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    gs, at = [], 0
    for g in graphs:
        n = int(g.num_nodes)
        adjacency = {v: {} for v in range(n)}
        for u, v in g.edge_index.t().tolist():
            adjacency[u][v] = 1.0
        gs.append(grakel.Graph(adjacency, node_labels={v: int(labels[at + v]) for v in range(n)}))
        at += n
    wl = WeisfeilerLehman(n_iter=h, base_graph_kernel=VertexHistogram, normalize=normalize)
    return wl.fit_transform(gs)


def toy_graphs():
    path = graph([(0, 1), (1, 2)], [0, 1, 0])
    triangle_tail = graph([(0, 1), (1, 2), (2, 0), (2, 3)], [0, 0, 1, 2])
    perm = [2, 0, 3, 1]  # the same graph, nodes renumbered: old node i becomes perm[i]
    edges = [(perm[u], perm[v]) for u, v in [(0, 1), (1, 2), (2, 0), (2, 3)]]
    permuted = graph(edges, [[0, 0, 1, 2][perm.index(i)] for i in range(4)])
    isolated = graph([(0, 1)], [0, 0, 1])  # node 2 has no edge
    no_edges = graph([], [0, 0, 3])
    single = graph([], [2])
    star = graph([(0, 1), (0, 2), (0, 3), (0, 4)], [1, 0, 0, 0, 0])
    return [path, triangle_tail, permuted, isolated, no_edges, single, star]


@pytest.mark.parametrize("h", [1, 2, 3, 5])
def test_toy_graphs_match_grakel_exactly(h):
    graphs = toy_graphs()
    labels = initial_node_labels(graphs)
    assert np.array_equal(labels, torch.cat([g.x.argmax(1) for g in graphs]).numpy())
    f = wl_subtree_features(graphs, h)
    assert f.format == "csr" and f.dtype == np.int64
    sizes = np.array([g.num_nodes for g in graphs])
    assert np.array_equal(np.asarray(f.sum(1)).ravel(), (h + 1) * sizes)  # every node counted once per iteration
    assert (f[1] != f[2]).nnz == 0  # isomorphic graphs, permuted nodes: identical rows
    assert np.array_equal(wl_kernel(f, normalize=False), oracle_kernel(graphs, labels, h))
    np.testing.assert_allclose(wl_kernel(f), oracle_kernel(graphs, labels, h, normalize=True), rtol=1e-12)


def test_zero_iterations_is_the_label_histogram():
    graphs = toy_graphs()
    f = wl_subtree_features(graphs, 0).toarray()
    labels = torch.cat([g.x.argmax(1) for g in graphs])
    expected = np.stack([np.bincount(g.x.argmax(1).numpy(), minlength=4) for g in graphs])
    assert np.array_equal(f, expected[:, np.unique(labels.numpy())])


def test_toy_kernel_by_hand():
    # path a-b-a against a-a: iteration 0 shares label a (2 x 2); later iterations share nothing.
    f = wl_subtree_features([graph([(0, 1), (1, 2)], [0, 1, 0]), graph([(0, 1)], [0, 0])], 2)
    assert wl_kernel(f, normalize=False).tolist() == [[15.0, 4.0], [4.0, 12.0]]
    assert wl_kernel(f)[0, 1] == pytest.approx(4 / np.sqrt(15 * 12))


@pytest.mark.parametrize("h", [1, 3])
def test_mutag_matches_grakel_exactly(h):
    ds = load_tu("MUTAG")
    labels = torch.cat([g.x.argmax(1) for g in ds]).numpy()  # MUTAG's x is the one-hot node label, nothing else
    assert np.array_equal(initial_node_labels(ds), labels)
    f = wl_subtree_features(ds, h)
    expected = oracle_kernel(ds, labels, h)
    assert np.array_equal(wl_kernel(f, normalize=False), expected)
    np.testing.assert_allclose(wl_kernel(f), oracle_kernel(ds, labels, h, True), rtol=1e-12)


def test_label_ids_do_not_matter_and_shuffled_graphs_permute_rows():
    ds = load_tu("MUTAG")
    base = wl_kernel(wl_subtree_features(ds, 3), normalize=False)
    renamed = wl_kernel(wl_subtree_features(ds, 3, initial=100 - 7 * initial_node_labels(ds)), normalize=False)
    assert np.array_equal(base, renamed)
    order = np.random.default_rng(0).permutation(len(ds))
    shuffled = wl_kernel(wl_subtree_features([ds[i] for i in order], 3), normalize=False)
    assert np.array_equal(shuffled, base[np.ix_(order, order)])


def test_initial_labels_after_attributes_and_degree_kinds():
    g1, g2 = graph([(0, 1)], [2, 0, 1], num_labels=3), graph([(0, 1), (1, 2)], [1, 1, 1], num_labels=3)
    one_hot = [g.x for g in (g1, g2)]
    attributes = (torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0]]), torch.ones(3, 2))  # binary values too
    for g, attr in zip((g1, g2), attributes, strict=True):
        g.x = torch.cat([attr, g.x], 1)  # continuous attributes first, then the one-hot labels, as load_tu does
    assert initial_node_labels([g1, g2]).tolist() == [2, 0, 1, 1, 1, 1]
    for g, x in zip((g1, g2), one_hot, strict=True):
        g.x = x[:, :1] * 0.3  # a continuous feature only, and degree features declared: the degree
    degree_kind = GraphDataset([g1, g2], "toy", 2, "normalised degree (max 2)")
    assert initial_node_labels(degree_kind).tolist() == [1, 1, 0, 1, 2, 1]
    with pytest.raises(ValueError, match="no one-hot block"):
        initial_node_labels([g1, g2])


@needs_shared
@pytest.mark.parametrize("name", ["ENZYMES", "PROTEINS"])
def test_initial_labels_are_the_raw_node_labels(name, tmp_path):
    ds = load_tu(name, data_root=SHARED_TU)
    raw = np.loadtxt(SHARED_TU / name / f"{name}_node_labels.txt", dtype=np.int64)
    assert np.array_equal(initial_node_labels(ds), np.unique(raw, return_inverse=True)[1])


def test_bad_input():
    graphs = toy_graphs()
    with pytest.raises(ValueError, match="iterations must be an int >= 0"):
        wl_subtree_features(graphs, -1)
    with pytest.raises(ValueError, match="initial must be 23 integer labels"):
        wl_subtree_features(graphs, 2, initial=np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="graphs is empty"):
        wl_subtree_features([], 2)
    with pytest.raises(ValueError, match=r"graph 0: edge_index refers to a node outside 0\.\.1"):
        wl_subtree_features([Data(x=torch.ones(2, 1), edge_index=torch.tensor([[0], [2]]), num_nodes=2)])
