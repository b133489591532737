"""``hscl reproduce graphs`` (:mod:`hscl.experiments.graphs`): no test-fold label reaches supervised
pre-training and the methods are paired, the untrained control is the methods' initialisation, a killed run resumes
to the same CSV, a resume with other settings is refused, the controls, the budget rule, the sweeps (chosen on an
inner split only), paired comparisons, the committed run's fingerprint, ``--diagnostics`` naming a data set of the
run, your own encoder; reports and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hscl.cli import main
from hscl.experiments import graphs as G
from tests.conftest import csv_rows as _rows
from tests.conftest import one_error_line as _one_error_line

SMALL = G.GraphConfig(epochs=1, batch_size=64, hidden=8, layers=2, folds=3)
FAST = ["untrained", "ucl", "scl"]


def test_no_test_fold_label_reaches_pretraining_and_methods_are_paired(tmp_path):
    seen = []

    def spy(dataset, method, graphs, labels, cfg, seed, epochs, hook):
        model = G._pretrain(dataset, method, graphs, labels, cfg, seed, epochs, hook)
        index = {id(g): i for i, g in enumerate(dataset)}
        seen.append((method, [index[id(g)] for g in graphs], labels, seed))
        return model

    G.run(
        tmp_path,
        datasets=["MUTAG"],
        methods=["hscl-beta", "ucl", "scl-labels", "ucl-transductive"],
        seeds=[0, 1],
        config=SMALL,
        cache=tmp_path,
        progress=False,
        pretrain_fn=spy,
    )
    dataset = G.load_tu("MUTAG", cache=tmp_path)
    folds = G.fold_indices(dataset.labels.numpy(), SMALL.folds)
    per_fold = [s for s in seen if s[0] != "ucl" or len(s[1]) < len(dataset)]
    assert len(per_fold) == 3 * SMALL.folds * 2, "every method pre-trains once per (seed, fold)"
    for train_idx, _ in folds:
        group = [s for s in per_fold if sorted(s[1]) == sorted(train_idx.tolist())]
        assert len(group) == 3 * 2, "each fold's pre-trainings see exactly its training graphs"
        for method, graph_ids, labels, _ in group:
            if method == "ucl":
                assert labels is None, "unsupervised methods get no labels"
            else:
                assert torch.equal(labels, dataset.labels[graph_ids])
        for seed in {s[3] for s in group}:  # pairing: the methods of a (seed, fold) share their seed
            assert sorted(s[0] for s in group if s[3] == seed) == ["hscl-beta", "scl-labels", "ucl"]
    transductive = [s for s in seen if len(s[1]) == len(dataset)]
    assert len(transductive) == 2 and all(s[2] is None for s in transductive), "once per seed, all graphs, no labels"


def test_untrained_control_is_the_methods_initialisation(tmp_path):
    dataset = G.load_tu("MUTAG", cache=tmp_path)
    a, b = (
        G._encoder(dataset, SMALL, 123),
        G._pretrain(dataset, "scl", list(dataset)[:20], dataset.labels[:20], SMALL, 123, 0),
    )
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_killed_run_resumes_to_the_same_csv(tmp_path):
    kw = dict(datasets=["MUTAG"], methods=FAST, seeds=[0], config=SMALL, cache=tmp_path, progress=False)
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
    assert 0 < len(partial) < 9, "the CSV holds the finished rows only"
    # a report of a partial run reads the number of folds from settings.json, not from the rows present
    assert "| GIN, untrained *(control)* |" in G.write_report(tmp_path / "resumed" / "results.csv")[0].read_text()
    G.run(tmp_path / "resumed", **kw)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(_rows(tmp_path / "resumed" / "results.csv")) == strip(_rows(full))
    table, png = G.write_report(full)
    text = table.read_text()
    assert "| GIN, untrained *(control)* |" in text and png.read_bytes()[:4] == b"\x89PNG"
    assert "SCL − UCL |" in text and "beat the untrained encoder" in text
    assert (tmp_path / "full" / "paired.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_with_other_settings_is_refused(tmp_path):
    kw = dict(datasets=["MUTAG"], methods=["untrained"], seeds=[0], cache=tmp_path, progress=False)
    G.run(tmp_path / "o", config=SMALL, **kw)
    other = G.GraphConfig(**{**SMALL.__dict__, "epochs": 2, "lr": 0.01})
    with pytest.raises(ValueError, match=r"other settings.*graph\.epochs: 1 there, 2 here.*graph\.lr: 0\.001 there"):
        G.run(tmp_path / "o", config=other, **kw)
    G.run(tmp_path / "o", config=SMALL, **{**kw, "seeds": [0, 1]})  # more seeds, same settings: resumes
    assert len(_rows(tmp_path / "o" / "results.csv")) == 2 * SMALL.folds
    # a row written under another configuration (settings.json replaced by hand) is refused as well
    rows = _rows(tmp_path / "o" / "results.csv")
    (tmp_path / "o" / "settings.json").unlink()
    with pytest.raises(ValueError, match="rows of another configuration"):
        G.run(tmp_path / "o", config=other, **kw)
    assert len(_rows(tmp_path / "o" / "results.csv")) == len(rows)


def test_controls(tmp_path, monkeypatch):
    from hscl.training import graph_classifier

    seen = []
    real = graph_classifier.fit_graph_classifier

    def spy(encoder, graphs, labels, test_graphs, test_labels, **kw):
        seen.append((len(graphs), len(test_graphs), kw["max_steps"]))
        return real(encoder, graphs, labels, test_graphs, test_labels, **kw)

    monkeypatch.setattr(graph_classifier, "fit_graph_classifier", spy)
    path = G.run(
        tmp_path,
        datasets=["MUTAG"],
        methods=["untrained", "wl", "supervised"],
        seeds=[0],
        config=SMALL,
        cache=tmp_path,
        progress=False,
    )
    rows = _rows(path)
    assert [r["method"] for r in rows[:3]] == ["untrained", "wl", "supervised"] and len(rows) == 3 * SMALL.folds
    dataset = G.load_tu("MUTAG", cache=tmp_path)
    folds = G.fold_indices(dataset.labels.numpy(), SMALL.folds)
    assert seen == [(len(tr), len(te), SMALL.steps_per_epoch(len(tr))) for tr, te in folds]
    wl = [float(r["accuracy"]) for r in rows if r["method"] == "wl"]
    assert np.mean(wl) > 0.75, "WL subtree features classify MUTAG well above the majority class (66.5%)"


def test_budget_rule():
    cfg = G.GraphConfig(min_steps=300, min_epochs=20, batch_size=128)
    assert cfg.steps_per_epoch(169) == 2 and cfg.steps_per_epoch(129) == 1 and cfg.steps_per_epoch(130) == 2
    assert cfg.epochs_of(169) == 150  # MUTAG's training folds: 2 steps per epoch -> 150 epochs = 300 steps
    assert cfg.epochs_of(3699) == 20  # NCI1: 29 steps per epoch, the 20-epoch floor gives 580 steps
    assert G.GraphConfig(epochs=3).epochs_of(3699) == 3
    with pytest.raises(ValueError, match="min_steps must be an int >= 1"):
        G.GraphConfig(min_steps=0)
    with pytest.raises(ValueError, match="views must be an int >= 2"):
        G.GraphConfig(views=1)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        G.GraphConfig(batch_size=1)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        G.run(tmp_path, datasets=["MUTAG"], methods=["simclr"], cache=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown data set 'NOPE'"):
        G.run(tmp_path, datasets=["NOPE"], cache=tmp_path, progress=False)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "results.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="not a results CSV of this experiment"):
        G.run(tmp_path / "x", datasets=["MUTAG"], cache=tmp_path, progress=False)


def test_cli_reproduce_graphs(tmp_path, capsys, monkeypatch):
    from hscl.cli import main

    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    args = ["reproduce", "graphs", "--set", f"graph.folds={SMALL.folds}", "--datasets", "MUTAG", "--methods", "ucl"]
    args += ["--seeds", "0", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "| UCL |" in out and "written:" in out
    assert len(_rows(tmp_path / "o" / "results.csv")) == SMALL.folds
    assert main([*args[:-1], "2", "--out", str(tmp_path / "o")]) == 2
    assert "graph.epochs: 1 there, 2 here" in capsys.readouterr().err
    assert main([*args, "--min-steps", "0", "--out", str(tmp_path / "p")]) == 2
    assert "min_steps must be an int >= 1" in capsys.readouterr().err
    assert main(["reproduce", "graphs", "--datasets", "NOPE", "--out", str(tmp_path / "p")]) == 2
    assert "unknown data set 'NOPE'" in capsys.readouterr().err


def test_paired_comparison_pairs_by_seed_and_fold():
    rows = [
        dict(dataset="D", method=m, seed=str(s), fold=str(f), accuracy=str(acc))
        for m, s, f, acc in [
            ("a", 0, 0, 0.8),
            ("b", 0, 0, 0.7),
            ("a", 0, 1, 0.5),
            ("b", 0, 1, 0.5),
            ("a", 1, 0, 0.6),
            ("b", 1, 0, 0.9),
            ("a", 1, 1, 0.9),
        ]
    ]
    got = G.paired_comparison(rows, "D", "a", "b", folds=2)  # (1, 1) has no "b": not paired
    diffs = np.array([0.1, 0.0, -0.3])
    assert got.n == 3 and got.mean == pytest.approx(diffs.mean())
    assert got.se == pytest.approx(np.sqrt((1 / 3 + 1 / (2 - 1)) * diffs.var(ddof=1)))
    assert (got.wins, got.ties, got.losses) == (1, 1, 1) and got.verdict == "no difference detected"
    assert G.paired_comparison(rows, "D", "a", "c", 2) is None and G.paired_comparison(rows, "E", "a", "b", 2) is None


def test_running_experiment_fingerprint_is_unchanged():
    """The committed run's settings (no sweep entries) keep their fingerprint."""
    import json
    from pathlib import Path

    from hscl.training.runs import fingerprint

    saved = Path(__file__).resolve().parents[2] / "results" / "graphs" / "settings.json"
    if not saved.exists():
        pytest.skip("no results/graphs/settings.json")
    expected = json.loads(saved.read_text())["fingerprint"]
    assert fingerprint(G.GraphConfig(min_steps=300, min_epochs=20, svm_jobs=2).settings()) == expected


def test_sweep_selects_on_inner_split_only(tmp_path):
    seen = []
    dataset = G.load_tu("MUTAG", cache=tmp_path)

    def spy(dataset, method, graphs, labels, cfg, seed, epochs, hook, **kw):
        index = {id(g): i for i, g in enumerate(dataset)}
        seen.append((method, [index[id(g)] for g in graphs], labels, seed, epochs, kw))
        return G._encoder(dataset, cfg, seed)  # untrained: fast, the selection logic is under test

    kw = dict(datasets=["MUTAG"], seeds=[0], config=SMALL, cache=tmp_path, progress=False, pretrain_fn=spy)
    path = G.run(tmp_path / "o", methods=["hscl-sweep", "hscl-labels-sweep"], **kw)
    folds = G.fold_indices(dataset.labels.numpy(), SMALL.folds)
    per_row = len(G.SWEEP_CANDIDATES) + 1
    assert len(seen) == 2 * SMALL.folds * per_row
    rows = _rows(path)
    for f, (train_idx, test_idx) in enumerate(folds):
        for k, (entry, base) in enumerate(G.SWEEPS.items()):
            calls = seen[(f * 2 + k) * per_row : (f * 2 + k + 1) * per_row]
            seed = G.group_seed("MUTAG", 0, f)
            assert {c[0] for c in calls} == {base} and {c[3] for c in calls} == {seed}, "paired with the group"
            fit, val = G.inner_split(dataset.labels[train_idx].numpy(), seed)
            inner_train, inner_val = set(train_idx[fit].tolist()), set(train_idx[val].tolist())
            assert inner_train.isdisjoint(inner_val) and len(inner_val) == np.ceil(0.2 * len(train_idx))
            for c, (kind, value) in zip(calls[:-1], G.SWEEP_CANDIDATES, strict=True):
                assert set(c[1]) == inner_train and len(c[1]) == len(inner_train), "candidates see inner-train only"
                assert set(c[1]).isdisjoint(test_idx.tolist()) and set(c[1]).isdisjoint(inner_val)
                assert torch.equal(c[2], dataset.labels[c[1]]) and c[5] == {kind: value}
                assert c[4] == SMALL.epochs_of(len(inner_train))
            final = calls[-1]
            assert sorted(final[1]) == sorted(train_idx.tolist()), "the final pre-training sees the training folds"
            assert torch.equal(final[2], dataset.labels[final[1]]) and len(final[5]) == 1
            row = next(r for r in rows if r["method"] == entry and r["fold"] == str(f))
            kind, value = next(iter(final[5].items()))
            assert f"{G._candidate_text(kind, value)} chosen on an inner 80/20 split" in row["pretraining"]
            assert bool(row["negatives_kept"]) == (kind == "tau")
    # all candidates give the same (untrained) features: ties go to the first candidate
    assert all(c[5] == {"beta": 0.5} for c in seen[per_row - 1 :: per_row])
    text = G.write_report(path)[0].read_text()
    assert "Sweeps: the setting chosen" in text and "beta=0.5 3x" in text
    # the folder is bound to the candidate grid; a run without sweeps keeps the plain settings' fingerprint
    saved = G.read_settings(tmp_path / "o")["settings"]
    assert saved["sweep"] == G.sweep_settings() and "sweep" not in SMALL.settings()
    G.run(tmp_path / "o", methods=["untrained"], **kw)  # resumes in the sweep folder
    plain = G.run(tmp_path / "p", methods=["untrained"], **kw)
    assert "sweep" not in G.read_settings(plain.parent)["settings"]
    with pytest.raises(ValueError, match=r"other settings.*sweep"):
        G.run(tmp_path / "p", methods=["hscl-sweep"], **kw)


def test_sweep_candidates_change_the_loss(tmp_path, monkeypatch):
    """The overrides reach the loss: ``_pretrain(..., beta=/tau=)`` builds the loss with them."""
    seen = []
    real = G.make_loss

    def spy(name, t, **kw):
        seen.append((name, kw))
        return real(name, t, **kw)

    monkeypatch.setattr(G, "make_loss", spy)
    dataset = G.load_tu("MUTAG", cache=tmp_path)
    graphs, labels = list(dataset)[:20], dataset.labels[:20]
    G._pretrain(dataset, "hscl-beta", graphs, labels, SMALL, 0, 0)
    G._pretrain(dataset, "hscl-beta-labels", graphs, labels, SMALL, 0, 0, None, tau=1.0)
    G._pretrain(dataset, "hscl-beta", graphs, labels, SMALL, 0, 0, beta=5.0)
    assert seen == [
        ("hscl-beta", {"beta": None, "tau": None}),
        ("hscl-beta-labels", {"beta": None, "tau": 1.0}),
        ("hscl-beta", {"beta": 5.0, "tau": None}),
    ]


def test_sweep_with_a_threshold_reports_its_share(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "SWEEP_CANDIDATES", (("tau", float(np.exp(0.5))),))
    path = G.run(
        tmp_path / "o",
        datasets=["MUTAG"],
        methods=["hscl-labels-sweep"],
        seeds=[0],
        config=SMALL,
        cache=tmp_path,
        progress=False,
    )
    rows = _rows(path)
    assert len(rows) == SMALL.folds
    for r in rows:
        assert "tau=e^0.5 chosen on an inner 80/20 split" in r["pretraining"]
        assert 0 <= float(r["negatives_kept"]) <= 1 and 0 <= float(r["accuracy"]) <= 1
    assert G.read_settings(tmp_path / "o")["settings"]["sweep"]["candidates"] == [{"tau": float(np.exp(0.5))}]
    assert "a chosen threshold binds (share < 1) in" in G.write_report(path)[0].read_text()


_OWN_ENCODERS = """import torch
from torch import nn

CALLS = []


class NodeSum(nn.Module):
    def __init__(self, in_features):
        super().__init__()
        self.lin = nn.Linear(in_features, 5)

    def forward(self, batch):
        h = self.lin(batch.x).relu()
        return h.new_zeros(batch.num_graphs, 5).index_add_(0, batch.batch, h)


def make(in_features):
    CALLS.append((in_features, torch.initial_seed()))
    return NodeSum(in_features)


def no_keyword():
    return NodeSum(7)


def not_a_module(in_features):
    return "a string"
"""


def test_cli_reproduce_graphs_with_your_own_encoder(tmp_path, capsys, monkeypatch):
    """``--encoder`` replaces the GIN for the methods and the untrained and supervised controls, each built right
    after the group's seeding; the factory is recorded in settings.json (and only then); a bad one is one error
    line before anything is written."""
    import sys

    from hscl.cli import main
    from hscl.training.runs import fingerprint

    monkeypatch.setattr(sys, "path", list(sys.path))  # the command adds the current folder: undone after the test
    monkeypatch.delitem(sys.modules, "own_graph_encoders", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "own_graph_encoders.py").write_text(_OWN_ENCODERS)
    job = ["reproduce", "graphs", "--datasets", "MUTAG", "--methods", "untrained", "supervised", "ucl"]
    job += ["--set", f"graph.folds={SMALL.folds}", "--seeds", "0", "--epochs", "1"]
    try:
        assert main([*job, "--encoder", "own_graph_encoders:make", "--out", "o"]) == 0
        assert "| own encoder, untrained *(control)* |" in capsys.readouterr().out
        rows = _rows(tmp_path / "o" / "results.csv")
        assert sorted(r["method"] for r in rows) == sorted(["untrained", "supervised", "ucl"] * SMALL.folds)
        saved = json.loads((tmp_path / "o" / "settings.json").read_text())
        assert saved["settings"]["encoder"] == {"factory": "own_graph_encoders:make", "call": G.ENCODER_CALL}
        gin = G.GraphConfig(epochs=1, svm_jobs=1).settings()
        assert "encoder" not in gin and fingerprint(gin) != saved["fingerprint"]
        # one check before any work, then every row of every fold: MUTAG's 7 node features, the group's seed
        calls = sys.modules["own_graph_encoders"].CALLS
        groups = [G.group_seed("MUTAG", 0, f) for f in range(SMALL.folds)]
        assert calls == [(7, 0)] + [(7, seed) for seed in groups for _ in range(3)]
        # a GIN run cannot resume a folder of your own encoder's rows
        assert main([*job, "--out", "o"]) == 2
        assert "encoder" in capsys.readouterr().err

        for factory, message in (
            ("own_graph_encoders:missing", "module 'own_graph_encoders' has no attribute 'missing'"),
            ("nowhere:make", "encoder factory 'nowhere:make': cannot import module 'nowhere'"),
            ("os.system('x')", "an encoder factory is written 'package.module:function'"),
            ("own_graph_encoders:no_keyword", "called as factory(in_features=7)"),
            ("own_graph_encoders:not_a_module", "returned a builtins.str, not a torch.nn.Module"),
        ):
            assert main([*job, "--encoder", factory, "--out", "bad"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("hscl reproduce graphs: error: ") and message in err[0], err
        assert not (tmp_path / "bad").exists()
    finally:
        sys.modules.pop("own_graph_encoders", None)


def test_diagnostics_must_name_a_data_set_of_the_run(tmp_path, monkeypatch, capsys):
    from hscl.experiments import graphs

    seen = {}

    def fake_run(out, **kw):
        seen.update(kw)
        return Path(out) / "results.csv"

    monkeypatch.setattr(graphs, "run", fake_run)
    monkeypatch.setattr(graphs, "write_report", lambda p: (Path(p).parent / "table.md", Path(p)))
    (tmp_path / "table.md").write_text("table")
    base = ["reproduce", "graphs", "--out", str(tmp_path)]
    assert main([*base, "--datasets", "MUTAG", "--diagnostics", "PROTEINS"]) == 2
    line = _one_error_line(capsys, "reproduce graphs")
    assert "--diagnostics PROTEINS" in line and "--datasets MUTAG" in line and not seen
    folder = str(tmp_path / "data" / "MUTAG")
    assert main([*base, "--datasets", folder, "PTC_MR", "--diagnostics", "MUTAG"]) == 0
    assert seen["diagnostics"] == [folder], "a folder's name means that folder"
    assert main([*base, "--datasets", "MUTAG"]) == 0
    assert seen["diagnostics"] == ["MUTAG"], "the preset's diagnostics: those of the run's data sets"


def test_threshold_share_counts_other_class_scores_above_log_tau(mutag):
    """The share of other-class graphs with e^{s_ij} >= tau, per anchor, averaged: 1 when tau is below every score,
    0 above the largest possible one (cosine 1 -> s = 1/t), and a hand count in between."""
    from hscl.models import GINEncoder

    graphs = [mutag[i] for i in range(40)]
    labels = torch.tensor([int(g.y) for g in graphs])
    torch.manual_seed(0)
    model = GINEncoder(mutag.num_features, hidden=8, layers=2)
    t = 0.5
    assert G.threshold_share(model, graphs, labels, temperature=t, tau=1e-300) == 1.0
    assert G.threshold_share(model, graphs, labels, temperature=t, tau=float(np.exp(1 / t)) * 1.01) == 0.0
    model.eval()
    with torch.no_grad():
        from torch_geometric.data import Batch

        z = torch.nn.functional.normalize(model(Batch.from_data_list(graphs)).double(), dim=1).numpy()
    s = z @ z.T / t
    tau = float(np.exp(np.median(s)))
    shares = []
    for i in range(len(graphs)):
        other = [j for j in range(len(graphs)) if labels[j] != labels[i]]
        if other:
            shares.append(sum(s[i, j] >= np.log(tau) for j in other) / len(other))
    assert G.threshold_share(model, graphs, labels, temperature=t, tau=tau) == pytest.approx(np.mean(shares), abs=1e-12)
    assert model.training is False  # left as it was found (here: eval)
