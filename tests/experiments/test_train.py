"""``hscl train`` (:mod:`hscl.experiments.train`): a job from the command line, the budget rule of the cpu preset
(an explicit ``--epochs`` pins it), your own encoder by ``--encoder``, and the checks before any work: a missing
GPU, a train subset smaller than the classes, a malicious or truncated checkpoint to resume from."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from hscl.cli import main
from hscl.config import read_preset
from tests.conftest import one_error_line as _one_error_line
from tests.conftest import train_argv as _train


def test_cli_train(tmp_path, capsys):
    args = [
        "train",
        "--dataset",
        "digits",
        "--method",
        "scl",
        "--epochs",
        "1",
        "--width",
        "4",
        "--train-subset",
        "300",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "written:" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert abs(metrics["train_images"] - 300) <= 10, "a class-balanced subset of about 300 images"
    assert json.loads((tmp_path / "config.json").read_text())["train_subset"] == 300
    assert main(["train", "--dataset", "digits", "--method", "scl", "--beta", "1", "--out", str(tmp_path / "x")]) == 2
    assert "has no hardening" in capsys.readouterr().err


def test_cpu_preset_states_the_budget_rule_and_explicit_epochs_pin_it(tmp_path, monkeypatch):
    import hscl.training.images as T

    preset = read_preset("train", "cpu")
    assert preset["min_steps"] >= 300 and preset["epochs"] >= 1, "the cpu preset trains small folders"
    seen = {}

    def fake(config, out, **kw):
        seen["config"] = config
        return {}

    monkeypatch.setattr(T, "train_images", fake)
    assert main(["train", "--dataset", "digits", "--method", "ucl", "--out", str(tmp_path)]) == 0
    assert seen["config"].min_steps == preset["min_steps"] and seen["config"].epochs == preset["epochs"]
    assert main(["train", "--dataset", "digits", "--method", "ucl", "--epochs", "2", "--out", str(tmp_path)]) == 0
    assert seen["config"].min_steps == 0 and seen["config"].epochs == 2, "an explicit --epochs pins the budget"
    args = ["train", "--dataset", "digits", "--method", "ucl", "--epochs", "2", "--min-steps", "50", "--out", "x"]
    assert main(args) == 0 and seen["config"].min_steps == 50


def test_train_with_your_own_encoder_from_the_command_line(tmp_path, monkeypatch, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(sys, "path", list(sys.path))  # hscl train adds the current folder: undone after the test
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli_encoders.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())\n"
    )
    try:
        job = ["train", "--dataset", "digits", "--method", "ucl", "--epochs", "0", "--train-subset", "100"]
        assert main([*job, "--encoder", "cli_encoders:make", "--out", "run"]) == 0
        record = json.loads((tmp_path / "run" / "config.json").read_text())["encoder"]
        sequential = "torch.nn.modules.container.Sequential"
        assert record == {"factory": "cli_encoders:make", "class": sequential, "feature_dim": 4 * 6 * 6}
        capsys.readouterr()
        for factory, message in (
            ("cli_encoders:missing", "encoder factory 'cli_encoders:missing': module 'cli_encoders' has no attribute"),
            ("nowhere:make", "encoder factory 'nowhere:make': cannot import module 'nowhere'"),
            ("os.system('x')", "an encoder factory is written 'package.module:function'"),
        ):
            assert main([*job, "--encoder", factory, "--out", "bad"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("hscl train: error: ") and message in err[0], err
        assert not (tmp_path / "bad").exists()
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------------------------
# Bad command lines: one `hscl train: error:` line naming the flag or file, exit code 2, before any work.


class _Payload:
    """Pickles as a call to os.system: a checkpoint holding it must be refused, never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_train_on_a_missing_gpu_is_refused(tmp_path, capsys):
    assert main(_train(str(tmp_path / "o"), "--accelerator", "gpu")) == 2
    line = _one_error_line(capsys, "train")
    assert "--accelerator gpu" in line and "no GPU" in line
    assert not (tmp_path / "o").exists(), "nothing written"


def test_a_malicious_or_truncated_checkpoint_is_refused_before_resuming(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil" / "checkpoints" / "last.ckpt"
    evil.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": _Payload(marker)}, evil)
    assert main(_train(str(tmp_path / "evil"))) == 2
    line = _one_error_line(capsys, "train")
    assert str(evil) in line and "refused" in line and "cannot resume" in line
    assert not marker.exists(), "the pickled call ran"
    truncated = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    truncated.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    assert main(_train(str(tmp_path / "cut"))) == 2
    line = _one_error_line(capsys, "train")
    assert str(truncated) in line and "cannot resume" in line and "truncated" in line
    runs = tmp_path / "rep" / "runs" / "scl-seed0" / "checkpoints"
    runs.mkdir(parents=True)
    (runs / "last.ckpt").write_bytes(b"not a checkpoint")
    assert main(["reproduce", "images", "--dataset", "digits", "--methods", "scl", "--out", str(tmp_path / "rep")]) == 2
    assert str(runs / "last.ckpt") in _one_error_line(capsys, "reproduce images")


def test_a_train_subset_smaller_than_the_classes_is_refused(tmp_path, capsys):
    # balanced_split keeps at least one image of every class: --train-subset 3 on digits trained on 10 images
    assert main(_train(str(tmp_path / "o"), "--train-subset", "3")) == 2
    line = _one_error_line(capsys, "train")
    assert "--train-subset 3" in line and "10 classes" in line
    assert not (tmp_path / "o").exists()
