"""The API reference: generated from the docstrings, current, without broken cross-references; and every
docstring example runs (doctest)."""

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import build  # noqa: E402

MODULES = build.public_modules()


def test_reference_is_current_and_every_reference_resolves():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--check"], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_checker_catches_a_broken_reference():
    assert build.resolves("ExponentialTilt", "hscl.losses.hscl", None)  # via the hscl package
    assert build.resolves("hscl.functional.contrastive_loss", "hscl.cli", None)
    assert build.resolves("record", "hscl.diagnostics.recorder", "hscl.diagnostics.recorder.DiagnosticsRecorder")
    assert not build.resolves("ExponentialTlit", "hscl.losses.hscl", None)
    assert not build.resolves("hscl.functional.no_such_loss", "hscl", None)


def test_the_reference_documents_each_loss_with_its_formula():
    text = (ROOT / "docs" / "api.md").read_text()
    for name in ("hscl.losses.hscl.HSCL", "hscl.losses.ucl.UCL", "hscl.losses.supcon.SupConLoss",
                 "hscl.functional.contrastive_loss"):  # fmt: skip
        assert name in text
    assert "log E_i = LSE" in text


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} failing example(s) in {name}"


def test_there_are_examples():
    def count(name):
        return sum(len(t.examples) for t in doctest.DocTestFinder().find(importlib.import_module(name)))

    assert count("hscl.functional") >= 5 and count("hscl.losses.hscl") >= 5 and count("hscl.diagnostics.asymptotic")
