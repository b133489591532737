"""``hscl reproduce images``: jobs per method and control and seed, the CSV (with the configuration's fingerprint),
the table with the controls and the seed-paired verdicts, the figure, resume after a kill without redoing finished
jobs, refusal of a resume with other settings, and bad input."""

import json

import numpy as np
import pytest

from hscl.cli import main
from hscl.evaluation.stats import seed_interval
from hscl.experiments import images

TINY = dict(epochs=1, width=4, hidden=16, projection=8, batch_size=256, knn_k=20)


def test_run_report_and_resume(tmp_path):
    calls = []

    def flaky(config, folder, progress=True):
        from hscl.training.images import train_images

        calls.append((config.method, config.seed, config.epochs))
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed during the fourth training job
        return train_images(config, folder, progress=False)

    kw = dict(dataset="digits", methods=["ucl", "scl"], seeds=[0, 1], overrides=TINY, progress=False, train_fn=flaky)
    with pytest.raises(KeyboardInterrupt):
        images.run(tmp_path, **kw)
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 5, "four finished jobs (two controls, two methods), one row each"
    csv_path = images.run(tmp_path, **kw)
    # the untrained control is a training job of 0 epochs (its method is never used); raw pixels train nothing
    expected = [("ucl", 0, 0), ("ucl", 0, 1), ("scl", 0, 1), ("ucl", 1, 0), ("ucl", 1, 0), ("ucl", 1, 1), ("scl", 1, 1)]
    assert calls == expected, "finished jobs are not redone"
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == list(images.COLUMNS) and len(lines) == 9
    names = [tuple(r.split(",")[1:3]) for r in lines[1:]]
    assert names == [(m, s) for s in "01" for m in ("untrained", "raw-pixels", "ucl", "scl")]
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert {r.split(",")[-1] for r in lines[1:]} == {settings["fingerprint"]}
    assert settings["settings"]["config"]["width"] == 4 and "method" not in settings["settings"]["config"]
    for r in lines[1:]:
        assert 0.1 < float(r.split(",")[3]) <= 1.0
    metrics = json.loads((tmp_path / "runs" / "scl-seed1" / "metrics.json").read_text())
    assert metrics["method"] == "scl" and metrics["seed"] == 1
    table, png = images.write_report(csv_path)
    text = table.read_text()
    assert "| UCL |" in text and "| SCL |" in text and "SupContrast README" in text
    assert "| *control: untrained encoder* |" in text and "| *control: raw pixels* |" in text
    assert "vs untrained encoder | vs raw pixels |" in text
    assert "| SCL vs UCL: SCL - UCL |" in text and "ddof = 1" in text
    # the mean ± std (ddof = 1) and the seed-paired verdict of SCL against raw pixels, from the CSV
    acc = {(r.split(",")[1], r.split(",")[2]): 100 * float(r.split(",")[3]) for r in lines[1:]}
    scl = np.array([acc["scl", "0"], acc["scl", "1"]])
    assert f"| SCL | {scl.mean():.1f} ± {scl.std(ddof=1):.1f} | 2 |" in text
    verdict = seed_interval((scl - np.array([acc["raw-pixels", "0"], acc["raw-pixels", "1"]])) / 100)
    row = next(line for line in text.splitlines() if line.startswith("| SCL |"))
    assert row.endswith(f"{100 * verdict.high:+.1f}] {verdict.verdict} |")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert len(manifest["invocations"]) == 2 and manifest["cells_done"] == 8


def _fake_metrics():
    return {"linear_top1": 0.5, "knn_top1": 0.5, "linear_val_top1": 0.5, "epochs": 1, "train_images": 10}


def test_a_resume_with_other_settings_is_refused(tmp_path, capsys):
    one = dict(dataset="digits", methods=["ucl"], seeds=[0], progress=False, controls=False)
    images.run(tmp_path, overrides=TINY, train_fn=lambda c, f, progress: _fake_metrics(), **one)
    with pytest.raises(ValueError, match=r"config\.width: 4 there, 8 here"):
        images.run(tmp_path, overrides={**TINY, "width": 8}, **one)
    with pytest.raises(ValueError, match=r"config\.dataset: 'digits' there"):
        images.run(tmp_path, overrides=TINY, **{**one, "dataset": "cifar10"})
    # the same settings with more seeds and methods resume (the method and seed sets are not in the fingerprint)
    calls = []
    record = lambda c, f, progress: calls.append(c.method) or _fake_metrics()  # noqa: E731
    images.run(tmp_path, overrides=TINY, train_fn=record, **{**one, "methods": ["ucl", "scl"]})
    assert calls == ["scl"]
    # a row of another configuration in the CSV is refused too
    path = tmp_path / "results.csv"
    fp = json.loads((tmp_path / "settings.json").read_text())["fingerprint"]
    path.write_text(path.read_text().replace(fp, "0123456789abcdef"))
    with pytest.raises(ValueError, match="rows of another configuration"):
        images.run(tmp_path, overrides=TINY, **one)
    args = ["reproduce", "images", "--dataset", "digits", "--width", "8", "--epochs", "1", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "holds results of other settings" in capsys.readouterr().err


def test_a_job_finished_before_its_row_is_not_rerun(tmp_path):
    one = dict(dataset="digits", methods=["ucl"], seeds=[0], overrides=TINY, progress=False, controls=False)
    images.run(tmp_path, **one)
    (tmp_path / "results.csv").unlink()  # as if killed between metrics.json and the CSV row

    def fail(*a, **k):
        raise AssertionError("the finished job must be read back, not retrained")

    images.run(tmp_path, train_fn=fail, **one)
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 2


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="methods must be a non-empty subset"):
        images.run(tmp_path, dataset="digits", methods=["byol"], overrides=TINY)
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        images.run(tmp_path, dataset="digits", seeds=[], overrides=TINY)
    with pytest.raises(ValueError, match="epochs must be an int >= 0"):
        images.run(tmp_path, dataset="digits", overrides={**TINY, "epochs": -1})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a results CSV of this experiment"):
        images.run(tmp_path / "other", dataset="digits", methods=["ucl"], seeds=[0], overrides=TINY)
    assert main(["reproduce", "images", "--dataset", "digits", "--methods", "byol", "--out", str(tmp_path / "x")]) == 2


def test_every_table_method_is_run_by_default(tmp_path):
    from hscl.losses.registry import TABLE_METHODS

    seen = []
    record = lambda c, f, progress: seen.append(c.method) or _fake_metrics()  # noqa: E731
    images.run(tmp_path, dataset="digits", seeds=[0], overrides=TINY, progress=False, controls=False, train_fn=record)
    assert seen == list(TABLE_METHODS) and len(seen) == 9


def test_cli(tmp_path, capsys):
    args = [
        "reproduce",
        "images",
        "--dataset",
        "digits",
        "--methods",
        "hscl-beta",
        "--seeds",
        "3",
        "--epochs",
        "1",
        "--width",
        "4",
        "--train-subset",
        "400",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| H-SCL (beta=1) |" in out and "| *control: raw pixels* |" in out and "written:" in out
    config = json.loads((tmp_path / "runs" / "hscl-beta-seed3" / "config.json").read_text())
    assert config["train_subset"] == 400 and config["width"] == 4 and config["seed"] == 3
    assert config["min_steps"] == 0, "an explicit --epochs pins the budget"
    assert json.loads((tmp_path / "runs" / "untrained-seed3" / "config.json").read_text())["epochs"] == 0


def test_the_subset_rule_is_part_of_the_settings_only_with_a_subset():
    """Folders whose subsets were drawn by the earlier fraction rule differ in their rows: the rule is fingerprinted
    (and a folder without a subset keeps its fingerprint)."""
    from hscl.experiments.images import settings
    from hscl.training.images import ImageConfig
    from hscl.training.runs import fingerprint

    whole, subset = settings(ImageConfig()), settings(ImageConfig(train_subset=100))
    assert "train_subset_rule" not in whole and "largest remainder" in subset["train_subset_rule"]
    assert fingerprint(subset) != fingerprint({k: v for k, v in subset.items() if k != "train_subset_rule"})
