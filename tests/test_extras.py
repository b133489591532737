"""Light installs: ``pip install hscl`` (torch and numpy) runs the core; each pipeline says which extra it needs;
pyproject.toml declares every third-party package imported anywhere under src/hscl."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from hscl._extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hscl"

# import name -> distribution name, where they differ (a new third-party import not listed here must be a
# distribution of its own name)
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn"}

# Every optional top-level package (and the pieces of lightning), as if not installed.
OPTIONAL = sorted({*EXTRAS["all"], "lightning_fabric", "pytorch_lightning", "torchmetrics"})
IMAGES_ONLY = ["lightning", "lightning_fabric", "pytorch_lightning", "PIL", "threadpoolctl"]
GRAPHS_ONLY = ["torch_geometric", "joblib"]

BLOCKER = """
import sys

BLOCKED = {blocked!r}
assert not BLOCKED & set(sys.modules), "imported before the blocker"


class _NotInstalled:  # the packages of BLOCKED behave as if not installed
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


def _run(code: str, blocked, *args: str) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=set(blocked)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _import_errors(names, blocked) -> dict[str, str]:
    """module -> the ImportError message of importing it (or "ok"), each in a fresh interpreter state."""
    code = """
    import importlib
    import json

    out = {}
    for name in sys.argv[1:]:
        for loaded in [m for m in sys.modules if m == "hscl" or m.startswith("hscl.")]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
            out[name] = "ok"
        except ImportError as err:
            out[name] = f"{type(err).__name__}: {err}"
    print(json.dumps(out))
    """
    return json.loads(_ok(_run(code, blocked, *names)).splitlines()[-1])


def test_core_runs_with_torch_and_numpy_only():
    code = """
    import torch

    import hscl
    from hscl import HSCL, SCL, EmbeddingQueue, ExponentialTilt, SupConLoss, Threshold, functional
    from hscl.diagnostics import DiagnosticsRecorder, assumption_report, asymptotic_losses, embed_views
    import hscl.checkpoint, hscl.models, hscl.transforms  # torch-only modules

    torch.manual_seed(0)
    z = torch.randn(16, 2, 8, requires_grad=True)
    labels = torch.arange(16) % 4
    losses = [
        functional.contrastive_loss(z, labels, negatives="other_class", hardening=ExponentialTilt(1.0)),
        functional.supcon_loss(z, labels),
        SCL()(z, labels),
        HSCL(beta=1.0)(z, labels),
        SupConLoss()(z, labels),
    ]
    queued = HSCL(beta=1.0, queue_size=32)
    for _ in range(3):
        losses.append(queued(z, labels, instance_ids=torch.arange(16)))
    torch.stack(losses).sum().backward()
    assert all(torch.isfinite(x) for x in losses) and torch.isfinite(z.grad).all()

    queue = EmbeddingQueue(8)
    queue.push(torch.randn(5, 4), torch.arange(5), torch.arange(5))
    queue.push(torch.randn(5, 4), torch.arange(5), torch.arange(5, 10))
    assert queue.entries()[0].shape == (8, 4)

    report = assumption_report(z.detach(), labels, hardening=Threshold(0.6), progress=True)
    assert 0.0 <= report.fraction <= 1.0
    asymptotic_losses(z.detach(), labels, hardening=ExponentialTilt(1.0))
    x = torch.randn(20, 8)
    zz, yy = embed_views(torch.nn.Linear(8, 4), (x, torch.arange(20) % 2), augment=lambda b: b, progress=True)
    assert zz.shape == (20, 2, 4)
    recorder = DiagnosticsRecorder(sys.argv[1])
    recorder.record(0, zz, yy, draw=False)
    try:
        recorder.record(1, zz, yy)  # draws: needs matplotlib
    except ImportError as err:
        assert "pip install 'hscl[images]'" in str(err) and "matplotlib" in str(err), err
    else:
        raise AssertionError("drew a figure without matplotlib")
    print("core ok")
    """
    with tempfile.TemporaryDirectory() as tmp:
        assert "core ok" in _ok(_run(code, OPTIONAL, tmp))


@pytest.mark.parametrize(
    ("blocked", "expected"),
    [
        (
            OPTIONAL,
            {
                "hscl.training": ("images", "graphs"),
                "hscl.datasets": ("images", "graphs"),
                "hscl.evaluation": ("images", "graphs"),
                "hscl.experiments.graphs": ("graphs",),
                "hscl.experiments.images": ("images",),
                "hscl.experiments.figures": ("images",),
                "hscl.diagnostics.callback": ("images",),
            },
        ),
        (  # the graphs extra installed, not the images one
            IMAGES_ONLY,
            {
                "hscl.training": None,
                "hscl.datasets": None,
                "hscl.experiments.graphs": None,
                "hscl.training.images": ("images",),
                "hscl.datasets.image_readers": ("images",),
                "hscl.experiments.images": ("images",),
            },
        ),
        (  # the images extra installed, not the graphs one
            GRAPHS_ONLY,
            {
                "hscl.training": None,
                "hscl.experiments.figures": None,
                "hscl.training.graphs": ("graphs",),
                "hscl.datasets.tu": ("graphs",),
                "hscl.experiments.graphs": ("graphs",),
            },
        ),
    ],
    ids=["core", "graphs-extra", "images-extra"],
)
def test_a_pipeline_without_its_extra_names_the_extra(blocked, expected):
    got = _import_errors(list(expected), blocked)
    for name, extras in expected.items():
        if extras is None:
            assert got[name] == "ok", (name, got[name])
            continue
        assert got[name].startswith("MissingExtraError: hscl."), (name, got[name])
        for extra in ("images", "graphs", "all"):
            assert (f"pip install 'hscl[{extra}]'" in got[name]) == (extra in extras), (name, got[name])


def test_hscl_help_without_extras():
    code = """
    import runpy

    sys.argv = ["hscl", *sys.argv[1:]]
    runpy.run_module("hscl", run_name="__main__", alter_sys=True)
    """
    for args in (["--help"], ["train", "--help"], ["reproduce", "graphs", "--help"], ["diagnose", "--help"]):
        assert "usage: hscl" in _ok(_run(code, OPTIONAL, *args))
    for args, extra in (
        (["train", "--dataset", "digits", "--method", "scl", "--out", "unused"], "images"),
        (["reproduce", "graphs", "--out", "unused"], "graphs"),
        (["demo", "--out", "unused"], "all"),
    ):
        proc = _run(code, OPTIONAL, *args)
        assert proc.returncode == 2, proc.stderr
        assert f"needs the '{extra}' extra: pip install 'hscl[{extra}]'" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    assert not (ROOT / "unused").exists()


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(module: str) -> str:
    return _name(DISTRIBUTIONS.get(module, module))


def _third_party_imports(path: Path) -> set[str]:
    """The top-level modules imported anywhere in ``path`` (also inside functions), less the standard library
    and hscl itself."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"hscl"}


def _required_extras(path: Path) -> set[str]:
    """The extras named by ``require(__name__, "extra", ...)`` at the top level of ``path``."""
    extras = set()
    for node in ast.parse(path.read_text()).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "require":
            extras |= {a.value for a in call.args[1:] if isinstance(a, ast.Constant)}
    return extras


def test_pyproject_declares_every_import():
    project = _pyproject()["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    assert core == {"torch", "numpy"}
    assert extras["all"] == extras["images"] | extras["graphs"]
    for extra, modules in EXTRAS.items():  # hscl._extras checks what pyproject.toml installs
        assert {_distribution(m) for m in modules} == extras[extra], extra
    undeclared = {}
    for path in sorted(SRC.rglob("*.py")):
        needed = {_distribution(m) for m in _third_party_imports(path)}
        pipeline = _required_extras(path)
        allowed = core | (set().union(*(extras[e] for e in pipeline)) if pipeline else extras["all"])
        if needed - allowed:
            undeclared[str(path.relative_to(ROOT))] = sorted(needed - allowed)
    assert not undeclared, f"imported but not declared in pyproject.toml (or not in the module's extra): {undeclared}"


def test_make_installs_every_extra():
    makefile = (ROOT / "Makefile").read_text()
    assert '-e ".[all,test]"' in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
