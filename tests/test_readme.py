"""The README's code runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_training_loop_example():
    blocks = _python_blocks()
    assert blocks, "README.md lost its python example"
    assert "hscl.losses.HSCL" in blocks[0]
    code = [line for line in blocks[0].splitlines() if line.strip() and not line.startswith("import ")]
    assert len(code) <= 10, "the training-loop example should stay ten lines"


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_block_runs(index):
    namespace = {}
    exec(compile(_python_blocks()[index], f"README.md block {index}", "exec"), namespace)
    loss = namespace.get("loss")
    if loss is not None:
        assert loss.isfinite() and loss.item() > 0
