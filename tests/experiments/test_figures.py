"""``hscl reproduce figures`` (:mod:`hscl.experiments.figures`): per-epoch diagnostics of runs trained with each
method (cpu preset), the combined CSV, the two figures and the table with the controls and the seed-paired verdicts;
the configuration's fingerprint on every row and the refusal of a resume with other settings; reuse of finished runs;
bad input."""

import csv
import json

import pytest

from hscl.cli import main
from hscl.experiments import figures


def test_cpu_preset(tmp_path, capsys):
    args = [
        "reproduce",
        "figures",
        "--methods",
        "scl",
        "hscl-beta",
        "--seeds",
        "0",
        "1",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    rows = list(csv.DictReader((tmp_path / "diagnostics.csv").open()))
    # 2 methods x 2 seeds x epochs {0, 2} x 4 settings
    assert len(rows) == 32 and {r["epoch"] for r in rows} == {"0", "2"}
    assert {(r["method"], r["seed"]) for r in rows} == {(m, s) for m in ("scl", "hscl-beta") for s in ("0", "1")}
    assert all(0 <= float(r["assumption_fraction"]) <= 1 for r in rows)
    fp = json.loads((tmp_path / "settings.json").read_text())["fingerprint"]
    assert {r["fingerprint"] for r in rows} == {fp}
    results = list(csv.DictReader((tmp_path / "results.csv").open()))
    names = ("untrained", "raw-pixels", "scl", "hscl-beta")
    assert [(r["method"], r["seed"]) for r in results] == [(m, s) for s in "01" for m in names]
    assert {r["fingerprint"] for r in results} == {fp}
    assert all(0.5 < float(r["linear_top1"]) <= 1 for r in results), "digits are easy for every row"
    for name in ("figure4_assumption.png", "figure5_losses.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "table.md").read_text()
    assert "| SCL |" in table and "| H-SCL (beta=1) |" in table and "/8 |" in table
    assert "| *control: untrained encoder* |" in table and "vs raw pixels |" in table
    assert "| H-SCL vs SCL: H-SCL (beta=1) - SCL |" in table
    assert "written:" in capsys.readouterr().out
    stamp = (tmp_path / "scl-seed0" / "result.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (tmp_path / "scl-seed0" / "result.json").stat().st_mtime_ns == stamp, "finished runs are reused"
    assert main([*args[:-2], "--epochs", "3", "--out", str(tmp_path)]) == 2
    assert "epochs: 2 there, 3 here" in capsys.readouterr().err, "a resume with other settings is refused"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "gpu"}, "preset must be one of"),
        ({"methods": ["byol"]}, "methods must be a non-empty subset"),
        ({"seeds": []}, "seeds must hold at least one seed"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
    ],
)
def test_bad_input(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        figures.run(tmp_path, **kwargs)


def test_every_table_method_is_the_default():
    from hscl.losses.registry import TABLE_METHODS

    assert figures.METHODS == TABLE_METHODS and len(figures.METHODS) == 9
