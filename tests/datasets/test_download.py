"""The image download path, fed local archives: checksum, safe extraction, nothing left on failure."""

import hashlib
import io
import struct
import tarfile
import zipfile

import pytest

from hscl.datasets import download as D
from hscl.datasets.download import safe_extract_zip


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


def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "members",
    [[("root/a/", b""), ("root/a", b"x")], [("root/a", b"x"), ("root/a/b.txt", b"y")], [("root/a", b"x")] * 2],
    ids=["folder-then-file", "file-then-child", "file-twice"],
)
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_zip_name_both_file_and_folder_is_refused(tmp_path, members):
    archive = _zip(tmp_path / "toy.zip", members)
    with pytest.raises(
        ValueError, match=r"toy\.zip: archive member 'root/a' is (both a file and a folder|listed twice)"
    ):
        D.extract_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists(), "refused before anything is written"


def test_tar_name_both_file_and_folder_is_refused(tmp_path):
    archive = tmp_path / "toy.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        folder = tarfile.TarInfo("root/a")
        folder.type = tarfile.DIRTYPE
        t.addfile(folder)
        info = tarfile.TarInfo("root/a")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match=r"archive member 'root/a' is both a file and a folder"):
        D.extract_archive(archive, tmp_path / "dest")


def test_zip_bomb_is_refused_from_its_headers(tmp_path):
    """A 20 MB file of zeros deflates to about 20 KB: refused before a byte is written."""
    archive = _zip(tmp_path / "bomb.zip", [("bomb/zeros.bin", bytes(20 * 2**20))])
    assert archive.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"bomb\.zip: 20,971,520 bytes uncompressed, over the limit of 10,485,760"):
        D.extract_archive(archive, tmp_path / "dest", max_bytes=10 * 2**20)
    assert not (tmp_path / "dest").exists()
    many = _zip(tmp_path / "many.zip", [(f"m/{i}.txt", b"") for i in range(5)])
    with pytest.raises(ValueError, match=r"more than 4 members; pass max_members="):
        D.extract_archive(many, tmp_path / "dest", max_members=4)
    assert len(D.extract_archive(many, tmp_path / "dest", max_members=5)) == 5


def test_limits_hold_while_extracting_when_headers_lie(tmp_path, monkeypatch):
    # A zip whose central directory claims 10 bytes for a 1 MB member: zipfile stops at 10 and the CRC fails.
    data = bytearray(_zip(tmp_path / "liar.zip", [("x/big.bin", bytes(2**20))]).read_bytes())
    struct.pack_into("<I", data, data.find(b"PK\x01\x02") + 24, 10)
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"liar\.zip: unreadable archive member 'x/big\.bin'"):
        D.extract_archive(tmp_path / "liar.zip", tmp_path / "dest", max_bytes=1000)
    # Whatever the headers say, the bytes written are counted: with the header check out of the way, the copy
    # itself stops at the limit, for zip and tar alike.
    monkeypatch.setattr(D._Budget, "check_headers", lambda self, count, total: None)
    zipped = _zip(tmp_path / "big.zip", [("x/a.bin", bytes(3000)), ("x/b.bin", bytes(3000))])
    tarred = _tar(tmp_path / "big.tar.gz", {"x/a.bin": bytes(3000), "x/b.bin": bytes(3000)})
    for archive in (zipped, tarred):
        with pytest.raises(ValueError, match=r"member 'x/b\.bin' unpacks past the limit of 5,000 bytes"):
            D.extract_archive(archive, tmp_path / f"out-{archive.name}", max_bytes=5000)


def test_download_passes_the_limits_on(tmp_path, monkeypatch):
    archive = _tar(tmp_path / "toy.tar.gz", {"toy/a.txt": b"hello" * 100})
    _register(monkeypatch, archive, "toy")
    with pytest.raises(ValueError, match="over the limit of 100"):
        D.download("toy", tmp_path / "root", max_bytes=100)
    assert list((tmp_path / "root").iterdir()) == []
    with pytest.raises(ValueError, match="max_members must be a positive integer"):
        D.download("toy", tmp_path / "root", max_members=0)


def test_default_limits_fit_the_known_archives():
    assert D.MAX_EXTRACT_BYTES >= 4 * 10**9, "STL-10 unpacks to about 3 GB"
    assert D.MAX_EXTRACT_MEMBERS >= 200_000, "Tiny-ImageNet has about 120,000 members"


def test_safe_extract_refuses_traversal(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with zipfile.ZipFile(evil) as z, pytest.raises(ValueError, match="unsafe path"):
        safe_extract_zip(z, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()
