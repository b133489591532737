"""TU graph benchmarks: the TU raw format (read as PyTorch Geometric's ``TUDataset`` reads it), the GIN text
format (DD and REDDIT-BINARY here), node features, the bundled MUTAG, and the real download with checksums.

Data sets are found by name in a data root (a folder holding ``<NAME>/`` folders of raw files, e.g.
``../shared/data/TU``), or given as the path of such a folder. The raw files are checked before any graph is
built (vectorised with numpy: they can have millions of lines): a ``ValueError`` names the file and the 1-based
line of the first problem. The parsed graphs are cached in a writable folder (``$HSCL_CACHE/TU`` or
``~/.cache/hscl/TU``) under a sha256 of the source files, so read-only sources are fine and an edited file is read
again.

Node features (docs/math.md section 6): one-hot node labels, with the node attributes where present (ENZYMES,
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

import numpy as np
import torch
from torch import Tensor

from .._extras import require
from .._io import atomic_torch_save, cache_dir, file_digest
from .download import safe_extract_zip

require(__name__, "graphs")

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
_TABLE_VERSION = 1  # of the cached graph tables: bump when what they hold changes

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


def download_tu(name: str, root: str | os.PathLike) -> Path:
    """Download ``NAME.zip`` of the TU collection into ``root/NAME/`` (needs the network; not run in tests).

    Members are extracted safely; every file with a recorded sha256 (``KNOWN_SHA256``) is checked, and a mismatch
    deletes the download and raises. Files without a recorded checksum are reported with their sha256.
    """
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(TU_URL.format(name=name), timeout=60) as response:
        payload = response.read()
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            files = safe_extract_zip(archive, folder / ".download")
    except (zipfile.BadZipFile, ValueError) as err:
        shutil.rmtree(folder / ".download", ignore_errors=True)
        raise ValueError(f"{TU_URL.format(name=name)} is not a safe zip of TU raw files: {err}") from err
    texts = [p for p in files if p.name.endswith(".txt")]
    for path in texts:  # verify everything before anything is moved into place
        digest = file_digest(path, "sha256")
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


# ---------------------------------------------------------------------------------------------------------------
# Reading and checking raw text files with numpy: the raw files can have millions of lines, so nothing below loops
# over lines in Python except to locate an error already detected.

_BLANK, _NEWLINE, _COMMA, _VALUE, _OTHER, _SIGN = range(6)


def _char_classes(value_chars: bytes) -> np.ndarray:
    table = np.full(256, _OTHER, dtype=np.uint8)
    table[list(value_chars)] = _VALUE
    if b"+" in value_chars:  # integers: a sign is part of a value, and must start it
        table[[43, 45]] = _SIGN
    table[[9, 11, 12, 13, 32]] = _BLANK  # tab, vertical tab, form feed, carriage return (CRLF files), space
    table[10] = _NEWLINE
    table[44] = _COMMA
    return table


_INTEGER_CHARS = _char_classes(b"0123456789+-")
_NUMBER_CHARS = _char_classes(bytes(c for c in range(33, 127) if c != 44))  # decimals: checked when parsed
_MAX_DIGITS = 18  # every integer of up to 18 digits fits in int64


class _Lines:
    """A text file of numbers, one record a line (values separated by commas in the TU format, by blanks in the
    GIN format), scanned once with numpy. Errors name ``label`` and the 1-based line. Blank lines at the end of the
    file are ignored; the number of lines in use is ``n``, the values of each line ``counts``."""

    def __init__(self, label: str, data: bytes, *, integers: bool, commas: bool, what: str = "") -> None:
        self.label, self.what, self.data, self.integers, self.commas = label, what, data, integers, commas
        cls = (_INTEGER_CHARS if integers else _NUMBER_CHARS)[np.frombuffer(data, dtype=np.uint8)]
        if not commas:
            cls[cls == _COMMA] = _OTHER
        self.newlines = np.flatnonzero(cls == _NEWLINE)
        value = cls >= _VALUE  # _VALUE, _OTHER (part of a malformed value) or _SIGN
        before = np.concatenate(([False], value[:-1]))
        after = np.concatenate((value[1:], [False]))
        starts = np.flatnonzero(value & ~before)
        stops = np.flatnonzero(value & ~after)
        token_line = self._line_of(starts)
        comma_line = self._line_of(np.flatnonzero(cls == _COMMA))
        other_line = self._line_of(np.flatnonzero(cls == _OTHER))
        bad = [other_line]
        if integers:  # a sign only at the start of a value and followed by a digit; at most 18 digits
            sign = np.flatnonzero(cls == _SIGN)
            bad.append(self._line_of(sign[before[sign] | ~after[sign]]))
            long = np.flatnonzero(stops - starts + 1 > _MAX_DIGITS)
            long = long[stops[long] - starts[long] + 1 - (cls[starts[long]] == _SIGN) > _MAX_DIGITS]
            bad.append(token_line[long])
        self.n = 1 + max((int(a[-1]) for a in (token_line, comma_line, other_line) if a.size), default=-1)
        self.counts = np.bincount(token_line, minlength=self.n)
        self.comma_counts = np.bincount(comma_line, minlength=self.n)
        found = [int(a.min()) for a in bad if a.size]
        self.first_bad_value = min(found) if found else None  # line of the first stray character or bad number

    def _line_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.newlines, positions)

    def text(self, i: int) -> str:
        start = int(self.newlines[i - 1]) + 1 if i > 0 else 0
        stop = int(self.newlines[i]) if i < len(self.newlines) else len(self.data)
        line = self.data[start:stop].decode("latin-1").strip()
        return line if len(line) <= 60 else line[:57] + "..."

    def fail(self, i: int, message: str):
        raise ValueError(f"{self.label}:{i + 1}: {self.what}{message}")

    def check_values(self, limit: int | None = None) -> None:
        """Refuse the first stray character or malformed number (on a line before ``limit``, if given)."""
        i = self.first_bad_value
        if i is not None and (limit is None or i < limit):
            kind = "integers" if self.integers else "numbers"
            self.fail(i, f"expected {kind}, found {self.text(i)!r}")

    def rows(self, columns: int | None, noun: str, *, empty_ok: bool = False) -> int:
        """Check that every line holds ``columns`` values (``None``: as many as line 1); returns the count."""
        if self.n == 0:
            if empty_ok:
                return columns or 0
            raise ValueError(f"{self.label}: the file is empty; expected {noun}, one line each")
        k = int(self.counts[0]) if columns is None else columns
        bad = self.counts != k
        if self.commas:
            bad |= self.comma_counts != max(k - 1, 0)
        shape = np.flatnonzero(bad | (self.counts == 0))
        first_shape = int(shape[0]) if shape.size else None
        if self.first_bad_value is not None and (first_shape is None or self.first_bad_value <= first_shape):
            self.check_values()
        if first_shape is not None:
            if self.counts[first_shape] == 0 and self.comma_counts[first_shape] == 0:
                self.fail(first_shape, f"empty line (expected {noun}, one line each)")
            sep = "comma-separated " if self.commas and k > 1 else ""
            self.fail(first_shape, f"expected {k} {sep}{noun}, found {self.text(first_shape)!r}")
        return k

    def end(self) -> int:
        """Byte offset of the end of the last line in use."""
        return int(self.newlines[self.n - 1]) if self.n - 1 < len(self.newlines) else len(self.data)

    def integers_flat(self) -> np.ndarray:
        """Every value, in order (after :meth:`check_values`)."""
        text = self.data[: self.end()]
        if self.commas:
            text = text.replace(b",", b" ")
        values = np.fromstring(text.decode("ascii"), dtype=np.int64, sep=" ")
        if values.size != int(self.counts.sum()):  # cannot happen once check_values passed; never read garbage
            raise ValueError(f"{self.label}: {self.what}could not read every value as an integer")
        return values

    def table(self, columns: int | None, noun: str, *, empty_ok: bool = False) -> np.ndarray:
        """The values as an ``[n, columns]`` array (int64 or float64), after checking the file's shape."""
        k = self.rows(columns, noun, empty_ok=empty_ok)
        if self.n == 0:
            return np.zeros((0, k), dtype=np.int64 if self.integers else np.float64)
        if self.integers:
            return self.integers_flat().reshape(self.n, k)
        text = self.data[: self.end()].decode("ascii")
        try:
            return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, comments=None, ndmin=2)
        except ValueError as err:  # find the line (the error path only)
            for i, line in enumerate(text.split("\n")):
                try:
                    [float(v) for v in line.split(",")]
                except ValueError:
                    self.fail(i, f"expected numbers, found {self.text(i)!r}")
            raise ValueError(f"{self.label}: {self.what}{err}") from err


def _tu_lines(path: Path, *, integers: bool = True) -> _Lines:
    return _Lines(str(path), path.read_bytes(), integers=integers, commas=True)


def _count_problem(lines: _Lines, rows: int, expected: int, noun: str, reason: str) -> None:
    if rows > expected:
        lines.fail(expected, f"one line too many: {expected} {noun} expected ({reason})")
    if rows < expected:
        raise ValueError(f"{lines.label}:{rows + 1}: missing line: {rows} lines for {expected} {noun} ({reason})")


def _label_columns(labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """Node labels as PyG's ``TUDataset`` one-hot encodes them: each column shifted to start at 0, as many
    classes as its largest value + 1. Returns the shifted labels [N, C] and the class count of every column."""
    shifted = labels - labels.min(axis=0)
    return torch.from_numpy(shifted), torch.from_numpy(shifted.max(axis=0) + 1)


def _read_tu_raw(name: str, folder: Path) -> dict:
    """Check the TU raw files of ``folder`` and read them as one flat graph table (see :func:`_graphs`).

    Graph ids 1..G, sorted, every graph with a node; one graph label per graph; node labels and attributes with
    one line per node; edges between nodes 1..N of the same graph; edge labels one line per edge. Self loops are
    dropped and repeated edges kept once (what PyG's ``TUDataset`` does); graphs without edges are fine.
    """
    indicator_path = folder / f"{name}_graph_indicator.txt"
    lines = _tu_lines(indicator_path)
    graph = lines.table(1, "graph id")[:, 0]
    if graph[0] != 1:
        lines.fail(0, f"graph ids start at 1, found {graph[0]}")
    step = np.diff(graph)
    bad = np.flatnonzero((step < 0) | (step > 1))
    if bad.size:
        i = int(bad[0]) + 1
        if step[i - 1] < 0:
            lines.fail(i, f"graph id {graph[i]} after {graph[i - 1]}: the graph indicator must be sorted by graph")
        lines.fail(i, f"graph id jumps from {graph[i - 1]} to {graph[i]}: graph {graph[i - 1] + 1} has no nodes")
    num_nodes, num_graphs = len(graph), int(graph[-1])
    reason = f"{indicator_path.name} has {num_graphs} graphs and {num_nodes} nodes"
    batch = graph - 1

    lines = _tu_lines(folder / f"{name}_graph_labels.txt")
    y = lines.table(1, "graph label")[:, 0]
    _count_problem(lines, len(y), num_graphs, "graph labels", reason)

    table = {"attributes": None, "labels": None, "label_sizes": None}
    attributes_path = folder / f"{name}_node_attributes.txt"
    if attributes_path.is_file():
        lines = _tu_lines(attributes_path, integers=False)
        attributes = lines.table(None, "node attributes")
        _count_problem(lines, len(attributes), num_nodes, "node attribute lines", reason)
        bad = np.flatnonzero(~np.isfinite(attributes).all(axis=1))
        if bad.size:
            lines.fail(int(bad[0]), f"non-finite node attribute in {lines.text(int(bad[0]))!r}")
        table["attributes"] = torch.from_numpy(attributes.astype(np.float32))
    labels_path = folder / f"{name}_node_labels.txt"
    if labels_path.is_file():
        lines = _tu_lines(labels_path)
        labels = lines.table(None, "node labels")
        _count_problem(lines, len(labels), num_nodes, "node labels", reason)
        table["labels"], table["label_sizes"] = _label_columns(labels)
    kind = "node labels" if table["labels"] is not None else ""  # for GraphDataset.feature_kind
    if table["attributes"] is not None:
        kind = kind + " + attributes" if kind else "node attributes"

    lines = _tu_lines(folder / f"{name}_A.txt")
    edges = lines.table(2, "node ids (an edge)", empty_ok=True)
    bad = np.flatnonzero(((edges < 1) | (edges > num_nodes)).any(axis=1))
    if bad.size:
        i = int(bad[0])
        v = edges[i][(edges[i] < 1) | (edges[i] > num_nodes)][0]
        lines.fail(i, f"node id {v} is outside 1..{num_nodes} ({reason})")
    edges = edges - 1
    across = np.flatnonzero(batch[edges[:, 0]] != batch[edges[:, 1]])
    if across.size:
        i = int(across[0])
        u, v = edges[i] + 1
        lines.fail(i, f"edge ({u}, {v}) joins graph {batch[u - 1] + 1} and graph {batch[v - 1] + 1}")
    for part in ("edge_labels", "edge_attributes"):
        path = folder / f"{name}_{part}.txt"
        if path.is_file():  # not used as features, but a count that disagrees means the files do not match
            lines = _tu_lines(path, integers=False)
            lines.rows(None, part.replace("_", " "), empty_ok=True)
            _count_problem(lines, lines.n, len(edges), part.replace("_", " "), f"{name}_A.txt has {len(edges)} edges")

    edges = edges[edges[:, 0] != edges[:, 1]]  # no self loops
    key = np.sort(edges[:, 0] * num_nodes + edges[:, 1])  # by source, then target
    key = key[np.concatenate(([True], key[1:] != key[:-1]))] if len(key) else key  # repeated edges once
    src, dst = key // num_nodes, key % num_nodes
    node_counts = np.bincount(batch, minlength=num_graphs)
    offsets = np.concatenate(([0], np.cumsum(node_counts)[:-1]))
    shift = offsets[batch[src]]
    return {
        **table,
        "edges": torch.from_numpy(np.stack([src - shift, dst - shift], axis=1)),
        "node_counts": torch.from_numpy(node_counts),
        "edge_counts": torch.from_numpy(np.bincount(batch[src], minlength=num_graphs)),
        "y": torch.from_numpy(y),
        "kind": kind,
    }


def _node_features(table: dict) -> Tensor | None:
    """``x``: the node attributes, then the one-hot node labels (column by column); None without either."""
    attributes, labels = table["attributes"], table["labels"]
    if attributes is None and labels is None:
        return None
    num_nodes = len(attributes if attributes is not None else labels)
    width = attributes.shape[1] if attributes is not None else 0
    sizes = table["label_sizes"].tolist() if labels is not None else []
    x = torch.zeros(num_nodes, width + sum(sizes))
    if attributes is not None:
        x[:, :width] = attributes
    rows = torch.arange(num_nodes)
    for c, size in enumerate(sizes):
        x[rows, width + labels[:, c]] = 1.0
        width += size
    return x


def _graphs(table: dict) -> list:
    """PyG ``Data`` graphs (``x`` or None, ``edge_index``, ``y`` of shape [1], ``num_nodes``) from a flat table:
    ``attributes`` [N, A] float, ``labels`` [N, C] (0-based) with the class count of each column in
    ``label_sizes`` (any of the three None), ``edges`` [E, 2] (graph-local node ids), ``node_counts`` and
    ``edge_counts`` [G], ``y`` [G]. Each graph's ``x`` is a view of one tensor (as ``TUDataset`` gives them)."""
    from torch_geometric.data import Data

    nodes, edges = table["node_counts"].tolist(), table["edge_counts"].tolist()
    x = _node_features(table)
    xs = torch.split(x, nodes) if x is not None else [None] * len(nodes)
    es = torch.split(table["edges"], edges)
    ys = table["y"].view(-1, 1)
    return [
        Data(x=x, edge_index=e.t().contiguous(), y=y.clone(), num_nodes=n)
        for x, e, y, n in zip(xs, es, ys, nodes, strict=True)
    ]


def _degree_features(graphs: list) -> str:
    degrees = [torch.bincount(g.edge_index[0], minlength=g.num_nodes) for g in graphs]
    top = int(max(int(d.max()) if d.numel() else 0 for d in degrees))
    for g, d in zip(graphs, degrees, strict=True):
        if top <= MAX_ONE_HOT_DEGREE:
            g.x = torch.nn.functional.one_hot(d, top + 1).float()
        else:
            g.x = torch.stack([d / top, torch.log1p(d.float()) / torch.log1p(torch.tensor(float(top)))], 1).float()
    return f"one-hot degree (max {top})" if top <= MAX_ONE_HOT_DEGREE else f"normalised degree (max {top})"


def _finish(graphs: list, name: str, kind: str = "node labels") -> GraphDataset:
    if not graphs:
        raise ValueError(f"{name}: no graph was read")
    ys = torch.cat([g.y.view(-1) for g in graphs])
    classes, y = torch.unique(ys, return_inverse=True)
    for g, label in zip(graphs, y.tolist(), strict=True):
        g.y = torch.tensor([label])
    if graphs[0].x is None:
        kind = _degree_features(graphs)
    else:
        for g in graphs:
            g.x = g.x.float()
    for g in graphs:
        g.edge_attr = None
    return GraphDataset(graphs, name, len(classes), kind)


def _fingerprint(files: list[Path]) -> str:
    """sha256 of the names, sizes and bytes of ``files`` (and the table format): the cache follows the content."""
    h = hashlib.sha256(f"hscl TU table v{_TABLE_VERSION}\0".encode())
    for f in sorted(files, key=lambda p: p.name):
        h.update(f"{f.name}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:24]


_TABLE_KEYS = frozenset(
    {"attributes", "labels", "label_sizes", "edges", "node_counts", "edge_counts", "y", "kind"}
)  # what _graphs and load_tu read from a table


def _cached_table(path: Path, build) -> dict:
    if path.is_file():
        try:
            table = torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is rebuilt, never trusted
            table = None
        if isinstance(table, dict) and _TABLE_KEYS <= set(table):
            return table
    table = build()
    atomic_torch_save(table, path)
    return table


def load_tu(
    name_or_path: str, *, data_root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None
) -> GraphDataset:
    """Load a TU benchmark by name (from ``data_root``, the default root, or the bundled MUTAG) or from a folder.

    Folders with TU raw files are checked line by line (a ``ValueError`` names the file and line of the first
    problem) and read as PyG's ``TUDataset`` would (``use_node_attr=True``: node attributes, then one-hot node
    labels); a folder with a ``<NAME>_gin_format.zip`` (and no ``_A.txt``) through :func:`read_gin_format`. Labels
    become 0..C-1. The parsed graphs are cached in ``cache`` under a sha256 of the source files' content, so an
    edited file is read again and an unchanged one is not.
    """
    name, folder = _find_source(name_or_path, data_root)
    cache = Path(cache) if cache is not None else cache_dir() / "TU"
    gin_zip = folder / f"{name}_gin_format.zip"
    if not (folder / f"{name}_A.txt").is_file() and gin_zip.is_file():
        sources, build = [gin_zip], lambda: _read_gin(gin_zip, name)
    else:
        _check_tu_folder(name, folder)
        sources, build = sorted(folder.glob(f"{name}_*.txt")), lambda: _read_tu_raw(name, folder)
    table = _cached_table(cache / f"{name}-{_fingerprint(sources)}.pt", build)
    kind = table["kind"] or "node labels"
    return _finish(_graphs(table), name, kind)


def _read_gin(zip_path: Path, name: str | None) -> dict:
    """Check and read the GIN-format file in ``zip_path`` as a flat graph table (see :func:`_graphs`)."""
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path} does not exist")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [
                m
                for m in archive.namelist()
                if m.endswith(".txt") and "/10fold_idx/" not in m and not m.startswith("__MACOSX")
            ]
            if name is not None:
                members = [m for m in members if Path(m).name == f"{name}.txt"] or members
            if len(members) != 1:
                raise ValueError(f"{zip_path}: expected one <NAME>.txt graph file, found {members}")
            data = archive.read(members[0])
    except zipfile.BadZipFile as err:
        raise ValueError(f"{zip_path} is not a zip file: {err}") from err
    lines = _Lines(f"{zip_path}/{members[0]}", data, integers=True, commas=False, what="malformed GIN-format file: ")
    lines.check_values()
    counts = lines.counts
    if lines.n == 0:
        raise ValueError(f"{lines.label}: malformed GIN-format file: the file is empty")
    values = lines.integers_flat()
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))  # index in values of every line's first value
    if counts[0] != 1 or values[0] < 1:
        lines.fail(0, f"expected the number of graphs (at least 1), found {lines.text(0)!r}")
    num_graphs = int(values[0])
    if num_graphs > lines.n - 1:  # before allocating per graph: each graph takes at least its header line
        lines.fail(0, f"{num_graphs} graphs cannot fit in the {lines.n - 1} lines that follow")
    headers = np.empty(num_graphs, dtype=np.int64)
    node_counts = np.empty(num_graphs, dtype=np.int64)
    pos = 1
    for g in range(num_graphs):  # one step per graph, to find where each starts
        if pos >= lines.n:
            raise ValueError(
                f"{lines.label}:{pos + 1}: malformed GIN-format file: the file ends before graph {g + 1} of "
                f"{num_graphs}"
            )
        if counts[pos] != 2:
            lines.fail(pos, f"expected 'nodes label' for graph {g + 1}, found {lines.text(pos)!r}")
        n = int(values[first[pos]])
        if n < 1:
            lines.fail(pos, f"graph {g + 1} has {n} nodes; a graph needs at least 1")
        if pos + n >= lines.n:
            raise ValueError(
                f"{lines.label}:{lines.n + 1}: malformed GIN-format file: the file ends inside graph {g + 1}, "
                f"whose {n} node lines start at line {pos + 2}"
            )
        headers[g], node_counts[g] = pos, n
        pos += n + 1
    if pos < lines.n:
        lines.fail(pos, f"a line after the last of the {num_graphs} graphs: {lines.text(pos)!r}")

    is_node = np.ones(lines.n, dtype=bool)
    is_node[0] = False
    is_node[headers] = False
    node_lines = np.flatnonzero(is_node)
    graph_of_line = np.searchsorted(headers, np.arange(lines.n), side="right") - 1
    local = np.arange(lines.n) - headers[np.maximum(graph_of_line, 0)] - 1  # node index inside its graph
    short = node_lines[counts[node_lines] < 2]
    if short.size:
        lines.fail(int(short[0]), f"expected 'tag degree neighbours...', found {lines.text(int(short[0]))!r}")
    tags, degree = values[first[node_lines]], values[first[node_lines] + 1]
    wrong = np.flatnonzero(counts[node_lines] - 2 != degree)
    if wrong.size:
        i = int(node_lines[wrong[0]])
        lines.fail(i, f"node {local[i]} lists {counts[i] - 2} neighbours but its degree is {degree[wrong[0]]}")
    value_line = np.repeat(np.arange(lines.n), counts)
    is_neighbour = is_node[value_line] & (np.arange(len(values)) - first[value_line] >= 2)
    line_of_edge = value_line[is_neighbour]
    dst = values[is_neighbour]
    size = node_counts[graph_of_line[line_of_edge]]
    outside = np.flatnonzero((dst < 0) | (dst >= size))
    if outside.size:
        i, j = int(line_of_edge[outside[0]]), int(outside[0])
        lines.fail(i, f"node {local[i]} lists a neighbour {dst[j]} outside 0..{size[j] - 1}")
    distinct, tag_index = np.unique(tags, return_inverse=True)
    tagged = len(distinct) > 1  # node features: one-hot tags, unless every tag is the same
    return {
        "attributes": None,
        "labels": torch.from_numpy(tag_index.reshape(-1, 1)) if tagged else None,
        "label_sizes": torch.tensor([len(distinct)]) if tagged else None,
        "edges": torch.from_numpy(np.stack([local[line_of_edge], dst], axis=1)),
        "node_counts": torch.from_numpy(node_counts),
        "edge_counts": torch.from_numpy(np.bincount(graph_of_line[line_of_edge], minlength=num_graphs)),
        "y": torch.from_numpy(values[first[headers] + 1].copy()),
        "kind": "node labels" if tagged else "",
    }


def read_gin_format(zip_path: str | os.PathLike, name: str | None = None) -> list:
    """Parse the GIN / DGCNN text format inside a zip (``<NAME>/<NAME>.txt``): a line with the number of graphs,
    then per graph a line ``n label`` (n >= 1) and ``n`` lines ``tag m nb_1 .. nb_m`` (neighbours in 0..n-1). Node
    features are one-hot tags (none when every tag is the same). A ``ValueError`` names the line of a problem."""
    return _graphs(_read_gin(Path(zip_path), name))
