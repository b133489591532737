"""Downloading the image data sets (needs the network; the tests feed local files through the same code).

Each archive is fetched to a temporary file, its MD5 checked against the published value, then extracted with
every member checked: no absolute path, no ``..``, no link leaving the destination.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["ARCHIVES", "download", "extract_archive", "safe_extract_tar", "safe_extract_zip"]

#: name -> (URL, MD5 of the archive, folder it unpacks to). The MD5s are the publishers' (as torchvision and
#: the data sets' pages list them).
ARCHIVES = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 "cifar-100-python"),
    "stl10": ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb",
              "stl10_binary"),
    "tiny-imagenet": ("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de",
                      "tiny-imagenet-200"),
}  # fmt: skip


def _inside(dest: Path, name: str) -> Path:
    target = (dest / name).resolve()
    if not target.is_relative_to(dest):
        raise ValueError(f"unsafe path in archive: {name!r} leaves {dest}")
    return target


def safe_extract_zip(archive: zipfile.ZipFile, dest: str | os.PathLike) -> list[Path]:
    """Extract a zip archive into ``dest``, refusing absolute paths, ``..`` and symbolic links."""
    dest = Path(dest).resolve()
    out = []
    for info in archive.infolist():
        target = _inside(dest, info.filename)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ValueError(f"unsafe member in archive: {info.filename!r} is a symbolic link")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out.append(target)
    return out


def safe_extract_tar(archive: tarfile.TarFile, dest: str | os.PathLike) -> list[Path]:
    """Extract a tar archive into ``dest``: regular files and folders only, each inside ``dest``."""
    dest = Path(dest).resolve()
    members = archive.getmembers()
    for m in members:
        _inside(dest, m.name)
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"unsafe member in archive: {m.name!r} is not a regular file or folder")
    archive.extractall(dest, members=members, filter="data")
    return [dest / m.name for m in members if m.isfile()]


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Safely extract a ``.zip`` or a tar archive (any compression) into ``dest``."""
    archive = Path(archive)
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            return safe_extract_zip(z, dest)
    with tarfile.open(archive) as t:
        return safe_extract_tar(t, dest)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # the publishers give MD5s: integrity, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(name: str, root: str | os.PathLike) -> Path:
    """Fetch, verify and extract ``name`` (a key of :data:`ARCHIVES`) under ``root``; returns its folder.
    Nothing is left in ``root`` when the checksum or an archive member is wrong."""
    if name not in ARCHIVES:
        raise ValueError(f"unknown archive {name!r}; known: {', '.join(ARCHIVES)}")
    url, md5, folder = ARCHIVES[name]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (root / folder).is_dir():
        return root / folder
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        archive_path = Path(tmp) / Path(url).name
        with urllib.request.urlopen(url, timeout=60) as response, open(archive_path, "wb") as f:
            shutil.copyfileobj(response, f)
        digest = _md5(archive_path)
        if digest != md5:
            raise ValueError(f"checksum mismatch for {archive_path.name}: MD5 {digest}, expected {md5}")
        staging = Path(tmp) / "extract"
        extract_archive(archive_path, staging)
        if not (staging / folder).is_dir():
            raise ValueError(f"{archive_path.name} did not unpack to {folder}/")
        os.replace(staging / folder, root / folder)
    return root / folder
