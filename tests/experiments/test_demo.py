"""``hscl demo`` (:mod:`hscl.experiments.demo`) on the embedded data: the table, the figures, reuse of finished
parts; bad arguments."""

import json

from hscl.cli import main
from hscl.experiments.demo import METHODS


def test_demo_writes_the_table_and_figures_and_reuses_finished_parts(tmp_path, capsys):
    args = [*"demo --digits-epochs 2 --graph-epochs 1 --seeds 0 1 --quiet".split(), "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    first_table = out.split("\n\n")[0].splitlines()
    rows = [line for line in first_table if line.startswith("| ") and "method" not in line]
    assert len(rows) == 2 + len(METHODS), "two controls and the demo's methods"
    assert rows[0].startswith("| *control: untrained encoder* |") and rows[1].startswith("| *control: raw pixels* |")
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert 50 < float(cells[1].split(" ± ")[0]) <= 100, f"digits accuracy of {cells[0]}"
        if cells[0] != "*control: raw pixels*":
            assert 40 < float(cells[2].split(" ± ")[0]) <= 100, f"MUTAG accuracy of {cells[0]}"
        if not cells[0].startswith("*control"):
            assert cells[3].endswith("%") and cells[4] in ("yes", "no")
    assert "vs untrained encoder | vs raw pixels |" in out and "| SCL vs UCL: SCL - UCL |" in out
    assert "| H-SCL vs SCL: H-SCL (beta=1), label pos. - SCL, label pos. |" in out
    assert str(tmp_path.resolve()) in out and "accuracy.png" in out
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    for m in METHODS:
        for name in ("diagnostics_losses.png", "diagnostics_assumption.png", "diagnostics.csv", "result.json"):
            assert (tmp_path / "digits" / m / name).is_file(), f"{m}/{name}"
        assert (tmp_path / "digits" / f"{m}-seed1" / "result.json").is_file()
    results = (tmp_path / "digits" / "results.csv").read_text().splitlines()
    assert len(results) == 1 + 2 * (2 + len(METHODS))
    diagnostics = (tmp_path / "digits" / "ucl" / "diagnostics.csv").read_text().splitlines()[1:]
    epochs = {line.split(",")[0] for line in diagnostics}
    assert epochs == {"0", "2"}
    stamp = (tmp_path / "digits" / "ucl" / "result.json").stat().st_mtime_ns
    assert main(args) == 0  # again: the finished parts are read back, not recomputed
    assert (tmp_path / "digits" / "ucl" / "result.json").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "digits" / "ucl" / "result.json").read_text())["epochs"] == 2


def test_demo_rejects_bad_arguments(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--digits-epochs", "0"]) == 2
    assert "digits_epochs must be an int >= 1" in capsys.readouterr().err
