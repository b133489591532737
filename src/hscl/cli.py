"""The ``hscl`` command line: the parsers and their ``--help``, each command's flags mapped onto its configuration
(a flag and ``--set KEY=VALUE`` are the same overrides of :func:`hscl.config.resolve`), one call per command
(``configure`` then ``main`` of its module in :mod:`hscl.experiments`), and the printing. A command line that
cannot run is one ``hscl COMMAND: error: ...`` line and exit code 2."""

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


# ------------------------------------------------------------------------------------ flags -> overrides


def _given(namespace, key: str | None, value, source: str) -> None:
    """Record a flag in the order given (a later one for the same key wins): ``(key, value, source)``."""
    if getattr(namespace, "given", None) is None:
        namespace.given = []
    namespace.given.append((key, value, source))


class _Setting(argparse.Action):
    """A flag that sets the configuration key ``key``: recorded only when given. Its ``default`` is what
    ``--help`` shows (the dataclass's default), never stored."""

    def __init__(self, option_strings, dest, key: str, default=None, nargs=None, const=None, metavar=None, **kw):
        if metavar is None and nargs != 0:
            metavar = option_strings[-1].lstrip("-").replace("-", "_").upper()
        super().__init__(option_strings, argparse.SUPPRESS, nargs, const, default, metavar=metavar, **kw)
        self.key = key

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        _given(namespace, self.key, self.const if self.nargs == 0 else values, option_string)


class _Assign(argparse.Action):
    """``--set KEY=VALUE``: any key of the configuration, VALUE read as YAML when the command runs."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        _given(namespace, None, values, option_string)


def _overrides(args) -> tuple[dict, dict]:
    """``(overrides, sources)``: the keys given, in command-line order, and how the command line names every key
    (the flags of the command, ``--set KEY`` for a key given so, ``preset``: the preset's flag)."""
    from .config import parse_assignment

    overrides, sources = {}, dict(args.flags)
    for key, value, source in getattr(args, "given", None) or ():
        if key is None:
            try:
                key, value = parse_assignment(value)
            except ValueError as err:
                raise ValueError(f"--set {err}") from None
            source = f"--set {key}"
        overrides.pop(key, None)
        overrides[key], sources[key] = value, source
    return overrides, sources


# ------------------------------------------------------------------------------------ help texts


class _Lazy:
    """A ``--help`` text made when help is shown: it reads the preset files then (PyYAML, an extra); without
    PyYAML, ``fallback``."""

    def __init__(self, make, fallback: str) -> None:
        self.make, self.fallback = make, fallback

    def __str__(self) -> str:
        try:
            return self.make()
        except ImportError:
            return self.fallback


def _shown(value) -> str:
    """A preset's value as a command line gives it: a list space-separated, an empty list or None ``none``."""
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) if value else "none"
    return "none" if value is None else str(value)


def _preset_values(command: str, key: str, missing: str) -> str:
    """``cpu: X; paper: Y``: the dotted ``key`` in each built-in preset of ``command`` (``missing`` where absent)."""
    from .config import preset_names, read_preset

    parts = []
    for name in preset_names(command):
        value = read_preset(command, name)
        for part in key.split("."):
            value = value.get(part, missing) if isinstance(value, dict) else missing
        parts.append(f"{name}: {missing if value is missing else _shown(value)}")
    return "; ".join(parts)


def _from_preset(text: str, command: str, key: str, missing: str = "none") -> _Lazy:
    """``TEXT (default: the --preset's; cpu: X; paper: Y)``, the values read from the preset files."""
    return _Lazy(
        lambda: f"{text} (default: the --preset's; {_preset_values(command, key, missing)})",
        f"{text} (default: the --preset's)",
    )


def _preset_help(command: str, describe) -> _Lazy:
    """The ``--preset`` help: the built-in presets, each described by ``describe(values)``, or a YAML file."""
    from .config import preset_names

    def make() -> str:
        from .config import read_preset

        names = "; ".join(f"{n}: {describe(read_preset(command, n))}" for n in preset_names(command))
        return f"a preset of configs/{command}/ or a YAML file of the same keys ({names}); flags and --set win"

    fallback = f"a preset of configs/{command}/ ({', '.join(preset_names(command))}) or a YAML file"
    return _Lazy(lambda: make() + " (default: cpu)", fallback + " (default: cpu)")


def _key(parser, flag: str, key: str, **kw) -> None:
    """A flag that sets the configuration key ``key`` (:class:`_Setting`)."""
    parser.add_argument(flag, action=_Setting, key=key, **kw)


def _add_set(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "--set",
        action=_Assign,
        metavar="KEY=VALUE",
        help=f"set any key of the configuration, dotted into a section (e.g. {example}); VALUE read as YAML "
        "(16, 1e-3, [0, 1], null); repeatable, applied in order with the other flags (default: none)",
    )


def _finish(parser: argparse.ArgumentParser, preset_flag: str | None = None) -> None:
    """Record how the command line names each key of the configuration (``args.flags``, for messages): its flag,
    ``out``: ``--out``, ``preset``: the flag that names the preset."""
    flags = {a.key: a.option_strings[-1] for a in parser._actions if isinstance(a, _Setting)}
    flags["out"] = "--out"
    if preset_flag is not None:
        flags["preset"] = preset_flag
    parser.set_defaults(flags=flags)


_CONFIG_PRESET = "the --config preset's"
_DOWNLOAD = "fetch a named data set if missing (checksummed)"
#: ``ImageConfig`` flags of ``hscl train`` and ``hscl reproduce images``: (field, type, help, default). A default of
#: ``_CONFIG_PRESET``: a value of the train presets.
_IMAGE_FLAGS = (
    (
        "epochs",
        int,
        "pre-training epochs (0: evaluate the untrained encoder); given alone, it pins the budget (--min-steps 0)",
        _CONFIG_PRESET,
    ),
    ("min_steps", int, "budget rule: epochs = max(epochs, ceil(min_steps / steps per epoch))", _CONFIG_PRESET),
    ("batch_size", int, "images per optimizer step (per process)", _CONFIG_PRESET),
    ("lr", float, "learning rate", _CONFIG_PRESET),
    ("depth", int, "ResNet depth: 18, 34 or 50", _CONFIG_PRESET),
    ("width", int, "ResNet width (64: the standard ResNet)", _CONFIG_PRESET),
    ("temperature", float, "temperature t of the loss", _CONFIG_PRESET),
    ("views", int, "augmented views per image", _CONFIG_PRESET),
    ("train_subset", int, "pre-train and probe on a class-balanced N of the training images", "none, all of them"),
    ("diagnostics", int, "record Assumption 1 and the four asymptotic losses each epoch on N training images", 0),
    ("devices", int, "GPUs or CPU processes per machine (DDP when more than one)", 1),
    ("num_nodes", int, "machines (DDP)", 1),
    ("num_workers", int, "data-loader worker processes", 0),
)


def _add_image_flags(parser: argparse.ArgumentParser, prefix: str = "", presets: dict | None = None) -> None:
    """The ``ImageConfig`` flags (keys ``PREFIX + field``); ``presets``: ``{field: help}`` of the fields that a
    ``--preset`` fills."""
    presets = presets or {}
    for field, kind, text, default in _IMAGE_FLAGS:
        flag, key = f"--{field.replace('_', '-')}", prefix + field
        if field in presets:
            _key(parser, flag, key, type=kind, help=presets[field])
        elif isinstance(default, str):
            _key(parser, flag, key, type=kind, help=f"{text} (default: {default})")
        else:
            _key(parser, flag, key, type=kind, default=default, help=text)
    preset = f"(default: {_CONFIG_PRESET})"
    _key(parser, "--optimizer", prefix + "optimizer", choices=["adam", "sgd"], help=f"adam or sgd {preset}")
    _key(parser, "--precision", prefix + "precision", help=f"32-true, bf16-mixed, 16-mixed {preset}")
    _key(parser, "--accelerator", prefix + "accelerator", default="auto", help="auto, cpu, gpu")
    _key(parser, "--data-root", prefix + "data_root", help="where named data sets live (default: the hscl cache)")
    _key(parser, "--download", prefix + "download", nargs=0, const=True, default=False, help=_DOWNLOAD)
    parser.add_argument("--out", required=True, help="output folder")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` states every option's default: ``(default: X)`` is appended unless the help text already says
    it (or the option is required); a switch's default reads ``off``. A help text may be made lazily
    (:class:`_Lazy`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = "" if action.help is None else str(action.help)
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
        if action.option_strings and not action.required and (action.help is None or isinstance(action.help, _Lazy)):
            action = copy.copy(action)  # an option without help text still shows its default
            action.help = "" if action.help is None else str(action.help)
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


# ------------------------------------------------------------------------------------ the commands


def _demo(args, overrides: dict, sources: dict) -> int:
    from .experiments import demo

    print(demo.main(demo.configure(overrides, sources=sources), args.out, progress=not args.quiet, sources=sources))
    return 0


def _diagnose(args, overrides: dict, sources: dict) -> int:
    from .experiments import diagnose

    if args.setting:
        overrides["settings"] = {name: h for s in args.setting for name, h in s.items()}
    result, csv_path = diagnose.main(diagnose.configure(overrides, sources=sources), args.out, progress=not args.quiet)
    print(result.title())
    print(result.table())
    if csv_path is not None:
        print(f"written: {csv_path}")
    return 0


def _train(args, overrides: dict, sources: dict) -> int:
    import json

    from .experiments import train

    config = train.configure(args.config, overrides, sources=sources)
    metrics = train.main(config, args.out, encoder=args.encoder, sources=sources)
    if metrics:
        print(json.dumps(metrics, indent=1))
        print(f"written: {args.out}/metrics.json")
    return 0


def _reproduce_table(module, args, overrides: dict, sources: dict) -> int:
    """``reproduce graphs`` and ``reproduce images``: configure, run, print the table and what was written."""
    import time

    start = time.perf_counter()
    config = module.configure(args.preset, overrides, sources=sources)
    csv_path, table, png = module.main(config, args.out, sources=sources)
    print(table.read_text())
    print(f"{time.perf_counter() - start:.0f} s; written: {csv_path}, {table}, {png}")
    return 0


def _reproduce_graphs(args, overrides: dict, sources: dict) -> int:
    from .experiments import graphs

    return _reproduce_table(graphs, args, overrides, sources)


def _reproduce_images(args, overrides: dict, sources: dict) -> int:
    from .experiments import images

    return _reproduce_table(images, args, overrides, sources)


def _reproduce_figures(args, overrides: dict, sources: dict) -> int:
    from .experiments import figures

    config = figures.configure(args.preset, overrides, sources=sources)
    fig4 = figures.main(config, args.out, progress=not args.quiet, sources=sources)
    print((fig4.parent / "table.md").read_text())
    print(
        f"written: {fig4}, {fig4.parent / 'figure5_losses.png'}, {fig4.parent / 'table.md'}, "
        f"{fig4.parent / 'results.csv'}, {fig4.parent / 'diagnostics.csv'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    from .config import preset_names
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
        "the per-epoch Assumption 1 / asymptotic-loss figures to OUT (and OUT/config.json, the configuration).",
    )
    demo.add_argument("--out", default="hscl-demo", help="output folder (default ./hscl-demo)")
    _key(demo, "--digits-epochs", "digits_epochs", type=int, default=30, help="pre-training epochs on digits")
    _key(demo, "--graph-epochs", "graph_epochs", type=int, default=10, help="pre-training epochs on MUTAG")
    seeds = "digits seeds (default 0 1 2); MUTAG runs the first"
    _key(demo, "--seeds", "seeds", nargs="+", type=int, help=seeds)
    _add_set(demo, "temperature=0.5")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    _finish(demo)

    diag = sub.add_parser(
        "diagnose",
        help="Assumption 1 and the four asymptotic losses of a saved model on a whole data set",
        description="Embed the data set once (two views per sample, drawn with the augmentation the model trained "
        "with: SimCLR for images, GraphCL for graphs, noise and dropout for vectors) with the checkpoint's encoder "
        "and report, per hardening setting, the four asymptotic losses and the fraction of anchors satisfying "
        "Assumption 1, with the whole data set as reference set (docs/math.md section 4).",
    )
    _key(
        diag,
        "--checkpoint",
        "checkpoint",
        required=True,
        help="an hscl train output folder or its checkpoints/last.ckpt (ResNet), or a model saved with "
        "hscl.checkpoint.save_model (MLP, GIN, ResNet)",
    )
    _key(
        diag,
        "--data",
        "data",
        help="default: the data set the checkpoint records (digits for an MLP that records none). "
        "MLP: digits or a .npz file with arrays x and y; ResNet: an image data set name or path "
        "(folder, archive), its training split; GIN: a TU data set name or folder of raw files",
    )
    roots = "where named data sets live (default: the checkpoint's, then hscl's defaults)"
    _key(diag, "--data-root", "data_root", help=roots)
    samples = "diagnose a random N of the samples (seeded by --seed; default: all)"
    _key(diag, "--samples", "samples", type=int, help=samples)
    diag.add_argument(
        "--setting",
        type=parse_setting,
        action="append",
        help="paper (default: tau=e^-0.5, tau=e^-0.1, beta=1, beta=2), beta=B, tau=T or tau=e^X; repeatable",
    )
    _key(diag, "--temperature", "temperature", type=float, help="default: the checkpoint's")
    _key(diag, "--chunk-size", "chunk_size", type=int, help="anchors per chunk (default: ~1 GiB of memory)")
    _key(diag, "--noise", "noise", type=float, help="augmentation noise (default: the checkpoint's)")
    _key(diag, "--drop", "drop", type=float, help="augmentation dropout (default: the checkpoint's)")
    _key(diag, "--seed", "seed", type=int, default=0, help="seed of the augmentation (and of --samples)")
    _key(
        diag,
        "--allow-factory",
        "allow_factory",
        metavar="PACKAGE.MODULE:FACTORY",
        help="rebuild your own encoder by importing this factory, the one the checkpoint names (runs "
        "that code: only for checkpoints you trust) (default: none, a checkpoint that names a factory is refused)",
    )
    _add_set(diag, "batch_size=512")
    diag.add_argument("--out", default=None, help="also write OUT/diagnose.csv (default: none, print the table only)")
    diag.add_argument("--quiet", action="store_true", help="no progress bars")
    _finish(diag)

    rep = sub.add_parser("reproduce", help="the paper's experiments, one resumable command each")
    rep_sub = rep.add_subparsers(dest="experiment", required=True)
    graphs = rep_sub.add_parser(
        "graphs",
        help="TU graph benchmarks: GIN, the methods and three controls, 10-fold CV, SVM, paired verdicts",
        description="Pre-train GIN encoders with each method on the training folds of 10-fold stratified CV, score "
        "a linear SVM on frozen features (C by inner CV), beside three controls through the same folds (the "
        "untrained GIN, WL subtree features, the GIN trained with cross-entropy) and UCL pre-trained on all graphs. "
        "Writes OUT/results.csv (resumable; a resume with other settings is refused), OUT/settings.json, "
        "OUT/config.json (the resolved configuration), OUT/table.md (with paired verdicts), OUT/accuracy.png and "
        "OUT/paired.png.",
    )
    command = "reproduce-graphs"
    _key(graphs, "--datasets", "datasets", nargs="+", help="names or folders of TU raw files (default: all 8)")
    _key(
        graphs,
        "--methods",
        "methods",
        nargs="+",
        metavar="NAME",
        help=f"registry methods ({' '.join(TABLE_METHODS)}), controls (untrained wl supervised), ucl-transductive "
        "and the secondary sweeps hscl-sweep hscl-labels-sweep (beta or tau chosen per fold on an inner 80/20 split "
        "of the training "
        "folds; 7 pre-trainings a row); default: the controls, the primary methods and ucl-transductive",
    )

    def budget(p: dict) -> str:
        g = p["graph"]
        return f"at least {g['min_steps']:,} optimizer steps and {g['min_epochs']} epochs, seeds {_shown(p['seeds'])}"

    graphs.add_argument("--preset", default="cpu", help=_preset_help(command, budget))
    _key(graphs, "--seeds", "seeds", nargs="+", type=int, help=_from_preset("seeds", command, "seeds"))
    steps = "budget rule: at least this many optimizer steps per pre-training"
    _key(graphs, "--min-steps", "graph.min_steps", type=int, help=_from_preset(steps, command, "graph.min_steps"))
    epochs = "budget rule: at least this many epochs"
    _key(graphs, "--min-epochs", "graph.min_epochs", type=int, help=_from_preset(epochs, command, "graph.min_epochs"))
    _key(
        graphs,
        "--epochs",
        "graph.epochs",
        type=int,
        help="a fixed number of epochs instead of the budget rule (default: none, the rule of --min-steps and "
        "--min-epochs)",
    )
    _key(
        graphs,
        "--encoder",
        "graph.encoder",
        metavar="PACKAGE.MODULE:FACTORY",
        help="your own encoder instead of the GIN, for every method and the untrained and supervised controls: a "
        "function called as FACTORY(in_features=F), F the data set's node feature size, after the same seeding as "
        "the GIN, that returns an nn.Module mapping a PyG Batch to [num_graphs, D] (imported, never evaluated; the "
        "current folder is searched too); the projection head is built on D; recorded in OUT/settings.json "
        "(default: none, the GIN)",
    )
    _key(graphs, "--hidden", "graph.hidden", type=int, default=32, help="GIN hidden size")
    _key(graphs, "--layers", "graph.layers", type=int, default=3, help="GIN layers")
    _key(graphs, "--batch-size", "graph.batch_size", type=int, default=128)
    _key(graphs, "--lr", "graph.lr", type=float, default=1e-3)
    _key(graphs, "--temperature", "graph.temperature", type=float, default=0.5)
    _key(graphs, "--views", "graph.views", type=int, default=2, help="augmented views per graph")
    jobs = _from_preset("processes for the SVM's C grid", command, "graph.svm_jobs")
    _key(graphs, "--svm-jobs", "graph.svm_jobs", type=int, help=jobs)
    roots = "folder of <NAME>/ TU folders (default: $HSCL_TU_ROOT, ../shared/data/TU, ./data/TU; MUTAG is bundled)"
    _key(graphs, "--data-root", "data_root", help=roots)
    diagnostics = (
        "record the Assumption 1 diagnostics every epoch for these data sets (those of --datasets; a preset's are "
        "kept for the data sets of the run)"
    )
    _key(
        graphs,
        "--diagnostics",
        "diagnostics",
        nargs="*",
        metavar="NAME",
        help=_from_preset(diagnostics, command, "diagnostics"),
    )
    _add_set(graphs, "graph.folds=5")
    graphs.add_argument("--out", required=True, help="output folder")
    _finish(graphs, "--preset")

    tr = sub.add_parser(
        "train",
        help="pre-train an image encoder with one method and evaluate it (linear probe, kNN)",
        description="Pre-train a ResNet (or your own encoder, --encoder) with UCL, H-UCL, SCL, H-SCL or SupCon on an "
        "image data set (Lightning: CPU, GPU or DDP), then report a linear probe selected on a validation split held "
        "out of train and a weighted kNN, on test. Writes OUT/metrics.json, OUT/config.json (the resolved "
        "configuration), logs and a checkpoint at the end of every epoch; run again with the same OUT, also after a "
        "kill, it resumes from the last finished epoch.",
    )
    data = "cifar10, cifar100, stl10, tiny-imagenet, digits, or a path"
    _key(tr, "--dataset", "dataset", required=True, help=data)
    methods = "a method of the registry (hscl: hscl-beta)"
    _key(tr, "--method", "method", required=True, choices=list(METHODS), help=methods)
    hard = tr.add_mutually_exclusive_group()
    _key(hard, "--beta", "beta", type=float, help="exponential tilt (hucl, hscl; default: 1, unless --tau is given)")
    _key(hard, "--tau", "tau", type=float, help="threshold on e^s (hucl, hscl; default for hscl-tau: e^-0.5 = 0.607)")
    _key(tr, "--seed", "seed", type=int, default=0, help="seed of initialisation, batches and views")
    tr.add_argument(
        "--encoder",
        default=None,
        metavar="PACKAGE.MODULE:FACTORY",
        help="your own encoder instead of the ResNet: a function called without arguments that returns an nn.Module "
        "mapping images [N, 3, H, W] to [N, D] (imported, never evaluated; the current folder is searched too); "
        "the projection head is built on D (default: the --config preset's ResNet)",
    )
    tr.add_argument(
        "--config",
        default="cpu",
        help=f"the preset: a name of configs/train/ ({', '.join(preset_names('train'))}) or a YAML file of the "
        "same keys; flags and --set win",
    )
    _add_set(tr, "weight_decay=1e-4")
    _add_image_flags(tr)
    _finish(tr, "--config")

    images = rep_sub.add_parser(
        "images",
        help="image benchmark: the 9 methods and 2 controls x seeds, each an `hscl train` job, in one table",
        description="Run `hscl train` for UCL, H-UCL, SCL, H-SCL (tau, beta; view and label positives) and SupCon "
        "and each seed on one image data set, beside two controls through the same splits (the same encoder "
        "untrained, the same linear probe on raw pixels), and collect the linear probe and kNN accuracies with "
        "seed-paired verdicts. Writes OUT/settings.json (a resume with other settings is refused), OUT/config.json "
        "(the resolved configuration), OUT/runs/<method>-seed<S>/, OUT/results.csv (resumable: finished jobs are "
        "skipped, a killed job resumes from its checkpoint), OUT/table.md and OUT/accuracy.png.",
    )
    command = "reproduce-images"
    _key(images, "--dataset", "image.dataset", required=True, help=data)
    _key(images, "--methods", "methods", nargs="+", help=f"default: all nine ({' '.join(TABLE_METHODS)})")

    def described(p: dict) -> str:
        cap = [f"at most {p['train_subset_cap']:,} training images"] if p.get("train_subset_cap") else []
        image = [f"{k} {_shown(v)}" for k, v in (p.get("image") or {}).items()]
        return ", ".join([f"the {p['config']} train preset", *image, *cap, f"seeds {_shown(p['seeds'])}"])

    images.add_argument("--preset", default="cpu", help=_preset_help(command, described))
    train_presets = ", ".join(preset_names("train"))
    fills = f"the train preset whose values fill the job settings: a name of configs/train/ ({train_presets}) or a file"
    _key(images, "--config", "config", help=_from_preset(fills, command, "config"))
    _key(images, "--seeds", "seeds", nargs="+", type=int, help=_from_preset("seeds", command, "seeds"))
    _add_set(images, "image.weight_decay=1e-4")
    from_config = "the --config preset's"
    subset = (
        "pre-train and probe on exactly N class-balanced training images; a preset's N is a cap, at most N (all of "
        "them when the training split holds no more)"
    )
    _add_image_flags(
        images,
        "image.",
        {
            "width": _from_preset("ResNet width (64: the standard ResNet)", command, "image.width", from_config),
            "epochs": _from_preset(
                "pre-training epochs; given alone, it pins the budget (--min-steps 0)",
                command,
                "image.epochs",
                from_config,
            ),
            "min_steps": _from_preset(
                "budget rule: epochs = max(epochs, ceil(min_steps / steps per epoch))",
                command,
                "image.min_steps",
                from_config,
            ),
            "train_subset": _from_preset(subset, command, "train_subset_cap"),
        },
    )
    _finish(images, "--preset")

    figures = rep_sub.add_parser(
        "figures",
        help="the paper's Figures 4 and 5: Assumption 1 fractions and the four asymptotic losses per epoch",
        description="Train with each method and seed while recording, every epoch, the fraction of anchors "
        "satisfying Assumption 1 and the four asymptotic losses at tau = e^-0.5, e^-0.1, beta = 1, 2; score every "
        "run and two controls (the untrained encoder, raw pixels) with the same linear probe. Preset cpu: an "
        "MLP on digits (minutes, no download). Preset paper: the authors' ResNet-50 settings on CIFAR-100 (a GPU "
        "job). Writes OUT/figure4_assumption.png, OUT/figure5_losses.png, OUT/table.md, OUT/results.csv, "
        "OUT/diagnostics.csv, OUT/settings.json, OUT/config.json.",
    )
    command = "reproduce-figures"

    def recipe(p: dict) -> str:
        return f"{p['recipe']} recipe, {p['epochs']} epochs, seeds {_shown(p['seeds'])}"

    figures.add_argument("--preset", default="cpu", help=_preset_help(command, recipe))
    methods = f"training methods (default: all nine: {' '.join(TABLE_METHODS)})"
    _key(figures, "--methods", "methods", nargs="+", help=methods)
    _key(figures, "--seeds", "seeds", nargs="+", type=int, help=_from_preset("seeds", command, "seeds"))
    _key(figures, "--epochs", "epochs", type=int, help=_from_preset("epochs", command, "epochs"))
    _key(figures, "--dataset", "dataset", default="cifar100", help="paper preset: the image data set")
    roots = "where named data sets live (paper preset; default: the hscl cache)"
    _key(figures, "--data-root", "data_root", help=roots)
    _key(figures, "--download", "download", nargs=0, const=True, default=False, help=_DOWNLOAD)
    _add_set(figures, "epochs=10")
    figures.add_argument("--quiet", action="store_true", help="no progress bars")
    figures.add_argument("--out", required=True, help="output folder")
    _finish(figures, "--preset")
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
        return handler(args, *_overrides(args))
    except (ValueError, FileNotFoundError, PermissionError, MissingExtraError) as err:
        print(f"hscl {command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
