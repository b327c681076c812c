"""Odd and bad input files through the library, the CLI and the app's ``inspect`` API.

One table of cases drives three tests per case: ``Inspector.predict_file`` (and ``read_image``
for rejected files), ``python -m aeflow predict --json`` and the real app launched on a free
127.0.0.1 port. Valid files must give a finite score that agrees across the three within 1e-5
relative. Rejected files must raise a one-line message that names the file and the problem.
After every app case a valid request must still succeed.

The file builders come from tests/test_io.py. The CLI runs twice per module (all valid files in
one call, all rejected files in another) to save model loads, and each case checks its own line.

Further sections cover CLI errors about data and model folders, the out-of-range warning, and
safe loading of weights (safetensors only, no pickle).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aeflow import ImageLoadError, Inspector, ModelLoadError, read_image
from aeflow.io import MAX_FILE_BYTES
from tests.conftest import MODEL_SOURCE, ROOT
from tests.test_app import EXAMPLE, client  # noqa: F401 (fixture)
from tests.test_io import (
    XRAY_DIR,
    make_16x16_png,
    make_4000x4000_png,
    make_animated_gif,
    make_black_png,
    make_bmp,
    make_bomb_png,
    make_cmyk_jpeg,
    make_dicom_jpeg_ls,
    make_dicom_mono1,
    make_dicom_mono2,
    make_dicom_voi_lut,
    make_dicom_without_pixels,
    make_directory,
    make_empty_file,
    make_exif_rotated_jpeg,
    make_grey8_png,
    make_grey16_png,
    make_html_jpg,
    make_missing_path,
    make_multipage_tiff,
    make_nan_tiff,
    make_palette_png,
    make_pdf_jpg,
    make_portrait_jpeg,
    make_random_png,
    make_rgba_png,
    make_truncated_jpeg,
    save,
)

pytestmark = pytest.mark.skipif(
    "AEFLOW_MODEL" not in os.environ and not Path(MODEL_SOURCE).is_dir(),
    reason=f"no model: set AEFLOW_MODEL or train one into {MODEL_SOURCE}",
)

CLI_TIMEOUT_S = 600
SCORE_RELATIVE_TOLERANCE = 1e-5
# Two processes can differ by float32 rounding of the score's terms (about 1e-8 on scores of
# order 0.1), which is more than 1e-5 relative when the score itself is close to 0.
SCORE_ABSOLUTE_TOLERANCE = 1e-6


# ---------------------------------------------------------------- extra file builders


def make_inf_tiff(directory: Path) -> Path:
    values = np.ones((32, 32), dtype=np.float32)
    values[3, 4] = np.inf
    return save(Image.fromarray(values), directory / "inf.tif")


def make_oversize_jpeg(directory: Path) -> Path:
    """Write a real X-ray JPEG padded with zeros to one byte over MAX_FILE_BYTES."""
    data = (XRAY_DIR / "IM-0001-0001.jpeg").read_bytes()
    path = directory / "oversize.jpg"
    with path.open("wb") as file:
        file.write(data)
        file.truncate(MAX_FILE_BYTES + 1)
    return path


# ---------------------------------------------------------------- case table


@dataclass(frozen=True)
class Case:
    """One input file and the outcome expected from the library, the CLI and the app."""

    name: str
    builder: Callable[[Path], Path]
    error: str | None = None  # regex that the ImageLoadError message must match; None if valid
    uploadable: bool = True  # False for paths that a browser or gradio_client cannot upload


VALID = [
    Case("png-grey-16bit", make_grey16_png),
    Case("png-grey-8bit", make_grey8_png),
    Case("png-rgba", make_rgba_png),
    Case("png-palette", make_palette_png),
    Case("jpeg-cmyk", make_cmyk_jpeg),
    Case("jpeg-exif-rotated", make_exif_rotated_jpeg),
    Case("bmp", make_bmp),
    Case("tiff-multipage", make_multipage_tiff),
    Case("gif-animated", make_animated_gif),
    Case("png-16x16", make_16x16_png),
    Case("png-4000x4000-xray", make_4000x4000_png),
    Case("jpeg-2500x3000-xray", make_portrait_jpeg),
    Case("dicom-monochrome1", make_dicom_mono1),
    Case("dicom-monochrome2", make_dicom_mono2),
    Case("dicom-voi-lut", make_dicom_voi_lut),
    Case("png-uniform-black", make_black_png),
]

REJECTED = [
    Case("empty-file", make_empty_file, r"^empty\.png is empty \(0 bytes\)"),
    Case("jpeg-truncated", make_truncated_jpeg, r"^truncated\.jpg is truncated or corrupt"),
    Case("random-bytes-png", make_random_png, r"^random\.png is not a supported image"),
    Case("pdf-named-jpg", make_pdf_jpg, r"^report\.jpg is a PDF document, not an image"),
    Case("html-named-jpg", make_html_jpg, r"^download\.jpg is an HTML page, not an image"),
    Case("bomb-30000x30000", make_bomb_png, r"^bomb\.png declares more pixels than .*decompression-bomb"),
    Case("over-size-limit", make_oversize_jpeg, r"^oversize\.jpg is 64\.0 MiB, larger than the 64\.0 MiB limit"),
    Case("dicom-no-pixel-data", make_dicom_without_pixels, r"^report\.dcm is a DICOM file without Pixel Data"),
    Case(
        "dicom-jpeg-ls-no-codec",
        make_dicom_jpeg_ls,
        r"^jpegls\.dcm is compressed with JPEG-LS Lossless .*no installed codec can decode it\. Install",
    ),
    Case("tiff-float-nan", make_nan_tiff, r"^nan\.tif contains NaN or infinite pixel values"),
    Case("tiff-float-inf", make_inf_tiff, r"^inf\.tif contains NaN or infinite pixel values"),
    # A browser or gradio_client cannot upload a folder or a missing path, so the app part is N/A.
    Case("directory", make_directory, r"^folder\.png is a directory, not an image file", uploadable=False),
    Case("missing-path", make_missing_path, r"^missing\.png: file not found", uploadable=False),
]

ALL_CASES = VALID + REJECTED
CASE_PARAMS = [pytest.param(case, id=case.name) for case in ALL_CASES]


def test_case_table_is_large_enough() -> None:
    assert len(VALID) >= 16
    assert len(REJECTED) >= 11
    assert len({case.name for case in ALL_CASES}) == len(ALL_CASES)


# ---------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="module")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build every case's file once into one folder; the file names are unique across cases."""
    directory = tmp_path_factory.mktemp("bad_inputs")
    paths = {case.name: case.builder(directory) for case in ALL_CASES}
    names = [path.name for path in paths.values()]
    assert len(set(names)) == len(names), f"two cases write the same file name: {sorted(names)}"
    return paths


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    return Inspector.from_pretrained(MODEL_SOURCE)


def run_aeflow(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m aeflow`` in a subprocess from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "aeflow", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@dataclass
class CliRun:
    returncode: int
    records: dict[str, dict]  # JSON record per file name
    errors: dict[str, str]  # message after "aeflow: error: " per file name
    warnings: dict[str, list[str]]  # messages after "aeflow: warning: NAME: " per file name
    stderr: str


def run_predict(paths: list[Path]) -> CliRun:
    """Run ``aeflow predict --json`` on several files and index its output by file name."""
    result = run_aeflow("predict", "--json", "--model", MODEL_SOURCE, *map(str, paths))
    names = [path.name for path in paths]
    records: dict[str, dict] = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        records[Path(record["file"]).name] = record
    errors: dict[str, str] = {}
    warnings: dict[str, list[str]] = {}
    for line in result.stderr.splitlines():
        if line.startswith("aeflow: error: "):
            message = line.removeprefix("aeflow: error: ")
            owners = [name for name in names if message.startswith(name)]
            assert len(owners) == 1, f"cannot tell which file this error is about: {line}"
            errors[owners[0]] = message
        elif line.startswith("aeflow: warning: "):
            name, _, message = line.removeprefix("aeflow: warning: ").partition(": ")
            warnings.setdefault(name, []).append(message)
    return CliRun(result.returncode, records, errors, warnings, result.stderr)


@pytest.fixture(scope="module")
def cli_valid(case_files: dict[str, Path]) -> CliRun:
    return run_predict([case_files[case.name] for case in VALID])


@pytest.fixture(scope="module")
def cli_rejected(case_files: dict[str, Path]) -> CliRun:
    return run_predict([case_files[case.name] for case in REJECTED])


@pytest.fixture(scope="module")
def library_scores(inspector: Inspector, case_files: dict[str, Path]) -> dict[str, float]:
    """Score each valid case once with the library, as the reference for the CLI and the app."""
    return {case.name: inspector.predict_file(case_files[case.name]).score for case in VALID}


def assert_app_still_serves(client) -> None:  # noqa: F811 (the fixture's value)
    from gradio_client import handle_file

    outputs = client.predict(handle_file(str(EXAMPLE)), api_name="/inspect")
    assert math.isfinite(outputs[4])
    assert outputs[6] in ("normal", "anomalous")


# ---------------------------------------------------------------- library


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_library_outcome(case: Case, case_files: dict[str, Path], inspector: Inspector, library_scores) -> None:
    path = case_files[case.name]
    if case.error is None:
        image = read_image(path)
        assert image.ndim == 3
        assert image.shape[2] == 3
        assert math.isfinite(library_scores[case.name])
        return

    with pytest.raises(ImageLoadError, match=case.error) as raised:
        inspector.predict_file(path)
    message = str(raised.value)
    assert path.name in message
    assert "\n" not in message


# ---------------------------------------------------------------- CLI


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_cli_outcome(case: Case, case_files: dict[str, Path], cli_valid: CliRun, cli_rejected: CliRun, library_scores) -> None:
    name = case_files[case.name].name
    if case.error is None:
        assert cli_valid.returncode == 0, cli_valid.stderr[-3000:]
        assert name not in cli_valid.errors
        record = cli_valid.records[name]
        assert math.isfinite(record["score"])
        assert record["score"] == pytest.approx(library_scores[case.name], rel=SCORE_RELATIVE_TOLERANCE, abs=SCORE_ABSOLUTE_TOLERANCE)
        assert record["warnings"] == cli_valid.warnings.get(name, [])
        return

    assert cli_rejected.returncode == 1, cli_rejected.stderr[-3000:]
    assert "Traceback" not in cli_rejected.stderr
    assert name not in cli_rejected.records
    assert name in cli_rejected.errors, cli_rejected.stderr[-3000:]
    assert re.search(case.error, cli_rejected.errors[name])


# ---------------------------------------------------------------- app


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_app_outcome(case: Case, case_files: dict[str, Path], client, library_scores) -> None:  # noqa: F811
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path = case_files[case.name]
    if not case.uploadable:
        # N/A: a folder or a missing path cannot be selected for upload; the app stays up.
        assert_app_still_serves(client)
        return

    if case.error is None:
        outputs = client.predict(handle_file(str(path)), api_name="/inspect")
        score, details = outputs[4], outputs[7]
        assert math.isfinite(score)
        assert score == pytest.approx(library_scores[case.name], rel=SCORE_RELATIVE_TOLERANCE, abs=SCORE_ABSOLUTE_TOLERANCE)
        assert details["score"] == score
    elif path.stat().st_size > MAX_FILE_BYTES:
        # gradio_client checks the app's max_file_size before uploading and names the file.
        with pytest.raises(ValueError, match=r"exceeds the maximum file size of 67108864 bytes") as raised:
            client.predict(handle_file(str(path)), api_name="/inspect")
        assert path.name in str(raised.value)
    else:
        with pytest.raises(AppError, match=case.error) as raised:
            client.predict(handle_file(str(path)), api_name="/inspect")
        assert path.name in str(raised.value)
        assert "\n" not in str(raised.value)

    assert_app_still_serves(client)


def test_app_server_rejects_oversize_upload(case_files: dict[str, Path], client) -> None:  # noqa: F811
    """The server enforces max_file_size too, for clients that do not check it first."""
    import httpx

    path = case_files["over-size-limit"]
    with path.open("rb") as file:
        response = httpx.post(client.upload_url, files=[("files", (path.name, file))], timeout=120)

    assert response.status_code == 413
    assert "maximum allowed size" in response.text
    assert_app_still_serves(client)


# ---------------------------------------------------------------- CLI errors about folders
# tests/test_cli.py covers a missing --data folder for train and evaluate, train without
# NORMAL/, train with an empty NORMAL/, a missing model folder and a folder without config.json.


def copy_model(target: Path) -> Path:
    """Copy the test model's config, weights and calibration into ``target``."""
    target.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "calibration.json"):
        source = Path(MODEL_SOURCE) / name
        if source.is_file():
            (target / name).write_bytes(source.read_bytes())
    return target


def single_error(result: subprocess.CompletedProcess) -> str:
    """Return the one ``aeflow: error:`` line of a failed run, after checking there is no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("aeflow: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return errors[0]


@pytest.fixture
def model_variants(tmp_path: Path) -> dict[str, Path]:
    """Model folders with one thing wrong each, next to a data folder without a test split."""
    if not Path(MODEL_SOURCE).is_dir():
        pytest.skip(f"{MODEL_SOURCE} is not a local folder to copy")
    variants: dict[str, Path] = {}

    no_weights = copy_model(tmp_path / "no_weights")
    (no_weights / "model.safetensors").unlink()
    variants["no_weights"] = no_weights

    truncated = copy_model(tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    variants["truncated"] = truncated

    garbage = copy_model(tmp_path / "garbage")
    (garbage / "model.safetensors").write_bytes(np.random.default_rng(1).bytes(4096))
    variants["garbage"] = garbage

    more_steps = copy_model(tmp_path / "more_steps")
    config = json.loads((more_steps / "config.json").read_text())
    config["flow_steps"] = config["flow_steps"] + 2
    (more_steps / "config.json").write_text(json.dumps(config))
    variants["more_flow_steps"] = more_steps

    other_size = copy_model(tmp_path / "other_size")
    config = json.loads((other_size / "config.json").read_text())
    config["image_size"] = config["image_size"] * 2
    (other_size / "config.json").write_text(json.dumps(config))
    variants["other_image_size"] = other_size

    unknown_key = copy_model(tmp_path / "unknown_key")
    config = json.loads((unknown_key / "config.json").read_text())
    config["not_an_option"] = 1
    (unknown_key / "config.json").write_text(json.dumps(config))
    variants["unknown_config_key"] = unknown_key

    broken_json = copy_model(tmp_path / "broken_json")
    (broken_json / "config.json").write_text("{not json")
    variants["broken_config_json"] = broken_json

    data_folder = tmp_path / "data"
    (data_folder / "train" / "NORMAL").mkdir(parents=True)
    variants["data_without_test"] = data_folder
    return variants


MODEL_ERRORS = [
    pytest.param("no_weights", r"no_weights has no model\.safetensors", id="no-safetensors"),
    pytest.param("truncated", r"Could not read .*model\.safetensors .*damaged or incomplete", id="truncated"),
    pytest.param("garbage", r"Could not read .*model\.safetensors .*damaged or incomplete", id="garbage"),
    pytest.param("more_flow_steps", r"does not match its config\.json: missing tensors", id="config-more-steps"),
    pytest.param("other_image_size", r"does not match its config\.json: .*tensors of another shape \['flow", id="config-image-size"),
    pytest.param("unknown_config_key", r"not_an_option", id="config-unknown-key"),
    pytest.param("broken_config_json", r"broken_json: config\.json is not valid JSON", id="config-not-json"),
]


@pytest.mark.parametrize(("variant", "pattern"), MODEL_ERRORS)
def test_predict_bad_model_one_line(variant: str, pattern: str, model_variants: dict[str, Path]) -> None:
    result = run_aeflow("predict", "--model", str(model_variants[variant]), str(EXAMPLE))

    line = single_error(result)
    assert re.search(pattern, line), line


def test_evaluate_bad_model_one_line(model_variants: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "labelled"
    for label, name in (("NORMAL", "IM-0001-0001.jpeg"), ("PNEUMONIA", "person100_bacteria_475.jpeg")):
        (data / "test" / label).mkdir(parents=True)
        (data / "test" / label / name).write_bytes((XRAY_DIR / name).read_bytes())

    result = run_aeflow("evaluate", "--data", str(data), "--model", str(model_variants["truncated"]))

    assert "damaged or incomplete" in single_error(result)


def test_evaluate_missing_split_one_line(model_variants: dict[str, Path]) -> None:
    result = run_aeflow("evaluate", "--data", str(model_variants["data_without_test"]), "--model", MODEL_SOURCE)

    line = single_error(result)
    assert "test not found" in line
    assert "needs a test/ folder" in line


def test_debug_shows_model_traceback(model_variants: dict[str, Path]) -> None:
    result = run_aeflow("--debug", "predict", "--model", str(model_variants["truncated"]), str(EXAMPLE))

    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ModelLoadError" in result.stderr


# ---------------------------------------------------------------- out-of-range warning


def make_colour_noise_png(directory: Path) -> Path:
    """Write a 256 x 256 RGB image of seeded uniform colour noise, far from any X-ray."""
    pixels = np.random.default_rng(7).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return save(Image.fromarray(pixels), directory / "colour_noise.png")


def make_uniform_white_png(directory: Path) -> Path:
    return save(Image.fromarray(np.full((64, 64), 255, dtype=np.uint8)), directory / "white.png")


OUT_OF_RANGE_BUILDERS = [
    pytest.param(make_colour_noise_png, id="colour-noise"),
    pytest.param(make_uniform_white_png, id="uniform-white"),
]


@pytest.mark.parametrize("builder", OUT_OF_RANGE_BUILDERS)
def test_out_of_range_warns_everywhere(builder, inspector: Inspector, client, tmp_path: Path) -> None:  # noqa: F811
    from gradio_client import handle_file

    path = builder(tmp_path)
    calibration = inspector.calibration
    if calibration is None:
        pytest.skip("the test model has no calibration, so nothing is out of range")

    prediction = inspector.predict_file(path)
    # Precondition: the input must really lie outside the calibrated flow-NLL band of this model.
    assert calibration.out_of_range(prediction.flow_nll), (
        f"{path.name} has flow NLL {prediction.flow_nll:.3f}, inside "
        f"[{calibration.flow_nll_low:.3f}, {calibration.flow_nll_high:.3f}]: choose another input"
    )
    assert len(prediction.warnings) == 1
    assert "far outside the range of the calibration images" in prediction.warnings[0]
    assert math.isfinite(prediction.score)

    cli = run_predict([path])
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert cli.warnings[path.name] == prediction.warnings
    assert cli.records[path.name]["warnings"] == prediction.warnings
    assert cli.records[path.name]["score"] == pytest.approx(prediction.score, rel=SCORE_RELATIVE_TOLERANCE, abs=SCORE_ABSOLUTE_TOLERANCE)

    outputs = client.predict(handle_file(str(path)), api_name="/inspect")
    assert outputs[7]["warnings"] == prediction.warnings
    assert outputs[4] == pytest.approx(prediction.score, rel=SCORE_RELATIVE_TOLERANCE, abs=SCORE_ABSOLUTE_TOLERANCE)
    assert outputs[6] in ("normal", "anomalous")


# ---------------------------------------------------------------- safe loading

PACKAGE_DIR = ROOT / "aeflow"


def calls_named(tree: ast.AST, module: str, function: str) -> list[ast.Call]:
    """Return the calls of ``module.function(...)`` in a parsed source file."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target = node.func
        if target.attr == function and isinstance(target.value, ast.Name) and target.value.id == module:
            found.append(node)
    return found


def test_torch_load_uses_weights_only() -> None:
    unsafe = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in calls_named(tree, "torch", "load"):
            keywords = {keyword.arg: keyword.value for keyword in call.keywords}
            value = keywords.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                unsafe.append(f"{path.name}:{call.lineno}")

    assert unsafe == [], f"torch.load without weights_only=True at {unsafe}"


def test_package_never_unpickles() -> None:
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "pickle" not in imported, f"{path.name} imports pickle"
        assert "dill" not in imported, f"{path.name} imports dill"
        assert calls_named(tree, "np", "load") == [], f"{path.name} calls np.load, which can unpickle"


def test_model_weights_load_as_safetensors_only() -> None:
    source = (PACKAGE_DIR / "hub.py").read_text(encoding="utf-8")

    assert 'WEIGHTS_NAME = "model.safetensors"' in source
    assert "pytorch_model.bin" not in source
    assert calls_named(ast.parse(source), "torch", "load") == []


def test_folder_with_only_pytorch_bin_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aeflow import load_model

    if not Path(MODEL_SOURCE).is_dir():
        pytest.skip(f"{MODEL_SOURCE} is not a local folder to copy")
    folder = tmp_path / "bin_only"
    folder.mkdir()
    (folder / "config.json").write_bytes((Path(MODEL_SOURCE) / "config.json").read_bytes())
    from safetensors.torch import load_file

    torch.save(load_file(Path(MODEL_SOURCE) / "model.safetensors"), folder / "pytorch_model.bin")

    def refuse_torch_load(*args, **kwargs):
        raise AssertionError("torch.load was called while loading a model")

    monkeypatch.setattr(torch, "load", refuse_torch_load)
    with pytest.raises(ModelLoadError, match=r"bin_only has no model\.safetensors"):
        load_model(folder)


def test_hub_repo_with_only_pytorch_bin_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An offline Hub cache of a repo that contains pytorch_model.bin but no safetensors file."""
    from aeflow import load_model

    if not Path(MODEL_SOURCE).is_dir():
        pytest.skip(f"{MODEL_SOURCE} is not a local folder to copy")
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_cache = tmp_path / "hub_cache" / "models--test-org--bin-only"
    snapshot = repo_cache / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_bytes((Path(MODEL_SOURCE) / "config.json").read_bytes())
    (snapshot / "pytorch_model.bin").write_bytes(b"not used")
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(revision)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub_cache"))
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("torch.load was called"))

    with pytest.raises(ModelLoadError, match=r"model\.safetensors") as raised:
        load_model("test-org/bin-only")
    assert "test-org/bin-only" in str(raised.value)
