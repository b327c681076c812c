"""The aeflow command: train on a small real folder, resume exactly, evaluate, predict, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from tests.conftest import ROOT, XRAY_DIR

TRAIN_NORMAL = ROOT / "tests" / "data" / "train_normal"
# 64 px keeps each CLI training run to seconds while using the real encoder, flow and decoder.
FAST = ["--image-size", "64", "--batch-size", "8", "--seed", "3"]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m aeflow`` in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "aeflow", *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if check and result.returncode != 0:
        pytest.fail(f"aeflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark-shaped folder: 20 real normal training images, 4 labelled test images."""
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(TRAIN_NORMAL, root / "train" / "NORMAL", ignore=shutil.ignore_patterns("*.md"))
    for name, label in [
        ("IM-0001-0001.jpeg", "NORMAL"),
        ("IM-0003-0001.jpeg", "NORMAL"),
        ("person100_bacteria_475.jpeg", "PNEUMONIA"),
        ("person100_bacteria_477.jpeg", "PNEUMONIA"),
    ]:
        (root / "test" / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(XRAY_DIR / name, root / "test" / label / name)
    return root


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("model")
    result = run_cli("train", "--data", str(data_dir), "--output", str(output), "--epochs", "2", *FAST)
    assert "cached in memory" in result.stderr
    assert "Checkpoints go to" in result.stderr
    return output


def test_train_writes_calibrated_model(trained: Path) -> None:
    names = {path.name for path in trained.iterdir()}
    assert {"config.json", "model.safetensors", "calibration.json", "training_summary.json", "checkpoint"} <= names
    summary = json.loads((trained / "training_summary.json").read_text())
    assert [entry["epoch"] for entry in summary["history"]] == [1, 2]
    calibration = json.loads((trained / "calibration.json").read_text())
    assert len(calibration["normal_scores"]) == 3  # 15% of 20 held out


def test_resume_continues_exactly(data_dir: Path, trained: Path, tmp_path: Path) -> None:
    """One epoch, then --resume to two, gives the same weights as two epochs in one go."""
    output = tmp_path / "resumed"
    run_cli("train", "--data", str(data_dir), "--output", str(output), "--epochs", "1", *FAST)
    run_cli("train", "--data", str(data_dir), "--output", str(output), "--epochs", "2", "--resume", *FAST)
    straight = safetensors.torch.load_file(trained / "model.safetensors")
    resumed = safetensors.torch.load_file(output / "model.safetensors")
    assert straight.keys() == resumed.keys()
    different = [name for name in straight if not torch.equal(straight[name], resumed[name])]
    assert different == []


def test_evaluate_writes_metrics_and_report(data_dir: Path, trained: Path, tmp_path: Path) -> None:
    metrics_path = tmp_path / "m.json"
    result = run_cli(
        "evaluate", "--data", str(data_dir), "--model", str(trained), "--output", str(metrics_path),
        "--report", str(tmp_path / "report"),
    )
    assert "AUROC" in result.stdout
    metrics = json.loads(metrics_path.read_text())
    assert 0.0 <= metrics["auroc"] <= 1.0
    assert metrics["counts"] == {"NORMAL": 2, "PNEUMONIA": 2}
    for key in ("f1", "accuracy", "sensitivity", "specificity", "threshold"):
        assert key in metrics["shipped_threshold"]
    assert metrics["model"] == str(trained)
    assert (tmp_path / "report" / "roc.png").stat().st_size > 0
    assert (tmp_path / "report" / "histogram.png").stat().st_size > 0


def test_predict_json_and_maps(trained: Path, tmp_path: Path) -> None:
    image = XRAY_DIR / "IM-0001-0001.jpeg"
    result = run_cli("predict", "--model", str(trained), "--json", "--save-maps", str(tmp_path), str(image))
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["verdict"] in {"normal", "anomalous"}
    assert 0.0 < record["normalized_score"] < 1.0
    assert (record["score"] >= record["threshold"]) == (record["verdict"] == "anomalous")
    for suffix in ("reconstruction.png", "residual.png", "flow.png", "residual.npy", "flow.npy"):
        assert (tmp_path / f"IM-0001-0001_{suffix}").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--data", "{missing}", "--output", "{tmp}/out"], "not found"),
        (["train", "--data", "{no_normal}", "--output", "{tmp}/out"], "has no NORMAL/ folder"),
        (["train", "--data", "{empty}", "--output", "{tmp}/out"], "contains no images"),
        (["evaluate", "--data", "{missing}", "--model", "{tmp}"], "not found"),
        (["predict", "--model", "{tmp}/no-model", "{image}"], "not found"),
        (["predict", "--model", "{tmp}", "{image}"], "has no config.json"),
    ],
)
def test_errors_are_one_line(arguments: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "no_normal" / "train" / "PNEUMONIA").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "NORMAL").mkdir(parents=True)
    values = {
        "missing": str(tmp_path / "missing"), "no_normal": str(tmp_path / "no_normal"),
        "empty": str(tmp_path / "empty"), "tmp": str(tmp_path), "image": str(XRAY_DIR / "IM-0001-0001.jpeg"),
    }
    result = run_cli(*[argument.format(**values) for argument in arguments], check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("aeflow: error:")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = run_cli("--debug", "train", "--data", str(tmp_path / "missing"), "--output", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_calibrate_changes_score_without_retraining(data_dir: Path, trained: Path, tmp_path: Path) -> None:
    output = tmp_path / "pooled"
    run_cli("calibrate", "--model", str(trained), "--data", str(data_dir), "--output", str(output),
            "--flow-reduction", "pooled", "--seed", "3")
    assert json.loads((output / "config.json").read_text())["flow_reduction"] == "pooled"
    original = safetensors.torch.load_file(trained / "model.safetensors")
    recalibrated = safetensors.torch.load_file(output / "model.safetensors")
    assert all(torch.equal(original[name], recalibrated[name]) for name in original)
    before = json.loads((trained / "calibration.json").read_text())
    after = json.loads((output / "calibration.json").read_text())
    assert len(after["normal_scores"]) == len(before["normal_scores"])
    assert after["threshold"] != before["threshold"]
