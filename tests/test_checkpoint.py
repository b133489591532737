"""Model checkpoints (:mod:`hscl.checkpoint`): a round trip and its errors; files are read with
``weights_only=True`` whatever torch's default, and a refused file names the object it refused."""

import os

import pytest
import torch

from hscl.checkpoint import load_model, save_model
from hscl.models import MLPEncoder


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


# --- weights-only loading (issue 12) ---


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
