"""Image pre-training (:mod:`hscl.training.images`): a whole job on the embedded digits, resume (after a kill
too), refusal of another configuration and of a pickled checkpoint, bad input, the budget rule, one seed pairing
the methods, the controls, your own encoder, the records, and a two-process DDP fit on CPU (gloo)."""

import itertools
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from hscl.training.images import ImageConfig, train_images

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
        train_images(
            ImageConfig(**{**TINY, "dataset": "cifar10", "data_root": str(tmp_path)}), tmp_path / "c", progress=False
        )
    with pytest.raises(ValueError, match="unknown method"):
        train_images(ImageConfig(**{**TINY, "method": "byol"}), tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="train_subset must be None or an int >= 2"):
        train_images(ImageConfig(**{**TINY, "train_subset": 1}), tmp_path / "f", progress=False)
    with pytest.raises(ValueError, match="views must be >= 2"):
        train_images(ImageConfig(**{**TINY, "views": 1}), tmp_path / "e", progress=False)
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir()), "nothing written on bad input"


def test_train_subset_is_exact_and_class_balanced():
    from hscl.training.images import _splits

    splits, train_idx, val_idx = _splits(ImageConfig(**{**TINY, "train_subset": 15}), progress=False)
    labels = splits["train"].labels
    assert len(train_idx) == 15 and sorted(np.bincount(labels[train_idx]).tolist()) == [1] * 5 + [2] * 5
    assert not set(train_idx) & set(val_idx)
    again = _splits(ImageConfig(**{**TINY, "train_subset": 15}), progress=False)[1]
    assert np.array_equal(train_idx, again), "deterministic with the seed"
    for n in (3, 100_000):  # fewer than the 10 classes, more than the training split holds
        with pytest.raises(ValueError, match=f"train_subset {n}: a class-balanced subset"):
            _splits(ImageConfig(**{**TINY, "train_subset": n}), progress=False)


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


def test_budget_rule_arithmetic():
    """epochs = max(epochs, ceil(min_steps / steps_per_epoch)), steps_per_epoch = ceil(ceil(n / world) / batch);
    0 epochs (the untrained control) stay 0; the rule is the same for every method (no method argument)."""
    from hscl.training.images import budget_epochs

    assert budget_epochs(5, 300, 1800, 256) == 38  # 8 steps an epoch: 38 x 8 = 304 >= 300 > 37 x 8
    assert budget_epochs(5, 300, 1792, 256) == 43  # exactly 7 steps an epoch: 43 x 7 = 301
    assert budget_epochs(5, 300, 10000, 256) == 8  # 40 steps an epoch (the CIFAR-10 cpu preset): 320 steps
    assert budget_epochs(5, 300, 45000, 256) == 5  # 176 steps an epoch: the epochs already give 880 steps
    assert budget_epochs(5, 0, 1800, 256) == 5  # min_steps 0: the rule is off
    assert budget_epochs(0, 300, 1800, 256) == 0  # the untrained control
    assert budget_epochs(1, 300, 1800, 256, world_size=2) == 75  # 900 images a process: 4 steps an epoch
    assert budget_epochs(1, 1, 1, 1) == 1
    with pytest.raises(ValueError, match="min_steps must be an int >= 0"):
        budget_epochs(5, -1, 1800, 256)
    with pytest.raises(ValueError, match="train_images must be an int >= 1"):
        budget_epochs(5, 300, 0, 256)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        budget_epochs(5, 300, 1800, 0)


def test_the_rule_sets_the_epochs_of_a_job(tmp_path):
    # digits: 1,437 training images (360 are test) less a 10% validation split = 1,295 = 6 batches of 256
    metrics = train_images(ImageConfig(method="ucl", **{**TINY, "min_steps": 10}), tmp_path, progress=False)
    assert metrics["epochs"] == 2 and metrics["train_images"] == 1295


class _Recorder:
    """Records the initial parameters, the first batches (images, labels) and the augmented views of a fit."""

    def __init__(self, batches: int = 2) -> None:
        import lightning.pytorch as pl

        outer = self
        self.batches, self.params, self.images, self.labels, self.views = batches, None, [], [], []

        class Callback(pl.Callback):
            def on_fit_start(self, trainer, module):
                outer.params = {k: v.detach().clone() for k, v in module.encoder.state_dict().items()}
                augment = module.augment.forward

                def recording(images, views=2, seed=None):
                    out = augment(images, views=views, seed=seed)
                    if len(outer.views) < outer.batches:
                        outer.views.append(out.clone())
                    return out

                module.augment.forward = recording

            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                if len(outer.images) < outer.batches:
                    outer.images.append(batch[0].clone())
                    outer.labels.append(batch[1].clone())

        self.callback = Callback()


def test_a_seed_pairs_initialisation_augmentation_and_batch_order_across_methods(tmp_path):
    """Two methods with the same seed start from the same parameters and see the same batches in the same order
    with the same augmented views: they differ only in the loss (docs/math.md section 5, pairing)."""
    import torch

    small = {**TINY, "train_subset": 600, "batch_size": 128}
    runs = {}
    for name, method, seed in (("ucl", "ucl", 0), ("scl-labels", "scl-labels", 0), ("other", "ucl", 1)):
        rec = _Recorder()
        config = ImageConfig(method=method, seed=seed, **small)
        metrics = train_images(config, tmp_path / name, progress=False, callbacks=[rec.callback])
        assert metrics["epochs"] == 1 and len(rec.images) == 2 and len(rec.views) == 2
        runs[name] = rec
    a, b, c = runs["ucl"], runs["scl-labels"], runs["other"]
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        torch.testing.assert_close(a.params[k], b.params[k], rtol=0, atol=0)
    for i in range(2):
        assert torch.equal(a.images[i], b.images[i]) and torch.equal(a.labels[i], b.labels[i])
        assert a.views[i].shape == (128, 2, 3, 8, 8) and torch.equal(a.views[i], b.views[i])
    # another seed: another initialisation, batch order and augmentation
    assert any(not torch.equal(a.params[k], c.params[k]) for k in a.params)
    assert not torch.equal(a.images[0], c.images[0]) and not torch.equal(a.views[0], c.views[0])


def test_controls_use_the_same_splits(tmp_path):
    from hscl.training.images import raw_pixel_probe

    untrained = train_images(ImageConfig(method="ucl", **{**TINY, "epochs": 0}), tmp_path / "u", progress=False)
    raw = raw_pixel_probe(ImageConfig(method="ucl", **TINY), tmp_path / "r", progress=False)
    assert untrained["epochs"] == 0 and untrained["pretrain_images"] == 0
    assert not (tmp_path / "u" / "checkpoints").exists(), "nothing is trained"
    assert raw["method"] == "raw-pixels" and raw["epochs"] == 0
    for key in ("train_images", "val_images", "test_images"):
        assert raw[key] == untrained[key]
    assert 0.5 < raw["linear_top1"] <= 1.0, "digits' 64 pixels are linearly separable enough"
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == raw
    again = train_images(ImageConfig(method="scl", **{**TINY, "epochs": 0}), tmp_path / "u2", progress=False)
    assert again["linear_top1"] == untrained["linear_top1"], "the untrained encoder does not depend on the method"


# --- resume after a kill, weights_only loading, your own encoder, records (issue 12) ---

_KILLED_RUN = """
import json, os, signal, sys

import lightning.pytorch as pl

from hscl.training.images import ImageConfig, train_images

out, kill_epoch, config = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])


class Kill(pl.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == kill_epoch:  # half-way through epoch k: SIGKILL, no clean exit
            os.kill(os.getpid(), signal.SIGKILL)


train_images(ImageConfig(**config), out, progress=False, callbacks=[Kill()])
"""


class _Epochs:
    """Records the epoch at which each training epoch starts, the optimizer step at which the fit starts and the
    step at the end of each epoch."""

    def __init__(self) -> None:
        import lightning.pytorch as pl

        self.epochs, self.first_step, self.ends = [], None, []
        outer = self

        class Callback(pl.Callback):
            def on_train_start(self, trainer, module):
                outer.first_step = trainer.global_step

            def on_train_epoch_start(self, trainer, module):
                outer.epochs.append(trainer.current_epoch)

            def on_train_epoch_end(self, trainer, module):
                outer.ends.append(trainer.global_step)

        self.callback = Callback()


def test_a_run_killed_after_epoch_k_resumes_at_k_and_ends_as_an_uninterrupted_run(tmp_path, one_thread):
    """SIGKILL during epoch k (k epochs finished): the rerun starts at epoch k from the checkpoint written at the
    end of epoch k - 1, and ends with the metrics of a run never interrupted."""
    import signal

    import torch

    small = {**TINY, "epochs": 3, "train_subset": 96, "batch_size": 32, "knn_k": 10}  # 4 steps an epoch
    k = 1
    config = json.dumps({"method": "scl", **small})
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(tmp_path / "killed"), str(k), config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=one_thread,
    )
    whole = _Epochs()  # meanwhile, the uninterrupted run
    reference = train_images(
        ImageConfig(method="scl", **small), tmp_path / "whole", progress=False, callbacks=[whole.callback]
    )
    _, err = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, err[-3000:]
    assert whole.epochs == [0, 1, 2] and whole.first_step == 0
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    assert not (tmp_path / "killed" / "metrics.json").exists(), "the killed run did not finish"
    assert torch.load(last, weights_only=True)["epoch"] == k - 1, "the checkpoint of the last finished epoch"
    rerun = _Epochs()
    metrics = train_images(
        ImageConfig(method="scl", **small), tmp_path / "killed", progress=False, callbacks=[rerun.callback]
    )
    assert rerun.epochs == [1, 2] and rerun.first_step == whole.ends[k - 1], "resumed at epoch k, not 0"
    assert rerun.ends == whole.ends[k:] and torch.load(last, weights_only=True)["epoch"] == 2
    for key in ("linear_top1", "linear_val_top1", "linear_C", "knn_top1", "epochs", "train_images"):
        assert metrics[key] == reference[key], key


class _Trap:
    """Touches ``marker`` when unpickled by a full (not weights-only) unpickler."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_resume_refuses_a_checkpoint_holding_a_pickled_object(tmp_path, monkeypatch, one_thread):
    """last.ckpt is read with weights_only=True whatever torch's default: with torch's default forced to False (as
    before torch 2.6, which pyproject allows), a pickled object is refused with a clear error, never run."""
    import torch

    marker = tmp_path / "executed"
    (tmp_path / "out" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 0, "trap": _Trap(marker)}, tmp_path / "out" / "checkpoints" / "last.ckpt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(ValueError, match=r"last.ckpt was refused: it holds a pickled Python object .*weights_only"):
        train_images(ImageConfig(method="ucl", **TINY), tmp_path / "out", progress=False)
    assert not marker.exists(), "the pickled object did not run"


_FACTORIES = """
from torch import nn


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        return self.conv(x).relu().mean(dim=(2, 3))


def make():
    return TinyCNN()


def not_a_module():
    return "a string"
"""


class _TinyCNN:
    """An encoder given as a module (built lazily: torch is imported inside the tests)."""

    def __new__(cls):
        from torch import nn

        class TinyCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 5, 3, padding=1)

            def forward(self, x):
                return self.conv(x).relu().amax(dim=(2, 3))

        return TinyCNN()


def test_your_own_encoder_as_a_module_or_a_factory(tmp_path, monkeypatch, one_thread):
    import torch

    from hscl.checkpoint import load_model
    from hscl.models import ProjectedEncoder

    small = {**TINY, "train_subset": 100, "batch_size": 64, "knn_k": 10}
    # a module: trained in place, its output size read from one forward, the head built on it
    net = _TinyCNN()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    metrics = train_images(ImageConfig(method="scl", **small), tmp_path / "m", progress=False, encoder=net)
    assert 0 < metrics["linear_top1"] <= 1 and metrics["epochs"] == 1
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items()), "the module itself was trained"
    record = json.loads((tmp_path / "m" / "config.json").read_text())["encoder"]
    assert record["factory"] is None and record["class"].endswith("TinyCNN") and record["feature_dim"] == 5
    with pytest.raises(ValueError, match="given as a module; to rebuild it, train with the encoder given as"):
        load_model(tmp_path / "m" / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match=r"checkpoint of another configuration \(different encoder\)"):
        train_images(ImageConfig(method="scl", **small), tmp_path / "m", progress=False)  # the ResNet now
    # a factory string: resolved with importlib, recorded, rebuilt by load_model
    (tmp_path / "my_encoders.py").write_text(_FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    train_images(ImageConfig(method="scl", **small), tmp_path / "f", progress=False, encoder="my_encoders:make")
    record = json.loads((tmp_path / "f" / "config.json").read_text())["encoder"]
    assert record == {"factory": "my_encoders:make", "class": "my_encoders.TinyCNN", "feature_dim": 6}
    last = tmp_path / "f" / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match="built by 'my_encoders:make': rebuilding it imports and runs that code"):
        load_model(last)
    model, meta = load_model(last, allow_factory="my_encoders:make")
    assert isinstance(model, ProjectedEncoder) and type(model.backbone).__name__ == "TinyCNN"
    saved = torch.load(last, weights_only=True)["state_dict"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[f"encoder.{k}"]), k
    assert meta["method"] == "scl" and meta["epoch"] == 0 and len(meta["mean"]) == 3
    images = torch.zeros(2, 3, 8, 8)
    assert model.eval().features(images).shape == (2, 6) and model(images).shape == (2, small["projection"])
    # clear errors, before anything is read or written
    for factory, message in (
        ("no_such_module:make", "cannot import module 'no_such_module'"),
        ("my_encoders:missing", "module 'my_encoders' has no attribute 'missing'"),
        ("__import__('os').system('true')", "is written 'package.module:function'"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            train_images(ImageConfig(method="scl", **small), tmp_path / "bad", progress=False, encoder=factory)
        assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match=r"returned a builtins\.str, not a torch\.nn\.Module"):
        train_images(
            ImageConfig(method="scl", **small), tmp_path / "bad", progress=False, encoder="my_encoders:not_a_module"
        )


def test_records_state_the_hardening_used_and_the_code(tmp_path, monkeypatch, one_thread):
    """config.json says which beta / tau the loss used (not null for a default); metrics.json the hscl version and
    git commit (None outside a git checkout, never an error)."""
    import dataclasses
    from pathlib import Path

    import hscl
    from hscl.losses.registry import DEFAULT_BETA, DEFAULT_TAU
    from hscl.training.images import _record, config_differences, raw_pixel_probe
    from hscl.training.records import git_commit

    metrics = train_images(ImageConfig(method="hscl-beta", **{**TINY, "epochs": 0}), tmp_path / "a", progress=False)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["beta"] == DEFAULT_BETA and saved["tau"] is None and saved["encoder"] is None
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(hscl.__file__).parent, capture_output=True, text=True)
    commit = proc.stdout.strip() if proc.returncode == 0 else None
    assert metrics["hscl_version"] == hscl.__version__ and metrics["git_commit"] == commit
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["git_commit"] == commit
    raw = raw_pixel_probe(ImageConfig(method="ucl", **TINY), tmp_path / "r", progress=False)
    assert (
        raw["hscl_version"] == hscl.__version__
        and json.loads((tmp_path / "r" / "config.json").read_text())["beta"] is None
    )
    used = {
        m: (_record(ImageConfig(method=m, **TINY))["beta"], _record(ImageConfig(method=m, **TINY))["tau"])
        for m in ("ucl", "scl", "hucl", "hscl", "hscl-beta-labels", "hscl-tau", "hscl-tau-labels")
    }
    assert used == {
        "ucl": (None, None),
        "scl": (None, None),
        "hucl": (DEFAULT_BETA, None),
        "hscl": (DEFAULT_BETA, None),
        "hscl-beta-labels": (DEFAULT_BETA, None),
        "hscl-tau": (None, DEFAULT_TAU),
        "hscl-tau-labels": (None, DEFAULT_TAU),
    }
    assert _record(ImageConfig(method="hscl-beta", tau=0.3, **TINY))["tau"] == 0.3
    # a config.json of an older hscl ("beta": null) and a new one describe the same run: it resumes
    config = ImageConfig(method="hscl-beta", **TINY)
    assert config_differences({**dataclasses.asdict(config), "beta": None}, config) == []
    assert config_differences(_record(config), config) == []
    assert config_differences({**_record(config), "beta": 2.0}, config) == ["beta"]
    from hscl.training.records import git_dirty

    git_commit.cache_clear(), git_dirty.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    try:
        assert git_commit() is None and git_dirty() is None
    finally:
        git_commit.cache_clear(), git_dirty.cache_clear()


def test_lightning_resume_loads_the_checkpoint_to_the_cpu(tmp_path, monkeypatch):
    """Lightning calls ``load_checkpoint(path, weights_only=...)`` without a map_location: the checkpoint must go to
    the CPU (as Lightning's own default does), or every DDP rank would put a GPU checkpoint on cuda:0 and a GPU run
    could not resume on a CPU."""
    import torch

    import hscl.checkpoint as checkpoint
    from hscl.training.images import _atomic_checkpoint_io

    seen = {}
    real = checkpoint.safe_load

    def spy(path, map_location=None):
        seen["map_location"] = map_location
        return real(path, map_location=map_location)

    monkeypatch.setattr(checkpoint, "safe_load", spy)
    io = _atomic_checkpoint_io()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / "last.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt", weights_only=True)["state_dict"]["w"].device.type == "cpu"
    assert seen["map_location"] == "cpu"
