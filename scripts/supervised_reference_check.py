"""Is the graph table's supervised reference under-trained? (issue 11: "investigate on validation only")

The supervised control of ``hscl reproduce graphs`` (the GIN trained end to end with cross-entropy) reads below the
*untrained* GIN on PROTEINS and DD. This script asks why without looking at any test fold: for one (seed, fold) of
the table's 10-fold CV it keeps only the training folds, splits them 80/20 (stratified; ``inner_split``), and on
the inner 20% scores

* ``untrained``: the same GIN untrained, features into the table's linear SVM (C by inner CV on the inner 80%);
* ``supervised``: ``fit_graph_classifier`` on the inner 80% (its own 10% for the epoch choice), for each budget
  (optimizer steps) and learning rate asked, the table's being ``--steps`` = the budget rule's and lr 1e-3.

It never reads the test fold, so a setting chosen here could govern a later protocol version without leaking.
Writes ``OUT/supervised_check.json`` and prints a table.

    python scripts/supervised_reference_check.py --dataset DD --steps 300 1200 --lrs 1e-3 1e-2 --out /tmp/sup
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "TU"


def check(dataset: str, data_root, steps: list[int], lrs: list[float], seed: int, fold: int) -> dict:
    import torch

    from hscl.datasets.tu import load_tu
    from hscl.evaluation.svm import svm_accuracy
    from hscl.experiments.graphs import GraphConfig, fold_indices, group_seed, inner_split
    from hscl.models import GINEncoder
    from hscl.training import embed_graphs
    from hscl.training.graph_classifier import fit_graph_classifier

    config = GraphConfig()
    data = load_tu(dataset, data_root=data_root)
    labels = data.labels
    train_idx, _ = fold_indices(labels.numpy(), config.folds)[fold]  # the test fold is never read
    group = group_seed(data.name, seed, fold)
    fit_pos, val_pos = inner_split(labels[train_idx].numpy(), group)
    fit_idx, val_idx = train_idx[fit_pos], train_idx[val_pos]
    fit_graphs, val_graphs = [data[int(i)] for i in fit_idx], [data[int(i)] for i in val_idx]

    def encoder():
        torch.manual_seed(group)
        return GINEncoder(data.num_features, hidden=config.hidden, layers=config.layers)

    rows = []
    start = time.perf_counter()
    feats = embed_graphs(encoder(), data).numpy()
    acc, c = svm_accuracy(
        feats[fit_idx], labels[fit_idx].numpy(), feats[val_idx], labels[val_idx].numpy(), seed=group, n_jobs=1
    )
    rows.append(
        {
            "control": "untrained",
            "steps": 0,
            "lr": None,
            "inner_val_accuracy": acc,
            "svm_C": c,
            "seconds": round(time.perf_counter() - start, 1),
        }
    )
    for lr in lrs:
        for n in steps:
            start = time.perf_counter()
            got = fit_graph_classifier(
                encoder(),
                fit_graphs,
                labels[fit_idx],
                val_graphs,
                labels[val_idx],
                max_steps=n,
                batch_size=config.batch_size,
                lr=lr,
                seed=group,
                num_classes=data.num_classes,
            )
            rows.append(
                {
                    "control": "supervised",
                    "steps": got["steps"],
                    "lr": lr,
                    "inner_val_accuracy": got["accuracy"],
                    "epoch_choice_accuracy": got["val_accuracy"],
                    "best_epoch": got["best_epoch"],
                    "epochs": got["epochs"],
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
    budget = config.epochs_of(len(train_idx)) * config.steps_per_epoch(len(train_idx))
    return {
        "dataset": data.name,
        "seed": seed,
        "fold": fold,
        "table_budget_steps": budget,
        "inner_fit": len(fit_idx),
        "inner_val": len(val_idx),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="DD", help="a TU data set name or folder (default DD)")
    p.add_argument("--data-root", default=str(DEFAULT_ROOT), help="folder of TU data sets (default ../shared/data/TU)")
    p.add_argument("--steps", nargs="+", type=int, default=[300, 1200], help="budgets in optimizer steps")
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 1e-2], help="learning rates (Adam)")
    p.add_argument("--seed", type=int, default=0, help="the table's seed whose group seed is used (default 0)")
    p.add_argument("--fold", type=int, default=0, help="the CV fold whose training folds are used (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    if any(n < 1 for n in args.steps) or any(not lr > 0 for lr in args.lrs):
        p.error("--steps must be >= 1 and --lrs > 0")
    result = check(args.dataset, args.data_root, args.steps, args.lrs, args.seed, args.fold)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "supervised_check.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{result['dataset']} seed {args.seed} fold {args.fold}: inner fit {result['inner_fit']}, inner val "
        f"{result['inner_val']}; the table's budget {result['table_budget_steps']} steps"
    )
    print("| control | steps | lr | inner-val accuracy | s |\n|---|---:|---:|---:|---:|")
    for r in result["rows"]:
        print(f"| {r['control']} | {r['steps']} | {r['lr']} | {100 * r['inner_val_accuracy']:.1f} | {r['seconds']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
