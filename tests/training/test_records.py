"""The records of a run (:mod:`hscl.training.records`): the commit and whether the checkout differed from it."""

import pytest


def test_git_dirty_says_whether_tracked_files_changed(tmp_path, monkeypatch):
    """The records name the commit and whether the checkout differed from it (a commit alone would claim code that
    did not run)."""
    import shutil
    import subprocess

    from hscl.training import records

    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "repo"
    (repo / "pkg" / "training").mkdir(parents=True)
    (repo / "pkg" / "training" / "records.py").write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    monkeypatch.setattr(records, "__file__", str(repo / "pkg" / "training" / "records.py"))
    for f in (records.git_commit, records.git_dirty):
        f.cache_clear()
    try:
        assert records.git_commit() is not None and records.git_dirty() is False
        (repo / "pkg" / "training" / "records.py").write_text("x = 2\n")
        records.git_dirty.cache_clear()
        assert records.git_dirty() is True
        assert records.provenance()["git_dirty"] is True
    finally:
        for f in (records.git_commit, records.git_dirty):
            f.cache_clear()
