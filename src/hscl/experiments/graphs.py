"""Graph benchmarks end to end (docs/math.md sections 5 and 6): TU data, GIN, GraphCL augmentations, the methods of
the registry and three controls, 10-fold stratified cross-validation with a fixed fold seed, and an SVM whose C
is chosen by inner CV on the training folds.

Protocol, per data set, seed and outer fold (one "group"):

* Every method pre-trains a GIN on the **training folds** only: SCL, H-SCL and SupCon with their labels, UCL
  and H-UCL without. The test fold is never seen before the SVM's final score.
* **Pairing**: within a group, every row starts from the same initialisation (``torch.manual_seed`` of the
  group's seed before the GIN is built), sees the same batch order and the same augmented views; methods differ
  only in the loss.
* **Budget rule** (fixed before any run, the same for every method of a data set): each pre-training runs
  ``E = max(min_epochs, ceil(min_steps / S))`` epochs, S the number of optimizer steps per epoch on the training
  folds (``--epochs`` replaces the rule by a fixed number for quick runs).
* **Controls** through the identical folds and SVM protocol: ``untrained`` (the same GIN at its initialisation,
  the group's seed), ``wl`` (Weisfeiler-Lehman subtree features, the classical baseline; SVM on their kernel),
  and ``supervised`` (the same GIN trained end to end with cross-entropy on the training folds, for the
  same number of optimizer steps, its epoch chosen on a validation split held out of them; scored by its own
  classifier).
* ``ucl-transductive``: UCL pre-trained once per seed on all graphs without labels (the InfoGraph / GraphCL
  convention), one extra labelled row; not part of the paired claims.
* Secondary hardening sweeps (``hscl-sweep``, view positives; ``hscl-labels-sweep``, label positives; not in the
  default methods): per (seed, fold), the training folds are split once (stratified, the group's seed) into an
  inner-train (80%) and an inner-validation (20%) part; each candidate of ``SWEEP_CANDIDATES`` (beta in
  {0.5, 1, 2, 5}; tau in {e^0, e^0.5}, thresholds that bind for cosine scores / 0.5 in [-2, 2]) pre-trains a GIN
  on inner-train (the group's seed, the budget rule on inner-train) and is scored by the linear SVM trained on
  inner-train, tested on inner-validation; the best (ties: the first) pre-trains on all training folds and is
  scored on the test fold like every method. The test fold plays no part in the choice. A folder that holds
  sweep rows is bound to settings with the candidate grid and the inner split (``sweep_settings``).
* Frozen representations (sum pooling of every GIN layer) go to a linear SVM, C chosen by 5-fold inner CV on
  the training folds; the test fold is scored once.
* **Your own encoder** (``GraphConfig(encoder="package.module:function")``, ``hscl reproduce graphs --encoder``)
  replaces the GIN everywhere: every pre-trained method, the untrained control and the supervised reference. The
  factory is imported (never evaluated) before any work and called as ``factory(in_features=F)``, ``F`` the data
  set's node feature size, right after the group's ``torch.manual_seed`` (so the pairing holds); the module maps
  a PyG ``Batch`` to representations ``[num_graphs, D]`` (``D`` read from one forward of two graphs), which the SVM
  and the supervised classifier read; :class:`hscl.models.ProjectedEncoder` puts the projection head
  ``D -> D -> D`` on top for pre-training. ``hidden`` and ``layers`` then play no part. The factory is part of the
  settings only when given, so a GIN folder keeps its fingerprint.

``run`` binds the output folder to the resolved settings (``settings.json``; a resume with other settings is
refused, naming them), writes ``results.csv`` (one row per data set, entry, seed and fold, each with the
settings' fingerprint), rewriting it atomically after every row, and skips the rows already there, so a killed
run resumes where it stopped. ``write_report`` turns the CSV into ``table.md``, ``accuracy.png`` and
``paired.png``; the comparisons use the corrected resampled t-test (:mod:`hscl.evaluation.stats`).
"""

from __future__ import annotations

from .._extras import require
from .._validation import check_int

require(__name__, "graphs")  # before the imports below: name the extra, not a missing module

import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_text, check_output_folder, write_csv_atomic
from .._plot import bar_chart, dataset_name, paired_chart
from ..datasets.tu import BENCHMARKS, load_tu
from ..evaluation import svm_accuracy
from ..evaluation.stats import corrected_resampled_ttest, mean_std
from ..losses.registry import DEFAULT_BETA, DEFAULT_TAU, TABLE_METHODS, make_loss, table_methods
from ..losses.registry import METHODS as LOSS_METHODS
from ..models import GINEncoder, ProjectedEncoder, build_encoder, feature_dim_of, resolve_factory
from ..training import embed_graphs, pretrain_graphs
from ..training.runs import (
    Manifest,
    bind_settings,
    check_fingerprints,
    embed_frozen,
    load_results,
    read_rows,
    read_settings,
)

__all__ = [
    "COLUMNS",
    "CONTROLS",
    "ENTRIES",
    "PRIMARY",
    "SWEEPS",
    "SWEEP_CANDIDATES",
    "GraphConfig",
    "GraphRun",
    "configure",
    "fold_indices",
    "main",
    "paired_comparison",
    "run",
    "sweep_settings",
    "write_report",
]

FOLD_SEED = 0
#: Bumped whenever the protocol changes what a row means (part of every fingerprint).
PROTOCOL = 2

#: The pre-registered primary comparison: the view-positive (theory) and label-positive (paper) configurations
#: of SCL and H-SCL with the exponential tilt beta = 1, against UCL, H-UCL (beta = 1) and SupCon. The threshold
#: variants (``hscl-tau``, ``hscl-tau-labels``) are secondary (``--methods``).
PRIMARY = table_methods(tau=False)
#: The controls, run through the identical folds.
CONTROLS = {"untrained": "GIN, untrained", "wl": "WL subtree kernel", "supervised": "GIN, supervised (CE)"}
#: Extra rows that are not part of the paired claims.
EXTRAS = {"ucl-transductive": "UCL, all graphs (GraphCL conv.)"}
#: Secondary sweeps: the entry and the registry method whose hardening is chosen on an inner split.
SWEEPS = {"hscl-sweep": "hscl-beta", "hscl-labels-sweep": "hscl-beta-labels"}
SWEEP_LABELS = {
    "hscl-sweep": "H-SCL (beta/tau on inner split)",
    "hscl-labels-sweep": "H-SCL (beta/tau on inner split), label pos.",
}
#: The candidates of a sweep, in tie-breaking order: the exponential tilts, then thresholds on e^s that bind
#: (s = cosine / 0.5 lies in [-2, 2]).
SWEEP_CANDIDATES: tuple[tuple[str, float], ...] = (
    ("beta", 0.5),
    ("beta", 1.0),
    ("beta", 2.0),
    ("beta", 5.0),
    ("tau", 1.0),
    ("tau", math.exp(0.5)),
)
#: The share of the training folds held out as the sweep's inner validation part.
SWEEP_VALIDATION = 0.2
_SPLIT_TEXT = f"{100 - round(100 * SWEEP_VALIDATION)}/{round(100 * SWEEP_VALIDATION)}"
#: Every row name and its label, in table order.
ENTRIES = {**CONTROLS, **{m: LOSS_METHODS[m].label for m in TABLE_METHODS}, **SWEEP_LABELS, **EXTRAS}
#: How your own encoder's factory is called (recorded in the settings of a run with ``GraphConfig.encoder``).
ENCODER_CALL = "factory(in_features=<node feature size>) after the group's torch.manual_seed; head D -> D -> D"

#: Published numbers, each under its own protocol (docs/math.md section 6), quoted for orientation only.
PUBLISHED = {
    "GraphCL (You et al. 2020)": {
        "NCI1": 77.87,
        "PROTEINS": 74.39,
        "DD": 78.62,
        "MUTAG": 86.80,
        "IMDB-BINARY": 71.14,
        "REDDIT-BINARY": 89.53,
    },
    "InfoGraph (Sun et al. 2020)": {
        "NCI1": 76.20,
        "PROTEINS": 74.44,
        "DD": 72.85,
        "MUTAG": 89.01,
        "PTC_MR": 61.65,
        "IMDB-BINARY": 73.03,
        "REDDIT-BINARY": 82.50,
    },
    "supervised GIN (Errica et al. 2020)": {
        "NCI1": 80.0,
        "PROTEINS": 73.3,
        "DD": 75.3,
        "ENZYMES": 59.6,
        "IMDB-BINARY": 71.2,
        "REDDIT-BINARY": 89.9,
    },
}
COLUMNS = (
    "dataset",
    "method",
    "seed",
    "fold",
    "accuracy",
    "svm_C",
    "pretraining",
    "epochs",
    "steps",
    "negatives_kept",
    "seconds",
    "fingerprint",
)


@dataclass(frozen=True)
class GraphConfig:
    """Every setting of a graph run; all but ``svm_jobs`` (which does not change results) are fingerprinted."""

    min_steps: int = 300  # budget rule: at least this many optimizer steps ...
    min_epochs: int = 20  # ... and at least this many epochs
    epochs: int | None = None  # a fixed number of epochs for every data set instead of the rule (quick runs)
    batch_size: int = 128
    lr: float = 1e-3
    hidden: int = 32
    layers: int = 3
    temperature: float = 0.5
    augment_ratio: float = 0.2
    views: int = 2
    folds: int = 10
    wl_iterations: int = 3
    svm_jobs: int = 1  # parallel processes for the SVM's C grid (results do not depend on it)
    encoder: str | None = None  # your own encoder's factory "package.module:function" instead of the GIN

    def __post_init__(self) -> None:
        if self.encoder is not None:
            if not isinstance(self.encoder, str):
                raise ValueError(f"encoder must be None or 'package.module:function', got {self.encoder!r}")
            object.__setattr__(self, "encoder", self.encoder.strip())
        for name in (
            "min_steps",
            "min_epochs",
            "batch_size",
            "hidden",
            "layers",
            "folds",
            "wl_iterations",
            "svm_jobs",
        ):
            value = getattr(self, name)
            check_int(name, value, 1)
        check_int("epochs", self.epochs, 1, optional=True)
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (a contrastive batch needs two graphs), got {self.batch_size}")
        check_int("views", self.views, 2)
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not 0 <= self.augment_ratio < 1:
            raise ValueError(f"augment_ratio must be in [0, 1), got {self.augment_ratio!r}")

    def steps_per_epoch(self, n_train: int) -> int:
        """Optimizer steps of one epoch on ``n_train`` graphs (a last batch of one graph is skipped)."""
        full, rest = divmod(n_train, self.batch_size)
        return full + (rest >= 2)

    def epochs_of(self, n_train: int) -> int:
        """The budget rule: a fixed ``epochs``, else ``max(min_epochs, ceil(min_steps / steps_per_epoch))``."""
        if self.epochs is not None:
            return self.epochs
        return max(self.min_epochs, math.ceil(self.min_steps / max(self.steps_per_epoch(n_train), 1)))

    def settings(self) -> dict:
        """The resolved settings that define every row (fingerprinted and saved in ``settings.json``)."""
        from ..evaluation.svm import DEFAULT_CS
        from ..transforms.graph import OPS

        values = {k: v for k, v in asdict(self).items() if k not in ("svm_jobs", "encoder")}
        constants = {
            "svm": "StandardScaler + LinearSVC(dual=False, max_iter=1000), C by stratified 5-fold inner CV",
            "wl_kernel": "cosine-normalised",
            "wl_svm": "SVC(kernel='precomputed')",
            "supervised": "Adam, cross-entropy, best epoch on a stratified 10% validation split",
            "augment_ops": list(OPS),
            "seeds": "crc32('dataset|seed|fold') for every row of a group",
        }
        settings = {
            "protocol": PROTOCOL,
            "fold_seed": FOLD_SEED,
            "svm_cs": list(DEFAULT_CS),
            "graph": values,
            "methods": {m: LOSS_METHODS[m].spec() for m in TABLE_METHODS},
            "beta": DEFAULT_BETA,
            "tau": DEFAULT_TAU,
            "constants": constants,
        }
        if self.encoder is not None:  # only then: the settings (and fingerprint) of a GIN run are unchanged
            settings["encoder"] = {"factory": self.encoder, "call": ENCODER_CALL}
        return settings


#: The presets' folder under ``hscl/configs/`` (``cpu``, ``paper``).
COMMAND = "reproduce-graphs"


@dataclass(frozen=True)
class GraphRun:
    """``hscl reproduce graphs``: what runs (the data sets, entries, seeds; the data sets whose pre-trainings record
    the diagnostics every epoch; where the TU folders live) and how (``graph``, the fingerprinted settings). Its
    presets are ``hscl/configs/reproduce-graphs/`` (:func:`configure`)."""

    datasets: tuple[str, ...] = BENCHMARKS  # names or folders of TU raw files
    methods: tuple[str, ...] = (*CONTROLS, *PRIMARY, *EXTRAS)  # entries of ENTRIES
    seeds: tuple[int, ...] = (0, 1, 2)
    diagnostics: tuple[str, ...] = ()  # data sets of the run (a folder by its name too)
    data_root: str | None = None  # folder of <NAME>/ TU folders (default: $HSCL_TU_ROOT, ../shared/data/TU, ...)
    graph: GraphConfig = field(default_factory=GraphConfig)


def sweep_settings() -> dict:
    """What a sweep row additionally depends on (added to the settings of a folder that holds sweep rows)."""
    return {
        "entries": {m: LOSS_METHODS[base].spec() for m, base in SWEEPS.items()},
        "candidates": [{k: v} for k, v in SWEEP_CANDIDATES],
        "inner_split": f"stratified {_SPLIT_TEXT} of the training folds, "
        "the group's seed; linear SVM trained on the first part, accuracy on the second; ties: the first",
    }


def _candidate_text(kind: str, value: float) -> str:
    if kind == "tau":
        return f"tau=e^{math.log(value):g}"
    return f"beta={value:g}"


def inner_split(train_labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the training folds) of the sweep's inner-train and inner-validation parts."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(train_labels))
    return train_test_split(positions, test_size=SWEEP_VALIDATION, stratify=train_labels, random_state=seed)


def fold_indices(labels: np.ndarray, folds: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified outer folds with the fixed fold seed (the same for every method and seed)."""
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(folds, shuffle=True, random_state=FOLD_SEED)
    return list(skf.split(np.zeros(len(labels)), labels))


def group_seed(*parts) -> int:
    """The seed of a (data set, seed, fold) group, shared by every row of the group (no method in it)."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def _encoder(dataset, config: GraphConfig, seed: int) -> torch.nn.Module:
    """The encoder of a row, initialised with ``seed``: the GIN, or your own (``config.encoder``) under a projection
    head; both give ``features(batch)`` (the representations) and ``forward(batch)`` (the projections)."""
    torch.manual_seed(seed)
    if config.encoder is None:
        return GINEncoder(dataset.num_features, hidden=config.hidden, layers=config.layers)
    backbone = _build_own_encoder(config.encoder, dataset.num_features)
    return ProjectedEncoder(backbone, feature_dim_of(backbone, _example_batch(dataset)))


def _build_own_encoder(factory: str, in_features: int) -> torch.nn.Module:
    """``factory(in_features=in_features)``, checked to be an ``nn.Module`` (:func:`build_encoder`); a
    ``ValueError`` that says why not."""
    try:
        return build_encoder(factory, in_features=in_features)
    except TypeError as err:
        raise ValueError(
            f"encoder factory {factory!r}: called as factory(in_features={in_features}) (the node feature size), "
            f"it raised TypeError: {err}"
        ) from err


def _example_batch(dataset):
    """The first two graphs as one batch, as :func:`pretrain_graphs` cuts them (for the representation size)."""
    from ..training.graphs import graph_batches

    return next(graph_batches([dataset[0], dataset[1]], 2, False, 0))[1]


def _check_own_encoder(dataset, config: GraphConfig) -> None:
    """Build your own encoder once for ``dataset`` and read its representation size: a factory that does not take
    ``in_features``, returns no module or maps a batch to no ``[N, D]`` is refused before any work. The global
    random state is restored (the rows seed it themselves anyway)."""
    with torch.random.fork_rng(devices=[]):
        try:
            _encoder(dataset, config, 0)
        except ValueError as err:
            raise ValueError(f"{err} (data set {dataset.name})") from None


def _pretrain(
    dataset,
    method_name: str,
    graphs,
    labels,
    config: GraphConfig,
    seed: int,
    epochs: int,
    hook=None,
    *,
    beta: float | None = None,
    tau: float | None = None,
):
    """A GIN initialised with ``seed`` and pre-trained with the loss of ``method_name`` (module doc); ``beta`` /
    ``tau`` override the method's default hardening."""
    model = _encoder(dataset, config, seed)
    pretrain_graphs(
        model,
        graphs,
        make_loss(method_name, config.temperature, beta=beta, tau=tau),
        labels=labels if LOSS_METHODS[method_name].supervised else None,
        epochs=epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        augment_ratio=config.augment_ratio,
        views=config.views,
        seed=seed,
        on_epoch_end=hook,
    )
    return model


def threshold_share(model, graphs, labels: torch.Tensor, *, temperature: float, tau: float) -> float:
    """Mean over anchors of the share of other-class graphs whose score passes the threshold, e^{s_ij} >= tau
    (projections of the un-augmented graphs, L2-normalised): 1.0 means the threshold never binds and H-SCL
    (tau) is SCL; small values mean few effective negatives."""
    from torch_geometric.loader import DataLoader

    z = embed_frozen(model, DataLoader(list(graphs), batch_size=256), embed=model)
    z = torch.nn.functional.normalize(z.double(), dim=1)
    s = z @ z.T / temperature
    other = labels[:, None] != labels[None, :]
    kept = ((s >= math.log(tau)) & other).sum(1).double() / other.sum(1).clamp_min(1)
    return float(kept[other.any(1)].mean())


def _wl_features(dataset, config: GraphConfig):
    from ..evaluation.wl import wl_subtree_features

    return wl_subtree_features(dataset, iterations=config.wl_iterations)


def run(
    out: str | Path,
    *,
    datasets: Sequence[str] = BENCHMARKS,
    methods: Sequence[str] = (*CONTROLS, *PRIMARY, *EXTRAS),
    seeds: Sequence[int] = (0, 1, 2),
    config: GraphConfig = GraphConfig(),
    data_root=None,
    cache=None,
    diagnostics: Sequence[str] = (),
    progress: bool = True,
    pretrain_fn=None,
    resolved=None,
) -> Path:
    """Run every missing (data set, seed, fold, entry) row and return the CSV's path (see the module doc).
    ``methods`` takes registry methods, controls and extras by name (``ENTRIES``). ``resolved``: the command's
    resolved configuration (a :class:`GraphRun`), written to ``OUT/config.json`` once ``OUT`` is bound to the
    settings."""
    unknown = [m for m in methods if m not in ENTRIES]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(ENTRIES)}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if config.encoder is not None:
        resolve_factory(config.encoder)  # a missing module or attribute is reported before any work
    out = Path(out)
    loaded = {name: load_tu(name, data_root=data_root, cache=cache) for name in datasets}  # fail early on bad input
    if config.encoder is not None:
        for dataset in loaded.values():
            _check_own_encoder(dataset, config)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    rows = read_rows(csv_path, COLUMNS)
    settings = config.settings()
    if any(m in SWEEPS for m in methods) or (
        (out / "settings.json").exists() and "sweep" in read_settings(out)["settings"]
    ):
        settings["sweep"] = sweep_settings()  # only then: a folder without sweeps keeps its fingerprint
    fp = bind_settings(out, settings)
    if resolved is not None:
        from ..config import save

        save(resolved, out)
    check_fingerprints(rows, fp, csv_path)
    done = {(r["dataset"], r["method"], r["seed"], r["fold"]) for r in rows}
    pretrain_fn = pretrain_fn or _pretrain
    order = [m for m in ENTRIES if m in methods]
    cells = [(d, s, f, m) for d in loaded for s in seeds for f in range(config.folds) for m in order]
    todo = [c for c in cells if (loaded[c[0]].name, c[3], str(c[1]), str(c[2])) not in done]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="graphs", unit="row")
    manifest = Manifest(out / "run.json")
    cache_: dict = {}
    recorded: set = set()
    for d, s, f, m in todo:
        dataset = loaded[d]
        labels = dataset.labels
        if ("folds", d) not in cache_:
            cache_["folds", d] = fold_indices(labels.numpy(), config.folds)
        folds = cache_["folds", d]
        train_idx, test_idx = folds[f]
        epochs = config.epochs_of(len(train_idx))
        seed = group_seed(dataset.name, s, f)
        svm_seed = group_seed(dataset.name, "svm", s, f)
        hook = None
        if d in diagnostics and m in LOSS_METHODS and (d, m) not in recorded:
            recorded.add((d, m))
            hook = _diagnostics_hook(out, dataset, m, config)
        start = time.perf_counter()
        train_graphs = [dataset[i] for i in train_idx]
        row = dict(
            dataset=dataset.name,
            method=m,
            seed=s,
            fold=f,
            svm_C="",
            epochs=epochs,
            steps="",
            negatives_kept="",
            fingerprint=fp,
        )
        feats = kernel = None
        if m == "untrained":
            feats, row["pretraining"], row["epochs"] = embed_graphs(_encoder(dataset, config, seed), dataset), "none", 0
        elif m == "wl":
            if ("wl", d) not in cache_:
                cache_["wl", d] = _wl_features(dataset, config)
            feats, row["pretraining"], row["epochs"] = cache_["wl", d], "none (WL subtree features)", 0
            kernel = True
        elif m == "supervised":
            from ..training.graph_classifier import fit_graph_classifier

            got = fit_graph_classifier(
                _encoder(dataset, config, seed),
                train_graphs,
                labels[train_idx],
                [dataset[i] for i in test_idx],
                labels[test_idx],
                max_steps=epochs * config.steps_per_epoch(len(train_idx)),
                batch_size=config.batch_size,
                lr=config.lr,
                seed=seed,
                num_classes=dataset.num_classes,
            )
            row.update(
                accuracy=f"{got['accuracy']:.6f}",
                pretraining="training folds, cross-entropy, epoch chosen "
                f"on a 10% validation split of them (epoch {got['best_epoch']})",
                epochs=got["epochs"],
                steps=got["steps"],
            )
        elif m == "ucl-transductive":
            epochs = row["epochs"] = config.epochs_of(len(dataset))  # the rule on all graphs
            key = ("transductive", d, s)
            if key not in cache_:
                model = pretrain_fn(
                    dataset, "ucl", list(dataset), None, config, group_seed(dataset.name, s), epochs, hook
                )
                cache_[key] = embed_graphs(model, dataset)
            feats, row["pretraining"] = cache_[key], "all graphs, without labels"
            row["steps"] = epochs * config.steps_per_epoch(len(dataset))
        elif m in SWEEPS:
            base, train_labels = SWEEPS[m], labels[train_idx]
            kind, value, val_acc = _select_hardening(
                dataset, base, train_graphs, train_labels, config, seed, svm_seed, pretrain_fn
            )
            model = pretrain_fn(dataset, base, train_graphs, train_labels, config, seed, epochs, None, **{kind: value})
            feats = embed_graphs(model, dataset)
            row["pretraining"] = (
                f"training folds, with labels; {_candidate_text(kind, value)} chosen on an inner "
                f"{_SPLIT_TEXT} split (validation accuracy {val_acc:.4f})"
            )
            row["steps"] = epochs * config.steps_per_epoch(len(train_idx))
            if kind == "tau":
                share = threshold_share(model, train_graphs, train_labels, temperature=config.temperature, tau=value)
                row["negatives_kept"] = f"{share:.4f}"
        else:
            method = LOSS_METHODS[m]
            train_labels = labels[train_idx]
            model = pretrain_fn(
                dataset, m, train_graphs, train_labels if method.supervised else None, config, seed, epochs, hook
            )
            feats = embed_graphs(model, dataset)
            row["pretraining"] = "training folds, " + ("with labels" if method.supervised else "without labels")
            row["steps"] = epochs * config.steps_per_epoch(len(train_idx))
            if method.hardening == "tau":
                share = threshold_share(
                    model, train_graphs, train_labels, temperature=config.temperature, tau=DEFAULT_TAU
                )
                row["negatives_kept"] = f"{share:.4f}"
        if feats is not None:
            y = labels.numpy()
            if kernel:
                from ..evaluation.svm import kernel_svm_accuracy
                from ..evaluation.wl import wl_kernel

                if ("wl-kernel", d) not in cache_:
                    cache_["wl-kernel", d] = wl_kernel(feats)
                k = cache_["wl-kernel", d]
                acc, c = kernel_svm_accuracy(k, y, train_idx, test_idx, seed=svm_seed, n_jobs=config.svm_jobs)
            else:
                x = feats.numpy()
                acc, c = svm_accuracy(
                    x[train_idx], y[train_idx], x[test_idx], y[test_idx], seed=svm_seed, n_jobs=config.svm_jobs
                )
            row.update(accuracy=f"{acc:.6f}", svm_C=c)
        row["seconds"] = f"{time.perf_counter() - start:.2f}"
        rows.append({k: row[k] for k in COLUMNS})
        write_csv_atomic(csv_path, rows, COLUMNS)
        manifest.tick(len(rows), len(cells))
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{dataset.name} seed {s} fold {f} {m}: {float(row['accuracy']):.3f}")
    if bar is not None:
        bar.close()
    return csv_path


def _select_hardening(dataset, base, train_graphs, train_labels, config, seed, svm_seed, pretrain_fn):
    """The sweep's choice on the training folds only: ``(kind, value, inner-validation accuracy)``."""
    y = train_labels.numpy()
    fit, val = inner_split(y, seed)
    fit_graphs = [train_graphs[i] for i in fit]
    val_graphs = [train_graphs[i] for i in val]
    epochs = config.epochs_of(len(fit))
    best = None
    for kind, value in SWEEP_CANDIDATES:
        model = pretrain_fn(dataset, base, fit_graphs, train_labels[fit], config, seed, epochs, None, **{kind: value})
        x_fit, x_val = embed_graphs(model, fit_graphs).numpy(), embed_graphs(model, val_graphs).numpy()
        acc, _ = svm_accuracy(x_fit, y[fit], x_val, y[val], seed=svm_seed, n_jobs=config.svm_jobs)
        if best is None or acc > best[2]:
            best = (kind, value, acc)
    return best


def _diagnostics_hook(out: Path, dataset, method: str, config: GraphConfig):
    """Per-epoch diagnostics of the first pre-training of a (data set, method), on all its graphs."""
    from ..diagnostics import DiagnosticsRecorder
    from ..transforms.graph import GraphAugment

    folder = out / "diagnostics" / dataset.name / method
    recorder = DiagnosticsRecorder(folder, temperature=config.temperature, title=f"({dataset.name}, {method})")
    augment = GraphAugment(ratio=config.augment_ratio, generator=torch.Generator().manual_seed(12345))

    def hook(epoch: int, model) -> None:
        from torch_geometric.loader import DataLoader

        data = ((b, b.y) for b in DataLoader(list(dataset), batch_size=256))
        recorder.record_model(epoch + 1, model, data, augment=augment)

    return hook


def _diagnostics_dataset(name: str, datasets: Sequence[str], sources: Mapping) -> str:
    """The entry of ``datasets`` that a given diagnostics ``name`` means: the same text, or a folder named so."""
    if name in datasets:
        return name
    folders = [d for d in datasets if Path(d).name == name]
    if len(folders) == 1:
        return folders[0]
    raise ValueError(
        f"{sources.get('diagnostics', 'diagnostics')} {name}: not a data set of this run "
        f"({sources.get('datasets', 'datasets')} {' '.join(datasets)}); name one of them"
    )


def configure(preset: str | Path | None = "cpu", overrides: Mapping | None = None, *, sources=None) -> GraphRun:
    """The :class:`GraphRun` of the ``preset`` (a name of ``configs/reproduce-graphs/`` or a YAML file) updated by
    ``overrides`` (``{dotted key: value}``, e.g. ``{"seeds": [7], "graph.hidden": 64}``; :func:`hscl.config.resolve`).
    Diagnostics given in ``overrides`` must each name a data set of the run (a folder by its name too); a
    preset's are kept for the data sets of the run. ``sources``: how the command line names each key."""
    from ..config import resolve

    overrides, sources = dict(overrides or {}), dict(sources or {})
    config = resolve(GraphRun, COMMAND, preset, overrides, sources=sources)
    if "diagnostics" in overrides:  # given: each must name a data set of the run
        diagnostics = tuple(_diagnostics_dataset(d, config.datasets, sources) for d in config.diagnostics)
    else:  # the preset's: those of the run
        diagnostics = tuple(d for d in config.diagnostics if d in config.datasets)
    return replace(config, diagnostics=diagnostics)


def main(config: GraphRun, out: str | Path, *, progress: bool = True, sources=None) -> tuple[Path, Path, Path]:
    """Run ``config`` into ``out`` (:func:`run`; ``OUT/config.json`` holds ``config``) and write its report
    (:func:`write_report`); return the paths of the CSV, ``table.md`` and ``accuracy.png``. Your own encoder's
    factory (``graph.encoder``) may live in the current folder (imported, never evaluated)."""
    from . import import_from_current_folder

    check_output_folder(out, (sources or {}).get("out", "out"))
    if config.graph.encoder is not None:
        import_from_current_folder()
    csv_path = run(
        out,
        datasets=list(config.datasets),
        methods=list(config.methods),
        seeds=list(config.seeds),
        config=config.graph,
        data_root=config.data_root,
        diagnostics=list(config.diagnostics),
        progress=progress,
        resolved=config,
    )
    table, png = write_report(csv_path)
    return csv_path, table, png


# ---------------------------------------------------------------------------------------------------- report

#: The paired comparisons of the paper's claims: (a, b) reported as a - b.
CLAIMS = (
    ("hscl-beta", "scl"),
    ("hscl-beta-labels", "scl-labels"),
    ("scl", "ucl"),
    ("scl-labels", "ucl"),
    ("hscl-beta", "hucl"),
    ("hscl-beta-labels", "hucl"),
    ("hucl", "ucl"),
    ("hscl-tau", "scl"),
    ("hscl-tau-labels", "scl-labels"),
    ("hscl-sweep", "scl"),
    ("hscl-labels-sweep", "scl-labels"),
)


def _accuracies(rows: list[dict], dataset: str, method: str) -> dict[tuple[str, str], float]:
    return {
        (r["seed"], r["fold"]): float(r["accuracy"]) for r in rows if r["dataset"] == dataset and r["method"] == method
    }


def paired_comparison(rows: list[dict], dataset: str, a: str, b: str, folds: int):
    """Accuracy of ``a`` minus ``b`` on ``dataset`` (fractions), paired by (seed, fold), with the corrected
    resampled t-test for ``folds``-fold CV; ``None`` when no (seed, fold) has both."""
    acc_a, acc_b = _accuracies(rows, dataset, a), _accuracies(rows, dataset, b)
    keys = sorted(set(acc_a) & set(acc_b))
    if not keys:
        return None
    return corrected_resampled_ttest([acc_a[k] - acc_b[k] for k in keys], folds)


def _comparison_table(rows, datasets, pairs, folds, title, labels=ENTRIES) -> list[str]:
    present = {r["method"] for r in rows}
    pairs = [(a, b) for a, b in pairs if a in present and b in present]
    if not pairs:
        return []
    lines = ["", title, "", "| comparison | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for a, b in pairs:
        cells = []
        for d in datasets:
            got = paired_comparison(rows, d, a, b, folds)
            cells.append("" if got is None else got.text(scale=100))
        lines.append(f"| {labels[a]} − {labels[b]} | " + " | ".join(cells) + " |")
    return lines


def write_report(csv_path: str | Path) -> tuple[Path, Path]:
    """``table.md`` (accuracies with the controls and published numbers, then the paired comparisons with their
    verdicts), ``accuracy.png`` (mean ± std) and ``paired.png`` (each method minus the untrained control, 95%
    intervals, zero line)."""
    csv_path = Path(csv_path)
    rows, datasets, entries = load_results(csv_path, COLUMNS, tuple(ENTRIES))
    saved = read_settings(csv_path.parent)
    check_fingerprints(rows, saved["fingerprint"], csv_path)
    folds = int(saved["settings"]["graph"]["folds"])
    own = saved["settings"].get("encoder")  # your own encoder instead of the GIN: say so in every label
    model = "GIN" if own is None else "own encoder"
    labels = ENTRIES if own is None else {**ENTRIES, **{c: CONTROLS[c].replace("GIN", model) for c in CONTROLS}}
    stats = {}
    for d in datasets:
        for m in entries:
            acc = 100 * np.array([float(r["accuracy"]) for r in rows if r["dataset"] == d and r["method"] == m])
            if acc.size:
                stats[d, m] = (acc.mean(), acc.std(ddof=1) if acc.size > 1 else float("nan"), acc)
    lines = ["| method | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    for m in entries:
        cells = [mean_std(stats[d, m][2]) if (d, m) in stats else "" for d in datasets]
        kind = " *(control)*" if m in CONTROLS else ""
        lines.append(f"| {labels[m]}{kind} | " + " | ".join(cells) + " |")
    for name, numbers in PUBLISHED.items():
        lines.append(f"| *{name}, published* | " + " | ".join(str(numbers.get(d, "")) for d in datasets) + " |")
    counts = sorted({v[2].size for v in stats.values()})
    budget = {
        d: sorted(
            {r["epochs"] for r in rows if r["dataset"] == d and (r["method"] in LOSS_METHODS or r["method"] in SWEEPS)}
        )
        for d in datasets
    }
    lines += [
        "",
        "Accuracy (%), mean ± std (ddof = 1) over " + "/".join(map(str, counts)) + f" (seed, fold) cells; {folds}-fold "
        f"stratified CV (fold seed 0). Rows: the controls (the same {model} untrained; WL subtree features; the "
        f"same {model} trained end to end with cross-entropy), then the methods, all pre-trained on the training folds "
        "only (SCL, H-SCL, SupCon with labels), a linear SVM on frozen features with C by 5-fold inner CV on the "
        "training folds; then UCL pre-trained on all graphs (GraphCL convention). Published rows: each paper's own "
        "protocol and model, for orientation only. Pre-training epochs per data set: "
        + ", ".join(f"{d} {'/'.join(e) or '-'}" for d, e in budget.items())
        + ".",
    ]
    if own is not None:
        lines[-1] += (
            f" Encoder: your own, {own['factory']} (called as factory(in_features=<node feature size>)), instead "
            "of the GIN for every method and the untrained and supervised controls."
        )
    test = (
        f"mean difference in points [95% interval of the corrected resampled t-test, Nadeau and Bengio 2003, "
        f"{folds}-fold CV over seeds] and the verdict"
    )
    versus = [(m, c) for c in ("untrained", "wl") for m in entries if m not in CONTROLS or m == "supervised"]
    lines += _comparison_table(
        rows,
        datasets,
        [(m, "untrained") for m, c in versus if c == "untrained"],
        folds,
        f"Does each method beat the untrained encoder? Paired by (seed, fold): {test}.",
        labels,
    )
    lines += _comparison_table(
        rows,
        datasets,
        [(m, "wl") for m, c in versus if c == "wl"],
        folds,
        f"Against the WL subtree kernel: {test}.",
        labels,
    )
    lines += _comparison_table(rows, datasets, CLAIMS, folds, f"The paper's claims, paired: {test}.", labels)
    kept = [(r["dataset"], r["method"], float(r["negatives_kept"])) for r in rows if r["negatives_kept"]]
    if kept:
        lines += [
            "",
            "Threshold at the end of pre-training (tau = e^-0.5; for the sweeps, the chosen tau): mean share of "
            "other-class training graphs with e^s >= tau (1 = the threshold never binds):",
            "",
        ]
        for d, m in sorted({(d, m) for d, m, _ in kept}):
            values = [v for dd, mm, v in kept if (dd, mm) == (d, m)]
            lines.append(f"* {d}, {ENTRIES[m]}: {np.mean(values):.3f} (min {min(values):.3f}, max {max(values):.3f})")
    lines += _sweep_lines(rows)
    table = csv_path.parent / "table.md"
    atomic_write_text(table, "\n".join(lines) + "\n")

    series = {
        labels[m]: (
            [stats.get((d, m), (np.nan,))[0] for d in datasets],
            [np.nan_to_num(stats.get((d, m), (0, 0))[1]) for d in datasets],
        )
        for m in entries
    }
    title = "Graph benchmarks: accuracy (mean ± std over (seed, fold) cells)"
    names = [dataset_name(d) for d in datasets]
    controls = [labels[c] for c in CONTROLS]
    png = bar_chart(csv_path.parent / "accuracy.png", names, series, title=title, controls=controls)
    paired = [m for m in entries if m != "untrained"]
    _paired_figure(csv_path.parent / "paired.png", rows, datasets, paired, folds, labels, model)
    return table, png


def _sweep_lines(rows: list[dict]) -> list[str]:
    """How often each candidate was chosen by a sweep (on inner validation), and how often a chosen threshold
    binds (share of other-class graphs kept < 1)."""
    import re

    chosen: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in rows:
        if r["method"] in SWEEPS:
            got = re.search(r"; (\S+) chosen on", r["pretraining"])
            chosen.setdefault((r["dataset"], r["method"]), []).append((got[1] if got else "?", r["negatives_kept"]))
    if not chosen:
        return []
    lines = [
        "",
        f"Sweeps: the setting chosen per (seed, fold) on an inner {_SPLIT_TEXT} split of the training folds:",
        "",
    ]
    for (d, m), got in sorted(chosen.items()):
        counts = {c: sum(g == c for g, _ in got) for c in dict.fromkeys(g for g, _ in got)}
        text = ", ".join(f"{c} {n}x" for c, n in counts.items())
        shares = [float(k) for _, k in got if k]
        if shares:
            text += f"; a chosen threshold binds (share < 1) in {sum(v < 1 for v in shares)} of {len(shares)} rows"
        lines.append(f"* {d}, {ENTRIES[m]}: {text}")
    return lines


def _paired_figure(path: Path, rows, datasets, entries, folds: int, labels=ENTRIES, model: str = "GIN") -> Path:
    """Each entry (the other controls included) minus the untrained control, per data set: the mean difference
    as a dot and its 95% corrected-t interval as whiskers, around the zero line."""
    series = {}
    for m in entries:
        got = [paired_comparison(rows, d, m, "untrained", folds) for d in datasets]
        got = [g if g is not None and math.isfinite(g.se) else None for g in got]
        series[labels[m]] = tuple(
            [100 * getattr(g, key) if g is not None else math.nan for g in got] for key in ("mean", "low", "high")
        )
    return paired_chart(
        path,
        [dataset_name(d) for d in datasets],
        series,
        title="Paired difference to the untrained encoder (mean, 95% corrected-t interval)",
        ylabel=f"accuracy − untrained {model} (points)",
        empty="no rows paired with the untrained control",
        controls=[labels[c] for c in CONTROLS],
    )
