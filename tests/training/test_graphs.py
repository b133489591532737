"""Graph pre-training (:mod:`hscl.training.graphs`): the mini-batches are the ones PyG's DataLoader would make,
methods compared under one seed see the same batches and views (pairing), with deterministic results, labels
attached in order, singleton batches skipped, more than two views; frozen embeddings match the PyG path; and
``train_graph_encoder`` with the GIN or your own encoder."""

import hashlib
import re

import pytest
import torch
from torch import nn

from hscl.experiments import graphs as G
from hscl.losses.registry import make_loss
from hscl.models import GINEncoder
from hscl.training import embed_graphs, pretrain_graphs
from hscl.training.graphs import _Collated, _shuffled, graph_batches
from tests.conftest import PyGEncoder
from tests.conftest import pyg_batch as _pyg_batch

# small batches of two classes can hold one class only: H-SCL then has no anchor and says so
pytestmark = pytest.mark.filterwarnings("ignore:.*no valid anchor in this batch:RuntimeWarning")


def test_batches_are_pygs_dataloader_batches(mutag):
    from torch_geometric.loader import DataLoader

    graphs = list(mutag)
    data = _Collated(graphs)
    assert data.symmetric
    for shuffle, seed in [(True, 5), (True, 1005), (False, 0)]:
        gen = torch.Generator().manual_seed(seed)
        expected = DataLoader(graphs, batch_size=50, shuffle=shuffle, generator=gen if shuffle else None)
        got = list(graph_batches(data, 50, shuffle, seed))
        assert len(got) == len(expected)
        for (_, b), e in zip(got, expected, strict=True):
            assert b.num_graphs == e.num_graphs
            assert torch.equal(b.x, e.x) and torch.equal(b.edge_index, e.edge_index) and torch.equal(b.batch, e.batch)


class Recorder(nn.Module):
    """Wraps the encoder and records what it is given: the views' structure and features, call by call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, batch):
        digest = hashlib.sha256()
        for t in (batch.x, batch.edge_index, batch.batch):
            digest.update(t.detach().contiguous().numpy().tobytes())
        self.seen.append((batch.num_graphs, batch.x.shape[0], batch.edge_index.shape[1], digest.hexdigest()))
        return self.inner(batch)


def _run(graphs, loss_name, labels, seed=11, epochs=2, batch_size=16, record_labels=None):
    torch.manual_seed(seed)
    model = Recorder(GINEncoder(graphs[0].x.shape[1], hidden=8, layers=2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    loss = make_loss(loss_name, 0.5)

    def loss_fn(z, y):
        if record_labels is not None:
            record_labels.append(None if y is None else y.clone())
        return loss(z, y)

    history = pretrain_graphs(model, graphs, loss_fn, labels=labels, epochs=epochs, batch_size=batch_size, seed=seed)
    return model, start, history, torch.random.get_rng_state()


def test_pairing_same_batches_and_views_whatever_the_loss_and_labels(mutag):
    graphs, labels = list(mutag)[:70], mutag.labels[:70]
    unsup, start_u, _, rng_u = _run(graphs, "ucl", None)
    sup, start_s, _, rng_s = _run(graphs, "scl", labels)
    hard, start_h, _, rng_h = _run(graphs, "hscl-beta", labels)
    assert unsup.seen and unsup.seen == sup.seen == hard.seen  # same batches, same views, call by call
    for k in start_u:
        assert torch.equal(start_u[k], start_s[k]) and torch.equal(start_u[k], start_h[k]), k
    assert torch.equal(rng_u, rng_s) and torch.equal(rng_u, rng_h)  # the global RNG is used alike
    # and the views differ from step to step and between the two views of a step
    assert len({s[3] for s in unsup.seen}) == len(unsup.seen)


def test_same_seed_same_history_and_parameters(mutag):
    graphs, labels = list(mutag)[:70], mutag.labels[:70]
    a, _, hist_a, _ = _run(graphs, "hscl-beta", labels)
    b, _, hist_b, _ = _run(graphs, "hscl-beta", labels)
    assert hist_a == hist_b
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    _, _, hist_c, _ = _run(graphs, "hscl-beta", labels, seed=12)
    assert hist_c != hist_a


def test_labels_are_attached_in_order_and_singletons_skipped(mutag):
    graphs = list(mutag)[:33]  # batches of 16: 16, 16 and a single graph, which is skipped
    labels = torch.arange(100, 133)  # one distinct label per graph: the loss sees which graphs it gets
    seen = []
    model, _, history, _ = _run(graphs, "scl", labels, epochs=2, record_labels=seen)
    assert len(seen) == 4 and len(model.seen) == 8  # two steps per epoch, two views per step
    for epoch in range(2):
        order = _shuffled(33, 11 + 1000 * epoch)
        for step, idx in enumerate(order.split(16)[:2]):
            assert torch.equal(seen[2 * epoch + step], labels[idx])
    assert all(s[0] == 16 for s in model.seen) and len(history) == 2
    unlabelled = []
    _run(graphs, "ucl", None, epochs=1, record_labels=unlabelled)
    assert unlabelled == [None, None]
    with pytest.raises(ValueError, match="one entry per graph"):
        pretrain_graphs(model, graphs, make_loss("scl", 0.5), labels=labels[:5], epochs=1)


def test_embed_graphs_matches_the_pyg_path(mutag):
    from torch_geometric.loader import DataLoader

    graphs = list(mutag)
    torch.manual_seed(0)
    model = GINEncoder(mutag.num_features)
    pretrain_graphs(model, graphs[:64], make_loss("ucl", 0.5), epochs=1, batch_size=32)  # non-trivial BN stats
    ref = PyGEncoder(mutag.num_features)
    ref.load_state_dict(model.state_dict())
    ref.eval()
    with torch.no_grad():
        expected = torch.cat([ref.features(b) for b in DataLoader(graphs, batch_size=256)])
    assert model.training
    got = embed_graphs(model, mutag)
    assert model.training  # restored
    assert got.shape == (len(graphs), 96)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    assert torch.allclose(embed_graphs(model, graphs, batch_size=7), got, rtol=1e-5, atol=1e-4)


# --- train_graph_encoder: the entry point by method name, with the GIN or your own encoder (issue 12) ---

_GRAPH_FACTORIES = """
from torch import nn


class NodeSum(nn.Module):
    def __init__(self, in_features=7, width=12):
        super().__init__()
        self.lin = nn.Linear(in_features, width)

    def forward(self, batch):
        h = self.lin(batch.x).relu()
        return h.new_zeros(batch.num_graphs, h.shape[1]).index_add_(0, batch.batch, h)


def make():
    return NodeSum()


def not_a_module():
    return 42
"""


def test_train_graph_encoder_gin_is_pretrain_graphs_by_name(mutag, one_thread):
    from hscl.training import train_graph_encoder

    graphs = list(mutag)[:40]
    model, history = train_graph_encoder(graphs, method="hscl-beta", epochs=1, batch_size=16, hidden=8, seed=2)
    torch.manual_seed(2)
    ref = GINEncoder(mutag.num_features, hidden=8)
    labels = torch.cat([g.y for g in graphs])
    expected = pretrain_graphs(ref, graphs, make_loss("hscl-beta", 0.5), labels=labels, epochs=1, batch_size=16, seed=2)
    assert isinstance(model, GINEncoder) and history == expected
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_train_graph_encoder_with_your_own_encoder(mutag, tmp_path, monkeypatch, one_thread):
    import hscl
    from hscl.checkpoint import load_model
    from hscl.models import ProjectedEncoder
    from hscl.training import train_graph_encoder

    graphs = list(mutag)[:40]
    (tmp_path / "my_graph_encoders.py").write_text(_GRAPH_FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_graph_encoders

    # a module: its output size (12) read from one forward, the head 12 -> 12 -> 6 built on it, trained in place
    net = my_graph_encoders.NodeSum(mutag.num_features)
    model, history = train_graph_encoder(graphs, method="ucl", encoder=net, projection=6, epochs=2, batch_size=16)
    assert isinstance(model, ProjectedEncoder) and model.backbone is net and model.feature_dim == 12
    assert len(history) == 2 and all(h == h for h in history)
    assert embed_graphs(model, graphs).shape == (40, 12)
    assert model(_pyg_batch(graphs[:5])).shape == (5, 6)
    with pytest.raises(ValueError, match="save needs your encoder as a factory string"):
        train_graph_encoder(graphs, encoder=net, epochs=1, save=tmp_path / "x.pt")
    # a factory: saved with its factory string and rebuilt by load_model, only when allowed
    model, _ = train_graph_encoder(
        graphs, encoder="my_graph_encoders:make", epochs=1, batch_size=16, save=tmp_path / "m.pt"
    )
    with pytest.raises(ValueError, match="pass allow_factory='my_graph_encoders:make'"):
        load_model(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="rebuilding it imports and runs that code"):
        load_model(tmp_path / "m.pt", allow_factory="other_module:make")
    again, meta = load_model(tmp_path / "m.pt", allow_factory="my_graph_encoders:make")
    assert torch.equal(embed_graphs(again, graphs), embed_graphs(model, graphs))
    assert meta["method"] == "hscl-beta" and meta["beta"] == 1.0 and meta["tau"] is None
    assert meta["hscl_version"] == hscl.__version__ and meta["augment"] == {"ratio": 0.2, "views": 2}
    for factory, message in (
        ("no_such_module:make", "cannot import module 'no_such_module'"),
        ("my_graph_encoders:missing", "module 'my_graph_encoders' has no attribute 'missing'"),
        ("my_graph_encoders:not_a_module", "returned a builtins.int, not a torch.nn.Module"),
        ("my_graph_encoders.make()", "is written 'package.module:function'"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            train_graph_encoder(graphs, encoder=factory, epochs=1)
    # neither a module nor a factory: one check (hscl.models.encoder_argument) names the argument
    neither = "must be a torch.nn.Module or 'package.module:factory', got "
    with pytest.raises(ValueError, match=re.escape(f"encoder {neither}int")):
        train_graph_encoder(graphs, encoder=3, epochs=1)
    with pytest.raises(ValueError, match=re.escape(f"backbone {neither}NoneType")):
        ProjectedEncoder(None, 4)
    with pytest.raises(ValueError, match="unknown method 'byol'"):
        train_graph_encoder(graphs, method="byol")


def test_more_than_two_views(tmp_path):
    from hscl import losses
    from hscl.models import GINEncoder
    from hscl.training import pretrain_graphs

    dataset = G.load_tu("MUTAG", cache=tmp_path)
    seen = []

    def loss_fn(z, labels):
        seen.append(z.shape)
        return losses.HSCL(beta=1.0)(z, labels)

    model = GINEncoder(dataset.num_features, hidden=8, layers=2)
    history = pretrain_graphs(model, list(dataset)[:40], loss_fn, labels=dataset.labels[:40], epochs=1, views=3)
    assert seen and all(s[1] == 3 for s in seen) and history[0] > 0
    with pytest.raises(ValueError, match="views must be an int >= 2"):
        pretrain_graphs(model, list(dataset)[:40], loss_fn, views=1)
