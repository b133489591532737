"""TU readers on the shared files (counts from their SOURCES.md), the GIN text format, and bad input."""

import zipfile
from pathlib import Path

import pytest
import torch

from hscl.datasets.download import safe_extract_zip
from hscl.datasets.tu import BENCHMARKS, load_tu, read_gin_format

SHARED_TU = Path(__file__).resolve().parents[2] / "shared" / "data" / "TU"
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
    with pytest.raises(ValueError, match="malformed TU raw files"):
        load_tu(str(broken), cache=tmp_path / "c2")
    (tmp_path / "bad_gin_format.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip file"):
        read_gin_format(tmp_path / "bad_gin_format.zip")


def test_safe_extract_refuses_traversal(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with zipfile.ZipFile(evil) as z, pytest.raises(ValueError, match="unsafe path"):
        safe_extract_zip(z, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


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
