"""The ``hscl`` command line."""

from __future__ import annotations

import argparse
import copy
import math
import re
import sys

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"


def parse_setting(text: str):
    """``paper``, ``beta=B``, ``tau=T`` or ``tau=e^X`` -> {name: hardening} (parsed, never evaluated)."""
    from .diagnostics import PAPER_SETTINGS
    from .hardening import ExponentialTilt, Threshold

    text = text.strip()
    if text == "paper":
        return dict(PAPER_SETTINGS)
    if m := re.fullmatch(rf"beta=({_NUMBER})", text):
        return {text: ExponentialTilt(float(m.group(1)))}
    if m := re.fullmatch(rf"tau=e\^(-?{_NUMBER})", text):
        return {text: Threshold(math.exp(float(m.group(1))))}
    if m := re.fullmatch(rf"tau=({_NUMBER})", text):
        return {text: Threshold(float(m.group(1)))}
    raise argparse.ArgumentTypeError(f"unknown setting {text!r}: use paper, beta=B, tau=T or tau=e^X")


class UsageError(ValueError):
    """A command line that cannot run as given (a flag's value, a file it names): :func:`main` prints it as one
    ``hscl COMMAND: error: ...`` line and returns 2. Raised by the checks below, before any work starts."""


#: Classes of the named image data sets (a class-balanced subset needs one image of each).
_NAMED_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "stl10": 10, "tiny-imagenet": 200}


def _check_out(value, flag: str = "--out") -> None:
    """``value`` is a folder, or can be created as one."""
    from ._io import check_output_folder

    if value is not None:
        try:
            check_output_folder(value, flag)
        except ValueError as err:
            raise UsageError(str(err)) from None


def _read_config(name: str) -> dict:
    """The ``--config`` preset or YAML file (``yaml.safe_load``: a python tag is refused, never run)."""
    import yaml

    from .training.images import load_preset

    try:
        return load_preset(name)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        if mark is not None:
            reason += f" at line {mark.line + 1}, column {mark.column + 1}"
        raise UsageError(
            f"--config {name}: not a plain YAML file of settings ({reason}); tags such as !!python/object are "
            "refused, never run"
        ) from None


def _check_accelerator(accelerator: str, devices: int, source: str) -> None:
    import torch

    kind = str(accelerator).lower()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = torch.backends.mps.is_available()
    if kind == "cuda" or (kind == "gpu" and not mps):
        if gpus == 0:
            raise UsageError(
                f"{source} {accelerator}: no GPU is available here (torch.cuda.is_available() is False with torch "
                f"{torch.__version__}); use --accelerator cpu or auto"
            )
        if isinstance(devices, int) and devices > gpus:
            raise UsageError(f"--devices {devices}: only {gpus} GPU(s) are available here")
    elif kind == "mps" and not mps:
        raise UsageError(f"{source} {accelerator}: Apple's MPS is not available here; use --accelerator cpu or auto")


def _check_train_subset(values: dict, source: str) -> None:
    """A class-balanced subset takes at least one image of every class: fewer than the classes is refused here,
    before any work, as ``balanced_subset`` refuses it when the run starts (with more than the training split
    holds, which needs the data read)."""
    from pathlib import Path

    n, dataset = values.get("train_subset"), values.get("dataset")
    if n is None or dataset is None:
        return
    classes = _NAMED_CLASSES.get(dataset)
    if classes is None and Path(dataset).exists():
        import numpy as np

        from .datasets.image_sets import load_image_splits

        labels = load_image_splits(dataset, data_root=values.get("data_root"))["train"].labels
        classes = len(np.unique(labels[labels >= 0]))
    if classes is not None and isinstance(n, int) and n < classes:
        raise UsageError(
            f"{source} {n}: a class-balanced subset takes at least one image of each of the {classes} classes of "
            f"{dataset}, so it would train on {classes} images, not {n}; give at least {classes}"
        )


def _check_resumable(out) -> None:
    """Every ``last.ckpt`` a run in ``out`` would resume from loads with ``torch.load(weights_only=True)``: a pickled
    object other than tensors and containers is refused (never built), a truncated file found. Memory-mapped: the
    tensors are not read, so checking many large checkpoints costs little."""
    from pathlib import Path

    import torch

    out = Path(out)
    for last in (out / "checkpoints" / "last.ckpt", *sorted(out.glob("runs/*/checkpoints/last.ckpt"))):
        if not last.is_file():
            continue
        try:
            torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... on a bad file
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            named = [line for line in lines if "GLOBAL" in line]  # weights_only's refusal names the object
            reason = (named or lines or [type(err).__name__])[0].split(". ")[0][:200].rstrip(".")
            raise UsageError(
                f"{last}: a run cannot resume from it, it is not a checkpoint torch.load(weights_only=True) accepts "
                f"(refused: a pickled object other than tensors and containers, or a truncated or foreign file: "
                f"{reason}); delete it to start that run again, or give another --out"
            ) from None


def _check_image_job(args, values: dict) -> None:
    """The checks of ``hscl train`` and ``hscl reproduce images`` on the merged settings (``--config`` and flags)."""
    _check_accelerator(
        values.get("accelerator", "auto"),
        values.get("devices", 1),
        "--accelerator" if args.accelerator is not None else f"accelerator (from --config {args.config})",
    )
    _check_train_subset(
        values, "--train-subset" if args.train_subset is not None else f"train_subset (from --config {args.config})"
    )
    _check_resumable(args.out)


def _preflight(args) -> None:
    """What the command line names that can be checked without any work: --out, --config, the accelerator, the
    subset size, the checkpoints a run would resume from. ``reproduce`` checks its own once its preset applies."""
    _check_out(getattr(args, "out", None))
    if args.command == "train":
        _check_image_job(args, {**_read_config(args.config), **_image_overrides(args), "dataset": args.dataset})


def _import_from_cwd() -> None:
    """Let a factory ``package.module:function`` live in the current folder, as under ``python -m``: append it to
    ``sys.path`` (once). The factory is then imported with importlib, never evaluated."""
    import os

    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


def _diagnose(args) -> int:
    from .diagnostics.run import diagnose

    settings = {}
    for s in args.setting or [parse_setting("paper")]:
        settings.update(s)
    if args.allow_factory is not None:  # a factory in the current folder, as hscl train finds it
        _import_from_cwd()
    try:
        result = diagnose(
            args.checkpoint,
            args.data,
            settings=settings,
            temperature=args.temperature,
            data_root=args.data_root,
            samples=args.samples,
            noise=args.noise,
            drop=args.drop,
            chunk_size=args.chunk_size,
            seed=args.seed,
            allow_factory=args.allow_factory or False,
            progress=not args.quiet,
        )
    except ValueError as err:
        if args.allow_factory is None and "allow_factory" in str(err):  # say it the command line's way
            raise UsageError(f"{err} (on the command line: --allow-factory PACKAGE.MODULE:FACTORY)") from None
        raise
    print(result.title())
    print(result.table())
    if args.out:
        print(f"written: {result.write_csv(args.out)}")
    return 0


def _demo(args) -> int:
    from .demo import run

    summary = run(
        args.out,
        digits_epochs=args.digits_epochs,
        graph_epochs=args.graph_epochs,
        seeds=args.seeds,
        progress=not args.quiet,
    )
    print(summary)
    return 0


#: ``hscl reproduce graphs --preset``: values for the flags not given on the command line. The budget rule
#: (``GraphConfig.epochs_of``): every pre-training runs max(min_epochs, ceil(min_steps / steps per epoch)) epochs.
GRAPH_PRESETS = {
    # the committed run (results/graphs/): the primary methods, controls and extras on 8 data sets, resumable
    "cpu": {"min_steps": 300, "min_epochs": 20, "seeds": [0, 1], "svm_jobs": 2, "diagnostics": ["MUTAG", "PROTEINS"]},
    # the InfoGraph/GraphCL setting scaled up: at least 1,000 steps and 100 epochs, 5 seeds (a many-core machine)
    "paper": {
        "min_steps": 1000,
        "min_epochs": 100,
        "seeds": [0, 1, 2, 3, 4],
        "svm_jobs": 2,
        "diagnostics": ["MUTAG", "PROTEINS"],
    },
}


def _apply_preset(args, presets: dict, fields) -> None:
    """Fill the flags left unset (None) from ``presets[args.preset]`` (or from the ``cpu`` preset)."""
    chosen = presets[args.preset or "cpu"]
    for field in fields:
        if getattr(args, field) is None:
            setattr(args, field, chosen[field])


def _shown(value) -> str:
    """A preset's value as a command line gives it: a list space-separated, an empty list ``none``."""
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) if value else "none"
    return str(value)


def _preset_default(presets: dict, field: str, unset: str = "the --config preset's") -> str:
    """``(default: the --preset's; cpu: X; paper: Y)`` for an option filled by :func:`_apply_preset`, read from
    ``presets`` (a preset's None: ``unset``)."""
    values = "; ".join(f"{name}: {unset if p[field] is None else _shown(p[field])}" for name, p in presets.items())
    return f"(default: the --preset's; {values})"


def _diagnostics_dataset(name: str, datasets: list[str]) -> str:
    """The entry of ``--datasets`` that ``--diagnostics NAME`` means: the same text, or a folder named NAME."""
    from pathlib import Path

    if name in datasets:
        return name
    folders = [d for d in datasets if Path(d).name == name]
    if len(folders) == 1:
        return folders[0]
    raise UsageError(
        f"--diagnostics {name}: not a data set of this run (--datasets {' '.join(datasets)}); name one of them"
    )


def _reproduce_graphs(args) -> int:
    import time

    from .datasets.tu import BENCHMARKS
    from .experiments import graphs as G

    datasets = list(args.datasets or BENCHMARKS)
    if args.diagnostics is not None:  # given: each must name a data set of the run
        args.diagnostics = [_diagnostics_dataset(name, datasets) for name in args.diagnostics]
    _apply_preset(args, GRAPH_PRESETS, ("min_steps", "min_epochs", "seeds", "svm_jobs", "diagnostics"))
    args.diagnostics = [d for d in args.diagnostics if d in datasets]  # a preset's: those of the run
    options = {}
    if args.encoder is not None:  # resolved by G.run with importlib before any work, never evaluated
        _import_from_cwd()
        options["encoder"] = args.encoder
    config = G.GraphConfig(
        min_steps=args.min_steps,
        min_epochs=args.min_epochs,
        epochs=args.epochs,
        hidden=args.hidden,
        layers=args.layers,
        batch_size=args.batch_size,
        lr=args.lr,
        temperature=args.temperature,
        views=args.views,
        svm_jobs=args.svm_jobs,
        **options,
    )
    start = time.perf_counter()
    csv_path = G.run(
        args.out,
        datasets=datasets,
        methods=args.methods or (*G.CONTROLS, *G.PRIMARY, *G.EXTRAS),
        seeds=args.seeds,
        config=config,
        data_root=args.data_root,
        diagnostics=args.diagnostics,
    )
    table, png = G.write_report(csv_path)
    print(table.read_text())
    print(f"{time.perf_counter() - start:.0f} s; written: {csv_path}, {table}, {png}")
    return 0


def _train(args) -> int:
    import json

    from .training.images import ImageConfig, load_preset, train_images

    values = {**load_preset(args.config), **_image_overrides(args)}
    if args.epochs is not None and args.min_steps is None:
        values["min_steps"] = 0  # an explicit --epochs pins the budget
    for field in ("dataset", "method", "beta", "tau", "seed"):
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    options = {}
    if args.encoder is not None:  # resolved by train_images with importlib, never evaluated
        _import_from_cwd()
        options["encoder"] = args.encoder
    metrics = train_images(ImageConfig(**values), args.out, **options)
    if metrics:
        print(json.dumps(metrics, indent=1))
        print(f"written: {args.out}/metrics.json")
    return 0


_IMAGE_NUMBERS = (
    "epochs",
    "min_steps",
    "batch_size",
    "lr",
    "depth",
    "width",
    "devices",
    "num_nodes",
    "num_workers",
    "temperature",
    "views",
    "train_subset",
    "diagnostics",
)
_IMAGE_FIELDS = (*_IMAGE_NUMBERS, "optimizer", "precision", "accelerator", "data_root")


_FROM_CONFIG = "(default: the --config preset's)"


def _add_image_flags(
    parser: argparse.ArgumentParser, config_default: str | None = "cpu", defaults: dict | None = None
) -> None:
    """The ``ImageConfig`` overrides shared by ``hscl train`` and ``hscl reproduce images``; ``defaults``: the
    ``(default: ...)`` text of the fields a ``--preset`` fills (else the ``--config`` preset's)."""
    defaults = defaults or {}
    parser.add_argument(
        "--config",
        default=config_default,
        help="YAML preset (paper, modern, cpu) or file (default: cpu, or the --preset's)",
    )
    kinds = {"lr": float, "temperature": float}
    helps = {
        "train_subset": "pre-train and probe on a class-balanced N of the training images",
        "diagnostics": "record Assumption 1 and the four asymptotic losses each epoch on N training images",
        "epochs": "pre-training epochs (0: evaluate the untrained encoder); given alone, it pins the budget "
        "(--min-steps 0)",
        "min_steps": "budget rule: epochs = max(epochs, ceil(min_steps / steps per epoch)) (cpu preset: 300)",
        "batch_size": "images per optimizer step (per process)",
        "lr": "learning rate",
        "depth": "ResNet depth: 18, 34 or 50",
        "width": "ResNet width (64: the standard ResNet)",
        "devices": "GPUs or CPU processes per machine (DDP when more than one)",
        "num_nodes": "machines (DDP)",
        "num_workers": "data-loader worker processes",
        "temperature": "temperature t of the loss",
        "views": "augmented views per image",
    }
    for field in _IMAGE_NUMBERS:
        text = helps.get(field, field.replace("_", " "))
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            type=kinds.get(field, int),
            default=None,
            help=f"{text} {defaults.get(field, _FROM_CONFIG)}",
        )
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default=None, help=f"adam or sgd {_FROM_CONFIG}")
    parser.add_argument("--precision", default=None, help=f"32-true, bf16-mixed, 16-mixed {_FROM_CONFIG}")
    parser.add_argument("--accelerator", default=None, help=f"auto, cpu, gpu {_FROM_CONFIG}")
    parser.add_argument("--data-root", default=None, help="where named data sets live (default: the hscl cache)")
    parser.add_argument("--download", action="store_true", help="fetch a named data set if missing (checksummed)")
    parser.add_argument("--out", required=True, help="output folder")


def _image_overrides(args) -> dict:
    values = {f: getattr(args, f) for f in _IMAGE_FIELDS if getattr(args, f) is not None}
    values["download"] = bool(args.download)
    return values


def _reproduce_figures(args) -> int:
    from .experiments import figures

    fig4 = figures.run(
        args.out,
        preset=args.preset,
        methods=args.methods or figures.METHODS,
        seeds=args.seeds,
        epochs=args.epochs,
        dataset=args.dataset,
        data_root=args.data_root,
        download=args.download,
        progress=not args.quiet,
    )
    print((fig4.parent / "table.md").read_text())
    print(
        f"written: {fig4}, {fig4.parent / 'figure5_losses.png'}, {fig4.parent / 'table.md'}, "
        f"{fig4.parent / 'results.csv'}, {fig4.parent / 'diagnostics.csv'}"
    )
    return 0


#: ``hscl reproduce images --preset``: the YAML configuration, the seeds and settings for flags not given.
IMAGE_PRESETS = {
    # the CIFAR-10 comparison on 2 CPU cores: a width-8 ResNet-18 on a class-balanced 10,000 training images,
    # the budget rule's 300 optimizer steps (40 a epoch -> 8 epochs), 9 methods + 2 controls x 3 seeds. Estimate:
    # 0.59 s a step (benchmarks/bench_train_images.py, width 8, one thread) -> ~190 s of steps, ~50 s of kNN
    # monitor and ~15 s of evaluation a job: 27 jobs ~115 min, controls ~10 min; about 2 hours in all
    "cpu": {"config": "cpu", "seeds": [0, 1, 2], "width": 8, "epochs": 5, "min_steps": 300, "train_subset": 10000},
    # the authors' settings (ResNet-50, 200 epochs, bf16): one GPU per job, hours each; 3 seeds
    "paper": {
        "config": "paper",
        "seeds": [0, 1, 2],
        "width": None,
        "epochs": None,
        "min_steps": None,
        "train_subset": None,
    },
}


def _preset_subset(args) -> int | None:
    """A preset's ``train_subset`` is a cap ("at most N"): None (all) when the training split holds no more; an
    explicit ``--train-subset`` is exact."""
    from .training.images import ImageConfig, training_split_size

    values = {**_read_config(args.config), **_image_overrides(args), "dataset": args.dataset}
    values.pop("train_subset", None)
    available = training_split_size(ImageConfig(**values))
    return args.train_subset if args.train_subset < available else None


def _reproduce_images(args) -> int:
    import time

    from .experiments import images

    if args.epochs is not None and args.min_steps is None:
        args.min_steps = 0  # an explicit --epochs pins the budget
    subset_from_preset = args.train_subset is None
    _apply_preset(args, IMAGE_PRESETS, ("config", "seeds", "width", "epochs", "min_steps", "train_subset"))
    if subset_from_preset and args.train_subset is not None:
        args.train_subset = _preset_subset(args)
    _check_image_job(args, {**_read_config(args.config), **_image_overrides(args), "dataset": args.dataset})
    start = time.perf_counter()
    methods = args.methods or tuple(images.METHODS)
    csv_path = images.run(
        args.out,
        dataset=args.dataset,
        methods=methods,
        seeds=args.seeds,
        preset=args.config,
        overrides=_image_overrides(args),
    )
    table, png = images.write_report(csv_path)
    print(table.read_text())
    print(f"{time.perf_counter() - start:.0f} s; written: {csv_path}, {table}, {png}")
    return 0


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` states every option's default: ``(default: X)`` is appended unless the help text already says
    it (or the option is required); a switch's default reads ``off``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or action.required
            or action.default is argparse.SUPPRESS
            or "default" in text.lower()
        ):
            return text
        if action.nargs == 0 and isinstance(action.default, bool):
            shown = "on" if action.default else "off"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})".strip()

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings and not action.required:
            action = copy.copy(action)  # an option without help text still shows its default
            action.help = ""
            action.help = self._get_help_string(action)
        return super()._format_action(action)


class _Parser(argparse.ArgumentParser):
    """The parser of ``hscl`` and of every subcommand (``add_subparsers`` builds them with this class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)


class _Version(argparse.Action):
    """``--version``: the hscl version, and the git commit when hscl runs from a checkout (looked up only then)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .training.records import provenance

        record = provenance()
        dirty = " with uncommitted changes" if record["git_dirty"] else ""
        commit = f" (git commit {record['git_commit']}{dirty})" if record["git_commit"] else ""
        print(f"hscl {record['hscl_version']}{commit}")  # on stdout, as argparse's own version action
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    from .losses.registry import METHODS, TABLE_METHODS

    parser = _Parser(prog="hscl", description="Supervised contrastive learning with hard negatives")
    parser.add_argument("--version", action=_Version, help="print the hscl version (and git commit) and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="methods and controls on embedded digits and MUTAG, with figures (no download; minutes on a CPU)",
        description="Pre-train UCL, H-UCL, SCL and H-SCL (beta) in both configurations (view and label positives) "
        "on scikit-learn's digits (MLP, three seeds) and the bundled MUTAG (GIN), next to the untrained encoder and "
        "raw pixels as controls; print a comparison table with seed-paired verdicts, and write accuracy bars and "
        "the per-epoch Assumption 1 / asymptotic-loss figures to OUT.",
    )
    demo.add_argument("--out", default="hscl-demo", help="output folder (default ./hscl-demo)")
    demo.add_argument("--digits-epochs", type=int, default=30, help="pre-training epochs on digits (default 30)")
    demo.add_argument("--graph-epochs", type=int, default=10, help="pre-training epochs on MUTAG (default 10)")
    demo.add_argument(
        "--seeds", nargs="+", type=int, default=[0, 1, 2], help="digits seeds (default 0 1 2); MUTAG runs the first"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    diag = sub.add_parser(
        "diagnose",
        help="Assumption 1 and the four asymptotic losses of a saved model on a whole data set",
        description="Embed the data set once (two views per sample, drawn with the augmentation the model trained "
        "with: SimCLR for images, GraphCL for graphs, noise and dropout for vectors) with the checkpoint's encoder "
        "and report, per hardening setting, the four asymptotic losses and the fraction of anchors satisfying "
        "Assumption 1, with the whole data set as reference set (docs/math.md section 4).",
    )
    diag.add_argument(
        "--checkpoint",
        required=True,
        help="an hscl train output folder or its checkpoints/last.ckpt (ResNet), or a model saved with "
        "hscl.checkpoint.save_model (MLP, GIN, ResNet)",
    )
    diag.add_argument(
        "--data",
        default=None,
        help="default: the data set the checkpoint records (digits for an MLP that records none). "
        "MLP: digits or a .npz file with arrays x and y; ResNet: an image data set name or path "
        "(folder, archive), its training split; GIN: a TU data set name or folder of raw files",
    )
    diag.add_argument(
        "--data-root", default=None, help="where named data sets live (default: the checkpoint's, then hscl's defaults)"
    )
    diag.add_argument(
        "--samples", type=int, default=None, help="diagnose a random N of the samples (seeded by --seed; default: all)"
    )
    diag.add_argument(
        "--setting",
        type=parse_setting,
        action="append",
        help="paper (default: tau=e^-0.5, tau=e^-0.1, beta=1, beta=2), beta=B, tau=T or tau=e^X; repeatable",
    )
    diag.add_argument("--temperature", type=float, default=None, help="default: the checkpoint's")
    diag.add_argument("--chunk-size", type=int, default=None, help="anchors per chunk (default: ~1 GiB of memory)")
    diag.add_argument("--noise", type=float, default=None, help="augmentation noise (default: the checkpoint's)")
    diag.add_argument("--drop", type=float, default=None, help="augmentation dropout (default: the checkpoint's)")
    diag.add_argument("--seed", type=int, default=0, help="seed of the augmentation (and of --samples)")
    diag.add_argument(
        "--allow-factory",
        default=None,
        metavar="PACKAGE.MODULE:FACTORY",
        help="rebuild your own encoder by importing this factory, the one the checkpoint names (runs "
        "that code: only for checkpoints you trust) (default: none, a checkpoint that names a factory is refused)",
    )
    diag.add_argument("--out", default=None, help="also write OUT/diagnose.csv (default: none, print the table only)")
    diag.add_argument("--quiet", action="store_true", help="no progress bars")
    rep = sub.add_parser("reproduce", help="the paper's experiments, one resumable command each")
    rep_sub = rep.add_subparsers(dest="experiment", required=True)
    graphs = rep_sub.add_parser(
        "graphs",
        help="TU graph benchmarks: GIN, the methods and three controls, 10-fold CV, SVM, paired verdicts",
        description="Pre-train GIN encoders with each method on the training folds of 10-fold stratified CV, score "
        "a linear SVM on frozen features (C by inner CV), beside three controls through the same folds (the "
        "untrained GIN, WL subtree features, the GIN trained with cross-entropy) and UCL pre-trained on all graphs. "
        "Writes OUT/results.csv (resumable; a resume with other settings is refused), OUT/settings.json, "
        "OUT/table.md (with paired verdicts), OUT/accuracy.png and OUT/paired.png.",
    )
    graphs.add_argument("--datasets", nargs="+", default=None, help="names or folders of TU raw files (default: all 8)")
    graphs.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="NAME",
        help="registry methods (ucl hucl scl hscl-tau hscl-beta scl-labels hscl-tau-labels "
        "hscl-beta-labels supcon), controls (untrained wl supervised), ucl-transductive and the secondary "
        "sweeps hscl-sweep hscl-labels-sweep (beta or tau chosen per fold on an inner 80/20 split of the training "
        "folds; 7 pre-trainings a row); default: the controls, the primary methods and ucl-transductive",
    )
    graphs.add_argument(
        "--preset",
        choices=["cpu", "paper"],
        default=None,
        help="; ".join(
            f"{name}{' (default)' if name == 'cpu' else ''}: at least {p['min_steps']:,} optimizer steps and "
            f"{p['min_epochs']} epochs, seeds {_shown(p['seeds'])}"
            for name, p in GRAPH_PRESETS.items()
        )
        + "; flags given explicitly win",
    )
    graphs.add_argument(
        "--seeds", nargs="+", type=int, default=None, help=f"seeds {_preset_default(GRAPH_PRESETS, 'seeds')}"
    )
    graphs.add_argument(
        "--min-steps",
        type=int,
        default=None,
        help="budget rule: at least this many optimizer steps per pre-training "
        + _preset_default(GRAPH_PRESETS, "min_steps"),
    )
    graphs.add_argument(
        "--min-epochs",
        type=int,
        default=None,
        help=f"budget rule: at least this many epochs {_preset_default(GRAPH_PRESETS, 'min_epochs')}",
    )
    graphs.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="a fixed number of epochs instead of the budget rule (default: none, the rule of --min-steps and "
        "--min-epochs)",
    )
    graphs.add_argument(
        "--encoder",
        default=None,
        metavar="PACKAGE.MODULE:FACTORY",
        help="your own encoder instead of the GIN, for every method and the untrained and supervised controls: a "
        "function called as FACTORY(in_features=F), F the data set's node feature size, after the same seeding as "
        "the GIN, that returns an nn.Module mapping a PyG Batch to [num_graphs, D] (imported, never evaluated; the "
        "current folder is searched too); the projection head is built on D; recorded in OUT/settings.json "
        "(default: none, the GIN)",
    )
    graphs.add_argument("--hidden", type=int, default=32, help="GIN hidden size (default 32)")
    graphs.add_argument("--layers", type=int, default=3, help="GIN layers (default 3)")
    graphs.add_argument("--batch-size", type=int, default=128)
    graphs.add_argument("--lr", type=float, default=1e-3)
    graphs.add_argument("--temperature", type=float, default=0.5)
    graphs.add_argument("--views", type=int, default=2, help="augmented views per graph (default 2)")
    graphs.add_argument(
        "--svm-jobs",
        type=int,
        default=None,
        help=f"processes for the SVM's C grid {_preset_default(GRAPH_PRESETS, 'svm_jobs')}",
    )
    graphs.add_argument(
        "--data-root",
        default=None,
        help="folder of <NAME>/ TU folders (default: $HSCL_TU_ROOT, ../shared/data/TU, ./data/TU; MUTAG is bundled)",
    )
    graphs.add_argument(
        "--diagnostics",
        nargs="*",
        default=None,
        metavar="NAME",
        help="record the Assumption 1 diagnostics every epoch for these data sets (those of --datasets) "
        + _preset_default(GRAPH_PRESETS, "diagnostics"),
    )
    graphs.add_argument("--out", required=True, help="output folder")
    tr = sub.add_parser(
        "train",
        help="pre-train an image encoder with one method and evaluate it (linear probe, kNN)",
        description="Pre-train a ResNet (or your own encoder, --encoder) with UCL, H-UCL, SCL, H-SCL or SupCon on an "
        "image data set (Lightning: CPU, GPU or DDP), then report a linear probe selected on a validation split held "
        "out of train and a weighted kNN, on test. Writes OUT/metrics.json, OUT/config.json, logs and a checkpoint "
        "at the end of every epoch; run again with the same OUT, also after a kill, it resumes from the last "
        "finished epoch.",
    )
    tr.add_argument("--dataset", required=True, help="cifar10, cifar100, stl10, tiny-imagenet, digits, or a path")
    tr.add_argument("--method", required=True, choices=list(METHODS), help="a method of the registry (hscl: hscl-beta)")
    hard = tr.add_mutually_exclusive_group()
    hard.add_argument(
        "--beta", type=float, default=None, help="exponential tilt (hucl, hscl; default: 1, unless --tau is given)"
    )
    hard.add_argument(
        "--tau", type=float, default=None, help="threshold on e^s (hucl, hscl; default for hscl-tau: e^-0.5 = 0.607)"
    )
    tr.add_argument("--seed", type=int, default=None, help=f"seed of initialisation, batches and views {_FROM_CONFIG}")
    tr.add_argument(
        "--encoder",
        default=None,
        metavar="PACKAGE.MODULE:FACTORY",
        help="your own encoder instead of the ResNet: a function called without arguments that returns an nn.Module "
        "mapping images [N, 3, H, W] to [N, D] (imported, never evaluated; the current folder is searched too); "
        "the projection head is built on D (default: the --config preset's ResNet)",
    )
    _add_image_flags(tr)
    images = rep_sub.add_parser(
        "images",
        help="image benchmark: the 9 methods and 2 controls x seeds, each an `hscl train` job, in one table",
        description="Run `hscl train` for UCL, H-UCL, SCL, H-SCL (tau, beta; view and label positives) and SupCon "
        "and each seed on one image data set, beside two controls through the same splits (the same encoder "
        "untrained, the same linear probe on raw pixels), and collect the linear probe and kNN accuracies with "
        "seed-paired verdicts. Writes OUT/settings.json (a resume with other settings is refused), "
        "OUT/runs/<method>-seed<S>/, OUT/results.csv (resumable: finished jobs are skipped, a killed job resumes "
        "from its checkpoint), OUT/table.md and OUT/accuracy.png.",
    )
    images.add_argument("--dataset", required=True, help="cifar10, cifar100, stl10, tiny-imagenet, digits, or a path")
    images.add_argument("--methods", nargs="+", default=None, help=f"default: all nine ({' '.join(TABLE_METHODS)})")
    cpu, paper = IMAGE_PRESETS["cpu"], IMAGE_PRESETS["paper"]
    images.add_argument(
        "--preset",
        choices=["cpu", "paper"],
        default=None,
        help=f"cpu (default): the CPU comparison (width-{cpu['width']} ResNet-18, at most {cpu['train_subset']:,} "
        f"training images, at least {cpu['min_steps']} optimizer steps, seeds {_shown(cpu['seeds'])}); paper: the "
        f"authors' settings, seeds {_shown(paper['seeds'])}; explicit flags win",
    )
    images.add_argument(
        "--seeds", nargs="+", type=int, default=None, help=f"seeds {_preset_default(IMAGE_PRESETS, 'seeds')}"
    )
    _add_image_flags(
        images,
        config_default=None,
        defaults={f: _preset_default(IMAGE_PRESETS, f) for f in ("width", "epochs", "min_steps", "train_subset")},
    )
    figures = rep_sub.add_parser(
        "figures",
        help="the paper's Figures 4 and 5: Assumption 1 fractions and the four asymptotic losses per epoch",
        description="Train with each method and seed while recording, every epoch, the fraction of anchors "
        "satisfying Assumption 1 and the four asymptotic losses at tau = e^-0.5, e^-0.1, beta = 1, 2; score every "
        "run and two controls (the untrained encoder, raw pixels) with the same linear probe. Preset cpu: an "
        "MLP on digits (minutes, no download). Preset paper: the authors' ResNet-50 settings on CIFAR-100 (a GPU "
        "job). Writes OUT/figure4_assumption.png, OUT/figure5_losses.png, OUT/table.md, OUT/results.csv, "
        "OUT/diagnostics.csv, OUT/settings.json.",
    )
    figures.add_argument("--preset", choices=["cpu", "paper"], default="cpu")
    figures.add_argument(
        "--methods", nargs="+", default=None, help=f"training methods (default: all nine: {' '.join(TABLE_METHODS)})"
    )
    figures.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    figures.add_argument("--epochs", type=int, default=None, help="default: 30 (cpu), 200 (paper)")
    figures.add_argument("--dataset", default="cifar100", help="paper preset: the image data set (default cifar100)")
    figures.add_argument(
        "--data-root", default=None, help="where named data sets live (paper preset; default: the hscl cache)"
    )
    figures.add_argument("--download", action="store_true")
    figures.add_argument("--quiet", action="store_true", help="no progress bars")
    figures.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)

    if args.command == "reproduce":
        handler = {"graphs": _reproduce_graphs, "images": _reproduce_images, "figures": _reproduce_figures}[
            args.experiment
        ]
    else:
        handler = {"demo": _demo, "diagnose": _diagnose, "train": _train}[args.command]
    from ._extras import MissingExtraError, require

    command = f"{args.command} {args.experiment}" if args.command == "reproduce" else args.command
    extras = {"reproduce graphs": ("graphs",), "demo": ("all",), "diagnose": ("images", "graphs")}
    try:
        require("this command", *extras.get(command, ("images",)))  # train, reproduce images/figures
        _preflight(args)
        return handler(args)
    except (ValueError, FileNotFoundError, PermissionError, MissingExtraError) as err:
        print(f"hscl {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
