"""The command line: ``hscl demo`` on the embedded data (table, figures, reuse of finished parts), bad input,
and the module entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

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
# Bad command lines: one `hscl COMMAND: error:` line naming the flag or file, exit code 2, before any work; and
# `hscl diagnose` on what `hscl train` and the graph pipeline write.


class _Payload:
    """Pickles as a call to os.system: a checkpoint holding it must be refused, never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _one_error_line(capsys, command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hscl {command}: error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def _train(out, *extra):
    return ["train", "--dataset", "digits", "--method", "scl", "--epochs", "1", "--width", "4", *extra, "--out", out]


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_train_on_a_missing_gpu_is_refused(tmp_path, capsys):
    assert main(_train(str(tmp_path / "o"), "--accelerator", "gpu")) == 2
    line = _one_error_line(capsys, "train")
    assert "--accelerator gpu" in line and "no GPU" in line
    assert not (tmp_path / "o").exists(), "nothing written"


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


def test_a_malicious_or_truncated_checkpoint_is_refused_before_resuming(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil" / "checkpoints" / "last.ckpt"
    evil.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": _Payload(marker)}, evil)
    assert main(_train(str(tmp_path / "evil"))) == 2
    line = _one_error_line(capsys, "train")
    assert str(evil) in line and "refused" in line and "cannot resume" in line
    assert not marker.exists(), "the pickled call ran"
    truncated = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    truncated.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    assert main(_train(str(tmp_path / "cut"))) == 2
    line = _one_error_line(capsys, "train")
    assert str(truncated) in line and "cannot resume" in line and "truncated" in line
    runs = tmp_path / "rep" / "runs" / "scl-seed0" / "checkpoints"
    runs.mkdir(parents=True)
    (runs / "last.ckpt").write_bytes(b"not a checkpoint")
    assert main(["reproduce", "images", "--dataset", "digits", "--methods", "scl", "--out", str(tmp_path / "rep")]) == 2
    assert str(runs / "last.ckpt") in _one_error_line(capsys, "reproduce images")


def test_a_train_subset_smaller_than_the_classes_is_refused(tmp_path, capsys):
    # balanced_split keeps at least one image of every class: --train-subset 3 on digits trained on 10 images
    assert main(_train(str(tmp_path / "o"), "--train-subset", "3")) == 2
    line = _one_error_line(capsys, "train")
    assert "--train-subset 3" in line and "10 classes" in line
    assert not (tmp_path / "o").exists()


def test_diagnostics_must_name_a_data_set_of_the_run(tmp_path, monkeypatch, capsys):
    from hscl.experiments import graphs

    seen = {}

    def fake_run(out, **kw):
        seen.update(kw)
        return Path(out) / "results.csv"

    monkeypatch.setattr(graphs, "run", fake_run)
    monkeypatch.setattr(graphs, "write_report", lambda p: (Path(p).parent / "table.md", Path(p)))
    (tmp_path / "table.md").write_text("table")
    base = ["reproduce", "graphs", "--out", str(tmp_path)]
    assert main([*base, "--datasets", "MUTAG", "--diagnostics", "PROTEINS"]) == 2
    line = _one_error_line(capsys, "reproduce graphs")
    assert "--diagnostics PROTEINS" in line and "--datasets MUTAG" in line and not seen
    folder = str(tmp_path / "data" / "MUTAG")
    assert main([*base, "--datasets", folder, "PTC_MR", "--diagnostics", "MUTAG"]) == 0
    assert seen["diagnostics"] == [folder], "a folder's name means that folder"
    assert main([*base, "--datasets", "MUTAG"]) == 0
    assert seen["diagnostics"] == ["MUTAG"], "the preset's diagnostics: those of the run's data sets"


def _image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, base in (("dark", 50), ("light", 200)):
        (root / c).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(base + rng.integers(-40, 40, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_diagnose_reads_an_hscl_train_run(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "imgs")
    job = ["train", "--dataset", "imgs", "--method", "scl", "--width", "4", "--epochs", "1", "--batch-size", "16"]
    assert main([*job, "--temperature", "0.4", "--out", "run"]) == 0
    capsys.readouterr()
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert main(["diagnose", "--checkpoint", str(last), "--setting", "beta=1", "--quiet", "--out", "d"]) == 0
    out = capsys.readouterr().out
    assert "on imgs (12 samples x 2 views, t=0.4" in out, "the run's data set (its training split), temperature"
    assert "SimCLR (crop 8" in out and "| beta=1 |" in out
    from hscl.experiments.diagnose import load_encoder

    enc = load_encoder(tmp_path / "run")  # the ResNet of the run, with the normalisation it trained with
    state = torch.load(last, weights_only=True)["state_dict"]
    assert enc.kind == "images" and enc.mean == state["mean"].flatten().tolist()
    assert enc.std == state["std"].flatten().tolist()
    rows = (tmp_path / "d" / "diagnose.csv").read_text().splitlines()
    assert len(rows) == 2 and 0 <= float(rows[1].split(",")[rows[0].split(",").index("assumption_fraction")]) <= 1
    # the run's folder, the data given as a path, a subset; the same seed gives the same views
    args = ["diagnose", "--checkpoint", "run", "--data", str(tmp_path / "imgs"), "--samples", "6", "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "(6 samples x 2 views" in first and main(args) == 0 and capsys.readouterr().out == first
    assert main(["diagnose", "--checkpoint", "run", "--noise", "0.2", "--quiet"]) == 2
    assert "vector (MLP) checkpoints" in _one_error_line(capsys, "diagnose")
    assert main(["diagnose", "--checkpoint", str(tmp_path / "imgs"), "--quiet"]) == 2
    assert "without checkpoints/last.ckpt" in _one_error_line(capsys, "diagnose")


def test_diagnose_rebuilds_your_own_encoder_only_when_allowed(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the current folder is added for the factory: undone after
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "imgs")
    (tmp_path / "diag_encoders.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())\n"
    )
    job = ["train", "--dataset", "imgs", "--method", "scl", "--epochs", "1", "--batch-size", "16"]
    assert main([*job, "--encoder", "diag_encoders:make", "--out", "run"]) == 0
    capsys.readouterr()
    assert main(["diagnose", "--checkpoint", "run", "--setting", "beta=1", "--quiet"]) == 2
    line = _one_error_line(capsys, "diagnose")
    assert "diag_encoders:make" in line and "--allow-factory" in line, "the factory is not imported unasked"
    args = ["diagnose", "--checkpoint", "run", "--setting", "beta=1", "--allow-factory", "diag_encoders:make"]
    assert main([*args, "--quiet"]) == 0
    assert "on imgs (12 samples x 2 views" in capsys.readouterr().out


def test_diagnose_reads_a_graph_encoder(tmp_path, monkeypatch, capsys, one_thread):
    import shutil

    from hscl.checkpoint import save_model
    from hscl.datasets.tu import BUNDLED, load_tu
    from hscl.losses.registry import make_loss
    from hscl.models import GINEncoder
    from hscl.training import pretrain_graphs

    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    mutag = load_tu("MUTAG")
    torch.manual_seed(0)
    model = GINEncoder(mutag.num_features, hidden=8, layers=2)
    pretrain_graphs(model, list(mutag), make_loss("scl", 0.4), labels=mutag.labels, epochs=1, batch_size=64)
    ckpt = tmp_path / "gin.pt"
    save_model(ckpt, model, temperature=0.4, augment_ratio=0.3, dataset="MUTAG")
    assert main(["diagnose", "--checkpoint", str(ckpt), "--setting", "tau=e^-0.5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on MUTAG (188 samples x 2 views, t=0.4" in out and "GraphCL (ratio 0.3" in out
    assert "| tau=e^-0.5 |" in out
    folder = shutil.copytree(BUNDLED / "MUTAG", tmp_path / "raw" / "MUTAG")  # a folder of TU raw files
    assert main(["diagnose", "--checkpoint", str(ckpt), "--data", str(folder), "--samples", "40", "--quiet"]) == 0
    assert "(40 samples x 2 views" in capsys.readouterr().out
    save_model(tmp_path / "other.pt", GINEncoder(3, hidden=8, layers=2), dataset="MUTAG")
    assert main(["diagnose", "--checkpoint", str(tmp_path / "other.pt"), "--quiet"]) == 2
    assert "MUTAG has 7 node features but the checkpoint's GIN expects 3" in _one_error_line(capsys, "diagnose")


_GRAPH_FACTORY = """from torch import nn


class NodeSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(7, 6)

    def forward(self, batch):
        h = self.lin(batch.x).relu()
        return h.new_zeros(batch.num_graphs, h.shape[1]).index_add_(0, batch.batch, h)


def make():
    return NodeSum()
"""


def test_diagnose_reads_your_own_graph_encoder(tmp_path, monkeypatch, capsys, one_thread):
    # a custom spec says nothing of its data: train_graph_encoder(save=...) records kind "graphs" and the data set
    from hscl.datasets.tu import load_tu
    from hscl.training import train_graph_encoder

    monkeypatch.setenv("HSCL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the current folder is added for the factory: undone after
    monkeypatch.chdir(tmp_path)
    (tmp_path / "diag_graph_encoders.py").write_text(_GRAPH_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))  # for train_graph_encoder, in Python
    graphs = list(load_tu("MUTAG"))[:40]
    options = dict(temperature=0.4, epochs=1, batch_size=20, augment_ratio=0.3, dataset="MUTAG")
    train_graph_encoder(graphs, method="scl", encoder="diag_graph_encoders:make", save=tmp_path / "own.pt", **options)
    args = ["diagnose", "--checkpoint", "own.pt", "--allow-factory", "diag_graph_encoders:make", "--samples", "30"]
    assert main([*args, "--setting", "beta=1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on MUTAG (30 samples x 2 views, t=0.4" in out and "GraphCL (ratio 0.3" in out and "| beta=1 |" in out


# --- hscl --version, defaults in --help, hscl train --encoder (issue 12) ---


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


def test_train_with_your_own_encoder_from_the_command_line(tmp_path, monkeypatch, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(sys, "path", list(sys.path))  # hscl train adds the current folder: undone after the test
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli_encoders.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())\n"
    )
    try:
        job = ["train", "--dataset", "digits", "--method", "ucl", "--epochs", "0", "--train-subset", "100"]
        assert main([*job, "--encoder", "cli_encoders:make", "--out", "run"]) == 0
        record = json.loads((tmp_path / "run" / "config.json").read_text())["encoder"]
        sequential = "torch.nn.modules.container.Sequential"
        assert record == {"factory": "cli_encoders:make", "class": sequential, "feature_dim": 4 * 6 * 6}
        capsys.readouterr()
        for factory, message in (
            ("cli_encoders:missing", "encoder factory 'cli_encoders:missing': module 'cli_encoders' has no attribute"),
            ("nowhere:make", "encoder factory 'nowhere:make': cannot import module 'nowhere'"),
            ("os.system('x')", "an encoder factory is written 'package.module:function'"),
        ):
            assert main([*job, "--encoder", factory, "--out", "bad"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("hscl train: error: ") and message in err[0], err
        assert not (tmp_path / "bad").exists()
    finally:
        torch.set_num_threads(threads)
