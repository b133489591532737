"""The image download path, fed local archives: checksum, safe extraction, nothing left on failure."""

import hashlib
import io
import tarfile

import pytest

from hscl.datasets import download as D


def _tar(path, members):
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def _register(monkeypatch, archive, folder):
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(D.ARCHIVES, "toy", (archive.as_uri(), md5, folder))


def test_download_extracts_after_checksum(tmp_path, monkeypatch):
    archive = _tar(tmp_path / "toy.tar.gz", {"toy/a.txt": b"hello", "toy/sub/b.txt": b"x"})
    _register(monkeypatch, archive, "toy")
    folder = D.download("toy", tmp_path / "root")
    assert (folder / "a.txt").read_bytes() == b"hello" and (folder / "sub" / "b.txt").is_file()
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["toy"], "no temporary file is left"
    assert D.download("toy", tmp_path / "root") == folder  # already there: not fetched again


def test_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    archive = _tar(tmp_path / "toy.tar.gz", {"toy/a.txt": b"hello"})
    monkeypatch.setitem(D.ARCHIVES, "toy", (archive.as_uri(), "0" * 32, "toy"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        D.download("toy", tmp_path / "root")
    assert list((tmp_path / "root").iterdir()) == []


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "toy/../../evil.txt"])
def test_path_traversal_is_refused(tmp_path, monkeypatch, name):
    archive = _tar(tmp_path / "toy.tar.gz", {"toy/a.txt": b"ok", name: b"evil"})
    _register(monkeypatch, archive, "toy")
    with pytest.raises(ValueError, match="unsafe path in archive"):
        D.download("toy", tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists() and list((tmp_path / "root").iterdir()) == []


def test_links_are_refused(tmp_path, monkeypatch):
    archive = tmp_path / "toy.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        info = tarfile.TarInfo("toy/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    _register(monkeypatch, archive, "toy")
    with pytest.raises(ValueError, match="not a regular file or folder"):
        D.download("toy", tmp_path / "root")


def test_unknown_archive():
    with pytest.raises(ValueError, match="unknown archive 'imagenet'"):
        D.download("imagenet", "/tmp")
