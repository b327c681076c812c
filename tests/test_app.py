"""End-to-end tests of app.py: a real server, the real model and gradio_client.

The model is AEFLOW_MODEL when set, else the shipped weights/chest-xray folder. The tests skip
only when neither exists.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MODEL_SOURCE, ROOT

EXAMPLE = ROOT / "examples" / "NORMAL2-IM-1427-0001.jpeg"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(
    "AEFLOW_MODEL" not in os.environ and not Path(MODEL_SOURCE).is_dir(),
    reason=f"no model: set AEFLOW_MODEL or train one into {MODEL_SOURCE}",
)


def model_image_size() -> int:
    return json.loads((Path(MODEL_SOURCE) / "config.json").read_text())["image_size"]


def cli_prediction(path: Path) -> dict:
    """Run ``python -m aeflow predict --json`` on one file and return its JSON record."""
    completed = subprocess.run(
        [sys.executable, "-m", "aeflow", "predict", "--json", "--model", MODEL_SOURCE, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def client(app_url):
    """Connect a gradio_client to the app launched on a free loopback port."""
    from gradio_client import Client

    api_client = Client(app_url, verbose=False)
    try:
        yield api_client
    finally:
        api_client.close()


def test_inspect_matches_cli(client):
    from gradio_client import handle_file

    outputs = client.predict(handle_file(str(EXAMPLE)), api_name="/inspect")
    reconstruction, residual, flow, overlay, score, normalized, verdict, details = outputs

    size = model_image_size()
    for image_path in (reconstruction, residual, flow, overlay):
        data = Path(image_path).read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{image_path} is not a PNG"
        with Image.open(image_path) as image:
            assert image.size == (size, size)
            assert image.mode == "RGB"

    expected = cli_prediction(EXAMPLE)
    assert score == pytest.approx(expected["score"], rel=1e-6)
    assert normalized == pytest.approx(expected["normalized_score"], rel=1e-6)
    assert verdict == expected["verdict"]
    assert details["score"] == pytest.approx(expected["score"], rel=1e-6)
    assert details["flow_nll"] == pytest.approx(expected["flow_nll"], rel=1e-6)
    assert details["threshold"] == pytest.approx(expected["threshold"], rel=1e-12)
    assert details["warnings"] == expected["warnings"]


def test_inspect_heatmaps_use_calibration_scale(client, app_module):
    from gradio_client import handle_file

    from aeflow import Inspector
    from aeflow.visualize import heatmap_rgb

    outputs = client.predict(handle_file(str(EXAMPLE)), api_name="/inspect")
    residual_path = outputs[1]
    details = outputs[7]

    inspector = Inspector.from_pretrained(MODEL_SOURCE)
    prediction = inspector.predict_file(EXAMPLE)
    calibration = inspector.calibration
    assert calibration is not None, "the test model has no calibration.json"
    assert details["residual_map_range"] == pytest.approx([0.0, calibration.residual_map_max])
    assert details["flow_map_range"] == pytest.approx([calibration.flow_map_min, calibration.flow_map_max])

    expected = heatmap_rgb(prediction.residual_map, 0.0, calibration.residual_map_max).astype(int)
    served = np.asarray(Image.open(residual_path)).astype(int)
    # One colour level of slack for float differences between two model instances.
    assert np.abs(served - expected).max() <= 1


def test_inspect_bad_file_names_file(client, tmp_path, caplog):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad_file = tmp_path / "x.png"
    bad_file.write_bytes(np.random.default_rng(0).bytes(2048))

    with caplog.at_level(logging.DEBUG), pytest.raises(AppError) as raised:
        client.predict(handle_file(str(bad_file)), api_name="/inspect")
    message = str(raised.value)
    assert "x.png" in message
    assert "PNG, JPEG" in message  # the fix: which formats to use
    assert "x.png" not in caplog.text, "the uploaded file name reached the log"

    outputs = client.predict(handle_file(str(EXAMPLE)), api_name="/inspect")
    assert outputs[6] in ("normal", "anomalous")


def write_dicom(source: Path, target: Path) -> None:
    """Save the grey channel of an image as an uncompressed 8-bit MONOCHROME2 DICOM file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    pixels = np.asarray(Image.open(source).convert("L"), dtype=np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "OT"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(target, enforce_file_format=True)


def test_inspect_accepts_dicom(client, tmp_path):
    from gradio_client import handle_file

    dicom_file = tmp_path / "scan.dcm"
    write_dicom(EXAMPLE, dicom_file)

    dicom_outputs = client.predict(handle_file(str(dicom_file)), api_name="/inspect")
    jpeg_outputs = client.predict(handle_file(str(EXAMPLE)), api_name="/inspect")

    # The example is grey stored as RGB (R = G = B), so both files hold the same pixels.
    assert dicom_outputs[4] == pytest.approx(jpeg_outputs[4], rel=1e-5)
    assert dicom_outputs[6] == jpeg_outputs[6]


def test_score_batch_reports_errors(client, tmp_path):
    from gradio_client import handle_file

    bad_file = tmp_path / "broken.jpeg"
    bad_file.write_bytes(b"not an image at all")
    files = [
        ROOT / "examples" / "NORMAL2-IM-1427-0001.jpeg",
        bad_file,
        ROOT / "examples" / "person1946_bacteria_4874.jpeg",
    ]

    threshold = json.loads((Path(MODEL_SOURCE) / "calibration.json").read_text())["threshold"]

    table, csv_path = client.predict(
        [handle_file(str(path)) for path in files], threshold, api_name="/score_batch"
    )

    rows = table["data"]
    assert len(rows) == 3
    scores = [row[1] for row in rows if row[1] is not None]
    assert len(scores) == 2
    assert scores == sorted(scores, reverse=True)
    for row in rows[:2]:
        assert row[3] == ("anomalous" if row[1] >= threshold else "normal")
    error_row = rows[-1]
    assert error_row[0] == "broken.jpeg"
    assert error_row[3] == "error"
    assert "broken.jpeg" in error_row[4]

    csv_lines = Path(csv_path).read_text().splitlines()
    assert csv_lines[0] == "file,score,normalized,verdict,note"
    assert len(csv_lines) == 4


def test_threshold_on_slider_grid(app_module):
    from aeflow.calibration import Calibration

    calibration = Calibration.load(Path(MODEL_SOURCE) / "calibration.json")
    minimum, maximum, step = app_module.threshold_slider_range(calibration)

    scores = [*calibration.normal_scores, *calibration.anomaly_scores]
    assert minimum < min(scores)
    assert maximum > max(scores)
    steps_from_minimum = (calibration.threshold - minimum) / step
    assert steps_from_minimum == pytest.approx(round(steps_from_minimum), abs=1e-6)


def test_import_starts_nothing():
    script = (
        "import json, app\n"
        "print(json.dumps({'inspectors': len(app._inspectors), 'calls': app.INFERENCE_CALLS,"
        " 'running': app.demo.is_running, 'server': getattr(app.demo, 'server', None) is not None}))\n"
    )
    env = {**os.environ, "AEFLOW_MODEL": MODEL_SOURCE}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr
    state = json.loads(completed.stdout.strip().splitlines()[-1])
    assert state["inspectors"] == 0, "importing app loaded the model"
    assert state["calls"] == 0
    assert state["running"] is False
    assert state["server"] is False


def test_hub_repo_loads_offline(tmp_path):
    if not Path(MODEL_SOURCE).is_dir():
        pytest.skip(f"{MODEL_SOURCE} is not a local folder to build a Hub cache from")
    from aeflow import Inspector

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_cache = tmp_path / "hub_cache" / "models--test-org--aeflow"
    snapshot = repo_cache / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "calibration.json"):
        shutil.copy(Path(MODEL_SOURCE) / name, snapshot / name)
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(revision)

    script = (
        "import json, sys, app\n"
        "from aeflow import read_image\n"
        "inspector = app.get_inspector()\n"
        "prediction = app.predict_images([read_image(sys.argv[1])])[0]\n"
        "print(json.dumps({'score': prediction.score, 'threshold': inspector.threshold,"
        " 'card': app.read_model_card()}))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub_cache"),
        "AEFLOW_MODEL": "test-org/aeflow",
        "AEFLOW_REVISION": revision,
    }
    completed = subprocess.run(
        [sys.executable, "-c", script, str(EXAMPLE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    from_hub = json.loads(completed.stdout.strip().splitlines()[-1])

    local = Inspector.from_pretrained(MODEL_SOURCE)
    assert from_hub["score"] == pytest.approx(local.predict_file(EXAMPLE).score, rel=1e-6)
    assert from_hub["threshold"] == pytest.approx(local.threshold, rel=1e-12)
    assert "No model card" in from_hub["card"]
