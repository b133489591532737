"""The API reference: generated from the docstrings, current, without broken cross-references; and every
docstring example runs (doctest)."""

import ast
import doctest
import functools
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import build  # noqa: E402

MODULES = build.public_modules()


def test_reference_is_current_and_every_reference_resolves():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build.py"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_the_checker_catches_a_broken_reference():
    assert build.resolves("ExponentialTilt", "hscl.losses.hard_scl", None)  # via the hscl package
    assert build.resolves("hscl.functional.contrastive_loss", "hscl.cli", None)
    assert build.resolves("record", "hscl.diagnostics.recorder", "hscl.diagnostics.recorder.DiagnosticsRecorder")
    assert not build.resolves("ExponentialTlit", "hscl.losses.hard_scl", None)
    assert not build.resolves("hscl.functional.no_such_loss", "hscl", None)


def test_the_reference_documents_each_loss_with_its_formula():
    text = (ROOT / "docs" / "api.md").read_text()
    for name in (
        "hscl.losses.hard_scl.HSCL",
        "hscl.losses.ucl.UCL",
        "hscl.losses.supcon.SupConLoss",
        "hscl.functional.contrastive_loss",
    ):
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

    assert count("hscl.functional") >= 5 and count("hscl.losses.hard_scl") >= 5 and count("hscl.diagnostics.asymptotic")


# ------------------------------------------------------------------------------ docs/math.md and the links

MATH = ROOT / "docs" / "math.md"
#: A subscripted symbol of a formula: s_ij, E_i, L_H-SCL, E_C(i), L_inf(i, p), P_L(i) ...
SYMBOL = re.compile(r"(?<![\w.])[A-Za-z]_(?:\{[^}\s]+\}|H-[US]CL|[A-Za-z0-9]{1,4})(?![\w-])(?:\([a-z, ]+\))?")
#: Named quantities and sets that a formula may use without a subscript.
NAMED = ("eta", "beta", "tau", "tau_plus", "LSE", "logaddexp", "Assumption 1", "P(i)", "N(i)", "C(i)", "D(i)")
SECTION_REF = re.compile(r"(?:SPEC|docs/math)\.md[`)\]]*,? sections? (\d+)(?:(?:-| and |, )(\d+))?")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<(https?://[^>\s]+)>")
#: External links allowed in docs/: citations of papers only.
CITATION = re.compile(r"https?://(?:arxiv\.org|doi\.org|dx\.doi\.org)/")


def _parameters(obj) -> list[str]:
    try:
        return list(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return []


def _public_docstrings() -> dict[str, str]:
    """Every docstring the API reference shows, by ``module[.name]``, without ``code`` spans and without the
    names of the documented object's parameters (``p_flip`` is an argument, not a symbol of a formula)."""
    out = {}
    for name in MODULES:
        module = importlib.import_module(name)
        out[name] = (module.__doc__ or "", [])
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr, None)
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            out[f"{name}.{attr}"] = (getattr(obj, "__doc__", None) or "", _parameters(obj))
            if inspect.isclass(obj):
                for meth_name, meth in vars(obj).items():
                    if not meth_name.startswith("_") and inspect.isfunction(meth):
                        out[f"{name}.{attr}.{meth_name}"] = (meth.__doc__ or "", _parameters(meth))
    docs = {}
    for where, (doc, parameters) in out.items():
        doc = re.sub(r"``.*?``", "", doc, flags=re.DOTALL)
        for parameter in parameters:
            doc = re.sub(rf"(?<![\w.]){re.escape(parameter)}(?![\w])", "", doc)
        docs[where] = doc
    return docs


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _without_code(text: str) -> str:
    """Markdown without fenced code blocks and inline code (neither holds links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


@functools.cache
def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)
    return {_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def test_math_page_covers_every_symbol_the_docstrings_use():
    math_text = MATH.read_text()
    missing = {}
    for where, doc in _public_docstrings().items():
        used = set(SYMBOL.findall(doc)) | {w for w in NAMED if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w])", doc)}
        for symbol in used - {s for s in used if s in math_text}:
            missing.setdefault(symbol, []).append(where)
    assert not missing, f"symbols of the docstrings that docs/math.md does not define: {missing}"
    formulas = (
        "log E_i = LSE_{j in N(i)} (w_ij + s_ij) - LSE_{j in N(i)} (w_ij)",
        "l_ip = -s_ip + log(e^{s_ip} + K E_i)",
        "L_inf(i, p) = -s_ip + log E_i",
        "E_C(i) >= E_D(i)",
        "L_H-SCL <= L_H-UCL",
        "E_H-UCL(i) = (m_C E_C + m_D E_D) / (m_C + m_D)",
        "w_ij = beta * s_ij",
        "K_ij / sqrt(K_ii K_jj)",
        "se   = sqrt( (1/n + n_test/n_train) * s^2 )",
    )
    for formula in formulas:
        assert formula in math_text, formula


def test_section_references_name_a_section_of_the_math_page():
    sections = set(re.findall(r"^## (\d+)\. ", MATH.read_text(), flags=re.MULTILINE))
    assert sections == {"1", "2", "3", "4", "5", "6"}
    files = [*(ROOT / "src" / "hscl").rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    refs = 0
    for path in files:
        for first, last in SECTION_REF.findall(path.read_text()):
            wanted = range(int(first), int(last or first) + 1)
            assert {str(n) for n in wanted} <= sections, f"{path.relative_to(ROOT)}: section {first}-{last}"
            refs += 1
    assert refs > 10


def test_the_checks_catch_a_bad_link_and_an_uncovered_symbol():
    assert _anchor("## 6. The paper's experiments".lstrip("# ")) == "6-the-papers-experiments"
    assert _anchor("`hscl.losses`") == "hscllosses"
    assert LINK.findall("see [SPEC](../shared/SPEC.md#2) and <https://arxiv.org/abs/2209.00078>") == [
        ("../shared/SPEC.md#2", ""),
        ("", "https://arxiv.org/abs/2209.00078"),
    ]
    assert SYMBOL.findall("E_C(i) >= E_D(i), l_ip, L_H-SCL <= L_H-UCL, hscl.losses_x") == [
        "E_C(i)",
        "E_D(i)",
        "l_ip",
        "L_H-SCL",
        "L_H-UCL",
    ]
    assert CITATION.match("https://doi.org/10.1/x") and not CITATION.match("https://example.com/math")


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_every_link_resolves_inside_the_repository(page):
    path = ROOT / page if page == "README.md" else ROOT / "docs" / page
    for target, autolink in LINK.findall(_without_code(path.read_text())):
        target = target or autolink
        if re.match(r"[a-z]+:", target):
            assert page == "README.md" or CITATION.match(target), f"{page}: {target} leaves the repository"
            continue
        file, _, anchor = target.partition("#")
        local = (path.parent / file).resolve() if file else path
        assert local.is_relative_to(ROOT), f"{page}: {target} points outside the repository"
        assert local.exists(), f"{page}: {target} does not exist"
        if anchor and local.suffix == ".md":
            assert anchor in _anchors(local), f"{page}: no heading #{anchor} in {local.relative_to(ROOT)}"


# ------------------------------------------------------------------------------ docs/architecture.md: the layers

SRC = ROOT / "src" / "hscl"
#: The layers of docs/architecture.md, bottom up: a module may import its own layer and the layers below it.
#: A module belongs to the longest prefix that names it (``hscl`` itself, the public facade, only by its own name).
LAYERS = (
    ("support", ("hscl._io", "hscl._extras", "hscl._eval", "hscl._plot", "hscl.config")),
    (
        "math",
        (
            "hscl.hardening",
            "hscl._validation",
            "hscl.distributed",
            "hscl.queue",
            "hscl._triton",
            "hscl._tiled",
            "hscl._engine",
            "hscl.functional",
        ),
    ),
    ("losses", ("hscl", "hscl.losses")),
    ("diagnostics", ("hscl.diagnostics",)),
    ("data, models, transforms", ("hscl.datasets", "hscl.models", "hscl.transforms")),
    ("evaluation", ("hscl.evaluation",)),
    ("training", ("hscl.training", "hscl.training.vectors", "hscl.training.runs", "hscl.checkpoint")),
    ("experiments", ("hscl.experiments",)),
    ("CLI", ("hscl.cli", "hscl.__main__")),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """The ``hscl`` names a module imports, at module level and inside functions and classes alike."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "hscl")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base, node.module] if node.module else base)
            else:
                base = node.module or ""
            if base.split(".")[0] == "hscl":
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _layer(name: str) -> int | None:
    """The layer of a module (or of a name inside one): the longest prefix of :data:`LAYERS` that covers it."""
    best, depth = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or (p != "hscl" and name.startswith(p + "."))) and p.count(".") > depth:
                best, depth = i, p.count(".")
    return best


def _target(name: str, modules: set[str]) -> str:
    """The module an imported name lives in: the name itself, or the longest module it is an attribute of."""
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


def _violations(imports: dict[str, set[str]]) -> list[str]:
    modules = set(imports)
    bad = []
    for module, names in sorted(imports.items()):
        for name in sorted(names):
            target = _target(name, modules)
            if _layer(target) > _layer(module):
                bad.append(f"{module} ({LAYERS[_layer(module)][0]}) imports {name} ({LAYERS[_layer(target)][0]})")
    return bad


def _package_imports() -> dict[str, set[str]]:
    return {
        _module_name(p): _imports_of(p.read_text(), _module_name(p), p.name == "__init__.py")
        for p in sorted(SRC.rglob("*.py"))
    }


def test_every_module_has_a_layer_and_imports_only_down():
    imports = _package_imports()
    unplaced = [m for m in imports if _layer(m) is None]
    assert not unplaced, f"modules with no layer in docs/architecture.md: {unplaced}"
    assert not _violations(imports)
    text = (ROOT / "docs" / "architecture.md").read_text()
    for _, prefixes in LAYERS:
        for p in prefixes:
            path = p.removeprefix("hscl").lstrip(".").replace(".", "/") or "__init__"
            assert f"`{path}" in text, f"docs/architecture.md does not place {p}"


def test_the_layer_check_catches_an_upward_import():
    assert _layer("hscl.experiments.diagnose") == _layer("hscl.experiments") > _layer("hscl.diagnostics.asymptotic")
    assert _layer("hscl.config") == _layer("hscl._io") < _layer("hscl.cli")
    assert _layer("hscl") == _layer("hscl.losses.hard_scl") and _layer("hscl.hscl_extra") is None
    late = "def f():\n    from .training import images\n    import hscl.cli\n"
    found = _imports_of(late, "hscl.functional", False)
    assert found == {"hscl.training.images", "hscl.cli"}
    imports = {**_package_imports(), "hscl.functional": found}
    assert _violations(imports) == [
        "hscl.functional (math) imports hscl.cli (CLI)",
        "hscl.functional (math) imports hscl.training.images (training)",
    ]
    assert _imports_of("from ..training.records import provenance", "hscl.losses", True) == {
        "hscl.training.records.provenance"
    }


def test_no_module_imports_a_private_name_of_another():
    """``from hscl.x import _name`` couples two modules through a name that promises nothing (issue 13); private
    modules (``hscl._engine``) may be imported, their underscore-free names used."""
    src = Path(__file__).resolve().parents[1] / "src" / "hscl"
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                found += [
                    f"{path.relative_to(src)}: from {'.' * node.level}{node.module} import {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == []
