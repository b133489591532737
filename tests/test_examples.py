"""The scripts in ``examples/`` run as documented (small settings), and write where they say."""

import json
import sys
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def examples(monkeypatch, tmp_path):
    """``examples/`` importable (as when a script runs from there), the data cache in tmp_path, one thread."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for name in ("own_encoder", "digits_diagnostics"):
        sys.modules.pop(name, None)


def test_own_encoder_example(examples, tmp_path, capsys):
    import own_encoder

    assert own_encoder.main(["--out", str(tmp_path / "o"), "--epochs", "1", "--train-subset", "100"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt SmallCNN from epoch 0" in out and "rebuilt from the checkpoint with the same features: True" in out
    config = json.loads((tmp_path / "o" / "images" / "config.json").read_text())
    assert config["encoder"] == {"factory": "own_encoder:small_cnn", "class": "own_encoder.SmallCNN", "feature_dim": 16}
    assert json.loads((tmp_path / "o" / "images" / "metrics.json").read_text())["linear_top1"] > 0.1
    assert (tmp_path / "o" / "graphs" / "model.pt").is_file()


def test_digits_diagnostics_writes_a_scratch_folder_by_default(examples):
    """Without --out the example writes under ./out (git-ignored), never over the committed results."""
    import digits_diagnostics

    assert digits_diagnostics.parse_args([]).out == digits_diagnostics.DEFAULT_OUT == "out/digits-diagnostics"
    assert digits_diagnostics.parse_args(["--out", "results/diagnostics/digits"]).out == "results/diagnostics/digits"
