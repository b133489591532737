"""Image data sets by path (:mod:`hscl.datasets.image_sets`): an archive and a plain folder load as splits, and
the decoded-array cache and the extraction cache follow their source's content."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hscl.datasets import image_sets
from hscl.datasets.image_sets import load_image_splits
from tests.datasets.conftest import save_image as _save


def test_load_image_splits_from_an_archive_and_a_plain_folder(tmp_path):
    from hscl.datasets.image_sets import load_image_splits

    root = tmp_path / "set"
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _save(root / split / cls / f"{i}.png", np.full((6, 6, 3), 40 * i, np.uint8))
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(root, arcname="set")
    splits = load_image_splits(str(archive), cache=tmp_path / "cache")
    assert splits["train"].images.shape == (6, 6, 6, 3) and splits["test"].images.shape == (4, 6, 6, 3)
    assert isinstance(splits["train"].images, np.memmap) and splits["train"].classes == ["a", "b"]
    flat = tmp_path / "flat"
    for cls in ("a", "b"):
        for i in range(5):
            _save(flat / cls / f"{i}.png", np.zeros((4, 4, 3), np.uint8))
    parts = load_image_splits(str(flat), cache=tmp_path / "cache")
    assert len(parts["train"]) == 8 and len(parts["test"]) == 2  # stratified 80/20
    with pytest.raises(ValueError, match=r"not a \.tar\.gz"):
        load_image_splits(str(flat / "a" / "0.png"), cache=tmp_path / "cache")


def _folder(root: Path, counts: dict[str, int], value: int = 0) -> Path:
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(np.full((4, 4, 3), value + i, np.uint8)).save(root / cls / f"{i}.png")
    return root


def _sizes(splits) -> tuple[int, list[str]]:
    return len(splits["train"]) + len(splits["test"]), splits["train"].classes


def _no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decoded again although the source did not change")

    monkeypatch.setattr(image_sets, "_read", refuse)


def test_folder_cache_follows_added_images_and_classes(tmp_path, monkeypatch):
    root, cache = _folder(tmp_path / "set", {"a": 5, "b": 5}), tmp_path / "cache"
    assert _sizes(load_image_splits(str(root), cache=cache)) == (10, ["a", "b"])
    _folder(root, {"a": 6})  # one more image in a
    assert _sizes(load_image_splits(str(root), cache=cache)) == (11, ["a", "b"])
    _folder(root, {"c": 5})  # a new class
    assert _sizes(load_image_splits(str(root), cache=cache)) == (16, ["a", "b", "c"])
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(root / "c" / "0.png")  # an image rewritten in place
    splits = load_image_splits(str(root), cache=cache)
    assert 200 in np.concatenate([splits["train"].images, splits["test"].images]).reshape(-1)
    stale = [p.name for p in (cache / "images").iterdir() if p.name.startswith("folder-")]
    assert len(stale) == 6, f"only the current version stays cached: {stale}"

    _no_decoding(monkeypatch)
    again = load_image_splits(str(root), cache=cache)  # unchanged: served from the cache
    assert _sizes(again) == (16, ["a", "b", "c"]) and isinstance(again["train"].images, np.memmap)


def test_split_folder_cache_follows_a_removed_image(tmp_path):
    root = tmp_path / "set"
    _folder(root / "train", {"a": 3, "b": 3})
    _folder(root / "test", {"a": 2, "b": 2})
    assert len(load_image_splits(str(root), cache=tmp_path / "c")["test"]) == 4
    (root / "test" / "b" / "1.png").unlink()
    assert len(load_image_splits(str(root), cache=tmp_path / "c")["test"]) == 3


def _tar_of(root: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as t:
        t.add(root, arcname="set")
    return out


def test_archive_cache_follows_the_archive(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    archive = _tar_of(_folder(tmp_path / "v1", {"a": 5, "b": 5}), tmp_path / "set.tar.gz")
    assert _sizes(load_image_splits(str(archive), cache=cache)) == (10, ["a", "b"])
    _tar_of(_folder(tmp_path / "v2", {"a": 5, "b": 5, "c": 5}), archive)  # replaced by a bigger archive
    assert _sizes(load_image_splits(str(archive), cache=cache)) == (15, ["a", "b", "c"])
    assert len(list((cache / "images").glob("extracted-*"))) == 1, "the first extraction is gone"
    assert len(list((cache / "images").glob("folder-*"))) == 6, "and so are the arrays decoded from it"
    _no_decoding(monkeypatch)
    assert _sizes(load_image_splits(str(archive), cache=cache)) == (15, ["a", "b", "c"])


def test_archive_limits_are_passed_on(tmp_path):
    archive = _tar_of(_folder(tmp_path / "v1", {"a": 5, "b": 5}), tmp_path / "set.tar.gz")
    with pytest.raises(ValueError, match=r"set\.tar\.gz: more than 3 members; pass max_members="):
        load_image_splits(str(archive), cache=tmp_path / "c", max_extract_members=3)
    with pytest.raises(ValueError, match=r"over the limit of 100; pass max_bytes="):
        load_image_splits(str(archive), cache=tmp_path / "c", max_extract_bytes=100)
    assert [p.name for p in (tmp_path / "c").rglob("*")] in ([], ["images"]), "nothing is left half-extracted"
