"""The command line (:mod:`hscl.cli`): the module entry point, presets filling only the flags not given, a bad
command line as one ``hscl COMMAND: error:`` line before any work, ``--version``, every option's default in
``--help``, the method choices and the ``--setting`` values. What each command does is tested beside its module,
in ``tests/experiments/``."""

import subprocess
import sys
from pathlib import Path

import pytest

from hscl.cli import main, parse_setting
from hscl.hardening import ExponentialTilt, Threshold
from tests.conftest import one_error_line as _one_error_line
from tests.conftest import train_argv as _train


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "hscl", "--help"], capture_output=True, text=True, check=True).stdout
    assert "demo" in out and "reproduce" in out and "train" in out


def test_presets_fill_only_the_flags_not_given(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from hscl.config import read_preset
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
    cpu = read_preset("reproduce-graphs", "cpu")["graph"]
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
    assert i["overrides"]["width"] == 8 and i["overrides"]["train_subset"] is None, "the preset's 10,000 is a cap"
    assert main(["reproduce", "images", "--dataset", "digits", "--train-subset", "100", "--out", str(tmp_path)]) == 0
    assert seen["images"]["overrides"]["train_subset"] == 100, "an explicit --train-subset is exact"
    import hscl.training.images as training_images

    monkeypatch.setattr(training_images, "training_split_size", lambda config: 45_000)  # as CIFAR-10's
    assert main(["reproduce", "images", "--dataset", "digits", "--out", str(tmp_path)]) == 0
    assert seen["images"]["overrides"]["train_subset"] == 10000, "a larger training split is capped"
    assert main(["reproduce", "images", "--dataset", "digits", "--epochs", "2", "--out", str(tmp_path)]) == 0
    i = seen["images"]
    assert i["overrides"]["epochs"] == 2 and i["overrides"]["min_steps"] == 0, "an explicit --epochs pins the budget"
    assert main(["reproduce", "images", "--dataset", "cifar100", "--preset", "paper", "--out", str(tmp_path)]) == 0
    i = seen["images"]
    paper = read_preset("train", "paper")  # the paper preset sets no width, epochs or budget of its own
    assert i["preset"] == "paper" and i["seeds"] == [0, 1, 2] and i["overrides"]["width"] == paper["width"]
    assert i["overrides"]["min_steps"] == 0 and i["overrides"]["epochs"] == paper["epochs"]


# --------------------------------------------------------------------------------------------------------------------
# Bad command lines: one `hscl COMMAND: error:` line naming the flag or file, exit code 2, before any work.


def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for command, args in (
        ("reproduce graphs", ["reproduce", "graphs", "--datasets", "MUTAG", "--out", str(blocker)]),
        ("demo", ["demo", "--out", str(blocker)]),
        ("demo", ["demo", "--out", str(blocker / "sub")]),
        ("train", _train(str(blocker))),
    ):
        assert main(args) == 2
        line = _one_error_line(capsys, command)
        assert "--out" in line and "not a folder" in line
    assert blocker.read_text() == "x"
    with pytest.raises(ValueError, match="not a folder"):  # the Python API too
        from hscl.experiments.demo import run

        run(blocker / "sub")


def test_a_yaml_python_tag_is_refused_never_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    config = tmp_path / "evil.yaml"
    config.write_text(f'!!python/object/apply:os.system ["touch {marker}"]\n')
    for command, args in (
        ("train", [*_train(str(tmp_path / "o")), "--config", str(config)]),
        ("reproduce images", ["reproduce", "images", "--dataset", "digits", "--config", str(config), "--out", "o2"]),
    ):
        assert main(args) == 2
        line = _one_error_line(capsys, command)
        assert f"--config {config}" in line and "python/object/apply" in line
    assert not marker.exists(), "the tag was executed"
    assert not (tmp_path / "o").exists() and not Path("o2").exists()


# --- hscl --version and the defaults in --help (issue 12) ---


def _all_parsers(monkeypatch) -> list:
    """Every parser of ``hscl`` (the top level and each subcommand), as ``main`` builds them."""
    import argparse

    seen = []

    def capture(self, args=None, namespace=None):
        seen.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        main(["demo"])
    monkeypatch.undo()
    parsers, todo = [], [seen[0]]
    while todo:
        parser = todo.pop()
        parsers.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return parsers


def test_version(capsys):
    import hscl
    from hscl.training.records import git_commit

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    from hscl.training.records import git_dirty

    commit, dirty = git_commit(), " with uncommitted changes" if git_dirty() else ""
    expected = f"hscl {hscl.__version__}" + (f" (git commit {commit}{dirty})" if commit else "") + "\n"
    assert capsys.readouterr().out == expected


def test_every_option_shows_its_default_in_help(monkeypatch):
    parsers = _all_parsers(monkeypatch)
    progs = {p.prog for p in parsers}
    assert {"hscl", "hscl train", "hscl diagnose", "hscl reproduce graphs", "hscl reproduce images"} <= progs
    missing = []
    for parser in parsers:
        for action in parser._actions:
            if not action.option_strings or action.required or action.dest in ("help", "version"):
                continue
            if "default" not in parser._get_formatter()._format_action(action):  # the option's lines in --help
                missing.append(f"{parser.prog} {action.option_strings[-1]}")
    assert missing == []
    train = next(p for p in parsers if p.prog == "hscl train").format_help()
    assert "(default: off)" in train and "(default: the --config preset's)" in train
    # an option left None to be filled by a preset (or meaning "none") says what it really is, with the preset
    # values read from the preset files (configs/reproduce-*/), not "(default: None)"
    from hscl.config import preset_names, read_preset

    def shown(v):
        return " ".join(map(str, v)) if isinstance(v, list) else str(v)

    def preset_value(command, name, key, missing):
        value = read_preset(command, name)
        for part in key.split("."):
            value = value.get(part, missing) if isinstance(value, dict) else missing
        return value

    lines = {}  # "prog --option": the option's --help text on one line
    for parser in parsers:
        prog = parser.prog
        for action in parser._actions:
            if action.option_strings:
                text = " ".join(parser._get_formatter()._format_action(action).split())
                lines[f"{prog} {action.option_strings[-1]}"] = text
    assert [k for k, text in lines.items() if "(default: None)" in text] == []
    for prog, command, flags in (
        (
            "hscl reproduce graphs",
            "reproduce-graphs",
            {f: f for f in ("seeds", "diagnostics")}
            | {f: f"graph.{f}" for f in ("min_steps", "min_epochs", "svm_jobs")},
        ),
        (
            "hscl reproduce images",
            "reproduce-images",
            {"seeds": "seeds", "train_subset": "train_subset_cap"}
            | {f: f"image.{f}" for f in ("width", "epochs", "min_steps")},
        ),
    ):
        assert set(preset_names(command)) == {"cpu", "paper"}
        for field, key in flags.items():
            text = lines[f"{prog} --{field.replace('_', '-')}"]
            for name in preset_names(command):
                missing = "none" if key == "train_subset_cap" else "the --config preset's"
                assert f"{name}: {shown(preset_value(command, name, key, missing))}" in text, (prog, field, text)
    assert (
        "(default: none" in lines["hscl diagnose --allow-factory"] and "(default: none" in lines["hscl diagnose --out"]
    )


def test_train_method_choices_are_the_registry(tmp_path, monkeypatch, capsys):
    import hscl.training.images as T
    from hscl.losses.registry import METHODS

    seen = []
    monkeypatch.setattr(T, "train_images", lambda config, out, **kw: seen.append(config.method) or {})
    for name in METHODS:
        assert main(["train", "--dataset", "digits", "--method", name, "--out", str(tmp_path)]) == 0
    assert seen == list(METHODS) and {"scl-labels", "hscl-tau-labels", "hscl-beta-labels", "hscl"} <= set(seen)
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "digits", "--method", "byol", "--out", str(tmp_path)])
    assert "invalid choice: 'byol'" in capsys.readouterr().err


def test_parse_setting():
    assert set(parse_setting("paper")) == {"tau=e^-0.5", "tau=e^-0.1", "beta=1", "beta=2"}
    assert isinstance(parse_setting("beta=0.5")["beta=0.5"], ExponentialTilt)
    t = parse_setting("tau=e^-0.5")["tau=e^-0.5"]
    assert isinstance(t, Threshold) and t.log_tau == pytest.approx(-0.5)
    assert parse_setting("tau=0.7")["tau=0.7"].tau == 0.7
    for bad in ("beta=__import__('os')", "gamma=1", "tau=e^x"):
        with pytest.raises(Exception, match="unknown setting"):
            parse_setting(bad)
