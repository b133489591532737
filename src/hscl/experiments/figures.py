"""The paper's Figures 4 and 5, reproduced: the fraction of anchors satisfying Assumption 1 and the four asymptotic
losses at the end of every epoch, at tau = e^-0.5, e^-0.1 and beta = 1, 2 (SPEC.md section 4), for encoders trained
with each method, several seeds.

Presets:

* ``cpu`` (minutes on 2 cores, no download): an MLP on scikit-learn's digits (75% class-balanced training split,
  feature-noise/dropout views), 30 epochs, diagnostics every fifth epoch with the training split as reference set.
* ``paper`` (a GPU job, hours; the data set must be downloaded): ``hscl train`` with the authors' settings
  (ResNet-50, CIFAR stem, Adam 1e-3, batch 256, t = 0.5, 200 epochs, bf16) on CIFAR-100, diagnostics every epoch
  on 10,000 training images. One ResNet-50 run is ~200 GPU-epochs: on one H100/H200-class GPU roughly a few
  hours per method and seed.

``run`` writes ``OUT/<method>-seed<S>/`` (each run's ``diagnostics.csv`` and its own two figures),
``OUT/diagnostics.csv`` (all runs), ``OUT/figure4_assumption.png`` (one panel per setting, one line per training
method, mean over seeds with the min-max band), ``OUT/figure5_losses.png`` (the four losses per setting for the
H-SCL (beta) runs, or the first method) and ``OUT/table.md`` (last epoch). Finished runs are kept on a rerun.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_text
from .._plot import pyplot, save_png
from ..diagnostics.asymptotic import LOSS_NAMES, PAPER_SETTINGS
from ..losses.registry import METHODS as LOSS_METHODS
from ..losses.registry import make_loss

__all__ = ["METHODS", "PRESETS", "digits_split", "run", "train_digits"]

METHODS = tuple(k for k in LOSS_METHODS if k != "hscl")
PRESETS = ("cpu", "paper")


def train_digits(method: str, folder: Path, split: dict, *, epochs: int, seed: int, temperature: float) -> dict:
    """Pre-train on the digits training split with ``method``; record diagnostics; probe. Returns the result."""
    from ..diagnostics import DiagnosticsRecorder
    from ..evaluation import linear_probe
    from ..models import MLPEncoder
    from ..transforms import VectorAugment

    done = folder / "result.json"
    settings = {"method": method, "epochs": epochs, "seed": seed, "temperature": temperature}
    if done.is_file():
        result = json.loads(done.read_text())
        if {k: result.get(k) for k in settings} == settings:
            return result
    torch.manual_seed(seed)
    x, y = split["x"], split["y"]
    tr, va, te = split["train"], split["val"], split["test"]
    model = MLPEncoder(x.shape[1])
    augment = VectorAugment(noise=0.1, drop=0.2, generator=torch.Generator().manual_seed(seed + 1))
    loss_fn = make_loss(method, temperature)
    supervised = LOSS_METHODS[method].supervised
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    recorder = DiagnosticsRecorder(folder, temperature=temperature, title=f"(digits, trained with {method})")
    probe_augment = VectorAugment(noise=0.1, drop=0.2, generator=torch.Generator().manual_seed(12345))
    pretrain = torch.cat([tr, va])  # the probe's validation images are training images too (never the test ones)
    recorder.record_model(0, model, (x[pretrain], y[pretrain]), augment=probe_augment, draw=False)
    order = torch.Generator().manual_seed(seed + 2)
    losses = []
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for idx in pretrain[torch.randperm(pretrain.numel(), generator=order)].split(256):
            if idx.numel() < 2:
                continue
            xb = x[idx]
            loss = loss_fn(model(torch.stack([augment(xb), augment(xb)], dim=1)), y[idx] if supervised else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        losses.append(total / pretrain.numel())
        if epoch % 5 == 0 or epoch == epochs:
            recorder.record_model(epoch, model, (x[pretrain], y[pretrain]), augment=probe_augment, draw=False)
    recorder.plot()
    model.eval()
    with torch.no_grad():
        feats = model.features(x).numpy()
    probe = linear_probe(feats[tr], y[tr].numpy(), feats[va], y[va].numpy(), feats[te], y[te].numpy())
    last = {r["setting"]: r for r in recorder.rows if int(r["epoch"]) == epochs}
    result = {
        **settings,
        "linear_top1": probe["linear_top1"],
        "final_train_loss": losses[-1],
        "assumption_fraction": {k: float(v["assumption_fraction"]) for k, v in last.items()},
        "hscl_le_hucl": {k: v["hscl_le_hucl"] == "True" for k, v in last.items()},
    }
    atomic_write_text(done, json.dumps(result, indent=1) + "\n")
    return result


def digits_split(seed: int) -> dict:
    from ..datasets import load_digits
    from ..datasets.images import balanced_split

    x, y = load_digits()
    train_val, test = balanced_split(y.numpy(), 0.25, seed=seed)
    train_pos, val_pos = balanced_split(y.numpy()[train_val], 0.2, seed=seed)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
    return {"x": x, "y": y, "train": as_t(train_val[train_pos]), "val": as_t(train_val[val_pos]), "test": as_t(test)}


def _paper_run(method: str, seed: int, folder: Path, *, dataset: str, data_root, download: bool, epochs: int | None,
               progress: bool) -> Path:  # fmt: skip
    from ..training.images import ImageConfig, load_preset, train_images

    values = {**load_preset("paper"), "dataset": dataset, "method": method, "seed": seed, "diagnostics": 10000,
              "data_root": data_root, "download": download}  # fmt: skip
    if epochs is not None:
        values["epochs"] = epochs
    train_images(ImageConfig(**values), folder, progress=progress)
    return folder / "diagnostics" / "diagnostics.csv"


def run(
    out: str | Path,
    *,
    preset: str = "cpu",
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0, 1),
    epochs: int | None = None,
    dataset: str = "cifar100",
    data_root=None,
    download: bool = False,
    progress: bool = True,
) -> Path:
    """Train with each method and seed while recording the diagnostics; write the figures (module doc).
    Returns the path of ``figure4_assumption.png``."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {list(methods)}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(m, int(s)) for s in seeds for m in methods]
    bar = None
    if progress and preset == "cpu":
        from tqdm.auto import tqdm

        bar = tqdm(total=len(runs), desc="figures", unit="run")
    rows = []
    splits: dict[int, dict] = {}  # the digits split of each seed, made once
    for m, s in runs:
        folder = out / f"{m}-seed{s}"
        if preset == "cpu":
            if s not in splits:
                splits[s] = digits_split(s)
            train_digits(m, folder, splits[s], epochs=epochs or 30, seed=s, temperature=0.5)
            path = folder / "diagnostics.csv"
        else:
            path = _paper_run(m, s, folder, dataset=dataset, data_root=data_root, download=download, epochs=epochs,
                              progress=progress)  # fmt: skip
        rows += [{"method": m, "seed": s, **r} for r in csv.DictReader(path.open())]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "diagnostics.csv", buf.getvalue())
    return _report(out, rows, methods, preset)


def _curves(rows, method: str, setting: str, key: str):
    """Epochs and, per epoch, the values over seeds of ``key`` for runs trained with ``method``."""
    sel = [r for r in rows if r["method"] == method and r["setting"] == setting]
    epochs = sorted({int(r["epoch"]) for r in sel})
    values = [[float(r[key]) for r in sel if int(r["epoch"]) == e] for e in epochs]
    return np.array(epochs), values


def _band(ax, epochs, values, label: str) -> None:
    """The mean over seeds as a line, with the min-max band."""
    line = ax.plot(epochs, [np.mean(v) for v in values], marker="o", ms=3, label=label)[0]
    ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values], color=line.get_color(), alpha=0.15)


def _report(out: Path, rows: list[dict], methods: Sequence[str], preset: str) -> Path:
    plt = pyplot()

    settings = [s for s in PAPER_SETTINGS if any(r["setting"] == s for r in rows)]
    where = "digits, MLP" if preset == "cpu" else "images, ResNet-50 (paper preset)"
    fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 3.6), squeeze=False, sharey=True)
    for ax, setting in zip(axes[0], settings, strict=True):
        for m in methods:
            _band(ax, *_curves(rows, m, setting, "assumption_fraction"), LOSS_METHODS[m].label)
        ax.set_title(setting)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of anchors satisfying Assumption 1")
    axes[0][-1].legend(fontsize=7, title="trained with", title_fontsize=7)
    fig.suptitle(f"Figure 4: anchors satisfying Assumption 1 at the end of each epoch ({where}; mean, min-max over "
                 "seeds)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig4 = out / "figure4_assumption.png"
    save_png(fig, fig4)

    focus = "hscl-beta" if "hscl-beta" in methods else methods[0]
    fig, axes = plt.subplots(1, len(settings), figsize=(4 * len(settings), 3.6), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        for loss in LOSS_NAMES:
            _band(ax, *_curves(rows, focus, setting, loss), loss)
        ax.set_title(setting)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("asymptotic loss  -s_ip + log E_i")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Figure 5: the four asymptotic losses across epochs, encoder trained with "
                 f"{LOSS_METHODS[focus].label} ({where})", fontsize=10)  # fmt: skip
    fig.tight_layout()
    save_png(fig, out / "figure5_losses.png")

    last = max(int(r["epoch"]) for r in rows)
    lines = ["| trained with | " + " | ".join(f"Assumption 1, {s}" for s in settings)
             + " | L_H-SCL <= L_H-UCL (runs, all settings) |", "|---|" + "---:|" * len(settings) + "---:|"]  # fmt: skip
    for m in methods:
        final = [r for r in rows if r["method"] == m and int(r["epoch"]) == last]
        cells = []
        for s in settings:
            v = np.array([float(r["assumption_fraction"]) for r in final if r["setting"] == s])
            cells.append(f"{100 * v.mean():.1f}% ± {100 * v.std():.1f}" if v.size else "")
        holds = sum(r["hscl_le_hucl"] == "True" for r in final)
        lines.append(f"| {LOSS_METHODS[m].label} | " + " | ".join(cells) + f" | {holds}/{len(final)} |")
    seeds = sorted({r["seed"] for r in rows})
    lines += ["", f"Last epoch ({last}); mean ± std over seeds {', '.join(map(str, seeds))}; {where}. "
              "Reference set: the recorded training images, two views each."]  # fmt: skip
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")
    return fig4
