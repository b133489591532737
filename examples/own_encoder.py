"""Train your own encoder with an hscl loss: images through ``train_images`` (``hscl train --encoder``) and graphs
through ``train_graph_encoder``, then rebuild both from their checkpoints.

    python examples/own_encoder.py --out out/own-encoder

An encoder is any ``nn.Module`` that maps a batch to representations ``[N, D]``: normalised images ``[N, 3, H, W]``,
or a PyG ``Batch`` of graphs. hscl reads ``D`` from one forward and builds the projection head on it. Pass the
module itself (``train_images(config, out, encoder=SmallCNN())``), or a factory ``"package.module:function"`` (a
function called without arguments that returns the module): the factory is recorded in the checkpoint, so that
``hscl.checkpoint.load_model(path, allow_factory=...)`` rebuilds the encoder. The same from the command line, with
this folder on the import path (the current folder is searched too):

    cd examples && hscl train --dataset digits --method hscl-beta --encoder own_encoder:small_cnn --out ../out/cnn

The graph benchmarks take a graph encoder's factory the same way, for every method and the untrained and supervised
controls. They call it with the keyword ``in_features`` (the node feature size of each data set), so a graph factory
takes ``in_features`` (``node_sum_encoder`` below; its default, MUTAG's 7, serves the calls without arguments). From
this folder:

    hscl reproduce graphs --datasets MUTAG --seeds 0 --epochs 5 --encoder own_encoder:node_sum_encoder --out ../out/g
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

FACTORY_IMAGES = "own_encoder:small_cnn"
FACTORY_GRAPHS = "own_encoder:node_sum_encoder"


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a global average pool: images ``[N, 3, H, W]`` -> ``[N, 2 * width]``."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def small_cnn() -> nn.Module:
    """The image encoder's factory (``--encoder own_encoder:small_cnn``)."""
    return SmallCNN()


class NodeSumEncoder(nn.Module):
    """Graphs: a two-layer MLP on every node's features, summed per graph: a PyG ``Batch`` -> ``[num_graphs, width]``
    (no message passing: a deliberately simple encoder)."""

    def __init__(self, in_features: int = 7, width: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())

    def forward(self, batch) -> torch.Tensor:
        h = self.mlp(batch.x)
        return h.new_zeros(batch.num_graphs, h.shape[1]).index_add_(0, batch.batch, h)


def node_sum_encoder(in_features: int = 7) -> nn.Module:
    """The graph encoder's factory: ``in_features`` node features (default: MUTAG's 7 node labels), as
    ``hscl reproduce graphs --encoder own_encoder:node_sum_encoder`` calls it for each data set."""
    return NodeSumEncoder(in_features=in_features)


def main(argv=None) -> int:
    from hscl.checkpoint import load_model
    from hscl.datasets.tu import load_tu
    from hscl.training import embed_graphs, train_graph_encoder
    from hscl.training.images import ImageConfig, train_images

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/own-encoder", help="output folder (default: out/own-encoder)")
    ap.add_argument("--epochs", type=int, default=2, help="image pre-training epochs (default: 2)")
    ap.add_argument("--train-subset", type=int, default=300, help="digits training images (default: 300)")
    ap.add_argument("--graph-epochs", type=int, default=2, help="graph pre-training epochs (default: 2)")
    args = ap.parse_args(argv)
    out = Path(args.out)

    # Images: your CNN with H-SCL on scikit-learn's digits (8x8), the projection head 16 -> 32 -> 16 on top.
    config = ImageConfig(
        dataset="digits",
        method="hscl-beta",
        epochs=args.epochs,
        min_steps=0,
        batch_size=64,
        hidden=32,
        projection=16,
        train_subset=args.train_subset,
        knn_k=20,
    )
    metrics = train_images(config, out / "images", encoder=FACTORY_IMAGES, progress=False)
    recorded = json.loads((out / "images" / "config.json").read_text())["encoder"]
    model, meta = load_model(out / "images" / "checkpoints" / "last.ckpt", allow_factory=FACTORY_IMAGES)
    print(
        f"images: linear probe {metrics['linear_top1']:.3f}, kNN {metrics['knn_top1']:.3f}; encoder {recorded}; "
        f"rebuilt {type(model.backbone).__name__} from epoch {meta['epoch']}"
    )

    # Graphs: the node-sum encoder with H-SCL on the bundled MUTAG, saved and rebuilt.
    graphs = load_tu("MUTAG")
    model, history = train_graph_encoder(
        graphs,
        method="hscl-beta",
        encoder=FACTORY_GRAPHS,
        epochs=args.graph_epochs,
        batch_size=64,
        save=out / "graphs" / "model.pt",
    )
    again, _ = load_model(out / "graphs" / "model.pt", allow_factory=FACTORY_GRAPHS)
    same = torch.equal(embed_graphs(model, graphs), embed_graphs(again, graphs))
    print(
        f"graphs: loss per epoch {[round(h, 3) for h in history]}; features {model.feature_dim}; "
        f"rebuilt from the checkpoint with the same features: {same}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
