"""The prepared GPU script runs end to end on CPU (its smoke mode) and writes its JSON record."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_h200_epoch_script_smoke_on_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "h200_resnet18_epoch.py"),
        "--device",
        "cpu",
        "--limit",
        "80",
        "--batch",
        "32",
        "--warmup",
        "1",
        "--split-steps",
        "1",
        "--width",
        "4",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    result = json.loads((tmp_path / "h200_epoch.json").read_text())
    assert result["device"] == "cpu" and result["images"] == 80 and result["epoch_seconds"] > 0
    assert set(result["ms_per_step"]) == {"augmentation", "forward + loss", "backward + step"}
    assert result["final_loss"] > 0 and result["target_epoch_under_10_s"] is None
    bad = subprocess.run([*cmd[:4], "--limit", "16"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "need more than --batch" in bad.stderr


def test_image_budget_check_smoke(tmp_path):
    """The budget check builds its folder from the archive and runs the three probes on one split."""
    archive = ROOT.parent / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        import pytest

        pytest.skip("../shared/data/cifar10-jpeg is not beside the repository")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import image_budget_check
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    data = image_budget_check.small_folder(archive, tmp_path / "data", 4, 2)
    assert sorted(p.name for p in (data / "train").iterdir()) == sorted(p.name for p in (data / "test").iterdir())
    assert len(list(data.glob("train/*/*.jpg"))) == 40 and len(list(data.glob("test/*/*.jpg"))) == 20
    found = image_budget_check.main(["--folder", str(data), "--min-steps", "2", "--width", "4", "--out", str(tmp_path)])
    assert found["untrained"]["epochs"] == 0 and found["default"]["epochs"] >= 1
    assert all(0 <= found[k]["linear_top1"] <= 1 for k in ("raw", "untrained", "default"))
    assert json.loads((tmp_path / "budget.json").read_text())["settings"]["method"] == "ucl"


def test_gpu_tiled_loss_bench_arguments_and_no_cuda_message(tmp_path):
    """The GPU benchmark parses its arguments and, on a machine without CUDA, exits with a clear message."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gpu_tiled_loss_bench as bench
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    args = bench.parse_args(["--sizes", "4096,8192", "--reps", "3", "--out", str(tmp_path)])
    assert args.sizes == [4096, 8192] and args.reps == 3 and args.dim == 128 and args.classes == 100
    assert bench.parse_args([]).sizes == [2**k for k in range(12, 19)]  # 4096 ... 262144
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    script = str(ROOT / "scripts" / "gpu_tiled_loss_bench.py")
    bad = subprocess.run([sys.executable, script, "--sizes", "4096,5000"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--sizes must be powers of 2" in bad.stderr
    proc = subprocess.run([sys.executable, script, "--out", str(tmp_path)], env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "no CUDA device" in proc.stderr and not list(tmp_path.iterdir())


def test_supervised_reference_check_reads_only_the_training_folds(tmp_path):
    """The supervised-reference check splits the training folds of one CV fold 80/20 and never reads its test fold:
    the inner parts add up to the training folds; the untrained and supervised rows are scored on the inner part."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import supervised_reference_check as check
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert check.main(["--dataset", "MUTAG", "--steps", "4", "--lrs", "1e-3", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "supervised_check.json").read_text())
    assert result["inner_fit"] + result["inner_val"] == 169  # MUTAG's 188 graphs less fold 0's 19 test graphs
    assert [r["control"] for r in result["rows"]] == ["untrained", "supervised"]
    assert result["rows"][1]["steps"] == 4 and all(0 <= r["inner_val_accuracy"] <= 1 for r in result["rows"])
