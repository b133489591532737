"""The GIN encoder (:mod:`hscl.models.gin`) computes what PyG's GINConv computes: the same initialisation and
state-dict keys, the same forward pass and gradients (directed edges and a non-zero eps too), the adjacency product
with its transpose as gradient; and its shapes and spec."""

import pytest
import torch

from hscl.models import GINEncoder, build_model
from hscl.models.gin import Adjacency
from hscl.training.graphs import _is_symmetric
from tests.conftest import PyGEncoder
from tests.conftest import pyg_batch as _pyg_batch


def _directed_batch(seed=0, graphs=5, features=9):
    """Random directed graphs (no reverse edges guaranteed, unsorted edges, a repeated edge, isolated nodes)."""
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(graphs):
        n = int(torch.randint(3, 12, (1,), generator=g))
        e = torch.randint(n, (2, 3 * n), generator=g)
        e = torch.cat([e, e[:, :1]], dim=1)
        data.append(Data(x=torch.randn(n, features, generator=g), edge_index=e))
    return Batch.from_data_list(data)


def test_same_initialisation_and_state_dict_keys_as_ginconv(mutag):
    torch.manual_seed(3)
    ref = PyGEncoder(mutag.num_features)
    torch.manual_seed(3)
    new = GINEncoder(mutag.num_features)
    assert list(new.state_dict()) == list(ref.state_dict())
    for (k, a), b in zip(ref.state_dict().items(), new.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("in_features", [7, 50])  # aggregate first, and project first (in > hidden)
@pytest.mark.parametrize("train", [True, False])
def test_forward_and_gradients_match_ginconv(mutag, in_features, train):
    batch = _pyg_batch(list(mutag)[:40])
    if in_features != batch.x.shape[1]:
        batch.x = torch.randn(batch.x.shape[0], in_features, generator=torch.Generator().manual_seed(0))
    ref = PyGEncoder(in_features, hidden=32, layers=3, projection=16)
    new = GINEncoder(in_features, hidden=32, layers=3, projection=16)
    new.load_state_dict(ref.state_dict())
    ref.train(train)
    new.train(train)
    zr, zn = ref(batch), new(batch)
    assert torch.allclose(zn, zr, rtol=1e-5, atol=1e-5 * float(zr.detach().abs().max()))
    assert torch.allclose(new.features(batch), ref.features(batch), rtol=1e-5, atol=1e-4)
    # in float64 the two agree to rounding, gradients included
    ref, new = ref.double(), new.double()
    batch.x = batch.x.double()
    weights = torch.randn(zr.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (ref(batch) * weights).sum().backward()
    (new(batch) * weights).sum().backward()
    for (name, a), b in zip(ref.named_parameters(), new.parameters(), strict=True):
        assert torch.allclose(b.grad, a.grad, rtol=1e-9, atol=1e-9), name
    if train:  # the BatchNorm running statistics are updated alike
        for a, b in zip(ref.norms, new.norms, strict=True):
            assert torch.allclose(a.running_mean, b.running_mean) and torch.allclose(a.running_var, b.running_var)


def test_directed_edges_and_nonzero_eps_match_ginconv():
    batch = _directed_batch()
    assert not _is_symmetric(batch.edge_index, batch.x.shape[0])
    ref = PyGEncoder(9, hidden=8, layers=2, eps=0.3).double()
    new = GINEncoder(9, hidden=8, layers=2).double()
    new.load_state_dict(ref.state_dict())  # eps (0.3) comes with the state
    batch.x = batch.x.double().requires_grad_(True)
    (ref(batch) ** 2).sum().backward()
    grad_ref = batch.x.grad.clone()
    batch.x.grad = None
    (new(batch) ** 2).sum().backward()
    assert torch.allclose(batch.x.grad, grad_ref, rtol=1e-9, atol=1e-9)
    for (name, a), b in zip(ref.named_parameters(), new.parameters(), strict=True):
        assert torch.allclose(b.grad, a.grad, rtol=1e-9, atol=1e-9), name


@pytest.mark.parametrize("symmetric", [False, True])
def test_adjacency_is_i_plus_a_with_its_transpose_as_gradient(symmetric):
    batch = _directed_batch(seed=1)
    n = batch.x.shape[0]
    edge_index = batch.edge_index
    if symmetric:
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        assert _is_symmetric(edge_index, n)
    dense = torch.eye(n, dtype=torch.float64)
    dense.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.shape[1], dtype=torch.float64), True)
    h = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    out = Adjacency(edge_index, n, symmetric=symmetric)(h)
    assert torch.allclose(out, dense @ h)
    g = torch.randn(n, 4, dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, h, g)
    assert torch.allclose(grad, dense.T @ g)
    torch.autograd.gradcheck(lambda t: Adjacency(edge_index, n, symmetric=symmetric)(t), (h,))


def test_gin_encoder(batch):
    model = GINEncoder(batch.x.shape[1], hidden=32, layers=3, projection=16)
    assert model.features(batch).shape == (batch.num_graphs, 96)
    assert model(batch).shape == (batch.num_graphs, 16)
    assert isinstance(build_model(model.spec), GINEncoder)
    with pytest.raises(ValueError, match="layers must be an int >= 1"):
        GINEncoder(7, layers=0)
