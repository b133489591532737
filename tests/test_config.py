"""One configuration system (``hscl.config``): the presets of every command load and resolve, dotted overrides reach
sections, ``--set`` values are read as YAML (a tag refused, never run), an unknown key names itself and where it came
from, the command line and a Python caller resolve to the same dataclass, and the committed runs' settings (their
fingerprints) are what the presets resolve to."""

import argparse
import json
from pathlib import Path

import pytest

from hscl import config as C
from hscl.cli import main
from hscl.config import read_preset
from hscl.experiments import demo, diagnose, figures, graphs, images, train
from hscl.training.images import ImageConfig
from hscl.training.runs import fingerprint

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "train": ("cpu", "modern", "paper"),
    "reproduce-graphs": ("cpu", "paper"),
    "reproduce-images": ("cpu", "paper"),
    "reproduce-figures": ("cpu", "paper"),
}


def test_presets_of_every_command_load_and_resolve():
    assert set(C.COMMANDS) == set(PRESETS)
    for command, names in PRESETS.items():
        assert C.preset_names(command) == names
    for name in PRESETS["train"]:
        C.resolve(ImageConfig, "train", name).validate()
    for name in PRESETS["reproduce-graphs"]:
        run = graphs.configure(name)
        assert run.diagnostics == ("MUTAG", "PROTEINS") and run.graph.svm_jobs == 2
    for name in PRESETS["reproduce-images"]:
        run = C.resolve(images.ImageRun, "reproduce-images", name)
        assert run.config == name and run.seeds == (0, 1, 2)
        run.image.validate()
    for name in PRESETS["reproduce-figures"]:
        assert figures.configure(name).recipe == name
    assert demo.configure() == demo.DemoConfig() and diagnose.configure().seed == 0
    with pytest.raises(FileNotFoundError, match=r"no preset 'huge' \(built in: cpu, paper\)"):
        graphs.configure("huge")
    with pytest.raises(ValueError, match="no presets for command 'demo'"):
        C.preset_names("demo")


def test_the_cpu_graph_preset_is_the_committed_run():
    """``hscl reproduce graphs --preset cpu --data-root ../shared/data/TU --out results/graphs`` resolves to the
    settings of the run in results/graphs (its fingerprint), and runs what the command always ran."""
    run = graphs.configure("cpu", {"data_root": "../shared/data/TU"})
    assert run.graph == graphs.GraphConfig(min_steps=300, min_epochs=20, svm_jobs=2)
    assert fingerprint(run.graph.settings()) == "376ce36649338648"
    assert run.datasets == graphs.BENCHMARKS and run.seeds == (0, 1) and run.data_root == "../shared/data/TU"
    assert run.methods == (*graphs.CONTROLS, *graphs.PRIMARY, *graphs.EXTRAS)


def test_the_command_line_resolves_the_committed_graph_run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # graphs.main is replaced: nothing runs, nothing is written
    args = ["reproduce", "graphs", "--preset", "cpu", "--data-root", "../shared/data/TU", "--out", "results/graphs"]
    got = _captured(monkeypatch, graphs, args)
    assert got == graphs.configure("cpu", {"data_root": "../shared/data/TU"})
    assert got.graph == graphs.GraphConfig(min_steps=300, min_epochs=20, svm_jobs=2)
    assert not (tmp_path / "results").exists()


def _captured(monkeypatch, module, argv) -> object:
    """The configuration the command line hands to ``module.main`` (which is replaced: nothing runs)."""
    seen = []

    def fake(config, out, **kw):
        seen.append(config)
        if module is train:
            return {}
        if module is figures:
            return Path(out) / "figure4_assumption.png"
        return Path(out) / "r.csv", Path(out) / "table.md", Path(out) / "a.png"

    monkeypatch.setattr(module, "main", fake)
    main(argv)  # 2 after a fake run: the fake's table.md does not exist
    assert len(seen) == 1, argv
    return seen[0]


def test_a_flag_and_set_and_a_python_caller_resolve_to_the_same_dataclass(monkeypatch, tmp_path):
    out = ["--out", str(tmp_path / "o")]
    got = _captured(
        monkeypatch,
        graphs,
        ["reproduce", "graphs", "--preset", "paper", "--hidden", "16", "--seeds", "3", "--set", "graph.lr=1e-2", *out],
    )
    assert got == graphs.configure("paper", {"graph.hidden": 16, "seeds": [3], "graph.lr": 0.01})
    assert got.graph.hidden == 16 and got.graph.lr == 0.01 and got.graph.min_steps == 1000 and got.seeds == (3,)
    # the same key by a flag and by --set: the later one wins
    got = _captured(monkeypatch, graphs, ["reproduce", "graphs", "--hidden", "16", "--set", "graph.hidden=64", *out])
    assert got.graph.hidden == 64
    got = _captured(monkeypatch, graphs, ["reproduce", "graphs", "--set", "graph.hidden=64", "--hidden", "16", *out])
    assert got.graph.hidden == 16
    job = ["train", "--dataset", "digits", "--method", "scl", "--width", "4", "--set", "weight_decay=1e-4", *out]
    got = _captured(monkeypatch, train, job)
    assert got == train.configure("cpu", {"dataset": "digits", "method": "scl", "width": 4, "weight_decay": 1e-4})
    assert got.weight_decay == 1e-4 and got.depth == 18
    got = _captured(monkeypatch, figures, ["reproduce", "figures", "--epochs", "3", "--set", "seeds=[5]", *out])
    assert got == figures.configure("cpu", {"epochs": 3, "seeds": [5]}) and got.seeds == (5,)


def test_train_and_the_image_run_agree_with_their_yaml_on_the_width(monkeypatch, tmp_path):
    """``hscl train --config cpu`` trains the width of configs/train/cpu.yaml (16); the image run's cpu preset
    overrides it to 8, and its --help says so."""
    out = ["--out", str(tmp_path / "o")]
    got = _captured(monkeypatch, train, ["train", "--dataset", "digits", "--method", "scl", "--config", "cpu", *out])
    assert got.width == C.read_preset("train", "cpu")["width"] == 16
    got = _captured(monkeypatch, images, ["reproduce", "images", "--dataset", "digits", "--preset", "cpu", *out])
    assert got.image.width == C.read_preset("reproduce-images", "cpu")["image"]["width"] == 8
    assert got.image.depth == 18 and got.image.min_steps == 300 and got.config == "cpu"
    text = " ".join(_help("hscl reproduce images", "--width").split())
    assert "cpu: 8" in text and "paper: the --config preset's" in text


def test_dotted_overrides_reach_a_section_and_keep_the_rest():
    run = graphs.configure("cpu", {"graph.hidden": 16})
    assert run.graph.hidden == 16 and run.graph.min_steps == 300 and run.seeds == (0, 1)
    assert graphs.configure("cpu", {"graph": {"hidden": 16}}) == run, "a mapping merges into the section"
    image = images.configure("paper", {"image.dataset": "cifar100", "image.width": 16}).image
    assert (image.width, image.depth, image.epochs) == (16, 50, 200), "over the paper train preset"
    with pytest.raises(ValueError, match=r"--set seeds\.x: seeds is a setting, not a section"):
        graphs.configure("cpu", {"seeds.x": 1}, sources={"seeds.x": "--set seeds.x"})
    with pytest.raises(ValueError, match=r"graph is a section of settings"):
        graphs.configure("cpu", {"graph": 3})


def test_an_unknown_key_names_itself_where_it_came_from_and_the_known_keys(tmp_path, capsys):
    with pytest.raises(
        ValueError, match=r"--set graph\.hiden: unknown key 'graph\.hiden'; known in graph: .*graph\.hidden"
    ):
        graphs.configure("cpu", {"graph.hiden": 3}, sources={"graph.hiden": "--set graph.hiden"})
    with pytest.raises(ValueError, match=r"override sed: unknown key 'sed'; known: .*seeds"):
        graphs.configure("cpu", {"sed": 3})
    preset = tmp_path / "mine.yaml"
    preset.write_text("seeds: [0]\ngraph:\n  hidden: 8\n  widht: 3\n")
    with pytest.raises(ValueError, match=rf"{preset}: unknown key 'graph\.widht'"):
        graphs.configure(str(preset))
    train_preset = tmp_path / "train.yaml"
    train_preset.write_text("depth: 18\nwidht: 3\n")
    with pytest.raises(ValueError, match=rf"{train_preset}: unknown key 'image\.widht'"):
        images.configure("cpu", {"config": str(train_preset)})
    out = ["--out", str(tmp_path / "o")]
    assert main(["reproduce", "graphs", "--set", "graph.hiden=3", *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hscl reproduce graphs: error: --set graph.hiden: unknown key"), err
    assert main(["train", "--dataset", "digits", "--method", "scl", "--config", str(preset), *out]) == 2
    assert f"{preset}: unknown key 'seeds'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("graph.hidden=16", ("graph.hidden", 16)),
        ("lr=1e-3", ("lr", 0.001)),
        ("lr=1.0e-6", ("lr", 1e-6)),
        ("seeds=[0, 1]", ("seeds", [0, 1])),
        ("data_root=null", ("data_root", None)),
        ("accelerator=cpu", ("accelerator", "cpu")),
        ("download=true", ("download", True)),
        ("data=a=b", ("data", "a=b")),
        ("x=", ("x", None)),
    ],
)
def test_set_values_are_read_as_yaml(text, expected):
    key, value = C.parse_assignment(text)
    assert (key, value) == expected and type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["=3", "a..b=1", "novalue", "1a=2", "a=[1, 2"])
def test_a_bad_assignment_is_refused(text):
    with pytest.raises(ValueError, match=r"KEY=VALUE|not plain YAML"):
        C.parse_assignment(text)


def test_a_yaml_tag_is_refused_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'width: 8\nseeds: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ValueError, match=r"--preset .*evil\.yaml: not a plain YAML file .*python/object/apply.*line 2"):
        C.read_preset("reproduce-graphs", evil, source="--preset")
    tag = f"x=!!python/object/apply:os.system ['touch {marker}']"
    with pytest.raises(ValueError, match="python/object/apply"):
        C.parse_assignment(tag)
    assert main(["reproduce", "graphs", "--set", tag, "--out", str(tmp_path / "o")]) == 2
    assert "--set" in capsys.readouterr().err
    assert not marker.exists(), "the tag was executed"


def test_as_dict_and_save(tmp_path):
    run = graphs.configure("cpu", {"datasets": ["MUTAG"]})
    data = C.as_dict(run)
    assert data["graph"]["min_steps"] == 300 and data["datasets"] == ["MUTAG"] and data["seeds"] == [0, 1]
    assert json.loads(C.save(run, tmp_path).read_text()) == data
    assert C.resolve(graphs.GraphRun, overrides=data) == run, "the saved configuration resolves to itself"
    with pytest.raises(TypeError, match="dataclass instance"):
        C.as_dict(graphs.GraphRun)


def test_a_run_saves_its_resolved_configuration_and_keeps_its_fingerprint(tmp_path, one_thread):
    config = figures.configure("cpu", {"methods": ["ucl"], "seeds": [0], "epochs": 1})
    figures.main(config, tmp_path / "new", progress=False)
    assert json.loads((tmp_path / "new" / "config.json").read_text()) == C.as_dict(config)
    figures.run(tmp_path / "old", methods=["ucl"], seeds=[0], epochs=1, progress=False)  # no resolved configuration
    assert not (tmp_path / "old" / "config.json").exists()
    settings = [json.loads((tmp_path / f / "settings.json").read_text()) for f in ("new", "old")]
    assert settings[0] == settings[1]


def test_the_cpu_figures_preset_binds_the_committed_settings(tmp_path, monkeypatch):
    """results/figures/settings.json, byte for byte, from ``hscl reproduce figures --preset cpu``."""
    saved = ROOT / "results" / "figures" / "settings.json"
    if not saved.exists():
        pytest.skip("no committed figures run")
    seen = {}

    class Bound(Exception):
        pass

    def capture(out, settings):
        seen["settings"] = settings
        raise Bound

    monkeypatch.setattr(figures, "bind_settings", capture)
    with pytest.raises(Bound):
        figures.main(figures.configure("cpu"), tmp_path, progress=False)
    record = {"fingerprint": fingerprint(seen["settings"]), "settings": seen["settings"]}
    assert json.dumps(record, indent=1, default=str) + "\n" == saved.read_text()


def test_the_image_run_binds_the_settings_of_the_former_command_line(tmp_path, monkeypatch):
    """The images experiment's settings (its fingerprint) for the cpu preset on digits, as the command line
    resolved them before the presets moved to YAML: the train preset cpu with width 8, 5 epochs, 300 steps."""
    seen = []

    class Bound(Exception):
        pass

    def capture(out, settings):
        seen.append(settings)
        raise Bound

    monkeypatch.setattr(images, "bind_settings", capture)
    with pytest.raises(Bound):
        images.main(images.configure("cpu", {"image.dataset": "digits"}), tmp_path / "new")
    with pytest.raises(Bound):
        images.run(tmp_path / "old", dataset="digits", overrides={"width": 8, "epochs": 5, "min_steps": 300})
    assert seen[0] == seen[1] and seen[0]["config"]["width"] == 8


def _parsers() -> dict:
    """Every parser of ``hscl`` by its prog, as ``main`` builds them."""
    seen = []
    parse = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        seen.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            main(["demo"])
    finally:
        argparse.ArgumentParser.parse_args = parse
    parsers, todo = {}, [seen[0]]
    while todo:
        parser = todo.pop()
        parsers[parser.prog] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return parsers


def _help(prog: str, flag: str) -> str:
    parser = _parsers()[prog]
    action = next(a for a in parser._actions if flag in a.option_strings)
    return parser._get_formatter()._format_action(action)


def test_every_flag_sets_a_key_and_shows_the_dataclass_default():
    """A flag's ``(default: X)`` in --help, where no preset fills it, is the configuration dataclass's default."""
    defaults = {
        "hscl demo": demo.DemoConfig(),
        "hscl diagnose": diagnose.DiagnoseConfig(),
        "hscl train": ImageConfig(),
        "hscl reproduce graphs": graphs.GraphRun(),
        "hscl reproduce images": images.ImageRun(),
        "hscl reproduce figures": figures.FigureRun(),
    }
    checked = 0
    for prog, parser in _parsers().items():
        for action in parser._actions:
            key = getattr(action, "key", None)
            if key is None:
                continue
            value = defaults[prog]
            for part in key.split("."):
                value = getattr(value, part)  # every key is a field of the command's dataclass
            if action.default is not None:
                assert action.default == value, (prog, action.option_strings, action.default, value)
                checked += 1
    assert checked >= 20


def test_presets():
    assert read_preset("train", "paper")["depth"] == 50 and read_preset("train", "cpu")["width"] == 16
    modern = ImageConfig(**read_preset("train", "modern")).validate()
    assert modern.optimizer == "sgd" and modern.warmup_epochs > 0 and modern.width == 64
    with pytest.raises(FileNotFoundError, match="no preset 'huge'"):
        read_preset("train", "huge")


@pytest.mark.parametrize(("text", "kind"), [("5\n", "int"), ("- lr: 0.1\n- width: 4\n", "list"), ("cpu\n", "str")])
def test_a_preset_that_is_not_a_mapping_is_refused(tmp_path, capsys, text, kind):
    path = tmp_path / "preset.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"preset\.yaml: a preset must be a YAML mapping .*got {kind}"):
        read_preset("train", str(path))
    args = ["train", "--dataset", "digits", "--method", "scl", "--config", str(path), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{path}: a preset must be a YAML mapping" in err
