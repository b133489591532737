"""Downloading the image data sets (needs the network; the tests feed local files through the same code).

Each archive is fetched to a temporary file, its MD5 checked against the published value, then extracted with
every member checked: no absolute path, no ``..``, no link leaving the destination, no name that is both a file
and a folder, and a limit on the total uncompressed size and the member count (``max_bytes``, ``max_members``).
"""

from __future__ import annotations

import lzma
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

from .._io import file_digest

__all__ = [
    "ARCHIVES",
    "MAX_EXTRACT_BYTES",
    "MAX_EXTRACT_MEMBERS",
    "download",
    "extract_archive",
    "safe_extract_tar",
    "safe_extract_zip",
]

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


#: Default limits of :func:`extract_archive`: total uncompressed bytes and members. The largest archive above
#: (STL-10) unpacks to about 3 GB, Tiny-ImageNet to about 120,000 members.
MAX_EXTRACT_BYTES = 8 * 2**30
MAX_EXTRACT_MEMBERS = 1_000_000
# What reading a damaged or unsupported archive raises (zlib / lzma data errors, bad CRC, truncation, ...).
_READ_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    OSError,
)


def _inside(dest: Path, name: str) -> Path:
    target = (dest / name).resolve()
    if not target.is_relative_to(dest):
        raise ValueError(f"unsafe path in archive: {name!r} leaves {dest}")
    return target


def _check_members(where: str, members: list[tuple[str, bool]], dest: Path) -> list[Path]:
    """Targets of ``(name, is_folder)`` members inside ``dest``; refuses a path that leaves ``dest``, a name
    listed twice as a file, and a name that is a file in one member and a folder in another (``a`` and ``a/``, or
    ``a`` and ``a/b``)."""
    targets = [_inside(dest, name) for name, _ in members]
    folders = {t for t, (_, is_folder) in zip(targets, members, strict=True) if is_folder}
    for t in targets:
        folders.update(p for p in t.parents if p.is_relative_to(dest) and p != dest)
    files = set()
    for t, (name, is_folder) in zip(targets, members, strict=True):
        if is_folder:
            continue
        if t in folders:
            raise ValueError(f"{where}: archive member {name!r} is both a file and a folder")
        if t in files:
            raise ValueError(f"{where}: archive member {name!r} is listed twice")
        files.add(t)
    return targets


class _Budget:
    """What an extraction may still write: checked against the headers first, then byte by byte while writing
    (in case the headers lie)."""

    def __init__(self, where: str, max_bytes: int, max_members: int) -> None:
        for arg, value in (("max_bytes", max_bytes), ("max_members", max_members)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        self.where, self.max_bytes, self.max_members, self.left = where, max_bytes, max_members, max_bytes

    def check_headers(self, count: int, total: int) -> None:
        if count > self.max_members:
            raise ValueError(f"{self.where}: more than {self.max_members:,} members; pass max_members= to allow more")
        if total > self.max_bytes:
            raise ValueError(
                f"{self.where}: {total:,} bytes uncompressed, over the limit of {self.max_bytes:,}; pass "
                "max_bytes= to allow more"
            )

    def copy(self, open_member, target: Path, name: str) -> None:
        """Write the member that ``open_member()`` opens to ``target``, counting against the limit."""
        try:
            src = open_member()
        except _READ_ERRORS as err:
            raise ValueError(f"{self.where}: unreadable archive member {name!r}: {err}") from err
        with src, open(target, "wb") as dst:
            while True:
                try:
                    block = src.read(1 << 20)
                except _READ_ERRORS as err:
                    raise ValueError(f"{self.where}: unreadable archive member {name!r}: {err}") from err
                if not block:
                    return
                self.left -= len(block)
                if self.left < 0:
                    raise ValueError(
                        f"{self.where}: member {name!r} unpacks past the limit of {self.max_bytes:,} bytes "
                        "uncompressed (more than its header says); pass max_bytes= to allow more"
                    )
                dst.write(block)

    def write_members(self, dest: Path, members: list[tuple[str, bool, Callable]]) -> list[Path]:
        """Extract ``(name, is_folder, open_member)`` members into ``dest``: their names checked together
        (:func:`_check_members`), folders made, each file copied within the limit (:meth:`copy`). Returns the files
        written."""
        targets = _check_members(self.where, [(name, is_folder) for name, is_folder, _ in members], dest)
        out = []
        for (name, is_folder, open_member), target in zip(members, targets, strict=True):
            if is_folder:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            self.copy(open_member, target, name)
            out.append(target)
        return out


def safe_extract_zip(
    archive: zipfile.ZipFile,
    dest: str | os.PathLike,
    *,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_EXTRACT_MEMBERS,
) -> list[Path]:
    """Extract a zip archive into ``dest``, refusing absolute paths, ``..``, symbolic links, a name that is both a
    file and a folder, and more than ``max_members`` members or ``max_bytes`` bytes uncompressed (from the headers
    before anything is written, and again while writing)."""
    dest = Path(dest).resolve()
    where = str(archive.filename or "zip archive")
    budget = _Budget(where, max_bytes, max_members)
    infos = archive.infolist()
    budget.check_headers(len(infos), sum(info.file_size for info in infos))
    for info in infos:
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ValueError(f"unsafe member in archive: {info.filename!r} is a symbolic link")
    return budget.write_members(dest, [(i.filename, i.is_dir(), partial(archive.open, i)) for i in infos])


def safe_extract_tar(
    archive: tarfile.TarFile,
    dest: str | os.PathLike,
    *,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_EXTRACT_MEMBERS,
) -> list[Path]:
    """Extract a tar archive into ``dest``: regular files and folders only, each inside ``dest``, no name both a
    file and a folder, at most ``max_members`` members and ``max_bytes`` bytes (checked from the headers before
    anything is written, and again while writing)."""
    dest = Path(dest).resolve()
    where = str(archive.name or "tar archive")
    budget = _Budget(where, max_bytes, max_members)
    members, total = [], 0
    try:
        for m in archive:  # reads the headers only; stops as soon as a limit is passed
            members.append(m)
            total += m.size if m.isfile() else 0
            budget.check_headers(len(members), total)
    except _READ_ERRORS as err:
        raise ValueError(f"{where}: unreadable tar archive: {err}") from err
    for m in members:
        _inside(dest, m.name)
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"unsafe member in archive: {m.name!r} is not a regular file or folder")
    return budget.write_members(dest, [(m.name, m.isdir(), partial(archive.extractfile, m)) for m in members])


def extract_archive(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_EXTRACT_MEMBERS,
) -> list[Path]:
    """Safely extract a ``.zip`` or a tar archive (any compression) into ``dest``, within ``max_bytes`` bytes
    uncompressed and ``max_members`` members (see :func:`safe_extract_zip`)."""
    archive = Path(archive)
    limits = {"max_bytes": max_bytes, "max_members": max_members}
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                return safe_extract_zip(z, dest, **limits)
        with tarfile.open(archive) as t:
            return safe_extract_tar(t, dest, **limits)
    except (zipfile.BadZipFile, tarfile.TarError) as err:
        raise ValueError(f"{archive} is not a readable archive: {err}") from err


def download(
    name: str,
    root: str | os.PathLike,
    *,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_EXTRACT_MEMBERS,
) -> Path:
    """Fetch, verify and extract ``name`` (a key of :data:`ARCHIVES`) under ``root``; returns its folder.
    Nothing is left in ``root`` when the checksum or an archive member is wrong, or the archive unpacks to more
    than ``max_bytes`` bytes or ``max_members`` members."""
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
        digest = file_digest(archive_path, "md5")  # the publishers give MD5s
        if digest != md5:
            raise ValueError(f"checksum mismatch for {archive_path.name}: MD5 {digest}, expected {md5}")
        staging = Path(tmp) / "extract"
        extract_archive(archive_path, staging, max_bytes=max_bytes, max_members=max_members)
        if not (staging / folder).is_dir():
            raise ValueError(f"{archive_path.name} did not unpack to {folder}/")
        os.replace(staging / folder, root / folder)
    return root / folder
