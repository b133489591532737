"""``hscl train``: a whole image job on the embedded digits, resume, refusal of another configuration, bad
input, and a two-process DDP fit on CPU (gloo)."""

import itertools
import json
import subprocess
import sys

import pytest

from hscl.cli import main
from hscl.training.images import ImageConfig, load_preset, train_images

TINY = dict(dataset="digits", epochs=1, width=4, hidden=16, projection=8, batch_size=256, knn_k=20)


def test_job_writes_metrics_and_resumes(tmp_path):
    metrics = train_images(ImageConfig(method="hscl-beta", **TINY), tmp_path, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == metrics
    assert {"linear_top1", "knn_top1", "method", "dataset", "seed"} <= set(saved)
    assert 0.1 < saved["linear_top1"] <= 1.0 and saved["test_images"] == 360
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and (tmp_path / "config.json").is_file()
    more = train_images(ImageConfig(method="hscl-beta", **{**TINY, "epochs": 2}), tmp_path, progress=False)
    assert more["epochs"] == 2
    logs = sorted((tmp_path / "logs").rglob("metrics.csv"))
    assert logs and "val/knn_top1" in logs[-1].read_text()
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*")), "TensorBoard event files"


def test_another_configuration_is_refused(tmp_path):
    train_images(ImageConfig(method="ucl", **TINY), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"checkpoint of another configuration \(different method\)"):
        train_images(ImageConfig(method="scl", **TINY), tmp_path, progress=False)


def test_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="cannot be created or written"):
        train_images(ImageConfig(**TINY), blocker / "out", progress=False)
    with pytest.raises(ValueError, match="unknown data set 'imagenet-22k'"):
        train_images(ImageConfig(**{**TINY, "dataset": "imagenet-22k"}), tmp_path / "a", progress=False)
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no images"):
        train_images(ImageConfig(**{**TINY, "dataset": str(tmp_path / "empty")}), tmp_path / "b", progress=False)
    with pytest.raises(FileNotFoundError, match="pass --download"):
        train_images(ImageConfig(**{**TINY, "dataset": "cifar10", "data_root": str(tmp_path)}), tmp_path / "c",
                     progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="unknown method"):
        train_images(ImageConfig(**{**TINY, "method": "byol"}), tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="train_subset must be None or an int >= 2"):
        train_images(ImageConfig(**{**TINY, "train_subset": 1}), tmp_path / "f", progress=False)
    with pytest.raises(ValueError, match="views must be >= 2"):
        train_images(ImageConfig(**{**TINY, "views": 1}), tmp_path / "e", progress=False)
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir()), "nothing written on bad input"


def test_presets():
    assert load_preset("paper")["depth"] == 50 and load_preset("cpu")["width"] == 16
    modern = ImageConfig(**load_preset("modern")).validate()
    assert modern.optimizer == "sgd" and modern.warmup_epochs > 0 and modern.width == 64
    with pytest.raises(FileNotFoundError, match="no preset 'huge'"):
        load_preset("huge")


def test_cli_train(tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--method", "scl", "--epochs", "1", "--width", "4", "--train-subset",
            "300", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    assert "written:" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert abs(metrics["train_images"] - 300) <= 10, "a class-balanced subset of about 300 images"
    assert json.loads((tmp_path / "config.json").read_text())["train_subset"] == 300
    assert main(["train", "--dataset", "digits", "--method", "scl", "--beta", "1", "--out", str(tmp_path / "x")]) == 2
    assert "has no hardening" in capsys.readouterr().err


def test_ddp_two_processes_on_cpu(tmp_path):
    """Lightning's DDP with two CPU processes (gloo): the CLI re-launches itself, negatives span both."""
    job = ["--dataset", "digits", "--method", "hscl-beta", "--epochs", "1", "--width", "4", "--batch-size", "128"]
    cmd = [
        sys.executable,
        "-m",
        "hscl",
        "train",
        *job,
        "--devices",
        "2",
        "--accelerator",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr or "gloo" in proc.stdout + proc.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 1


def test_sgd_warmup_then_cosine_schedule():
    from types import SimpleNamespace

    from hscl.training.images import ImageContrastive

    config = ImageConfig(optimizer="sgd", lr=0.4, epochs=10, warmup_epochs=2, width=4, hidden=16, projection=8)
    module = ImageContrastive(config, [0.5] * 3, [0.25] * 3, 8)
    module._trainer = SimpleNamespace(estimated_stepping_batches=100)
    setup = module.configure_optimizers()
    opt, sched = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.4 / 20) and lrs[19] == pytest.approx(0.4)  # linear warm-up over 20 steps
    assert max(lrs) == pytest.approx(0.4) and lrs[-1] < 0.01  # then cosine down to ~0
    assert all(a >= b for a, b in itertools.pairwise(lrs[19:])), "monotone decay after warm-up"
    assert lrs[60] == pytest.approx(0.2, rel=1e-6)  # half-way through the cosine


def _stl10_folder(root, n_train=40, n_test=20, n_unlabeled=24, side=16):
    """A small STL-10-format folder (the reader takes any multiple of 3 x 96 x 96 bytes; images are 96 x 96)."""
    import numpy as np

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        imgs = rng.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
        imgs.transpose(0, 3, 2, 1).tofile(root / f"{split}_X.bin")
        if split != "unlabeled":
            np.tile(np.arange(1, 3, dtype=np.uint8), n // 2).tofile(root / f"{split}_y.bin")
    (root / "class_names.txt").write_text("a\nb\n")
    return root


def test_unsupervised_methods_also_pretrain_on_the_unlabeled_split(tmp_path):
    data = _stl10_folder(tmp_path / "stl")
    small = {**TINY, "dataset": str(data), "size": 16, "knn_k": 5, "data_root": None}
    ucl = train_images(ImageConfig(method="ucl", **small), tmp_path / "ucl", progress=False)
    scl = train_images(ImageConfig(method="scl", **small), tmp_path / "scl", progress=False)
    off = train_images(ImageConfig(method="ucl", use_unlabeled=False, **small), tmp_path / "off", progress=False)
    assert scl["pretrain_images"] == scl["train_images"] == 36  # 40 less the validation split
    assert ucl["pretrain_images"] == 36 + 24, "UCL sees the training images and the unlabeled split"
    assert off["pretrain_images"] == 36
    assert ucl["test_images"] == 20


def test_config_differences_treat_missing_settings_as_defaults():
    import dataclasses

    from hscl.training.images import config_differences

    config = ImageConfig(method="ucl", **TINY)
    saved = dataclasses.asdict(config)
    assert config_differences(saved, config) == []
    older = {k: v for k, v in saved.items() if k not in ("train_subset", "use_unlabeled")}
    assert config_differences(older, config) == [], "a file from an older hscl resumes"
    assert config_differences({**saved, "width": 8, "epochs": 9}, config) == ["width"], "epochs may change"
    assert config_differences(older, ImageConfig(method="ucl", train_subset=100, **TINY)) == ["train_subset"]


def test_per_epoch_diagnostics(tmp_path):
    import csv

    train_images(ImageConfig(method="hscl-beta", diagnostics=200, **{**TINY, "epochs": 2}), tmp_path, progress=False)
    rows = list(csv.DictReader((tmp_path / "diagnostics" / "diagnostics.csv").open()))
    assert {r["epoch"] for r in rows} == {"0", "1"} and len(rows) == 8  # two epochs x the paper's four settings
    assert all(abs(int(r["anchors"]) - 2 * 200) <= 20 for r in rows), "two views of about 200 images"
    assert all(0 <= float(r["assumption_fraction"]) <= 1 for r in rows)
    assert (tmp_path / "diagnostics" / "diagnostics_assumption.png").is_file()
    with pytest.raises(ValueError, match="diagnostics must be an int >= 0"):
        ImageConfig(diagnostics=-1).validate()
