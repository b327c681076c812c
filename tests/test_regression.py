"""The shipped chest X-ray model on real benchmark images: stored scores and separation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aeflow import Inspector
from aeflow.metrics import roc_auc
from tests.conftest import ROOT, XRAY_DIR

MODEL_DIR = ROOT / "weights" / "chest-xray"
REFERENCE = json.loads((XRAY_DIR / "reference_scores.json").read_text())

# Scores are stored with float64 printing but computed in float32 through a deep network; 1e-4
# absolute covers run-to-run differences of CPU kernels and thread counts while catching any
# change of weights, preprocessing or scoring.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    return Inspector.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def predictions(inspector: Inspector) -> dict:
    return {name: inspector.predict_file(XRAY_DIR / name) for name in sorted(REFERENCE)}


def test_reference_set_is_balanced() -> None:
    names = sorted(REFERENCE)
    assert len([name for name in names if name.startswith("IM-") or name.startswith("NORMAL")]) == 10
    assert len([name for name in names if name.startswith("person")]) == 10


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_score_matches_reference(name: str, predictions: dict) -> None:
    prediction = predictions[name]
    expected = REFERENCE[name]
    assert prediction.score == pytest.approx(expected["score"], abs=TOLERANCE)
    assert prediction.flow_nll == pytest.approx(expected["flow_nll"], abs=TOLERANCE)
    assert prediction.recon_score == pytest.approx(expected["recon_score"], abs=TOLERANCE)


def test_pneumonia_scores_higher_than_normal(predictions: dict) -> None:
    """The ten pneumonia images outrank the ten normal ones better than chance."""
    normal = np.array([p.score for name, p in predictions.items() if not name.startswith("person")])
    pneumonia = np.array([p.score for name, p in predictions.items() if name.startswith("person")])
    assert roc_auc(normal, pneumonia) >= 0.7


def test_shipped_calibration_is_consistent(inspector: Inspector) -> None:
    calibration = inspector.calibration
    assert calibration is not None
    normal = np.array(calibration.normal_scores)
    # The threshold was set at the target specificity of the held-out normals.
    assert np.mean(normal < calibration.threshold) == pytest.approx(calibration.target_specificity, abs=0.01)
    assert calibration.normalize(calibration.threshold) == pytest.approx(0.5)
    assert calibration.residual_map_max > 0
    assert calibration.flow_map_max > calibration.flow_map_min


def test_corruption_raises_score(inspector: Inspector) -> None:
    """A normal X-ray with a bright opaque patch over one lung scores higher than the original."""
    from aeflow.io import read_image

    image = read_image(XRAY_DIR / "IM-0001-0001.jpeg")
    corrupted = image.copy()
    height, width, _ = image.shape
    corrupted[height // 4 : 3 * height // 4, width // 5 : width // 2] = 0.95
    clean, damaged = inspector.predict_arrays([image, corrupted])
    assert damaged.score > clean.score
    assert damaged.flow_nll > clean.flow_nll
    # NOTE: 1 - SSIM is not checked: on this model it falls for a flat bright patch, because the
    # decoder rebuilds flat regions easily (docs/experiments.md), which is why b = 1.0 is shipped.
    # Both maps point at the patch: they rise there against the clean image and the other lung.
    size = damaged.residual_map.shape[0]
    patch = (slice(size // 4, 3 * size // 4), slice(size // 5, size // 2))
    other_lung = (slice(None), slice(3 * size // 5, None))
    assert damaged.residual_map[patch].mean() > 1.5 * clean.residual_map[patch].mean()
    assert damaged.residual_map[patch].mean() > 1.5 * damaged.residual_map[other_lung].mean()
    assert damaged.flow_map[patch].mean() > clean.flow_map[patch].mean()
    assert damaged.flow_map[patch].mean() > damaged.flow_map[other_lung].mean()
