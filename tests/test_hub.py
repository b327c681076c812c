"""Saving and loading through huggingface_hub: local folders, an offline Hub cache, strictness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

from aeflow import AEFlow, AEFlowConfig, Calibration, ModelLoadError, load_model
from tests.conftest import randomize_

TINY = AEFlowConfig(image_size=64, flow_steps=2, decoder_channels=(16, 8, 8, 8))


def _calibration() -> Calibration:
    return Calibration(
        threshold=0.1, score_scale=0.02, target_specificity=0.95, residual_map_max=0.3, flow_map_min=0.5,
        flow_map_max=2.0, flow_nll_low=0.0, flow_nll_high=3.0, normal_scores=[0.05, 0.08], anomaly_scores=[0.2],
    )


@pytest.fixture
def saved_model(tmp_path: Path) -> tuple[AEFlow, Path]:
    model = randomize_(AEFlow(TINY)).eval()
    model.calibration = _calibration()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    return model, folder


def test_save_load_round_trip(saved_model: tuple[AEFlow, Path]) -> None:
    model, folder = saved_model
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md", "calibration.json", "config.json", "model.safetensors",
    ]
    loaded = load_model(folder)
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.predict(image)
        actual = loaded.predict(image)
    for name in ("score", "residual_map", "flow_map", "reconstruction"):
        assert torch.equal(getattr(expected, name), getattr(actual, name)), name
    assert loaded.config == TINY
    assert loaded.calibration == model.calibration
    assert not loaded.training


def test_missing_tensor_rejected(saved_model: tuple[AEFlow, Path]) -> None:
    _, folder = saved_model
    tensors = safetensors.torch.load_file(folder / "model.safetensors")
    removed = "decoder.head.weight"
    del tensors[removed]
    safetensors.torch.save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=f"missing tensors .*{removed}"):
        load_model(folder)


def test_config_mismatch_rejected(saved_model: tuple[AEFlow, Path]) -> None:
    _, folder = saved_model
    config = json.loads((folder / "config.json").read_text())
    config["flow_steps"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="does not match its config.json"):
        load_model(folder)


def test_truncated_weights_rejected(saved_model: tuple[AEFlow, Path]) -> None:
    _, folder = saved_model
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="damaged or incomplete"):
        load_model(folder)


def test_missing_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "no-such-model")


def test_offline_hub_cache_with_revision(
    saved_model: tuple[AEFlow, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repo id resolves through a hand-built Hub cache with HF_HUB_OFFLINE=1, pinned by commit."""
    model, folder = saved_model
    cache = tmp_path / "hub-cache"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--example-org--aeflow-tiny" / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "calibration.json"):
        shutil.copy(folder / name, snapshot / name)
    refs = cache / "models--example-org--aeflow-tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text(revision)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    loaded = AEFlow.from_pretrained("example-org/aeflow-tiny", revision=revision, cache_dir=cache)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.predict(image).score, loaded.predict(image).score)
    assert loaded.calibration == model.calibration

    default = load_model("example-org/aeflow-tiny")  # refs/main, found through HF_HUB_CACHE
    assert default.config == TINY
