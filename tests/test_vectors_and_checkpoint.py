"""Vector data, the vector augmentation, the MLP encoder, model checkpoints and ``hscl diagnose``."""

import os

import numpy as np
import pytest
import torch

from hscl.checkpoint import load_model, save_model
from hscl.cli import main, parse_setting
from hscl.datasets import load_digits, load_vector_dataset, load_vectors
from hscl.hardening import ExponentialTilt, Threshold
from hscl.models import MLPEncoder, build_model
from hscl.transforms import VectorAugment

RNG = np.random.default_rng(0)


def test_digits_counts():
    x, y = load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_npz_reader(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=RNG.random((10, 3)), y=np.arange(10) % 2)
    x, y = load_vectors(p)
    assert x.shape == (10, 3) and y.dtype == torch.int64
    assert load_vector_dataset(str(p))[0].shape == (10, 3)


@pytest.mark.parametrize(
    "arrays,match",
    [
        (dict(x=RNG.random((4, 3))), "must hold arrays named 'x' and 'y'"),
        (dict(x=RNG.random((4, 3)), y=np.zeros(5, dtype=int)), "x must be"),
        (dict(x=RNG.random((4, 3)), y=np.zeros(4)), "integer labels"),
        (dict(x=np.full((4, 3), np.nan), y=np.zeros(4, dtype=int)), "finite"),
    ],
)
def test_npz_bad_files(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(ValueError, match=match):
        load_vectors(p)


def test_npz_missing_or_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_vectors(tmp_path / "none.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        load_vectors(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_vector_dataset("cifar")


def test_vector_augment_is_seeded_and_per_sample():
    x = torch.ones(5, 40)
    a = VectorAugment(0.1, 0.3, generator=torch.Generator().manual_seed(1))(x)
    b = VectorAugment(0.1, 0.3, generator=torch.Generator().manual_seed(1))(x)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert 0.1 < float((a == 0).float().mean()) < 0.5
    with pytest.raises(ValueError, match="drop must be in"):
        VectorAugment(drop=1.0)


def test_mlp_shapes_and_spec():
    m = MLPEncoder(8, hidden=16, features=12, projection=4)
    assert m(torch.randn(6, 2, 8)).shape == (6, 2, 4)
    assert m.features(torch.randn(6, 8)).shape == (6, 12)
    assert isinstance(build_model(m.spec), MLPEncoder)
    with pytest.raises(ValueError, match="unknown model 'resnet99'"):
        build_model({"name": "resnet99"})
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        MLPEncoder(8, hidden=0)


def test_checkpoint_round_trip_and_errors(tmp_path):
    m = MLPEncoder(8, hidden=16, features=12, projection=4).eval()
    save_model(tmp_path / "m.pt", m, temperature=0.3, augment={"noise": 0.2, "drop": 0.0})
    m2, meta = load_model(tmp_path / "m.pt")
    m2.eval()
    x = torch.randn(3, 8)
    torch.testing.assert_close(m2(x), m(x))
    assert meta == {"temperature": 0.3, "augment": {"noise": 0.2, "drop": 0.0}}
    assert not list(tmp_path.glob(".*"))
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable hscl checkpoint"):
        load_model(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an hscl model checkpoint"):
        load_model(tmp_path / "other.pt")
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["model"]["kwargs"]["hidden"] = 32
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="do not fit the model spec"):
        load_model(tmp_path / "mismatch.pt")


def test_parse_setting():
    assert set(parse_setting("paper")) == {"tau=e^-0.5", "tau=e^-0.1", "beta=1", "beta=2"}
    assert isinstance(parse_setting("beta=0.5")["beta=0.5"], ExponentialTilt)
    t = parse_setting("tau=e^-0.5")["tau=e^-0.5"]
    assert isinstance(t, Threshold) and t.log_tau == pytest.approx(-0.5)
    assert parse_setting("tau=0.7")["tau=0.7"].tau == 0.7
    for bad in ("beta=__import__('os')", "gamma=1", "tau=e^x"):
        with pytest.raises(Exception, match="unknown setting"):
            parse_setting(bad)


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


# --- weights-only loading and your own encoder in checkpoints (issue 12) ---


class _Trap:
    """Touches ``marker`` when unpickled by a full (not weights-only) unpickler."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_checkpoints_are_read_weights_only_whatever_torchs_default(tmp_path, monkeypatch):
    from hscl.checkpoint import safe_load

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch's default before 2.6
    marker = tmp_path / "executed"
    m = MLPEncoder(8, hidden=16, features=12, projection=4)
    good = {"format": "hscl-model/1", "model": m.spec, "state_dict": m.state_dict(), "meta": {}}
    torch.save({**good, "meta": {"trap": _Trap(marker)}}, tmp_path / "trap.pt")
    for read in (safe_load, load_model):
        with pytest.raises(ValueError, match=r"trap\.pt was refused: .*Unsupported global"):
            read(tmp_path / "trap.pt")
    assert not marker.exists(), "the pickled object did not run"
    torch.save(good, tmp_path / "m.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "m.pt").read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut\.pt is not a readable checkpoint \(truncated"):
        safe_load(tmp_path / "cut.pt")
    assert load_model(tmp_path / "m.pt")[0].spec == m.spec


class _Shell:
    """Runs a shell command (``os.system``) when unpickled by a full (not weights-only) unpickler."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_a_refused_checkpoint_names_the_refused_object(tmp_path):
    # torch 2.13 words a blocked module "...unsupported GLOBAL posix.system whose module posix is blocked"
    from hscl.checkpoint import safe_load

    marker = tmp_path / "executed"
    torch.save({"state_dict": {}, "meta": _Shell(marker)}, tmp_path / "shell.pt")
    with pytest.raises(ValueError, match=r"shell\.pt was refused: .*\(.*(posix|os|nt)\.system") as info:
        safe_load(tmp_path / "shell.pt")
    assert "Weights only load failed" not in str(info.value), "the line that names the object, not torch's preamble"
    assert not marker.exists(), "the pickled command did not run"


def test_your_own_encoder_round_trips_through_its_factory(tmp_path, monkeypatch):
    from hscl.models import ProjectedEncoder, feature_dim_of

    (tmp_path / "vector_encoders.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Linear(8, 10), nn.ReLU())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = ProjectedEncoder("vector_encoders:make", feature_dim=10, hidden=7, projection=3).eval()
    assert feature_dim_of(model.backbone, torch.zeros(2, 8)) == 10
    assert model.spec == {
        "name": "custom",
        "kwargs": {"backbone": "vector_encoders:make", "feature_dim": 10, "hidden": 7, "projection": 3},
    }
    save_model(tmp_path / "m.pt", model, temperature=0.5)
    with pytest.raises(ValueError, match=r"pass allow_factory='vector_encoders:make' .* if you trust it"):
        load_model(tmp_path / "m.pt")
    again, meta = load_model(tmp_path / "m.pt", allow_factory=True)
    x = torch.randn(5, 8)
    torch.testing.assert_close(again.eval()(x), model(x), rtol=0, atol=0)
    assert meta == {"temperature": 0.5}
    with pytest.raises(ValueError, match="give your own encoder as a factory string"):
        save_model(tmp_path / "n.pt", ProjectedEncoder(torch.nn.Linear(8, 4), feature_dim=4))
    with pytest.raises(ValueError, match="returned 10 features, the head was built for 9"):
        ProjectedEncoder("vector_encoders:make", feature_dim=9)(x)
