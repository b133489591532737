"""Contrastive pre-training on feature vectors: scikit-learn's digits (1,797 8x8 images as 64 features, 10 classes)
with an MLP encoder, the loop of ``hscl reproduce figures --preset cpu`` and of ``hscl demo``.

:func:`digits_split` splits the digits class-balanced into train (60%), validation (15%) and test (25%).
:func:`train_digits` pre-trains the MLP with one method of the registry on train and validation (two
feature-noise/dropout views per sample, Adam, the recipe :data:`DIGITS`), records the paper's diagnostics on that
split every ``DIGITS["record_every"]`` epochs (unless told not to), then scores the frozen representations with
a linear probe (C chosen on validation, reported on test) and a weighted kNN on test.
:func:`digits_controls` scores the two controls of a seed through the same probe and split: the same MLP
untrained and the raw 64 features.

Pairing: the initialisation (``torch.manual_seed(seed)`` before the MLP is built), the augmentation stream (a
generator seeded with ``seed + 1``) and the batch order (``seed + 2``) depend on the seed alone, never on the
method, so that methods of one seed differ only in the loss; the untrained control is that initialisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .._extras import require
from .._io import atomic_write_text
from ..losses.registry import METHODS, make_loss
from .runs import embed_frozen

require(__name__, "images")  # scikit-learn (digits, probe) and matplotlib (diagnostics figures)

__all__ = ["DIGITS", "digits_controls", "digits_split", "train_digits"]

#: The digits recipe of the cpu preset (and of ``hscl demo``): MLP encoder, feature-noise/dropout views, Adam.
DIGITS = {
    "noise": 0.1,
    "drop": 0.2,
    "lr": 1e-3,
    "weight_decay": 1e-6,
    "batch_size": 256,
    "record_every": 5,
    "knn_k": 200,
    "test_fraction": 0.25,
    "val_fraction": 0.2,
}


def _digits_encoder(seed: int, in_features: int):
    """The MLP every digits run starts from: its initialisation depends on the seed alone (never the method)."""
    from ..models import MLPEncoder

    torch.manual_seed(seed)
    return MLPEncoder(in_features)


def _probe(feats: np.ndarray, split: dict) -> dict:
    """The linear probe (C on validation, reported on test) and the weighted kNN on test, of [N, d] features."""
    from ..evaluation.knn import knn_accuracy
    from ..evaluation.linear import linear_probe

    y, tr, va, te = split["y"], split["train"], split["val"], split["test"]
    probe = linear_probe(feats[tr], y[tr].numpy(), feats[va], y[va].numpy(), feats[te], y[te].numpy())
    f = torch.as_tensor(feats, dtype=torch.float32)
    knn = knn_accuracy(f[tr], y[tr], f[te], y[te], k=DIGITS["knn_k"])
    return {"linear_top1": probe["linear_top1"], "linear_val_top1": probe["val_top1"], "knn_top1": knn}


def digits_controls(split: dict, seed: int) -> dict[str, dict]:
    """The two controls of one seed on its digits split, through the probe of :func:`train_digits`: the same MLP
    untrained (the initialisation every method of that seed starts from) and the raw 64 features."""
    x = split["x"]
    untrained = embed_frozen(_digits_encoder(seed, x.shape[1]), [x]).numpy()
    return {
        "untrained": {**_probe(untrained, split), "epochs": 0},
        "raw-pixels": {**_probe(x.numpy(), split), "epochs": 0},
    }


def train_digits(
    method: str, folder: Path, split: dict, *, epochs: int, seed: int, temperature: float, diagnostics: bool = True
) -> dict:
    """Pre-train on the digits training split with ``method``; record diagnostics (unless ``diagnostics`` is
    False); probe. Returns the result (also ``folder/result.json``, read back when the settings match).

    Pairing: the initialisation (``torch.manual_seed(seed)``), the augmentation stream (a generator seeded with
    ``seed + 1``) and the batch order (``seed + 2``) depend on the seed alone, never on the method."""
    from ..diagnostics import DiagnosticsRecorder
    from ..transforms import VectorAugment

    done = folder / "result.json"
    settings = dict(method=method, epochs=epochs, seed=seed, temperature=temperature, diagnostics=diagnostics)
    if done.is_file():
        result = json.loads(done.read_text())
        if {k: result.get(k) for k in settings} == settings and "knn_top1" in result:
            return result
    x, y = split["x"], split["y"]
    model = _digits_encoder(seed, x.shape[1])
    augment = VectorAugment(
        noise=DIGITS["noise"], drop=DIGITS["drop"], generator=torch.Generator().manual_seed(seed + 1)
    )
    loss_fn = make_loss(method, temperature)
    supervised = METHODS[method].supervised
    opt = torch.optim.Adam(model.parameters(), lr=DIGITS["lr"], weight_decay=DIGITS["weight_decay"])
    folder.mkdir(parents=True, exist_ok=True)
    recorder = None
    if diagnostics:
        recorder = DiagnosticsRecorder(folder, temperature=temperature, title=f"(digits, trained with {method})")
    probe_augment = VectorAugment(
        noise=DIGITS["noise"], drop=DIGITS["drop"], generator=torch.Generator().manual_seed(12345)
    )
    # the probe's validation images are training images too (never the test ones)
    pretrain = torch.cat([split["train"], split["val"]])
    if recorder is not None:
        recorder.record_model(0, model, (x[pretrain], y[pretrain]), augment=probe_augment, draw=False)
    order = torch.Generator().manual_seed(seed + 2)
    losses = []
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for idx in pretrain[torch.randperm(pretrain.numel(), generator=order)].split(DIGITS["batch_size"]):
            if idx.numel() < 2:
                continue
            xb = x[idx]
            loss = loss_fn(model(torch.stack([augment(xb), augment(xb)], dim=1)), y[idx] if supervised else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        losses.append(total / pretrain.numel())
        if recorder is not None and (epoch % DIGITS["record_every"] == 0 or epoch == epochs):
            recorder.record_model(epoch, model, (x[pretrain], y[pretrain]), augment=probe_augment, draw=False)
    if recorder is not None:
        recorder.plot()
    feats = embed_frozen(model, [x]).numpy()
    last = {r["setting"]: r for r in (recorder.rows if recorder else ()) if int(r["epoch"]) == epochs}
    result = {
        **settings,
        **_probe(feats, split),
        "final_train_loss": losses[-1],
        "assumption_fraction": {k: float(v["assumption_fraction"]) for k, v in last.items()},
        "hscl_le_hucl": {k: v["hscl_le_hucl"] == "True" for k, v in last.items()},
    }
    atomic_write_text(done, json.dumps(result, indent=1) + "\n")
    return result


def digits_split(seed: int) -> dict:
    """The digits (``x`` [1797, 64] float, ``y`` [1797]) and index tensors ``train``, ``val`` and ``test`` of
    ``seed``: a class-balanced ``DIGITS["test_fraction"]`` test split, then a class-balanced
    ``DIGITS["val_fraction"]`` of the rest for validation (the probe's choice of C)."""
    from ..datasets import load_digits
    from ..datasets.image_readers import balanced_split

    x, y = load_digits()
    train_val, test = balanced_split(y.numpy(), DIGITS["test_fraction"], seed=seed)
    train_pos, val_pos = balanced_split(y.numpy()[train_val], DIGITS["val_fraction"], seed=seed)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
    return {"x": x, "y": y, "train": as_t(train_val[train_pos]), "val": as_t(train_val[val_pos]), "test": as_t(test)}
