"""The command line: ``hscl demo`` prints the comparison table."""

import subprocess
import sys

import pytest

from hscl.cli import main


def test_demo_prints_every_loss(capsys):
    assert main(["demo", "--samples", "64", "--classes", "4"]) == 0
    out = capsys.readouterr().out
    for name in ("UCL", "H-UCL (beta=1)", "SCL", "H-SCL (tau=e^-0.5)", "H-SCL (beta=1)", "SupCon"):
        assert f"| {name}" in out
    assert "synthetic" in out  # says what the data is
    rows = [line for line in out.splitlines() if line.startswith("|") and "UCL" in line]
    values = [float(line.split("|")[3]) for line in rows]
    assert all(v > 0 for v in values)


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--samples", "1"])
    assert "--samples" in capsys.readouterr().err


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "hscl", "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in out
