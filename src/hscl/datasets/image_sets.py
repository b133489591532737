"""Image data sets by name or path, as train / test (and STL-10's unlabeled) splits of uint8 arrays, decoded once
into a memory-mapped cache.

Names: ``cifar10``, ``cifar100``, ``stl10``, ``tiny-imagenet`` (read from ``data_root``; fetched with checksums
when ``download=True``) and ``digits`` (embedded in scikit-learn). A path may be a CIFAR / STL-10 / Tiny-ImageNet
folder, an ImageFolder tree with ``train/`` and ``test/`` subfolders or without (then a stratified 80/20 split
with a fixed seed), or a ``.tar.gz`` / ``.tgz`` / ``.zip`` of such a tree (extracted safely into the cache).
Cached arrays and extractions follow their source's content: a changed source is read again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from .._io import cache_dir
from .download import ARCHIVES, MAX_EXTRACT_BYTES, MAX_EXTRACT_MEMBERS, download, extract_archive
from .image_readers import (
    ImageArrays,
    cached,
    read_cifar,
    read_digits,
    read_image_folder,
    read_stl10,
    read_tiny_imagenet,
)

__all__ = ["NAMED", "load_image_splits"]

NAMED = ("cifar10", "cifar100", "stl10", "tiny-imagenet", "digits")
_FOLDERS = {name: ARCHIVES[name][2] for name in ("cifar10", "cifar100", "stl10", "tiny-imagenet")}


def _subset(a: ImageArrays, idx: np.ndarray, suffix: str) -> ImageArrays:
    return ImageArrays(np.ascontiguousarray(a.images[idx]), a.labels[idx], a.classes, a.name + suffix)


def _stratified_split(a: ImageArrays, test_fraction: float = 0.2) -> tuple[ImageArrays, ImageArrays]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(a))
    train, test = train_test_split(idx, test_size=test_fraction, stratify=a.labels, random_state=0)
    return _subset(a, np.sort(train), "-train"), _subset(a, np.sort(test), "-test")


def _folder_kind(folder: Path) -> str:
    if (folder / "data_batch_1").is_file():
        return "cifar10"
    if (folder / "meta").is_file() and (folder / "train").is_file():
        return "cifar100"
    if (folder / "train_X.bin").is_file() or (folder / "unlabeled_X.bin").is_file():
        return "stl10"
    if (folder / "wnids.txt").is_file():
        return "tiny-imagenet"
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return "split-folder"
    return "folder"


def _read(kind: str, folder: Path, progress: bool) -> dict[str, ImageArrays]:
    if kind == "cifar10":
        return {"train": read_cifar(folder, train=True), "test": read_cifar(folder, train=False)}
    if kind == "cifar100":
        return {
            "train": read_cifar(folder, train=True, cifar100=True),
            "test": read_cifar(folder, train=False, cifar100=True),
        }
    if kind == "stl10":
        out = {"train": read_stl10(folder, "train"), "test": read_stl10(folder, "test")}
        if (folder / "unlabeled_X.bin").is_file():
            out["unlabeled"] = read_stl10(folder, "unlabeled")
        return out
    if kind == "tiny-imagenet":
        return {
            "train": read_tiny_imagenet(folder, "train", progress=progress),
            "test": read_tiny_imagenet(folder, "val", progress=progress),
        }
    if kind == "split-folder":
        train = read_image_folder(folder / "train", progress=progress)
        test = read_image_folder(folder / "test", progress=progress)
        if train.classes != test.classes:
            raise ValueError(f"{folder}: train/ and test/ have different classes")
        return {"train": train, "test": test}
    train, test = _stratified_split(read_image_folder(folder, progress=progress))
    return {"train": train, "test": test}


def _path_key(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]


def _tree_fingerprint(folder: Path) -> str:
    """A hash of every file under ``folder``: relative path, size and modification time (nanoseconds). Adding,
    removing, renaming or rewriting a file changes it; reading the images does not."""
    entries, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):  # linked class folders count too
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree: once is enough
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:  # a dangling link: its name still counts
                entries.append(f"{path.relative_to(folder).as_posix()}\0-")
                continue
            entries.append(f"{path.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _drop_superseded(cache: Path, prefix: str, current: str) -> None:
    """Remove the cache entries of an earlier version of the same source (same ``prefix``, not ``current``)."""
    for old in cache.glob(prefix + "*"):
        if not old.name.startswith(current):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _extract(archive: Path, cache: Path, **limits) -> Path:
    """Extract ``archive`` into the cache once per version of it (path, size and modification time)."""
    prefix = f"extracted-{_path_key(archive)}-"
    dest = cache / (prefix + _file_fingerprint(archive))
    if not dest.is_dir():
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            extract_archive(archive, staging, **limits)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        os.replace(staging, dest)
        _drop_superseded(cache, prefix, dest.name)
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def load_image_splits(
    name_or_path: str,
    *,
    data_root: str | os.PathLike | None = None,
    download_missing: bool = False,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
    max_extract_bytes: int = MAX_EXTRACT_BYTES,
    max_extract_members: int = MAX_EXTRACT_MEMBERS,
) -> dict[str, ImageArrays]:
    """``{"train", "test"[, "unlabeled"]}`` for a named data set or a path (see the module docstring).

    The decoded arrays are cached under a key of the source's path and content (every file's relative path, size
    and modification time): adding, removing or changing an image or a class decodes again. Archives unpack within
    ``max_extract_bytes`` bytes and ``max_extract_members`` members (see :func:`~.download.extract_archive`)."""
    limits = {"max_bytes": max_extract_bytes, "max_members": max_extract_members}
    cache = (Path(cache) if cache is not None else cache_dir()) / "images"
    if name_or_path == "digits":
        train, test = _stratified_split(read_digits())
        return {"train": train, "test": test}
    if name_or_path in _FOLDERS:
        root = Path(data_root) if data_root is not None else cache / "downloads"
        folder = root / _FOLDERS[name_or_path]
        if not folder.is_dir():
            if not download_missing:
                raise FileNotFoundError(
                    f"{name_or_path} is not under {root}; pass --download to fetch it (needs the network)"
                )
            folder = download(name_or_path, root, **limits)
        kind, source = name_or_path, folder
    else:
        path = source = Path(name_or_path)
        if not path.exists():
            raise ValueError(f"unknown data set {name_or_path!r}: use one of {', '.join(NAMED)} or a path")
        if path.is_file():
            if not (path.name.endswith((".tar.gz", ".tgz", ".zip"))):
                raise ValueError(f"{path} is a file but not a .tar.gz / .tgz / .zip archive of images")
            path = _extract(path, cache, **limits)
        folder, kind = path, _folder_kind(path)
    prefix = f"{kind}-{_path_key(source)}-"  # the source: a folder, or the archive it was extracted from
    key = prefix + _tree_fingerprint(folder)
    parts = {}

    def build_all():
        parts.update(_read(kind, folder, progress))

    out = {}
    for split in ("train", "test", "unlabeled"):
        if split == "unlabeled" and kind != "stl10":
            continue
        if split == "unlabeled" and not (folder / "unlabeled_X.bin").is_file():
            continue

        def build(split=split):
            if not parts:
                build_all()
            return parts[split]

        out[split] = cached(f"{key}-{split}", build, cache)
    if parts:  # decoded afresh: what an earlier version of the source left in the cache is stale
        _drop_superseded(cache, prefix, key + "-")
    return out
