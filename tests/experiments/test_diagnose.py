"""``hscl diagnose`` (:mod:`hscl.experiments.diagnose`): the pipeline (the checkpoint's augmentation and
temperature, embed_views then assumption_report) and its errors, on a vector checkpoint, on what ``hscl train``
writes (your own encoder rebuilt only when allowed) and on a graph encoder (the GIN or your own)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hscl
from hscl.checkpoint import save_model
from hscl.cli import main
from hscl.diagnostics import assumption_report, embed_views
from hscl.models import MLPEncoder
from tests.conftest import one_error_line as _one_error_line

RNG = np.random.default_rng(0)


def test_diagnose_pipeline_is_embed_views_then_assumption_report(tmp_path):
    import numpy as np

    from hscl.checkpoint import save_model
    from hscl.experiments.diagnose import diagnose, load_encoder
    from hscl.models import MLPEncoder
    from hscl.transforms import VectorAugment

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 6)).astype(np.float32), np.arange(40) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    torch.manual_seed(0)
    model = MLPEncoder(6, hidden=12, features=8, projection=5)
    save_model(tmp_path / "m.pt", model, temperature=0.3, augment={"noise": 0.2, "drop": 0.05}, dataset="x.npz")
    enc = load_encoder(tmp_path / "m.pt")
    assert (enc.kind, enc.temperature, enc.augment) == ("vectors", 0.3, {"noise": 0.2, "drop": 0.05})
    setting = {"beta=1": hscl.ExponentialTilt(1.0)}
    got = diagnose(tmp_path / "m.pt", str(tmp_path / "d.npz"), settings=setting, seed=3, progress=False)
    augment = VectorAugment(noise=0.2, drop=0.05, generator=torch.Generator().manual_seed(3))
    z, labels = embed_views(enc.model, (torch.from_numpy(x), torch.from_numpy(y)), augment=augment, progress=False)
    want = assumption_report(z, labels, hardening=setting["beta=1"], temperature=0.3, progress=False).summary()
    assert got.samples == 40 and got.temperature == 0.3 and "noise=0.2" in got.augmentation
    assert got.rows == [{"setting": "beta=1", **want}]
    data = str(tmp_path / "d.npz")
    assert diagnose(tmp_path / "m.pt", data, settings=setting, samples=10, progress=False).samples == 10
    with pytest.raises(ValueError, match="samples must be an int >= 2"):
        diagnose(tmp_path / "m.pt", data, samples=1, progress=False)
    with pytest.raises(FileNotFoundError, match=r"data file x\.npz does not exist"):
        diagnose(tmp_path / "m.pt", progress=False)  # the data set it records, relative to here


def test_cli_diagnose(tmp_path, capsys):
    x = RNG.random((60, 8)).astype(np.float32)
    y = np.arange(60) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y)
    save_model(
        tmp_path / "m.pt",
        MLPEncoder(8, hidden=16, features=12, projection=4),
        temperature=0.5,
        augment={"noise": 0.1, "drop": 0.1},
    )
    ckpt, data, out_dir = str(tmp_path / "m.pt"), str(tmp_path / "d.npz"), str(tmp_path / "o")
    settings = ["--setting", "beta=1", "--setting", "tau=e^-0.5"]
    code = main(["diagnose", "--checkpoint", ckpt, "--data", data, *settings, "--out", out_dir, "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| beta=1 |" in out and "| tau=e^-0.5 |" in out and "60 samples x 2 views" in out
    assert (tmp_path / "o" / "diagnose.csv").read_text().count("\n") == 3
    code = main(["diagnose", "--checkpoint", str(tmp_path / "m.pt"), "--data", "digits", "--quiet"])
    assert code == 2
    assert "the data has 64 features but the checkpoint's model expects 8" in capsys.readouterr().err
    assert main(["diagnose", "--checkpoint", str(tmp_path / "nope.pt"), "--quiet"]) == 2


def _image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, base in (("dark", 50), ("light", 200)):
        (root / c).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(base + rng.integers(-40, 40, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_diagnose_reads_an_hscl_train_run(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "imgs")
    job = ["train", "--dataset", "imgs", "--method", "scl", "--width", "4", "--epochs", "1", "--batch-size", "16"]
    assert main([*job, "--temperature", "0.4", "--out", "run"]) == 0
    capsys.readouterr()
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert main(["diagnose", "--checkpoint", str(last), "--setting", "beta=1", "--quiet", "--out", "d"]) == 0
    out = capsys.readouterr().out
    assert "on imgs (12 samples x 2 views, t=0.4" in out, "the run's data set (its training split), temperature"
    assert "SimCLR (crop 8" in out and "| beta=1 |" in out
    from hscl.experiments.diagnose import load_encoder

    enc = load_encoder(tmp_path / "run")  # the ResNet of the run, with the normalisation it trained with
    state = torch.load(last, weights_only=True)["state_dict"]
    assert enc.kind == "images" and enc.mean == state["mean"].flatten().tolist()
    assert enc.std == state["std"].flatten().tolist()
    rows = (tmp_path / "d" / "diagnose.csv").read_text().splitlines()
    assert len(rows) == 2 and 0 <= float(rows[1].split(",")[rows[0].split(",").index("assumption_fraction")]) <= 1
    # the run's folder, the data given as a path, a subset; the same seed gives the same views
    args = ["diagnose", "--checkpoint", "run", "--data", str(tmp_path / "imgs"), "--samples", "6", "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "(6 samples x 2 views" in first and main(args) == 0 and capsys.readouterr().out == first
    assert main(["diagnose", "--checkpoint", "run", "--noise", "0.2", "--quiet"]) == 2
    assert "vector (MLP) checkpoints" in _one_error_line(capsys, "diagnose")
    assert main(["diagnose", "--checkpoint", str(tmp_path / "imgs"), "--quiet"]) == 2
    assert "without checkpoints/last.ckpt" in _one_error_line(capsys, "diagnose")


def test_diagnose_rebuilds_your_own_encoder_only_when_allowed(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the current folder is added for the factory: undone after
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "imgs")
    (tmp_path / "diag_encoders.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())\n"
    )
    job = ["train", "--dataset", "imgs", "--method", "scl", "--epochs", "1", "--batch-size", "16"]
    assert main([*job, "--encoder", "diag_encoders:make", "--out", "run"]) == 0
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", "run", "--setting", "beta=1", "--quiet"]) == 2
    line = _one_error_line(capsys, "diagnose")
    assert "diag_encoders:make" in line and "--allow-factory" in line, "the factory is not imported unasked"
    args = ["diagnose", "--checkpoint", "run", "--setting", "beta=1", "--allow-factory", "diag_encoders:make"]
    assert main([*args, "--quiet"]) == 0
    assert "on imgs (12 samples x 2 views" in capsys.readouterr().out


def test_diagnose_reads_a_graph_encoder(tmp_path, monkeypatch, capsys, one_thread):
    import shutil

    from hscl.checkpoint import save_model
    from hscl.datasets.tu import BUNDLED, load_tu
    from hscl.losses.registry import make_loss
    from hscl.models import GINEncoder
    from hscl.training import pretrain_graphs

    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    mutag = load_tu("MUTAG")
    torch.manual_seed(0)
    model = GINEncoder(mutag.num_features, hidden=8, layers=2)
    pretrain_graphs(model, list(mutag), make_loss("scl", 0.4), labels=mutag.labels, epochs=1, batch_size=64)
    ckpt = tmp_path / "gin.pt"
    save_model(ckpt, model, temperature=0.4, augment_ratio=0.3, dataset="MUTAG")
    assert main(["diagnose", "--checkpoint", str(ckpt), "--setting", "tau=e^-0.5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on MUTAG (188 samples x 2 views, t=0.4" in out and "GraphCL (ratio 0.3" in out
    assert "| tau=e^-0.5 |" in out
    folder = shutil.copytree(BUNDLED / "MUTAG", tmp_path / "raw" / "MUTAG")  # a folder of TU raw files
    assert main(["diagnose", "--checkpoint", str(ckpt), "--data", str(folder), "--samples", "40", "--quiet"]) == 0
    assert "(40 samples x 2 views" in capsys.readouterr().out
    save_model(tmp_path / "other.pt", GINEncoder(3, hidden=8, layers=2), dataset="MUTAG")
    assert main(["diagnose", "--checkpoint", str(tmp_path / "other.pt"), "--quiet"]) == 2
    assert "MUTAG has 7 node features but the checkpoint's GIN expects 3" in _one_error_line(capsys, "diagnose")


_GRAPH_FACTORY = """from torch import nn


class NodeSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(7, 6)

    def forward(self, batch):
        h = self.lin(batch.x).relu()
        return h.new_zeros(batch.num_graphs, h.shape[1]).index_add_(0, batch.batch, h)


def make():
    return NodeSum()
"""


def test_diagnose_reads_your_own_graph_encoder(tmp_path, monkeypatch, capsys, one_thread):
    # a custom spec says nothing of its data: train_graph_encoder(save=...) records kind "graphs" and the data set
    from hscl.datasets.tu import load_tu
    from hscl.training import train_graph_encoder

    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the current folder is added for the factory: undone after
    monkeypatch.chdir(tmp_path)
    (tmp_path / "diag_graph_encoders.py").write_text(_GRAPH_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))  # for train_graph_encoder, in Python
    graphs = list(load_tu("MUTAG"))[:40]
    options = dict(temperature=0.4, epochs=1, batch_size=20, augment_ratio=0.3, dataset="MUTAG")
    train_graph_encoder(graphs, method="scl", encoder="diag_graph_encoders:make", save=tmp_path / "own.pt", **options)
    args = ["diagnose", "--checkpoint", "own.pt", "--allow-factory", "diag_graph_encoders:make", "--samples", "30"]
    assert main([*args, "--setting", "beta=1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on MUTAG (30 samples x 2 views, t=0.4" in out and "GraphCL (ratio 0.3" in out and "| beta=1 |" in out
