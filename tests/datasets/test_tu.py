"""TU readers on the shared files (counts from their SOURCES.md), the GIN text format, and bad input."""

import zipfile
from pathlib import Path

import pytest
import torch

from hscl.datasets.tu import BENCHMARKS, load_tu, read_gin_format

SHARED_TU = Path(__file__).resolve().parents[3] / "shared" / "data" / "TU"
needs_shared = pytest.mark.skipif(not SHARED_TU.is_dir(), reason="../shared/data/TU is not beside this checkout")


# name: (graphs, nodes, directed edge entries after deduplication, class counts, feature count)
KNOWN = {
    "MUTAG": (188, 3371, 7442, [63, 125], 7),
    "PTC_MR": (344, 4915, 10108, [192, 152], 18),
    "PROTEINS": (1113, 43471, 162088, [663, 450], 4),
    "ENZYMES": (600, 19580, 74564, [100] * 6, 21),
    "IMDB-BINARY": (1000, 19773, 193062, [500, 500], 136),
    "NCI1": (4110, 122747, 265506, [2053, 2057], 37),
    "DD": (1178, 334925, 1686092, [691, 487], 82),
    "REDDIT-BINARY": (2000, 859254, 1991016, [1000, 1000], 2),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tu-cache")


@needs_shared
@pytest.mark.parametrize("name", BENCHMARKS)
def test_counts_match_sources(name, cache):
    ds = load_tu(name, data_root=SHARED_TU, cache=cache)
    graphs, nodes, edges, balance, features = KNOWN[name]
    assert len(ds) == graphs
    assert sum(g.num_nodes for g in ds) == nodes
    assert sum(g.edge_index.shape[1] for g in ds) == edges
    assert ds.labels.bincount().tolist() == balance
    assert ds.num_features == features and ds.num_classes == len(balance)
    g = ds[0]
    assert g.x.shape == (g.num_nodes, features) and g.x.dtype == torch.float32
    assert int(g.edge_index.max()) < g.num_nodes


def test_bundled_mutag_needs_no_data_root(cache, monkeypatch):
    monkeypatch.delenv("HSCL_TU_ROOT", raising=False)
    monkeypatch.chdir(cache)  # no ../shared or ./data here
    ds = load_tu("MUTAG", cache=cache)
    assert len(ds) == 188 and ds.labels.bincount().tolist() == [63, 125]


@needs_shared
def test_folder_path_and_read_only_source(cache):
    ds = load_tu(str(SHARED_TU / "PTC_MR"), cache=cache)
    assert ds.name == "PTC_MR" and len(ds) == 344


def _write_gin(path: Path, text: str, name="TOY"):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}/{name}.txt", text)
        z.writestr(f"{name}/10fold_idx/test_idx-1.txt", "0\n")


def test_gin_format_reader(tmp_path):
    # two graphs: a triangle (label 3) and an edge (label 5); tags 1 and 7
    text = "2\n3 3\n1 2 1 2\n7 2 0 2\n1 2 0 1\n2 5\n7 1 1\n7 1 0\n"
    _write_gin(tmp_path / "TOY_gin_format.zip", text)
    graphs = read_gin_format(tmp_path / "TOY_gin_format.zip", "TOY")
    assert [g.num_nodes for g in graphs] == [3, 2]
    assert graphs[0].edge_index.shape == (2, 6) and graphs[1].edge_index.tolist() == [[0, 1], [1, 0]]
    assert graphs[0].x.tolist() == [[1, 0], [0, 1], [1, 0]]
    ds = load_tu(str(tmp_path), cache=tmp_path / "c")  # a folder with only the GIN zip
    assert ds.name == "TOY" and ds.labels.tolist() == [0, 1] and ds.num_classes == 2


@pytest.mark.parametrize(
    "text,match",
    [
        ("2\n3 3\n1 2 1 2\n", "malformed GIN-format"),  # truncated
        ("1\n2 0\n1 1 5\n1 1 0\n", "outside 0..1"),  # neighbour out of range
        ("1\n2 0\n1 2 1\n1 1 0\n", "lists 1 neighbours"),  # degree mismatch
        ("x\n", "malformed GIN-format"),
        ("1\n-1 0\n", r"TOY\.txt:2: malformed GIN-format file: graph 1 has -1 nodes"),  # negative node count
        ("99999999999999\n1 0\n1 0\n", r"TOY\.txt:1: .*99999999999999 graphs cannot fit in the 2 lines"),  # no alloc
        ("1\n0 0\n", r"TOY\.txt:2: .*graph 1 has 0 nodes"),
        ("2\n1 0\n1 0\n", r"TOY\.txt:4: .*the file ends before graph 2 of 2"),
        ("1\n1 0\n1 0\n1 0\n", r"TOY\.txt:4: .*a line after the last of the 1 graphs"),
        ("1\n2 0\n1 1 1\n1 1 -1\n", r"TOY\.txt:4: .*node 1 lists a neighbour -1 outside 0\.\.1"),
        ("1\n2 0\n1 -1\n1 0\n", r"TOY\.txt:3: .*node 0 lists 0 neighbours but its degree is -1"),
        ("1\n2 0 1\n1 0\n1 0\n", r"TOY\.txt:2: .*expected 'nodes label' for graph 1"),
        ("1\n2 0\n1 1 1.0\n1 0\n", r"TOY\.txt:3: .*expected integers, found '1 1 1\.0'"),
    ],
)
def test_gin_format_malformed(tmp_path, text, match):
    _write_gin(tmp_path / "TOY_gin_format.zip", text)
    with pytest.raises(ValueError, match=match):
        read_gin_format(tmp_path / "TOY_gin_format.zip")


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'NOPE'"):
        load_tu("NOPE", data_root=tmp_path, cache=tmp_path)
    with pytest.raises(FileNotFoundError, match="PROTEINS was not found"):
        load_tu("PROTEINS", data_root=tmp_path, cache=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no TU raw files"):
        load_tu(str(empty), cache=tmp_path)
    partial = tmp_path / "X"
    partial.mkdir()
    (partial / "X_graph_indicator.txt").write_text("1\n1\n")
    with pytest.raises(FileNotFoundError, match=r"lacks X_A\.txt"):
        load_tu(str(partial), cache=tmp_path)
    broken = tmp_path / "Y"
    broken.mkdir()
    (broken / "Y_A.txt").write_text("1, 2\nnot numbers\n")
    (broken / "Y_graph_indicator.txt").write_text("1\n1\n")
    (broken / "Y_graph_labels.txt").write_text("1\n")
    with pytest.raises(ValueError, match=r"Y_A\.txt:2: expected integers, found 'not numbers'"):
        load_tu(str(broken), cache=tmp_path / "c2")
    (tmp_path / "bad_gin_format.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip file"):
        read_gin_format(tmp_path / "bad_gin_format.zip")


def _zip_of(folder: Path, name: str, out: Path, tamper: bool = False) -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for f in sorted(folder.glob(f"{name}_*.txt")):
            data = f.read_bytes()
            if tamper and f.name.endswith("_graph_labels.txt"):
                data = data.replace(b"-1", b"1", 1)
            z.writestr(f"{name}/{f.name}", data)
    return out


def test_download_verifies_checksums(tmp_path, monkeypatch):
    """The real download path, fed a local file: extraction, checksum check, then loading."""
    from hscl.datasets import tu

    bundled = tu.BUNDLED / "MUTAG"
    good = _zip_of(bundled, "MUTAG", tmp_path / "MUTAG.zip")
    monkeypatch.setattr(tu, "TU_URL", good.as_uri().replace("MUTAG", "{name}"))
    folder = tu.download_tu("MUTAG", tmp_path / "root")
    assert (folder / "MUTAG_A.txt").is_file() and not (folder / ".download").exists()
    assert len(load_tu("MUTAG", data_root=tmp_path / "root", cache=tmp_path / "c")) == 188

    (tmp_path / "bad").mkdir()
    bad = _zip_of(bundled, "MUTAG", tmp_path / "bad" / "MUTAG.zip", tamper=True)
    monkeypatch.setattr(tu, "TU_URL", bad.as_uri().replace("MUTAG", "{name}"))
    with pytest.raises(ValueError, match=r"checksum mismatch for MUTAG_graph_labels\.txt"):
        tu.download_tu("MUTAG", tmp_path / "root2")
    assert not list((tmp_path / "root2" / "MUTAG").iterdir()), "nothing is left half-downloaded"


# A 4-graph toy set in the TU raw format: a triangle (nodes 1-3) and three single edges (4-5, 6-7, 8-9).
TOY = {
    "A": "1, 2\n2, 1\n2, 3\n3, 2\n1, 3\n3, 1\n4, 5\n5, 4\n6, 7\n7, 6\n8, 9\n9, 8\n",
    "graph_indicator": "1\n1\n1\n2\n2\n3\n3\n4\n4\n",
    "graph_labels": "1\n-1\n1\n-1\n",
    "node_labels": "0\n1\n2\n0\n0\n1\n1\n2\n2\n",
}
_A_LINES = TOY["A"].splitlines(keepends=True)


def _write_toy(folder: Path, name="TOY", **parts) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, text in {**TOY, **parts}.items():
        if text is not None:
            (folder / f"{name}_{part}.txt").write_text(text)
    return folder


def test_toy_set_loads(tmp_path):
    ds = load_tu(str(_write_toy(tmp_path / "TOY")), cache=tmp_path / "c")
    assert [g.num_nodes for g in ds] == [3, 2, 2, 2] and ds.labels.tolist() == [1, 0, 1, 0]
    assert [g.edge_index.shape[1] for g in ds] == [6, 2, 2, 2] and ds.feature_kind == "node labels"
    assert ds[0].edge_index.tolist() == [[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]]
    assert ds[3].x.tolist() == [[0, 0, 1], [0, 0, 1]]


@pytest.mark.parametrize("labels", [True, False], ids=["node-labels", "degree-features"])
def test_edgeless_last_graphs_load(tmp_path, labels):
    """Graphs 3 and 4 without an edge: PyG's TUDataset dropped them (or failed in a zip); all four load now."""
    folder = _write_toy(tmp_path / "TOY", A="".join(_A_LINES[:8]), node_labels=TOY["node_labels"] if labels else None)
    ds = load_tu(str(folder), cache=tmp_path / "c")
    assert len(ds) == 4 and [g.num_nodes for g in ds] == [3, 2, 2, 2] and ds.labels.tolist() == [1, 0, 1, 0]
    assert [g.edge_index.shape[1] for g in ds] == [6, 2, 0, 0]
    assert all(g.x.shape[0] == g.num_nodes for g in ds)
    if not labels:  # one-hot degree: the edgeless graphs have degree 0 everywhere
        assert ds.feature_kind == "one-hot degree (max 2)" and ds[3].x.tolist() == [[1, 0, 0], [1, 0, 0]]


CORRUPT = {
    "edge-to-node-99": ({"A": TOY["A"] + "9, 99\n"}, r"TOY_A\.txt:13: node id 99 is outside 1\.\.9"),
    "node-id-0": ({"A": "0, 2\n" + TOY["A"]}, r"TOY_A\.txt:1: node id 0 is outside 1\.\.9"),
    "negative-node-id": ({"A": TOY["A"] + "-3, 1\n"}, r"TOY_A\.txt:13: node id -3 is outside"),
    "edge-between-graphs": ({"A": TOY["A"] + "3, 4\n"}, r"TOY_A\.txt:13: edge \(3, 4\) joins graph 1 and graph 2"),
    "unsorted-indicator": (
        {"graph_indicator": "1\n1\n1\n2\n3\n2\n3\n4\n4\n"},
        r"TOY_graph_indicator\.txt:6: graph id 2 after 3: the graph indicator must be sorted",
    ),
    "skipped-graph-id": (
        {"graph_indicator": "1\n1\n1\n2\n2\n3\n3\n5\n5\n"},
        r"TOY_graph_indicator\.txt:8: graph id jumps from 3 to 5: graph 4 has no nodes",
    ),
    "ids-from-0": ({"graph_indicator": "0\n0\n0\n1\n1\n2\n2\n3\n3\n"}, r"indicator\.txt:1: graph ids start at 1"),
    "extra-graph-labels": ({"graph_labels": "1\n-1\n1\n-1\n1\n"}, r"TOY_graph_labels\.txt:5: one line too many"),
    "too-few-graph-labels": ({"graph_labels": "1\n-1\n1\n"}, r"TOY_graph_labels\.txt:4: missing line: 3 lines"),
    "too-few-node-labels": ({"node_labels": "0\n1\n2\n0\n0\n1\n1\n2\n"}, r"TOY_node_labels\.txt:9: missing line"),
    "too-many-node-labels": ({"node_labels": TOY["node_labels"] + "1\n"}, r"TOY_node_labels\.txt:10: one line too"),
    "decimal-node-id": (
        {"A": TOY["A"].replace("8, 9", "8, 9.0")},
        r"TOY_A\.txt:11: expected integers, found '8, 9\.0'",
    ),
    "one-value-edge": ({"A": TOY["A"].replace("6, 7", "6")}, r"TOY_A\.txt:9: expected 2 comma-separated node ids"),
    "blank-line": ({"graph_labels": "1\n\n-1\n1\n-1\n"}, r"TOY_graph_labels\.txt:2: empty line"),
    "huge-number": ({"A": TOY["A"] + "1, 99999999999999999999\n"}, r"TOY_A\.txt:13: expected integers"),
    "edge-labels-count": ({"edge_labels": "0\n" * 11}, r"TOY_edge_labels\.txt:12: missing line: 11 lines for 12"),
    "nan-attribute": ({"node_attributes": "0.5\n" * 4 + "nan\n" + "1.5\n" * 4}, r"attributes\.txt:5: non-finite"),
}


@pytest.mark.parametrize("parts,match", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupt_raw_files_name_the_file_and_line(tmp_path, parts, match):
    folder = _write_toy(tmp_path / "TOY", **parts)
    with pytest.raises(ValueError, match=match):
        load_tu(str(folder), cache=tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.pt")), "nothing is cached from corrupt files"


def test_cache_follows_the_files_content(tmp_path, monkeypatch):
    from hscl.datasets import tu

    folder = _write_toy(tmp_path / "TOY")
    assert load_tu(str(folder), cache=tmp_path / "c").labels.tolist() == [1, 0, 1, 0]
    (folder / "TOY_graph_labels.txt").write_text("-1\n1\n1\n-1\n")  # same size, same name, new content
    (folder / "TOY_A.txt").write_text("".join(_A_LINES[:10]))  # graph 4 loses its edge
    ds = load_tu(str(folder), cache=tmp_path / "c")
    assert ds.labels.tolist() == [0, 1, 1, 0], "the edited files are read again"
    assert [g.edge_index.shape[1] for g in ds] == [6, 2, 2, 0]
    assert len(list((tmp_path / "c").glob("TOY-*.pt"))) == 2, "one cache file per content"
    current = tmp_path / "c" / f"TOY-{tu._fingerprint(list(folder.glob('TOY_*.txt')))}.pt"
    assert current.is_file()
    current.write_bytes(b"damaged")
    assert load_tu(str(folder), cache=tmp_path / "c").labels.tolist() == [0, 1, 1, 0], "a damaged cache is rebuilt"
    assert current.read_bytes() != b"damaged"
    torch.save({"edges": torch.zeros(0, 2)}, current)  # readable, but not a table this version writes
    assert load_tu(str(folder), cache=tmp_path / "c").labels.tolist() == [0, 1, 1, 0], "a foreign table is rebuilt"

    def no_parsing(*args):
        raise AssertionError("parsed again although nothing changed")

    monkeypatch.setattr(tu, "_read_tu_raw", no_parsing)
    monkeypatch.setattr(tu, "_read_gin", no_parsing)
    again = load_tu(str(folder), cache=tmp_path / "c")  # unchanged: served from the cache
    assert again.labels.tolist() == [0, 1, 1, 0] and [g.edge_index.shape[1] for g in again] == [6, 2, 2, 0]


def test_gin_cache_follows_the_zip(tmp_path):
    _write_gin(tmp_path / "TOY_gin_format.zip", "1\n2 5\n7 1 1\n7 1 0\n")
    assert load_tu(str(tmp_path), cache=tmp_path / "c")[0].num_nodes == 2
    _write_gin(tmp_path / "TOY_gin_format.zip", "2\n3 5\n7 0\n7 0\n7 0\n1 6\n7 0\n")
    ds = load_tu(str(tmp_path), cache=tmp_path / "c")
    assert [g.num_nodes for g in ds] == [3, 1] and ds.labels.tolist() == [0, 1]
