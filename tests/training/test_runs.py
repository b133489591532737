"""What every run shares (:mod:`hscl.training.runs`): the ``run.json`` manifest records the hscl version and
the commit of each invocation."""

import json


def test_run_json_records_the_hscl_version_and_commit(tmp_path, monkeypatch):
    from hscl import __version__
    from hscl.training import records
    from hscl.training.runs import Manifest

    monkeypatch.setattr(records, "git_commit", lambda: "0123456789abcdef0123456789abcdef01234567")
    Manifest(tmp_path / "run.json").tick(1, 2)
    monkeypatch.setattr(records, "git_commit", lambda: None)  # a resume from an installed copy
    Manifest(tmp_path / "run.json").tick(2, 2)
    first, second = json.loads((tmp_path / "run.json").read_text())["invocations"]
    assert first["hscl_version"] == second["hscl_version"] == __version__
    assert first["git_commit"] == "0123456789abcdef0123456789abcdef01234567" and second["git_commit"] is None
