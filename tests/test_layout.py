"""The tests mirror the source, as PyG's test/ mirrors torch_geometric/ (issue 13): the tests of
``src/hscl/<folder>/<module>.py`` are ``tests/<folder>/test_<module>.py`` and those of a top-level module
``tests/test_<module>.py``, a leading underscore dropped (``_validation.py`` -> ``test_validation.py``). A source
module without its test module fails here, and so does a test module that names no source module (a module renamed
or removed, a grab-bag), unless the lists below name it with the reason."""

from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hscl"
TESTS = ROOT / "tests"

_PRESET = (
    "a preset of ContrastiveLoss (a subclass fixing the negatives and the hardening): losses/test_registry.py "
    "(every method's configuration is the functional loss with its options), losses/test_identities.py "
    "(test_hscl_preset_equals_functional), losses/test_contrastive.py (the module's queue, state and statistics), "
    "test_validation.py (test_presets_validate)"
)

#: Source modules that only the tests of other modules exercise, with those tests: an empty test module beside them
#: would claim a test that does not exist.
COVERED_ELSEWHERE = {
    "_eval.py": "one context manager, eval_mode; its callers' tests check the mode is restored: "
    "diagnostics/test_embed.py, training/test_graphs.py (embed_graphs)",
    "_io.py": "atomic writes, file digests, the cache folder and the --out check, tested through their users: "
    "diagnostics/test_recorder.py and test_checkpoint.py (no temporary file left, readable by others), "
    "datasets/test_image_sets.py and datasets/test_tu.py (caches follow their source's digest), test_cli.py "
    "(an --out that is a file)",
    "losses/hard_scl.py": _PRESET,
    "losses/hard_ucl.py": _PRESET,
    "losses/scl.py": _PRESET,
    "losses/ucl.py": _PRESET,
    "losses/supcon.py": "SupConLoss, the module form of functional.supcon_loss: losses/test_identities.py (module "
    "equals function), losses/test_stability.py, test_distributed.py, test_validation.py",
}

#: Test modules that mirror no source module: the loss family's cross-cutting suites, which check the functional
#: loss, the loss modules and the engine together, and the checks of the project as a whole.
NOT_A_MIRROR = {
    "losses/test_reference_match.py": "every option combination against the float64 reference (tests/reference.py)",
    "losses/test_oracle_pml.py": "the losses against PyTorch Metric Learning's",
    "losses/test_identities.py": "the identities of docs/math.md section 2",
    "losses/test_stability.py": "finite values and exact gradients at extreme scales, temperatures and dtypes",
    "losses/test_gradcheck.py": "gradients against finite differences, second order included",
    "test_docs.py": "the API reference, the math page, links, the layers of docs/architecture.md",
    "test_readme.py": "the README's code runs",
    "test_examples.py": "examples/ run",
    "test_scripts.py": "scripts/ run in their smoke modes",
    "test_newcomer.py": "the quickstart, from a built wheel in a fresh environment",
    "test_layout.py": "this layout",
}


def _mirror(source: str) -> str:
    """The test module of a source module, both relative to their roots: ``a/_b.py`` -> ``a/test_b.py``."""
    path = PurePosixPath(source)
    return str(path.with_name(f"test_{path.stem.lstrip('_')}.py"))


def _sources(src: Path = SRC) -> set[str]:
    return {p.relative_to(src).as_posix() for p in src.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}


def _tests(tests: Path = TESTS) -> set[str]:
    return {p.relative_to(tests).as_posix() for p in tests.rglob("test_*.py")}


def _problems(sources: set[str], tests: set[str], elsewhere=COVERED_ELSEWHERE, not_a_mirror=NOT_A_MIRROR) -> list:
    expected = {}
    for source in sorted(sources):
        expected.setdefault(_mirror(source), []).append(source)
    found = [f"src/hscl/{' and '.join(s)} share the test module {t}" for t, s in expected.items() if len(s) > 1]
    for source in sorted(sources):
        has_mirror = _mirror(source) in tests
        if source in elsewhere and has_mirror:
            found.append(f"src/hscl/{source} has tests/{_mirror(source)}: take it off COVERED_ELSEWHERE")
        elif source not in elsewhere and not has_mirror:
            found.append(f"src/hscl/{source} has no test module tests/{_mirror(source)}")
    found += [f"tests/{t} names no source module" for t in sorted(tests - expected.keys() - not_a_mirror.keys())]
    found += [f"COVERED_ELSEWHERE names {s}, not a source module" for s in sorted(elsewhere.keys() - sources)]
    found += [f"NOT_A_MIRROR names tests/{t}, not a test module" for t in sorted(not_a_mirror.keys() - tests)]
    found += [
        f"NOT_A_MIRROR names tests/{t}, the test module of a source module" for t in not_a_mirror if t in expected
    ]
    return found


def test_the_tests_mirror_the_source():
    assert _problems(_sources(), _tests()) == []
    # each folder of tests is a package: two folders may then hold test modules of the same name
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    assert [str(f.relative_to(ROOT)) for f in sorted(folders) if not (f / "__init__.py").is_file()] == []


def test_the_layout_check_catches_a_missing_and_a_stray_test_module():
    sources = {"cli.py", "_io.py", "losses/scl.py", "losses/ucl.py"}
    tests = {"test_cli.py", "test_io.py", "losses/test_scl.py", "losses/test_old.py", "models/test_mlp.py"}
    assert _problems(sources, tests, elsewhere={"_io.py": "x", "gone.py": "x"}, not_a_mirror={"test_cli.py": "x"}) == [
        "src/hscl/_io.py has tests/test_io.py: take it off COVERED_ELSEWHERE",
        "src/hscl/losses/ucl.py has no test module tests/losses/test_ucl.py",
        "tests/losses/test_old.py names no source module",
        "tests/models/test_mlp.py names no source module",
        "COVERED_ELSEWHERE names gone.py, not a source module",
        "NOT_A_MIRROR names tests/test_cli.py, the test module of a source module",
    ]
    assert _problems({"_x.py", "x.py"}, {"test_x.py"}, elsewhere={}, not_a_mirror={}) == [
        "src/hscl/_x.py and x.py share the test module test_x.py"
    ]
    assert _mirror("_validation.py") == "test_validation.py" and _mirror("a/b.py") == "a/test_b.py"
