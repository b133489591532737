"""The command line: ``hscl demo`` on the embedded data (table, figures, reuse of finished parts), bad input,
and the module entry point."""

import json
import subprocess
import sys

from hscl.cli import main
from hscl.demo import METHODS


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


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "hscl", "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in out and "reproduce" in out and "train" in out


def test_presets_fill_only_the_flags_not_given(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from hscl.cli import GRAPH_PRESETS
    from hscl.experiments import graphs, images

    seen = {}

    def fake_graph_run(out, **kw):
        seen["graphs"] = kw
        path = Path(out) / "results.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def fake_image_run(out, **kw):
        seen["images"] = kw
        return Path(out) / "results.csv"

    monkeypatch.setattr(graphs, "run", fake_graph_run)
    monkeypatch.setattr(graphs, "write_report", lambda p: (Path(p).parent / "table.md", Path(p)))
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "table.md").write_text("table")
    assert main(["reproduce", "graphs", "--preset", "paper", "--seeds", "7", "--out", str(tmp_path / "g")]) == 0
    g = seen["graphs"]
    assert g["seeds"] == [7] and g["config"].min_steps == 1000 and g["config"].min_epochs == 100
    assert g["config"].epochs is None and g["diagnostics"] == ["MUTAG", "PROTEINS"]
    assert main(["reproduce", "graphs", "--out", str(tmp_path / "g")]) == 0  # default: the cpu preset
    g = seen["graphs"]
    cpu = GRAPH_PRESETS["cpu"]
    assert (g["config"].min_steps, g["config"].min_epochs) == (cpu["min_steps"], cpu["min_epochs"])
    assert main(["reproduce", "graphs", "--min-steps", "7", "--out", str(tmp_path / "g")]) == 0
    assert seen["graphs"]["config"].min_steps == 7 and seen["graphs"]["config"].min_epochs == cpu["min_epochs"]
    g = seen["graphs"]
    assert g["seeds"] == [0, 1] and g["config"].svm_jobs == 2

    monkeypatch.setattr(images, "run", fake_image_run)
    monkeypatch.setattr(images, "write_report", lambda p: (Path(p).parent / "table.md", Path(p)))
    (tmp_path / "table.md").write_text("table")
    assert main(["reproduce", "images", "--dataset", "digits", "--out", str(tmp_path)]) == 0
    i = seen["images"]
    assert i["preset"] == "cpu" and i["seeds"] == [0, 1, 2] and len(i["methods"]) == 9
    assert i["overrides"]["epochs"] == 5 and i["overrides"]["min_steps"] == 300, "the budget rule of the preset"
    assert i["overrides"]["width"] == 8 and i["overrides"]["train_subset"] == 10000
    assert main(["reproduce", "images", "--dataset", "digits", "--epochs", "2", "--out", str(tmp_path)]) == 0
    i = seen["images"]
    assert i["overrides"]["epochs"] == 2 and i["overrides"]["min_steps"] == 0, "an explicit --epochs pins the budget"
    assert main(["reproduce", "images", "--dataset", "cifar100", "--preset", "paper", "--out", str(tmp_path)]) == 0
    i = seen["images"]
    assert i["preset"] == "paper" and i["seeds"] == [0, 1, 2] and "width" not in i["overrides"]
    assert "min_steps" not in i["overrides"] and "epochs" not in i["overrides"]
