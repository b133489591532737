"""TU graph benchmarks: the TU raw format (through PyTorch Geometric's ``TUDataset``), the GIN text format (DD and
REDDIT-BINARY here), node features, the bundled MUTAG, and the real download with checksums.

Data sets are found by name in a data root (a folder holding ``<NAME>/`` folders of raw files, e.g.
``../shared/data/TU``), or given as the path of such a folder. Raw files are copied into a writable cache
(``$HSCL_CACHE`` or ``~/.cache/hscl``) before PyG processes them, so read-only sources are fine.

Node features (SPEC.md section 6): one-hot node labels, with the node attributes where present (ENZYMES,
PROTEINS); without node labels (IMDB-BINARY, REDDIT-BINARY), one-hot degree when the largest degree is at most
``MAX_ONE_HOT_DEGREE``, else two normalised degree features (deg / max deg, log(1 + deg) / log(1 + max deg)).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import urllib.request
import warnings
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from .._io import cache_dir
from .download import safe_extract_zip

__all__ = [
    "BENCHMARKS",
    "GraphDataset",
    "default_data_root",
    "download_tu",
    "load_tu",
    "read_gin_format",
]

#: The eight benchmarks of the paper's graph experiments.
BENCHMARKS = ("MUTAG", "PTC_MR", "PROTEINS", "ENZYMES", "IMDB-BINARY", "NCI1", "DD", "REDDIT-BINARY")
MAX_ONE_HOT_DEGREE = 200
TU_URL = "https://www.chrsmrrs.com/graphkerneldatasets/{name}.zip"
BUNDLED = Path(__file__).parent / "tu_data"

# sha256 of the raw files whose provenance is recorded in the project's shared data SOURCES.md.
KNOWN_SHA256 = {
    "MUTAG_A.txt": "d9656ca7493f3445d737c711710bb36fd432dddd1c0ea32e1d4713c86ebd28e2",
    "MUTAG_edge_labels.txt": "4669ce755075ff86c3240709345745886400908fa637a49310459b9c267b3e56",
    "MUTAG_graph_indicator.txt": "7d520a4d6c7961c0cdeabe076d8fe27e795b6d373485c9a2b744987e560a2056",
    "MUTAG_graph_labels.txt": "a1518ea39ba3426bd42f57396b9c4baffe68e9adc718caeeab0119c6591a5f2c",
    "MUTAG_node_labels.txt": "678f429965490e84dd27713017538c995fc05d1621beac910848b600015ee863",
    "PTC_MR_A.txt": "f79523ff94dfbef539e5602a8ac1931a50a2800f33fa1d30e5e31725289b5202",
    "PTC_MR_edge_labels.txt": "acee2f93b52175a329009dc837bea9db7c2a121c2ef0b1587b38bbe6fc9b8177",
    "PTC_MR_graph_indicator.txt": "d52754f3cbc54e29324f884b4c17200c16e06db0c499afae300b4fa1bb6d794b",
    "PTC_MR_graph_labels.txt": "64210accbe4c6c027535b1294e0da652b1f539667f7a2d4bf5121dcd8b00a224",
    "PTC_MR_node_labels.txt": "cc50d1e1c5f4c98b2100cf50c5ddd88ff28b419a9180d531046b75ce22983235",
    "ENZYMES_A.txt": "5553c84f8f562f3e199dfd27192174f485e85c44c1357661098668937a739cbf",
    "ENZYMES_graph_indicator.txt": "95ba0fa47eba6f02e6b754a215dc66d5b49de3f45f57a128514301a8d7ed5f46",
    "ENZYMES_graph_labels.txt": "04743e08967e61e65cdacbb90f8df6ee53742b3d2e7b84675b85ebac70506856",
    "ENZYMES_node_attributes.txt": "305a8fc3b12f79fb844ef3374d6a3c8ceeb4887dd4f86bbfe37932c4c5434e7b",
    "ENZYMES_node_labels.txt": "8263eb9b64efa231a5886343483ccfc0342f2407014763a8f738fd51c32ce770",
    "NCI1_A.txt": "2c028eda59a5fe96e2265a63d9ac236901bd9a7dc658498be13cd704a703076d",
    "NCI1_graph_indicator.txt": "ffe5acfa754b057d5ce0dc725c5aadb631628161886cc040d38c719635257dc5",
    "NCI1_graph_labels.txt": "fae44681e70113f496256ae87eaac33b7836e3a97fe8e023933b84fde6a5c8a2",
    "NCI1_node_labels.txt": "dc0a22b6cbff0c939de00373e823977ba32b358f560e4288d7602f7b51407ee2",
    "IMDB-BINARY_A.txt": "23c8964bab82f81469271186d721131714a265d0ca8c44ae048118da1d0c4092",
    "IMDB-BINARY_graph_indicator.txt": "415cc3ba25b8c647dcf34d3de034f675ee070616f3b803be939cb26773489f26",
    "IMDB-BINARY_graph_labels.txt": "63a44411fd6342b9c4429828c16e144a2a11ef5244e25bb60f0ffa8b3ee2ffce",
    "PROTEINS_A.txt": "4c4b33e272fc95cac6d27ed6d5d12b9a852c8610e91fff59f8f0dbdd5a20df67",
    "PROTEINS_graph_indicator.txt": "8d4ff1e852a5c28561e9bffb44cf9490bc552b13a3b6156dd12dc7f44e9afc4a",
    "PROTEINS_graph_labels.txt": "c0ef9810c440775252872318d0c8adc385588e14bc4c47a2c34aa96ee3c7cdcd",
    "PROTEINS_node_attributes.txt": "54eef829abb37e458a5fbf3a3c581e48e5810e220463c2cd951856b9ceb08f07",
    "PROTEINS_node_labels.txt": "f758e8ad3d6e3c026b50833d75f6f90735b94eb3345e4243707f495ca8afea8d",
    "DD_graph_indicator.txt": "95aabe75f6537326a14e4efc0d006854c20769f3cfc4877b862803d21c51aff2",
    "DD_graph_labels.txt": "b9df6495feb673f79dea357cca30e08f8602e52d978c77b53ec2552d1cb2ab4e",
    "DD_node_labels.txt": "b0d10b05702c2d655d691b5a6f5585081993860013eeab801572202df1c5c108",
}


class GraphDataset(list):
    """A list of PyG ``Data`` graphs (``x``, ``edge_index``, ``y``) with its name and label count."""

    def __init__(self, graphs, name: str, num_classes: int, feature_kind: str) -> None:
        super().__init__(graphs)
        self.name = name
        self.num_classes = num_classes
        self.feature_kind = feature_kind

    @property
    def num_features(self) -> int:
        return int(self[0].x.shape[1])

    @property
    def labels(self) -> Tensor:
        return torch.cat([g.y.view(-1) for g in self])

    def __repr__(self) -> str:
        return (
            f"{self.name}({len(self)} graphs, {self.num_features} features [{self.feature_kind}], "
            f"{self.num_classes} classes)"
        )


def default_data_root() -> Path | None:
    """``$HSCL_TU_ROOT``, else ``../shared/data/TU`` or ``./data/TU`` if present."""
    env = os.environ.get("HSCL_TU_ROOT")
    if env:
        return Path(env)
    for candidate in (Path("../shared/data/TU"), Path("data/TU")):
        if candidate.is_dir():
            return candidate
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_tu(name: str, root: str | os.PathLike) -> Path:
    """Download ``NAME.zip`` of the TU collection into ``root/NAME/`` (needs the network; not run in tests).

    Members are extracted safely; every file with a recorded sha256 (``KNOWN_SHA256``) is checked, and a mismatch
    deletes the download and raises. Files without a recorded checksum are reported with their sha256.
    """
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(TU_URL.format(name=name), timeout=60) as response:
        payload = response.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        files = safe_extract_zip(archive, folder / ".download")
    texts = [p for p in files if p.name.endswith(".txt")]
    for path in texts:  # verify everything before anything is moved into place
        digest = _sha256(path)
        expected = KNOWN_SHA256.get(path.name)
        if expected is not None and digest != expected:
            shutil.rmtree(folder / ".download", ignore_errors=True)
            raise ValueError(f"checksum mismatch for {path.name}: got {digest}, expected {expected}")
        if expected is None:
            warnings.warn(f"{path.name}: no recorded checksum; sha256 {digest}", stacklevel=2)
    for path in texts:
        os.replace(path, folder / path.name)
    shutil.rmtree(folder / ".download", ignore_errors=True)
    return folder


def _find_source(name_or_path: str, data_root: str | os.PathLike | None) -> tuple[str, Path]:
    path = Path(name_or_path)
    if path.is_dir():
        raw = sorted(path.glob("*_graph_indicator.txt")) + sorted(path.glob("*_gin_format.zip"))
        if not raw:
            raise ValueError(f"{path} holds no TU raw files (<NAME>_graph_indicator.txt) nor a <NAME>_gin_format.zip")
        stem = raw[0].name
        name = (
            stem[: -len("_graph_indicator.txt")]
            if stem.endswith("_graph_indicator.txt")
            else stem[: -len("_gin_format.zip")]
        )
        return name, path
    name = name_or_path
    roots = [Path(data_root)] if data_root is not None else []
    default = default_data_root()
    if default is not None and data_root is None:
        roots.append(default)
    for root in roots:
        if (root / name).is_dir():
            return name, root / name
    if (BUNDLED / name).is_dir():
        return name, BUNDLED / name
    if name not in BENCHMARKS:
        raise ValueError(
            f"unknown data set {name!r}: give one of {', '.join(BENCHMARKS)} or the path of a folder of TU raw files"
        )
    where = ", ".join(str(r) for r in roots) or "no data root (set --data-root or HSCL_TU_ROOT)"
    raise FileNotFoundError(
        f"{name} was not found under {where}; download it with hscl.datasets.tu.download_tu({name!r}, ROOT) on a "
        "machine with network access"
    )


def _check_tu_folder(name: str, folder: Path) -> None:
    for part in ("A", "graph_indicator", "graph_labels"):
        f = folder / f"{name}_{part}.txt"
        if not f.is_file():
            raise FileNotFoundError(
                f"{folder} lacks {f.name} (a TU raw folder needs _A, _graph_indicator, _graph_labels)"
            )


def _degree_features(graphs: list) -> str:
    degrees = [torch.bincount(g.edge_index[0], minlength=g.num_nodes) for g in graphs]
    top = int(max(int(d.max()) if d.numel() else 0 for d in degrees))
    for g, d in zip(graphs, degrees, strict=True):
        if top <= MAX_ONE_HOT_DEGREE:
            g.x = torch.nn.functional.one_hot(d, top + 1).float()
        else:
            g.x = torch.stack([d / top, torch.log1p(d.float()) / torch.log1p(torch.tensor(float(top)))], 1).float()
    return f"one-hot degree (max {top})" if top <= MAX_ONE_HOT_DEGREE else f"normalised degree (max {top})"


def _finish(graphs: list, name: str) -> GraphDataset:
    if not graphs:
        raise ValueError(f"{name}: no graph was read")
    ys = torch.cat([g.y.view(-1) for g in graphs])
    classes, y = torch.unique(ys, return_inverse=True)
    for g, label in zip(graphs, y.tolist(), strict=True):
        g.y = torch.tensor([label])
    if graphs[0].x is None:
        kind = _degree_features(graphs)
    else:
        kind = "node labels" + (" + attributes" if name in ("ENZYMES", "PROTEINS") else "")
        for g in graphs:
            g.x = g.x.float()
    for g in graphs:
        g.edge_attr = None
    return GraphDataset(graphs, name, len(classes), kind)


def load_tu(
    name_or_path: str, *, data_root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None
) -> GraphDataset:
    """Load a TU benchmark by name (from ``data_root``, the default root, or the bundled MUTAG) or from a folder.

    Folders with TU raw files go through PyG's ``TUDataset`` (after a copy into the cache); a folder with a
    ``<NAME>_gin_format.zip`` (and no ``_A.txt``) through :func:`read_gin_format`. Labels become 0..C-1.
    """
    name, folder = _find_source(name_or_path, data_root)
    cache = Path(cache) if cache is not None else cache_dir() / "TU"
    gin_zip = folder / f"{name}_gin_format.zip"
    if not (folder / f"{name}_A.txt").is_file() and gin_zip.is_file():
        return _finish(read_gin_format(gin_zip, name), name)
    _check_tu_folder(name, folder)
    from torch_geometric.datasets import TUDataset

    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    root = cache / f"{name}-{key}"
    raw = root / name / "raw"
    if not raw.is_dir() or {p.name for p in folder.glob(f"{name}_*.txt")} - {p.name for p in raw.iterdir()}:
        raw.mkdir(parents=True, exist_ok=True)
        for f in folder.glob(f"{name}_*.txt"):
            shutil.copyfile(f, raw / f.name)
    try:
        ds = TUDataset(str(root), name, use_node_attr=True)
    except (ValueError, RuntimeError, IndexError, OSError) as err:  # what PyG raises on malformed files
        shutil.rmtree(root / name / "processed", ignore_errors=True)
        raise ValueError(f"{folder}: malformed TU raw files ({type(err).__name__}: {err})") from err
    return _finish([ds[i] for i in range(len(ds))], name)


def read_gin_format(zip_path: str | os.PathLike, name: str | None = None) -> list:
    """Parse the GIN / DGCNN text format inside a zip (``<NAME>/<NAME>.txt``): per graph a line ``n label``
    and ``n`` lines ``tag m nb_1 .. nb_m``. Node features are one-hot tags (none when every tag is 0)."""
    from torch_geometric.data import Data

    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path} does not exist")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [m for m in archive.namelist() if m.endswith(".txt") and "/10fold_idx/" not in m
                       and not m.startswith("__MACOSX")]  # fmt: skip
            if name is not None:
                members = [m for m in members if Path(m).name == f"{name}.txt"] or members
            if len(members) != 1:
                raise ValueError(f"{zip_path}: expected one <NAME>.txt graph file, found {members}")
            lines = archive.read(members[0]).decode().split("\n")
    except zipfile.BadZipFile as err:
        raise ValueError(f"{zip_path} is not a zip file: {err}") from err
    try:
        pos = 0
        num_graphs = int(lines[pos])
        pos += 1
        specs = []
        all_tags = set()
        for _ in range(num_graphs):
            n, label = map(int, lines[pos].split()[:2])
            pos += 1
            tags, src, dst = [], [], []
            for node in range(n):
                parts = list(map(int, lines[pos].split()))
                pos += 1
                tag, m, nbrs = parts[0], parts[1], parts[2:]
                if len(nbrs) != m or any(not 0 <= j < n for j in nbrs):
                    raise ValueError(
                        f"line {pos}: node {node} lists {len(nbrs)} neighbours (degree {m}) or one outside 0..{n - 1}"
                    )
                tags.append(tag)
                src += [node] * m
                dst += nbrs
            all_tags.update(tags)
            specs.append((n, label, tags, src, dst))
    except (IndexError, ValueError) as err:
        raise ValueError(f"{zip_path}: malformed GIN-format file ({err})") from err
    tag_index = {t: i for i, t in enumerate(sorted(all_tags))}
    graphs = []
    for n, label, tags, src, dst in specs:
        edge_index = torch.tensor([src, dst], dtype=torch.long).view(2, -1)
        x = None
        if len(tag_index) > 1:
            x = torch.nn.functional.one_hot(torch.tensor([tag_index[t] for t in tags]), len(tag_index)).float()
        graphs.append(Data(x=x, edge_index=edge_index, y=torch.tensor([label]), num_nodes=n))
    return graphs
