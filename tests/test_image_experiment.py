"""``hscl reproduce images``: jobs per method and seed, the CSV, table and figure, resume after a kill without
redoing finished jobs, and bad input."""

import json

import pytest

from hscl.cli import main
from hscl.experiments import images

TINY = dict(epochs=1, width=4, hidden=16, projection=8, batch_size=256, knn_k=20)


def test_run_report_and_resume(tmp_path):
    calls = []

    def flaky(config, folder, progress=True):
        from hscl.training.images import train_images

        calls.append((config.method, config.seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third job
        return train_images(config, folder, progress=False)

    with pytest.raises(KeyboardInterrupt):
        images.run(tmp_path, dataset="digits", methods=["ucl", "scl"], seeds=[0, 1], overrides=TINY,
                   progress=False, train_fn=flaky)  # fmt: skip
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 3, "two finished jobs, one row each"
    csv_path = images.run(tmp_path, dataset="digits", methods=["ucl", "scl"], seeds=[0, 1], overrides=TINY,
                          progress=False, train_fn=flaky)  # fmt: skip
    assert calls == [("ucl", 0), ("scl", 0), ("ucl", 1), ("ucl", 1), ("scl", 1)], "finished jobs are not redone"
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == list(images.COLUMNS) and len(lines) == 5
    assert [tuple(r.split(",")[1:3]) for r in lines[1:]] == [("ucl", "0"), ("scl", "0"), ("ucl", "1"), ("scl", "1")]
    for r in lines[1:]:
        assert 0.1 < float(r.split(",")[3]) <= 1.0
    metrics = json.loads((tmp_path / "runs" / "scl-seed1" / "metrics.json").read_text())
    assert metrics["method"] == "scl" and metrics["seed"] == 1
    table, png = images.write_report(csv_path)
    text = table.read_text()
    assert "| digits | UCL |" in text and "| digits | SCL |" in text and "SupContrast README" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert len(manifest["invocations"]) == 2 and manifest["cells_done"] == 4


def test_a_job_finished_before_its_row_is_not_rerun(tmp_path):
    images.run(tmp_path, dataset="digits", methods=["ucl"], seeds=[0], overrides=TINY, progress=False)
    (tmp_path / "results.csv").unlink()  # as if killed between metrics.json and the CSV row

    def fail(*a, **k):
        raise AssertionError("the finished job must be read back, not retrained")

    images.run(tmp_path, dataset="digits", methods=["ucl"], seeds=[0], overrides=TINY, progress=False, train_fn=fail)
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 2


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        images.run(tmp_path, dataset="digits", methods=["byol"], overrides=TINY)
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        images.run(tmp_path, dataset="digits", seeds=[], overrides=TINY)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        images.run(tmp_path, dataset="digits", overrides={**TINY, "epochs": 0})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a results CSV of this experiment"):
        images.run(tmp_path / "other", dataset="digits", methods=["ucl"], seeds=[0], overrides=TINY)
    assert main(["reproduce", "images", "--dataset", "digits", "--methods", "byol", "--out", str(tmp_path / "x")]) == 2


def test_cli(tmp_path, capsys):
    args = ["reproduce", "images", "--dataset", "digits", "--methods", "hscl-beta", "--seeds", "3", "--epochs", "1",
            "--width", "4", "--train-subset", "400", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| digits | H-SCL (beta=1) |" in out and "written:" in out
    config = json.loads((tmp_path / "runs" / "hscl-beta-seed3" / "config.json").read_text())
    assert config["train_subset"] == 400 and config["width"] == 4 and config["seed"] == 3
