"""The graph protocol: no test-fold label reaches supervised pre-training, a killed run resumes to the same
CSV, the SVM selects C on training folds only, reports and bad input."""

import csv

import numpy as np
import pytest
import torch

from hscl.evaluation import svm_accuracy
from hscl.experiments import graphs as G

SMALL = G.GraphConfig(epochs=1, batch_size=64, hidden=8, layers=2, folds=3)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_no_test_fold_label_reaches_supervised_pretraining(tmp_path):
    seen = []

    def spy(dataset, method, graphs, labels, cfg, seed, hook):
        seen.append((G.METHODS[method].supervised, {id(g) for g in graphs}, labels))
        return G._pretrain(dataset, method, graphs, labels, cfg, seed, hook)

    G.run(tmp_path, datasets=["MUTAG"], methods=["hscl-beta", "ucl"], seeds=[0], config=SMALL, cache=tmp_path,
          progress=False, pretrain_fn=spy)  # fmt: skip
    dataset = G.load_tu("MUTAG", cache=tmp_path)
    folds = G.fold_indices(dataset.labels.numpy(), SMALL.folds)
    supervised = [s for s in seen if s[0]]
    assert len(supervised) == SMALL.folds
    for (_, ids, labels), (train_idx, test_idx) in zip(supervised, folds, strict=True):
        # the spy sees the graphs the loss trains on: the training folds only, with their own labels
        assert len(ids) == len(train_idx) and torch.equal(labels, dataset.labels[train_idx])
        assert len(set(train_idx) & set(test_idx)) == 0
    unsupervised = [s for s in seen if not s[0]]
    assert len(unsupervised) == 1 and unsupervised[0][2] is None, "UCL pre-trains once per seed, without labels"


def test_killed_run_resumes_to_the_same_csv(tmp_path):
    kw = dict(datasets=["MUTAG"], methods=["scl", "ucl"], seeds=[0], config=SMALL, cache=tmp_path, progress=False)
    full = G.run(tmp_path / "full", **kw)

    calls = {"n": 0}

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return G._pretrain(*args)

    with pytest.raises(KeyboardInterrupt):
        G.run(tmp_path / "resumed", pretrain_fn=dying, **kw)
    partial = _rows(tmp_path / "resumed" / "results.csv")
    assert 0 < len(partial) < 6, "the CSV holds the finished cells only"
    G.run(tmp_path / "resumed", **kw)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_rows(tmp_path / "resumed" / "results.csv")) == strip(_rows(full))
    table, png = G.write_report(full)
    assert "| MUTAG |" in table.read_text() and png.read_bytes()[:4] == b"\x89PNG"


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        G.run(tmp_path, datasets=["MUTAG"], methods=["simclr"], cache=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown data set 'NOPE'"):
        G.run(tmp_path, datasets=["NOPE"], cache=tmp_path, progress=False)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "results.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="not a results CSV of this experiment"):
        G.run(tmp_path / "x", datasets=["MUTAG"], cache=tmp_path, progress=False)


def test_svm_picks_c_on_training_data_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = (x[:, 0] > 0).astype(int)
    acc, c = svm_accuracy(x[:60], y[:60], x[60:], y[60:])
    flipped, c2 = svm_accuracy(x[:60], y[:60], x[60:], 1 - y[60:])  # test labels never influence C
    assert c == c2 and acc == pytest.approx(1 - flipped) and acc > 0.8
    with pytest.raises(ValueError, match="single class"):
        svm_accuracy(x[:10], np.zeros(10), x[10:], y[10:])


def test_cli_reproduce_graphs(tmp_path, capsys, monkeypatch):
    from hscl.cli import main

    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(G, "GraphConfig", lambda **kw: SMALL.__class__(**{**SMALL.__dict__, **kw}))
    args = ["reproduce", "graphs", "--datasets", "MUTAG", "--methods", "ucl", "--seeds", "0", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "| MUTAG |" in out and "written:" in out
    assert len(_rows(tmp_path / "o" / "results.csv")) == SMALL.folds
    assert main([*args, "--epochs-for", "MUTAG=x", "--out", str(tmp_path / "o")]) == 2
    assert "--epochs-for takes NAME=E" in capsys.readouterr().err
    assert main(["reproduce", "graphs", "--datasets", "NOPE", "--out", str(tmp_path / "p")]) == 2
    assert "unknown data set 'NOPE'" in capsys.readouterr().err


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


def test_paired_difference():
    from hscl.experiments.graphs import paired_difference

    rows = [dict(dataset="D", method=m, seed=str(s), fold=str(f), accuracy=str(acc))
            for m, s, f, acc in [("a", 0, 0, 0.8), ("b", 0, 0, 0.7), ("a", 0, 1, 0.5), ("b", 0, 1, 0.5),
                                 ("a", 1, 0, 0.6), ("b", 1, 0, 0.9), ("a", 1, 1, 0.9)]]  # fmt: skip
    mean, sem, wins, ties, losses = paired_difference(rows, "D", "a", "b")  # (1, 1) has no "b": not paired
    diffs = [10.0, 0.0, -30.0]
    assert mean == pytest.approx(sum(diffs) / 3)
    assert sem == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(3))
    assert (wins, ties, losses) == (1, 1, 1)
    assert paired_difference(rows, "D", "a", "c") is None and paired_difference(rows, "E", "a", "b") is None
