"""Atomic writes: write to a temporary file in the destination's folder, then rename over it, so that a reader
(or a run killed half-way) never sees a half-written file."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_text",
    "cache_dir",
    "file_digest",
    "write_csv_atomic",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path`` (mode 0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)

    return atomic_write(path, write)


def write_csv_atomic(path: str | os.PathLike, rows: Iterable[Mapping], columns: Sequence[str]) -> Path:
    """Write ``rows`` (mappings, a missing key an empty cell) under the header ``columns`` as one CSV string
    (``\\n`` line ends), then atomically: a kill leaves the previous version, never half a row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes by ``algorithm`` (a ``hashlib`` name: the publishers' ``"md5"`` is for
    integrity, not security), read in 1 MiB blocks."""
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where hscl keeps decoded data and copies of raw files: ``$HSCL_CACHE``, else ``~/.cache/hscl``."""
    return Path(os.environ.get("HSCL_CACHE", Path.home() / ".cache" / "hscl"))


def check_output_folder(path: str | os.PathLike, name: str = "out") -> Path:
    """``path`` as a ``Path`` if it is a folder or can be created as one; else a ``ValueError`` naming ``name``
    (a file in the way, an unwritable parent). Creates nothing."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{name} {path}: exists and is not a folder; give a folder (created if missing)")
        return path
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{name} {path}: cannot be created, {parent} is a file and not a folder")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {path}: cannot be created, {parent} is not writable")
    return path
