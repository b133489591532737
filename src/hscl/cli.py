"""The ``hscl`` command line."""

from __future__ import annotations

import argparse
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


def _diagnose(args) -> int:
    import torch

    from ._io import atomic_write_text
    from .checkpoint import load_model
    from .datasets import load_vector_dataset
    from .diagnostics import assumption_report, embed_views
    from .transforms import VectorAugment

    settings = {}
    for s in args.setting or [parse_setting("paper")]:
        settings.update(s)
    model, meta = load_model(args.checkpoint)
    x, y = load_vector_dataset(args.data)
    in_features = model.spec["kwargs"].get("in_features")
    if in_features is not None and x.shape[1] != in_features:
        raise ValueError(f"the data has {x.shape[1]} features but the checkpoint's model expects {in_features}")
    aug_cfg = dict(meta.get("augment", {}))
    if args.noise is not None:
        aug_cfg["noise"] = args.noise
    if args.drop is not None:
        aug_cfg["drop"] = args.drop
    augment = VectorAugment(**aug_cfg, generator=torch.Generator().manual_seed(args.seed))
    temperature = args.temperature if args.temperature is not None else float(meta.get("temperature", 0.5))
    z, labels = embed_views(model, (x, y), augment=augment, progress=not args.quiet)
    rows = []
    for name, hardening in settings.items():
        rep = assumption_report(z, labels, hardening=hardening, temperature=temperature, chunk_size=args.chunk_size,
                                progress=not args.quiet)  # fmt: skip
        rows.append({"setting": name, **rep.summary()})
    header = ["setting", "UCL", "H-UCL", "SCL", "H-SCL", "assumption_fraction", "vacuous", "excluded",
              "hscl_le_hucl", "hscl_ge_ucl"]  # fmt: skip
    print(f"hscl diagnose: {args.checkpoint} on {args.data} ({z.shape[0]} samples x 2 views, t={temperature:g}, "
          f"reference set = the whole data set, augmentation {augment})")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        cells = [f"{r[h]:.4f}" if isinstance(r[h], float) else str(r[h]) for h in header]
        print("| " + " | ".join(cells) + " |")
    if args.out:
        import csv
        import io
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "diagnose.csv", buf.getvalue())
        print(f"written: {out / 'diagnose.csv'}")
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


def _reproduce_graphs(args) -> int:
    import time

    from .datasets.tu import BENCHMARKS
    from .experiments import graphs as G

    _apply_preset(args, GRAPH_PRESETS, ("min_steps", "min_epochs", "seeds", "svm_jobs", "diagnostics"))
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
    )
    start = time.perf_counter()
    csv_path = G.run(
        args.out,
        datasets=args.datasets or BENCHMARKS,
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
    metrics = train_images(ImageConfig(**values), args.out)
    if metrics:
        print(json.dumps(metrics, indent=1))
        print(f"written: {args.out}/metrics.json")
    return 0


_IMAGE_NUMBERS = ("epochs", "min_steps", "batch_size", "lr", "depth", "width", "devices", "num_nodes", "num_workers",
                  "temperature", "views", "train_subset", "diagnostics")  # fmt: skip
_IMAGE_FIELDS = (*_IMAGE_NUMBERS, "optimizer", "precision", "accelerator", "data_root")


def _add_image_flags(parser: argparse.ArgumentParser, config_default: str | None = "cpu") -> None:
    """The ``ImageConfig`` overrides shared by ``hscl train`` and ``hscl reproduce images``."""
    parser.add_argument("--config", default=config_default,
                        help="YAML preset (paper, modern, cpu) or file (default: cpu, or the --preset's)")  # fmt: skip
    kinds = {"lr": float, "temperature": float}
    helps = {
        "train_subset": "pre-train and probe on a class-balanced N of the training images",
        "diagnostics": "record Assumption 1 and the four asymptotic losses each epoch on N training images",
        "epochs": "pre-training epochs (0: evaluate the untrained encoder); given alone, it pins the budget "
        "(--min-steps 0)",
        "min_steps": "budget rule: epochs = max(epochs, ceil(min_steps / steps per epoch)) (cpu preset: 300)",
    }
    for field in _IMAGE_NUMBERS:
        parser.add_argument(f"--{field.replace('_', '-')}", type=kinds.get(field, int), default=None,
                            help=helps.get(field))  # fmt: skip
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default=None)
    parser.add_argument("--precision", default=None, help="32-true, bf16-mixed, 16-mixed")
    parser.add_argument("--accelerator", default=None, help="auto, cpu, gpu")
    parser.add_argument("--data-root", default=None, help="where named data sets live (default: the hscl cache)")
    parser.add_argument("--download", action="store_true", help="fetch a named data set if missing (checksummed)")
    parser.add_argument("--out", required=True, help="output folder")


def _image_overrides(args) -> dict:
    values = {f: getattr(args, f) for f in _IMAGE_FIELDS if getattr(args, f) is not None}
    values["download"] = bool(args.download)
    return values


def _reproduce_figures(args) -> int:
    from .experiments import figures

    fig4 = figures.run(args.out, preset=args.preset, methods=args.methods or figures.METHODS, seeds=args.seeds,
                       epochs=args.epochs, dataset=args.dataset, data_root=args.data_root, download=args.download,
                       progress=not args.quiet)  # fmt: skip
    print((fig4.parent / "table.md").read_text())
    print(f"written: {fig4}, {fig4.parent / 'figure5_losses.png'}, {fig4.parent / 'table.md'}, "
          f"{fig4.parent / 'results.csv'}, {fig4.parent / 'diagnostics.csv'}")  # fmt: skip
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


def _reproduce_images(args) -> int:
    import time

    from .experiments import images

    if args.epochs is not None and args.min_steps is None:
        args.min_steps = 0  # an explicit --epochs pins the budget
    _apply_preset(args, IMAGE_PRESETS, ("config", "seeds", "width", "epochs", "min_steps", "train_subset"))
    start = time.perf_counter()
    methods = args.methods or tuple(images.METHODS)
    csv_path = images.run(args.out, dataset=args.dataset, methods=methods, seeds=args.seeds, preset=args.config,
                          overrides=_image_overrides(args))  # fmt: skip
    table, png = images.write_report(csv_path)
    print(table.read_text())
    print(f"{time.perf_counter() - start:.0f} s; written: {csv_path}, {table}, {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .losses.registry import METHODS, TABLE_METHODS

    parser = argparse.ArgumentParser(prog="hscl", description="Supervised contrastive learning with hard negatives")
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
        description="Embed the data set once (two augmented views per sample) with the checkpoint's model and "
        "report, per hardening setting, the four asymptotic losses and the fraction of anchors satisfying "
        "Assumption 1, with the whole data set as reference set (SPEC.md section 4).",
    )
    diag.add_argument("--checkpoint", required=True, help="an hscl model checkpoint (hscl.checkpoint.save_model)")
    diag.add_argument("--data", default="digits", help="'digits' or a .npz file with arrays x and y")
    diag.add_argument("--setting", type=parse_setting, action="append",
                      help="paper (default: tau=e^-0.5, tau=e^-0.1, beta=1, beta=2), beta=B, tau=T or tau=e^X; "
                      "repeatable")  # fmt: skip
    diag.add_argument("--temperature", type=float, default=None, help="default: the checkpoint's")
    diag.add_argument("--chunk-size", type=int, default=None, help="anchors per chunk (default: ~1 GiB of memory)")
    diag.add_argument("--noise", type=float, default=None, help="augmentation noise (default: the checkpoint's)")
    diag.add_argument("--drop", type=float, default=None, help="augmentation dropout (default: the checkpoint's)")
    diag.add_argument("--seed", type=int, default=0, help="seed of the augmentation")
    diag.add_argument("--out", default=None, help="also write OUT/diagnose.csv")
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
        help="cpu (default): at least 300 optimizer steps and 20 epochs, seeds 0 1; paper: 1,000 "
        "steps and 100 epochs, 5 seeds; flags given explicitly win",
    )
    graphs.add_argument("--seeds", nargs="+", type=int, default=None, help="cpu: 0 1; paper: 0 1 2 3 4")
    graphs.add_argument(
        "--min-steps",
        type=int,
        default=None,
        help="budget rule: at least this many optimizer steps per pre-training (cpu: 300)",
    )
    graphs.add_argument("--min-epochs", type=int, default=None, help="budget rule: at least this many epochs (cpu: 20)")
    graphs.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs instead of the rule")
    graphs.add_argument("--hidden", type=int, default=32, help="GIN hidden size (default 32)")
    graphs.add_argument("--layers", type=int, default=3, help="GIN layers (default 3)")
    graphs.add_argument("--batch-size", type=int, default=128)
    graphs.add_argument("--lr", type=float, default=1e-3)
    graphs.add_argument("--temperature", type=float, default=0.5)
    graphs.add_argument("--views", type=int, default=2, help="augmented views per graph (default 2)")
    graphs.add_argument("--svm-jobs", type=int, default=None, help="processes for the SVM's C grid (presets: 2)")
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
        help="record the Assumption 1 diagnostics every epoch for these data sets (presets: MUTAG PROTEINS)",
    )
    graphs.add_argument("--out", required=True, help="output folder")
    tr = sub.add_parser(
        "train",
        help="pre-train an image encoder with one method and evaluate it (linear probe, kNN)",
        description="Pre-train a ResNet with UCL, H-UCL, SCL, H-SCL or SupCon on an image data set (Lightning: CPU, "
        "GPU or DDP), then report a linear probe selected on a validation split held out of train and a weighted "
        "kNN, on test. Writes OUT/metrics.json, OUT/config.json, logs and checkpoints; resumes from OUT.",
    )
    tr.add_argument("--dataset", required=True, help="cifar10, cifar100, stl10, tiny-imagenet, digits, or a path")
    tr.add_argument("--method", required=True, choices=list(METHODS), help="a method of the registry (hscl: hscl-beta)")
    hard = tr.add_mutually_exclusive_group()
    hard.add_argument("--beta", type=float, default=None, help="exponential tilt (hucl, hscl)")
    hard.add_argument("--tau", type=float, default=None, help="threshold on e^s (hucl, hscl)")
    tr.add_argument("--seed", type=int, default=None)
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
    images.add_argument("--preset", choices=["cpu", "paper"], default=None,
                        help="cpu (default): the CPU comparison (width-8 ResNet-18, 10,000 training images, "
                        "at least 300 optimizer steps, seeds 0 1 2); paper: the authors' settings, seeds 0 1 2; "
                        "explicit flags win")  # fmt: skip
    images.add_argument("--seeds", nargs="+", type=int, default=None)
    _add_image_flags(images, config_default=None)
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
    figures.add_argument("--data-root", default=None)
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
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"hscl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
