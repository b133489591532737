"""Vector data, the vector augmentation, the MLP encoder, model checkpoints and ``hscl diagnose``."""

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
    save_model(tmp_path / "m.pt", MLPEncoder(8, hidden=16, features=12, projection=4), temperature=0.5,
               augment={"noise": 0.1, "drop": 0.1})  # fmt: skip
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
