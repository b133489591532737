"""Graph contrastive pre-training speed on the CPU: the loop, augmentation and GIN forward of commit 95f9c18
(frozen below as the "before" peer) against today's ``hscl.training.pretrain_graphs`` and ``embed_graphs``.

    python benchmarks/bench_graphs.py                                   # DD, REDDIT-BINARY, NCI1, MUTAG
    python benchmarks/bench_graphs.py --datasets MUTAG --epochs 2 --rounds 1 --out /tmp/graphs.md   # quick

Both sides pre-train a GIN (3 layers, hidden 32) from the same seeded initialisation with H-SCL (beta = 1,
temperature 0.5) and the labels, batch 128, two views, for ``--epochs`` epochs, ``--rounds`` times, before and
after alternating so that both see the same load on a shared machine. Reported: the median time of an epoch, the
mean time of a whole call per epoch (with the one-time setup: cloning the graphs before, collating them after),
the time of ``embed_graphs`` over the whole data set (batch 256), and one epoch split into its parts. Both sides
visit the same mini-batches, but draw different (equally distributed) views, so their losses agree only roughly;
the embeddings of one set of parameters agree to float rounding (last column). The frozen code is kept verbatim
where it is timed; it is not part of the library.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from hscl._io import atomic_write_text
from hscl.datasets.tu import load_tu
from hscl.losses.registry import make_loss
from hscl.models import GINEncoder
from hscl.training import embed_graphs, pretrain_graphs
from hscl.training.graphs import _Collated, _loader, _split_views
from hscl.transforms.graph import OPS, GraphAugment

DATASETS = ("DD", "REDDIT-BINARY", "NCI1", "MUTAG")

# ---------------------------------------------------------------------------------------------------------------
# The "before" peer: frozen copies of hscl.transforms.graph.GraphAugment, hscl.models.gin.GINEncoder and
# hscl.training.graphs.{_loader, pretrain_graphs, embed_graphs} at commit 95f9c18. Do not edit.
# ---------------------------------------------------------------------------------------------------------------


class BeforeGraphAugment:
    """``hscl.transforms.graph.GraphAugment`` as of the frozen commit (one view per call)."""

    def __init__(self, ops=OPS, ratio: float = 0.2, generator: torch.Generator | None = None) -> None:
        ops = tuple(ops)
        unknown = [o for o in ops if o not in OPS]
        if not ops or unknown:
            raise ValueError(f"ops must be a non-empty subset of {OPS}, got {ops}")
        if not 0 <= ratio < 1:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        self.ops, self.ratio, self.generator = ops, float(ratio), generator

    def _rand(self, *shape, device) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=device)

    def __call__(self, batch):
        from torch_geometric.data import Batch
        from torch_geometric.utils import subgraph

        x, edge_index, node_graph = batch.x, batch.edge_index, batch.batch
        device, n, g = x.device, x.shape[0], batch.num_graphs
        ptr = torch.zeros(g + 1, dtype=torch.long, device=device)
        ptr[1:] = torch.bincount(node_graph, minlength=g).cumsum(0)
        sizes = ptr[1:] - ptr[:-1]
        choice = torch.tensor([OPS.index(o) for o in self.ops], device=device)[
            torch.randint(len(self.ops), (g,), generator=self.generator, device=device)
        ]
        node_op = choice[node_graph]

        if "edge_perturb" in self.ops:
            edge_index = self._perturb_edges(edge_index, node_graph, choice, ptr, sizes)
        keep = torch.ones(n, dtype=torch.bool, device=device)
        if "node_drop" in self.ops:
            keep &= ~((self._rand(n, device=device) < self.ratio) & (node_op == OPS.index("node_drop")))
        if "subgraph" in self.ops:
            grown = self._grow_subgraph(edge_index, node_graph, ptr, sizes, choice == OPS.index("subgraph"))
            keep &= grown | (node_op != OPS.index("subgraph"))
        # every graph keeps at least one node: its first, if nothing else survived
        kept_per_graph = torch.bincount(node_graph[keep], minlength=g)
        keep[ptr[:-1][(kept_per_graph == 0) & (sizes > 0)]] = True
        if "attr_mask" in self.ops:
            masked = (self._rand(n, device=device) < self.ratio) & (node_op == OPS.index("attr_mask"))
            x = x.masked_fill(masked[:, None], 0.0)
        edge_index, _ = subgraph(keep, edge_index, relabel_nodes=True, num_nodes=n)
        out = Batch(x=x[keep], edge_index=edge_index, batch=node_graph[keep], y=batch.y)
        out._num_graphs = g
        return out

    def _perturb_edges(self, edge_index, node_graph, choice, ptr, sizes) -> Tensor:
        device = edge_index.device
        n = node_graph.shape[0]
        active = choice == OPS.index("edge_perturb")
        src, dst = edge_index
        # one decision per undirected edge: both directions share the key (min, max)
        key = torch.minimum(src, dst) * n + torch.maximum(src, dst)
        unique, inverse = torch.unique(key, return_inverse=True)
        drop = (self._rand(unique.numel(), device=device) < self.ratio)[inverse] & active[node_graph[src]]
        edge_index = edge_index[:, ~drop]
        # add about ratio x (undirected edges) random pairs inside each active graph
        undirected = torch.bincount(node_graph[src[src < dst]], minlength=sizes.numel())
        add = torch.where(active & (sizes > 1), (undirected.float() * self.ratio).round().long(), 0)
        if int(add.sum()) == 0:
            return edge_index
        owner = torch.repeat_interleave(torch.arange(sizes.numel(), device=device), add)
        u = ptr[owner] + (self._rand(owner.numel(), device=device) * sizes[owner]).long()
        v = ptr[owner] + (self._rand(owner.numel(), device=device) * sizes[owner]).long()
        ok = u != v
        u, v = u[ok], v[ok]
        new = torch.cat([edge_index, torch.stack([u, v]), torch.stack([v, u])], dim=1)
        key = new[0] * n + new[1]
        _, first = _unique_first(key)
        return new[:, first]

    def _grow_subgraph(self, edge_index, node_graph, ptr, sizes, active) -> Tensor:
        """A connected subgraph of each active graph: grown from a random node one breadth-first layer at a time
        until it holds ceil((1 - ratio) x n) nodes, the last layer sampled at random. The loop runs once per layer
        (at most the largest eccentricity), not once per node, so large graphs (DD, REDDIT) cost a few dozen
        vectorised steps. A graph whose component is smaller than the target keeps the whole component."""
        device = edge_index.device
        n, g = node_graph.shape[0], sizes.numel()
        chosen = torch.zeros(n, dtype=torch.bool, device=device)
        graphs = torch.nonzero(active & (sizes > 0)).flatten()
        if graphs.numel() == 0 or self.ratio == 0:
            return chosen | active[node_graph]
        start = ptr[graphs] + (self._rand(graphs.numel(), device=device) * sizes[graphs]).long()
        chosen[start] = True
        limit = torch.where(active, torch.ceil((1 - self.ratio) * sizes.float()).long(), 0)
        src, dst = edge_index
        for _ in range(n):  # at most one layer per node; ends as soon as no active graph can grow
            need = (limit - torch.bincount(node_graph[chosen], minlength=g)).clamp_min(0)
            reach = chosen[src] & ~chosen[dst] & (need[node_graph[dst]] > 0)
            if not bool(reach.any()):
                break
            frontier = torch.zeros(n, dtype=torch.bool, device=device)
            frontier[dst[reach]] = True
            nodes = torch.nonzero(frontier).flatten()
            # random order inside each graph: shuffle, then a stable sort by graph keeps the shuffle per graph
            nodes = nodes[torch.argsort(self._rand(nodes.numel(), device=device))]
            nodes = nodes[torch.argsort(node_graph[nodes], stable=True)]
            owner = node_graph[nodes]
            per_graph = torch.bincount(owner, minlength=g)
            rank = torch.arange(nodes.numel(), device=device) - (per_graph.cumsum(0) - per_graph)[owner]
            chosen[nodes[rank < need[owner]]] = True
        return chosen


def _unique_first(key: Tensor) -> tuple[Tensor, Tensor]:
    """Unique values of ``key`` and the index of each one's first occurrence."""
    unique, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((unique.numel(),), key.numel(), dtype=torch.long, device=key.device)
    first.scatter_reduce_(0, inverse, torch.arange(key.numel(), device=key.device), reduce="amin")
    return unique, torch.sort(first).values


class BeforeGINEncoder(nn.Module):
    """``hscl.models.gin.GINEncoder`` as of the frozen commit: PyG ``GINConv`` and ``global_add_pool``."""

    def __init__(self, in_features: int, hidden: int = 32, layers: int = 3, projection: int | None = None) -> None:
        super().__init__()
        from torch_geometric.nn import GINConv

        out = hidden * layers
        projection = out if projection is None else projection
        dims = [in_features] + [hidden] * layers
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(a, hidden), nn.ReLU(), nn.Linear(hidden, hidden))) for a in dims[:-1]
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(out, out), nn.ReLU(inplace=True), nn.Linear(out, projection))

    def features(self, batch) -> Tensor:
        from torch_geometric.nn import global_add_pool

        x, pooled = batch.x, []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(conv(x, batch.edge_index).relu())
            pooled.append(global_add_pool(x, batch.batch, size=batch.num_graphs))
        return torch.cat(pooled, dim=1)

    def forward(self, batch) -> Tensor:
        return self.head(self.features(batch))


def before_loader(graphs, batch_size, shuffle, seed):
    from torch_geometric.loader import DataLoader

    gen = torch.Generator().manual_seed(seed)
    return DataLoader(list(graphs), batch_size=batch_size, shuffle=shuffle, generator=gen if shuffle else None)


def before_items(graphs, labels):
    items = []
    for i, g in enumerate(graphs):
        g = g.clone()
        g.y = labels[i].view(1) if labels is not None else torch.zeros(1, dtype=torch.long)
        items.append(g)
    return items


def before_pretrain_graphs(
    model,
    graphs,
    loss_fn,
    *,
    labels=None,
    epochs=20,
    batch_size=128,
    lr=1e-3,
    weight_decay=0.0,
    augment_ratio=0.2,
    views=2,
    seed=0,
    on_epoch_end=None,
):
    items = before_items(graphs, labels)
    torch.manual_seed(seed)
    augment = BeforeGraphAugment(ratio=augment_ratio, generator=torch.Generator().manual_seed(seed + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in before_loader(items, batch_size, True, seed + 1000 * epoch):
            if batch.num_graphs < 2:
                continue
            z = torch.stack([model(augment(batch)) for _ in range(views)], dim=1)
            loss = loss_fn(z, batch.y if labels is not None else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * batch.num_graphs
            count += batch.num_graphs
        history.append(total / max(count, 1))
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


@torch.no_grad()
def before_embed_graphs(model, graphs, *, batch_size=256):
    was = model.training
    model.eval()
    try:
        return torch.cat([model.features(b) for b in before_loader(graphs, batch_size, False, 0)]).cpu()
    finally:
        model.train(was)


# ---------------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------------

SIDES = {
    "before": (BeforeGINEncoder, before_pretrain_graphs, before_embed_graphs),
    "after": (GINEncoder, pretrain_graphs, embed_graphs),
}
PARTS = ("batching", "augmentation", "encoder forward", "loss + backward", "optimiser step")


def timed_pretraining(side: str, dataset, epochs: int, seed: int = 0):
    """(seconds of each epoch, seconds of the whole call, loss history, model) of one seeded pre-training."""
    make_model, pretrain, _ = SIDES[side]
    torch.manual_seed(seed)
    model = make_model(dataset.num_features, hidden=32, layers=3)
    marks = []
    start = time.perf_counter()
    history = pretrain(
        model,
        list(dataset),
        make_loss("hscl-beta", 0.5),
        labels=dataset.labels,
        epochs=epochs,
        batch_size=128,
        seed=seed,
        on_epoch_end=lambda epoch, m: marks.append(time.perf_counter()),
    )
    total = time.perf_counter() - start
    return [b - a for a, b in zip([start, *marks[:-1]], marks, strict=True)], total, history, model


def timed_embedding(side: str, model, dataset, repeats: int = 3) -> float:
    """Median seconds of ``embed_graphs`` (of ``side``) over the whole data set, after a warm-up call."""
    embed = SIDES[side][2]
    graphs = list(dataset)
    embed(model, graphs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        embed(model, graphs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def breakdown(side: str, dataset, seed: int = 0) -> dict[str, float]:
    """Seconds of one epoch in each part of a step, from a loop that does what ``side``'s pre-training does."""
    make_model = SIDES[side][0]
    torch.manual_seed(seed)
    model = make_model(dataset.num_features, hidden=32, layers=3)
    loss_fn, labels = make_loss("hscl-beta", 0.5), dataset.labels
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if side == "before":
        augment = BeforeGraphAugment(generator=torch.Generator().manual_seed(seed + 1))
        batches = ((b, b.y) for b in before_loader(before_items(list(dataset), labels), 128, True, seed))
    else:
        augment = GraphAugment(generator=torch.Generator().manual_seed(seed + 1))
        data = _Collated(list(dataset))
        batches = ((b, labels[idx]) for idx, b in _loader(data, 128, True, seed))
    parts = dict.fromkeys(PARTS, 0.0)
    clock = time.perf_counter
    model.train()
    while True:
        t0 = clock()
        item = next(batches, None)
        if item is None:
            break
        batch, y = item
        b = batch.num_graphs
        if b < 2:
            continue
        t1 = clock()
        if side == "before":
            views = [augment(batch) for _ in range(2)]
            t2 = clock()
            z = torch.stack([model(v) for v in views], dim=1)
        else:
            x, edge_index, node_graph = augment.apply(batch.x, batch.edge_index, batch.batch, b, views=2)
            views = _split_views(x, edge_index, node_graph, b, 2, data.symmetric)
            t2 = clock()
            z = torch.stack([model(v) for v in views], dim=1)
        t3 = clock()
        loss = loss_fn(z, y)
        opt.zero_grad()
        loss.backward()
        t4 = clock()
        opt.step()
        loss.item()
        t5 = clock()
        for key, (a, c) in zip(PARTS, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)], strict=True):
            parts[key] += c - a
    return parts


def measure(name: str, args) -> tuple[dict, dict | None]:
    """One data set: timings of both sides, alternating, and the agreement of their embeddings."""
    dataset = load_tu(name, data_root=args.data_root)
    epoch_times = {"before": [], "after": []}
    call_times = {"before": [], "after": []}
    last_loss, models = {}, {}
    for _ in range(args.rounds):
        for side in ("before", "after"):
            per_epoch, total, history, models[side] = timed_pretraining(side, dataset, args.epochs)
            epoch_times[side] += per_epoch
            call_times[side].append(total / args.epochs)
            last_loss[side] = history[-1]
            shown = " ".join(f"{1e3 * t:.0f}" for t in per_epoch)
            print(f"{name:14s} {side:6s} epochs {shown} ms, last loss {history[-1]:.4f}", flush=True)
    # one set of parameters in both encoders: the embeddings must agree to float rounding
    before_model = BeforeGINEncoder(dataset.num_features, hidden=32, layers=3)
    before_model.load_state_dict(models["after"].state_dict())
    models["before"] = before_model
    ref = before_embed_graphs(before_model, list(dataset))
    diff = float((ref - embed_graphs(models["after"], list(dataset))).abs().max() / ref.abs().max().clamp_min(1e-12))
    row = dict(
        name=name,
        graphs=len(dataset),
        nodes=sum(g.num_nodes for g in dataset) / len(dataset),
        embed_diff=diff,
        last_loss=last_loss,
    )
    for side in ("before", "after"):
        row[f"{side}_epoch"] = 1e3 * statistics.median(epoch_times[side])
        row[f"{side}_call"] = 1e3 * statistics.median(call_times[side])
        row[f"{side}_embed"] = 1e3 * timed_embedding(side, models[side], dataset)
    print(
        f"{name:14s} epoch {row['before_epoch']:.0f} -> {row['after_epoch']:.0f} ms "
        f"({row['before_epoch'] / row['after_epoch']:.2f}x), embed {row['before_embed']:.0f} -> "
        f"{row['after_embed']:.0f} ms, embeddings' max relative difference {diff:.1e}",
        flush=True,
    )
    split = None if args.no_breakdown else {side: breakdown(side, dataset) for side in ("before", "after")}
    return row, split


def machine() -> str:
    from bench_losses import machine as describe  # one description of the machine for every benchmark

    return describe(torch.device("cpu"))


def report(rows: list[dict], splits: dict, args, argv) -> str:
    command = "python benchmarks/bench_graphs.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Graph pre-training benchmark (CPU)",
        "",
        f"Command: `{command.strip()}`  ",
        f"Machine: {machine()}  ",
        f"Load average (1 min) at the end: {os.getloadavg()[0]:.1f}  ",
        f"Date: {time.strftime('%Y-%m-%d')}; GIN 3 layers x 32, H-SCL (beta = 1, t = 0.5) with labels, batch 128, "
        f"2 views, Adam; {args.epochs} epochs x {args.rounds} rounds per side, before and after alternating.",
        "",
        "Before: the frozen loop of commit 95f9c18 (PyG `DataLoader` every epoch, one `GraphAugment` call and one "
        "PyG `GINConv` forward per view). After: `hscl.training.pretrain_graphs` / `embed_graphs` today.",
        "",
        "| data set | graphs | mean nodes | before ms/epoch | after ms/epoch | speed-up | before ms/call/epoch "
        "| after ms/call/epoch | before embed ms | after embed ms | embed speed-up | last loss before / after "
        "| embeddings' max rel. diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['graphs']} | {r['nodes']:.0f} | {r['before_epoch']:.0f} | {r['after_epoch']:.0f} "
            f"| **{r['before_epoch'] / r['after_epoch']:.2f}x** | {r['before_call']:.0f} | {r['after_call']:.0f} "
            f"| {r['before_embed']:.0f} | {r['after_embed']:.0f} | {r['before_embed'] / r['after_embed']:.2f}x "
            f"| {r['last_loss']['before']:.3f} / {r['last_loss']['after']:.3f} | {r['embed_diff']:.1e} |"
        )
    lines += [
        "",
        "ms/epoch: median over every epoch of every round; ms/call/epoch: median over rounds of a whole call's time "
        "divided by its epochs (with the one-time setup); embed: median of 3 calls over the whole data set.",
    ]
    if splits:
        lines += [
            "",
            "## One epoch, part by part (ms)",
            "",
            "| data set | side | " + " | ".join(PARTS) + " | total |",
            "|---|---|" + "---:|" * (len(PARTS) + 1),
        ]
        for name, sides in splits.items():
            for side, parts in sides.items():
                cells = " | ".join(f"{1e3 * parts[p]:.0f}" for p in PARTS)
                lines.append(f"| {name} | {side} | {cells} | {1e3 * sum(parts.values()):.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--data-root", default=os.environ.get("HSCL_TU_ROOT", "/work/shared/data/TU"))
    ap.add_argument("--epochs", type=int, default=3, help="epochs per pre-training call (default 3)")
    ap.add_argument("--rounds", type=int, default=2, help="before/after pairs of calls per data set (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the part-by-part split of one epoch")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "graphs_cpu.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, splits = [], {}
    for name in args.datasets:
        row, split = measure(name, args)
        rows.append(row)
        if split is not None:
            splits[name] = split
    text = report(rows, splits, args, argv)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
