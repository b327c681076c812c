"""Gradio app for AE-FLOW: upload a chest X-ray and see its anomaly score, maps and verdict.

Run with ``python app.py``. It serves on 127.0.0.1:7860 unless GRADIO_SERVER_NAME or
GRADIO_SERVER_PORT set another address or port. Environment variables:

* ``AEFLOW_MODEL``: model folder or Hub repo id. Defaults to ``weights/chest-xray`` next to
  this file.
* ``AEFLOW_REVISION``: Hub revision (commit, branch or tag) to pin. Defaults to the repo's main.

Importing this module builds the UI but neither loads the model nor starts a server. The model
loads on first use (the first page view or request) and stays cached for the process.

The ``inspect`` API endpoint takes one image file and returns the reconstruction, the residual
and flow-likelihood maps, the overlay, the raw and normalised scores, the verdict at the shipped
threshold and a details dict.
"""

from __future__ import annotations

import os

# Telemetry must be off before gradio is imported, because gradio reads this variable at import.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import csv
import logging
import tempfile
import threading
import uuid
from pathlib import Path

import gradio as gr
import matplotlib
import numpy as np
import pandas as pd
from PIL import Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from aeflow import ImageLoadError, Inspector, ModelLoadError, Prediction, read_image
from aeflow.calibration import Calibration
from aeflow.inference import VERDICT_ANOMALOUS, decide
from aeflow.io import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from aeflow.metrics import confusion_metrics, roc_points
from aeflow.visualize import COLORMAP, heatmap_rgb, overlay, to_uint8

try:  # Present only on Hugging Face ZeroGPU Spaces, where it grants a GPU per call.
    import spaces
except ImportError:
    spaces = None

logger = logging.getLogger(__name__)
# Uploaded file names can contain patient names or IDs, and aeflow.io logs the file name at
# DEBUG, so the app keeps that logger at INFO even when the root logger is at DEBUG.
logging.getLogger("aeflow.io").setLevel(logging.INFO)

APP_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = APP_DIR / "examples"
DEFAULT_MODEL = APP_DIR / "weights" / "chest-xray"

DEFAULT_OPACITY = 0.5
MAX_BATCH_FILES = 100
BATCH_SIZE = 8  # images per forward pass in the batch tab

# Gradio deletes the files it cached (uploads and outputs) every 5 minutes once they are older
# than 5 minutes, so uploaded scans do not stay on disk.
CACHE_CLEANUP = (300, 300)

VERDICT_NO_THRESHOLD = "no threshold (uncalibrated model)"

NOTICE = (
    "**Research use only, not for diagnosis.** AE-FLOW flags images that differ from the normal "
    "chest X-rays it was trained on; it was not validated for clinical use. Uploaded files are "
    "processed in memory and deleted from the server's temporary folder within about 10 minutes."
)

# Options for demo.launch(). The tests launch with the same values.
LAUNCH_OPTIONS = {
    "share": False,
    "max_file_size": MAX_FILE_BYTES,
    "allowed_paths": [str(EXAMPLES_DIR)],
    "run_history": False,
}

INFERENCE_CALLS = 0
"""Number of model forward calls made by this process, for tests and monitoring."""

_inspectors: dict[tuple[str, str | None], Inspector] = {}
_inspector_lock = threading.Lock()
_counter_lock = threading.Lock()


# ---------------------------------------------------------------------------------------------
# Model


def model_source() -> tuple[str, str | None]:
    """Return the model source and revision from AEFLOW_MODEL and AEFLOW_REVISION."""
    source = os.environ.get("AEFLOW_MODEL") or str(DEFAULT_MODEL)
    revision = os.environ.get("AEFLOW_REVISION") or None
    return source, revision


def get_inspector() -> Inspector:
    """Load the model on first use and return the cached instance afterwards.

    Raises:
        gradio.Error: When the model cannot be loaded; the message names the source and the fix.
    """
    key = model_source()
    with _inspector_lock:
        if key not in _inspectors:
            source, revision = key
            try:
                _inspectors[key] = Inspector.from_pretrained(source, revision=revision)
            except ModelLoadError as error:
                logger.error("Could not load the model: %s", error)
                raise gr.Error(f"The model could not be loaded: {error}", print_exception=False) from error
            logger.info("Model %s (revision %s) loaded on %s", source, revision or "default", _inspectors[key].device)
        return _inspectors[key]


def _forward(images: list[np.ndarray]) -> list[Prediction]:
    return get_inspector().predict_arrays(images)


if spaces is not None:
    # NOTE: not run in this repository's tests, which have no ZeroGPU. The model is loaded in
    # the main process first (see predict_images), the pattern ZeroGPU documents.
    _forward = spaces.GPU(_forward)


def predict_images(images: list[np.ndarray]) -> list[Prediction]:
    """Score ``(H, W, 3)`` float images in [0, 1] in one forward pass and count the call."""
    global INFERENCE_CALLS
    get_inspector()
    with _counter_lock:
        INFERENCE_CALLS += 1
    return _forward(images)


def read_upload(path: str) -> np.ndarray:
    """Read an uploaded file, turning a load failure into a message for the user.

    Raises:
        gradio.Error: The file is not a readable image; the message names the file and the fix.
    """
    try:
        return read_image(path)
    except ImageLoadError as error:
        # The message names the uploaded file, so it goes to the user and not to the log.
        logger.info("Rejected an unreadable upload")
        raise gr.Error(str(error), title="Cannot read the image", print_exception=False) from error


# ---------------------------------------------------------------------------------------------
# Rendering


def _residual_range(prediction: Prediction, calibration: Calibration | None) -> tuple[float, float]:
    if calibration is None:
        return 0.0, float(prediction.residual_map.max())
    return 0.0, calibration.residual_map_max


def _flow_range(prediction: Prediction, calibration: Calibration | None) -> tuple[float, float]:
    if calibration is None:
        return float(prediction.flow_map.min()), float(prediction.flow_map.max())
    return calibration.flow_map_min, calibration.flow_map_max


def render_heatmaps(prediction: Prediction, calibration: Calibration | None) -> tuple[np.ndarray, np.ndarray]:
    """Colour the residual and flow maps on the calibration's fixed scales (uint8 RGB)."""
    residual = heatmap_rgb(prediction.residual_map, *_residual_range(prediction, calibration))
    flow = heatmap_rgb(prediction.flow_map, *_flow_range(prediction, calibration))
    return residual, flow


def render_overlay(prediction: Prediction, calibration: Calibration | None, map_name: str, opacity: float) -> np.ndarray:
    """Blend the chosen heat map ("residual" or "flow") over the model input."""
    residual, flow = render_heatmaps(prediction, calibration)
    heat = flow if map_name == "flow" else residual
    return overlay(prediction.image, heat, float(opacity))


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a matplotlib figure to a uint8 RGB array."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def render_colorbar(vmin: float, vmax: float, label: str) -> np.ndarray:
    """Draw a horizontal inferno colour bar with tick labels for the range [vmin, vmax]."""
    figure = Figure(figsize=(3.2, 0.75), dpi=100)
    axes = figure.add_axes((0.06, 0.55, 0.88, 0.25))
    mappable = ScalarMappable(norm=Normalize(vmin=vmin, vmax=vmax), cmap=matplotlib.colormaps[COLORMAP])
    colorbar = figure.colorbar(mappable, cax=axes, orientation="horizontal")
    colorbar.ax.tick_params(labelsize=7)
    colorbar.set_label(label, fontsize=7)
    return figure_to_array(figure)


def verdict_for(score: float, threshold: float | None) -> str:
    """Return the verdict word for a score at a threshold (at or above is anomalous)."""
    if threshold is None:
        return VERDICT_NO_THRESHOLD
    return decide(score, threshold)


def render_calibration_plot(calibration: Calibration, threshold: float, score: float | None) -> np.ndarray:
    """Draw the score histograms (and the ROC curve when anomaly scores exist) with the threshold marked."""
    normal = np.asarray(calibration.normal_scores, dtype=np.float64)
    anomaly = np.asarray(calibration.anomaly_scores, dtype=np.float64)
    has_roc = len(normal) > 0 and len(anomaly) > 0

    figure = Figure(figsize=(8.4, 3.0) if has_roc else (5.0, 3.0), dpi=100)
    if has_roc:
        histogram_axes, roc_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": (1.5, 1)})
    else:
        histogram_axes, roc_axes = figure.subplots(1, 1), None

    values = np.concatenate([normal, anomaly, [threshold]])
    bins = np.linspace(values.min(), values.max(), 30) if values.max() > values.min() else 10
    if len(normal):
        histogram_axes.hist(normal, bins=bins, alpha=0.6, color="tab:blue", label=f"normal (n={len(normal)})")
    if len(anomaly):
        histogram_axes.hist(anomaly, bins=bins, alpha=0.6, color="tab:red", label=f"anomalous (n={len(anomaly)})")
    histogram_axes.axvline(threshold, color="black", linewidth=1.5, label="threshold")
    if score is not None:
        histogram_axes.axvline(score, color="tab:orange", linestyle="--", linewidth=1.5, label="this image")
    histogram_axes.set_xlabel("anomaly score")
    histogram_axes.set_ylabel("images")
    histogram_axes.set_title("Calibration scores", fontsize=10)
    histogram_axes.legend(fontsize=7, loc="best", framealpha=0.9)

    if roc_axes is not None:
        false_positive_rate, true_positive_rate, _ = roc_points(normal, anomaly)
        metrics = confusion_metrics(normal, anomaly, threshold)
        roc_axes.plot(false_positive_rate, true_positive_rate, color="tab:purple")
        roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        roc_axes.plot(1 - metrics["specificity"], metrics["sensitivity"], "o", color="black", label="threshold")
        roc_axes.set_xlabel("1 - specificity")
        roc_axes.set_ylabel("sensitivity")
        roc_axes.set_title("ROC curve", fontsize=10)
        roc_axes.set_aspect("equal")
        roc_axes.legend(fontsize=7, loc="lower right")

    figure.tight_layout()
    return figure_to_array(figure)


def describe_operating_point(calibration: Calibration, threshold: float) -> str:
    """Return markdown with the specificity and sensitivity at ``threshold`` on the calibration data."""
    normal = np.asarray(calibration.normal_scores, dtype=np.float64)
    anomaly = np.asarray(calibration.anomaly_scores, dtype=np.float64)
    metrics = confusion_metrics(normal, anomaly, threshold)
    lines = [f"At threshold **{threshold:.6g}**:"]
    if len(normal):
        lines.append(
            f"- specificity **{metrics['specificity']:.1%}** "
            f"({metrics['true_negative']} of {len(normal)} normal images below it)"
        )
    if len(anomaly):
        lines.append(
            f"- sensitivity **{metrics['sensitivity']:.1%}** "
            f"({metrics['true_positive']} of {len(anomaly)} anomalous images at or above it)"
        )
    else:
        lines.append("- sensitivity: not available, because the calibration data has no anomalous images")
    lines.append(f"\nCalibration data: {calibration.source or 'not recorded'}.")
    return "\n".join(lines)


def describe_result(prediction: Prediction | None, threshold: float | None, calibration: Calibration | None) -> str:
    """Return the result panel's markdown: verdict, scores and warnings."""
    if prediction is None:
        return "Upload an image or pick an example to see its verdict."
    verdict = verdict_for(prediction.score, threshold)
    lines = [f"**Verdict: {verdict}**"]
    if threshold is not None:
        relation = "at or above" if verdict == VERDICT_ANOMALOUS else "below"
        lines.append(f"The score {prediction.score:.6g} is {relation} the threshold {threshold:.6g}.")
    normalized = prediction.normalized_score(calibration)
    if normalized is not None:
        lines.append(f"Normalised score {normalized:.3f} (0.5 is the shipped threshold).")
    if calibration is None:
        lines.append("The model is not calibrated, so each heat map is scaled to its own minimum and maximum.")
    for warning in prediction.warnings:
        lines.append(f"\n> **Warning:** {warning}")
    return "\n\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Event handlers


def response_image(pixels: np.ndarray) -> Image.Image:
    """Wrap an output image so that its PNG bytes are unique to this response.

    Gradio 6.31 caches an output under the hash of its PNG bytes and rewrites that file on every
    response. Two users inspecting the same X-ray at once would share one file, and one download
    could read it while the other response truncates it. A random PNG text chunk, which viewers
    ignore, gives each response its own file.
    """
    image = Image.fromarray(pixels)
    image.info["aeflow-response"] = uuid.uuid4().hex
    return image


def inspect_image(path: str | None) -> tuple:
    """Score one image file: the ``inspect`` API endpoint.

    Args:
        path: Image file (PNG, JPEG, BMP, TIFF, GIF or DICOM).

    Returns:
        The reconstruction, residual map, flow map and residual overlay as PNG images, then the
        raw score and the normalised score (0.5 at the shipped threshold, None without
        calibration). Then the verdict at the shipped threshold and a details dict. The last
        item is the Prediction, kept as session state for the threshold slider.
    """
    if path is None:
        # The upload was cleared.
        return None, None, None, None, None, None, "", None, None

    image = read_upload(path)
    prediction = predict_images([image])[0]
    inspector = get_inspector()
    calibration = inspector.calibration
    threshold = inspector.threshold

    for warning in prediction.warnings:
        gr.Warning(warning)

    residual, flow = render_heatmaps(prediction, calibration)
    overlay_image = overlay(prediction.image, residual, DEFAULT_OPACITY)
    normalized = prediction.normalized_score(calibration)
    verdict = verdict_for(prediction.score, threshold)
    details = {
        "score": prediction.score,
        "normalized_score": normalized,
        "verdict": verdict,
        "threshold": threshold,
        "flow_nll": prediction.flow_nll,
        "flow_score": prediction.flow_score,
        "recon_score": prediction.recon_score,
        "residual_map_range": list(_residual_range(prediction, calibration)),
        "flow_map_range": list(_flow_range(prediction, calibration)),
        "warnings": list(prediction.warnings),
    }
    return (
        response_image(to_uint8(prediction.reconstruction)),
        response_image(residual),
        response_image(flow),
        response_image(overlay_image),
        prediction.score,
        normalized,
        verdict,
        details,
        prediction,
    )


def show_prediction(prediction: Prediction | None, threshold: float | None, map_name: str, opacity: float) -> tuple:
    """Fill the panels that depend on the UI settings after ``inspect_image``; runs no model."""
    verdict, result, operating_point = update_decision(prediction, threshold)
    plot = update_calibration_plot(prediction, threshold)
    if prediction is None:
        return None, None, verdict, result, plot, operating_point
    calibration = get_inspector().calibration
    return (
        response_image(to_uint8(prediction.image)),
        response_image(render_overlay(prediction, calibration, map_name, opacity)),
        verdict,
        result,
        plot,
        operating_point,
    )


def update_decision(prediction: Prediction | None, threshold: float | None) -> tuple:
    """Re-decide the verdict at a new threshold from the stored prediction; runs no model.

    The calibration plot is redrawn by a separate event (:func:`update_calibration_plot`),
    because matplotlib takes longer than the verdict and the user waits for the verdict.
    """
    calibration = get_inspector().calibration
    if calibration is None or threshold is None:
        threshold = None
    verdict = "" if prediction is None else verdict_for(prediction.score, threshold)
    result = describe_result(prediction, threshold, calibration)
    if threshold is None:
        return verdict, result, "The model has no calibration, so there is no threshold to assess."
    return verdict, result, describe_operating_point(calibration, threshold)


def update_calibration_plot(prediction: Prediction | None, threshold: float | None) -> Image.Image | None:
    """Draw the calibration plot with ``threshold`` and this image's score marked; runs no model."""
    calibration = get_inspector().calibration
    if calibration is None or threshold is None:
        return None
    score = None if prediction is None else prediction.score
    return response_image(render_calibration_plot(calibration, threshold, score))


def update_overlay(prediction: Prediction | None, map_name: str, opacity: float) -> Image.Image | None:
    """Redraw the overlay for a new map choice or opacity; runs no model."""
    if prediction is None:
        return None
    return response_image(render_overlay(prediction, get_inspector().calibration, map_name, opacity))


def threshold_slider_range(calibration: Calibration) -> tuple[float, float, float]:
    """Return (minimum, maximum, step) covering the calibration scores, with the threshold on a step."""
    values = np.asarray([*calibration.normal_scores, *calibration.anomaly_scores, calibration.threshold])
    span = float(values.max() - values.min()) or max(abs(calibration.threshold), 1.0) * 0.1
    step = float(f"{span / 500:.1g}")
    # Whole steps on each side keep the shipped threshold exactly reachable on the slider.
    steps_below = int(np.ceil((calibration.threshold - values.min()) / step + 0.1 * span / step))
    steps_above = int(np.ceil((values.max() - calibration.threshold) / step + 0.1 * span / step))
    return calibration.threshold - steps_below * step, calibration.threshold + steps_above * step, step


def fit_slider_to_score(prediction: Prediction | None):
    """Set the threshold slider's range to the calibration scores, widened to include this image's score."""
    calibration = get_inspector().calibration
    if prediction is None or calibration is None:
        return gr.Slider()
    minimum, maximum, step = threshold_slider_range(calibration)
    margin = 10 * step
    if prediction.score - margin < minimum:
        minimum = calibration.threshold - np.ceil((calibration.threshold - prediction.score + margin) / step) * step
    if prediction.score + margin > maximum:
        maximum = calibration.threshold + np.ceil((prediction.score + margin - calibration.threshold) / step) * step
    return gr.Slider(minimum=float(minimum), maximum=float(maximum))


def read_model_card() -> str:
    """Return the model card (README.md of the model folder or Hub repo) without its front matter."""
    source, revision = model_source()
    text = None
    if os.path.isdir(source):
        card = Path(source) / "README.md"
        if card.is_file():
            text = card.read_text(encoding="utf-8")
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:
            text = Path(hf_hub_download(source, "README.md", revision=revision)).read_text(encoding="utf-8")
        except (EntryNotFoundError, LocalEntryNotFoundError, OSError) as error:
            logger.warning("No model card for %s: %s", source, error)
    if not text:
        return f"No model card (README.md) was found for `{source}`."
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4 :]
    return text.strip()


def load_page() -> tuple:
    """Load the model on the first page view and fill the threshold, calibration and About panels."""
    inspector = get_inspector()
    calibration = inspector.calibration
    card = read_model_card()
    if calibration is None:
        return (
            gr.Slider(visible=False),
            None,
            "The model has no calibration, so there is no threshold to assess.",
            card,
            None,
            None,
        )
    minimum, maximum, step = threshold_slider_range(calibration)
    slider = gr.Slider(minimum=minimum, maximum=maximum, step=step, value=calibration.threshold, visible=True)
    return (
        slider,
        render_calibration_plot(calibration, calibration.threshold, None),
        describe_operating_point(calibration, calibration.threshold),
        card,
        render_colorbar(0.0, calibration.residual_map_max, "|x - reconstruction| (intensity)"),
        render_colorbar(calibration.flow_map_min, calibration.flow_map_max, "flow NLL (nats per dimension)"),
    )


def score_batch(paths: list[str] | None, threshold: float | None) -> tuple[pd.DataFrame, str]:
    """Score several files; unreadable files become rows with their error instead of failing the batch.

    Returns:
        A table sorted by score (highest first, errors last) and the path of the same table as CSV.
    """
    if not paths:
        raise gr.Error("No files to score: upload one or more images first.", print_exception=False)
    if len(paths) > MAX_BATCH_FILES:
        raise gr.Error(
            f"{len(paths)} files were uploaded; the limit is {MAX_BATCH_FILES} per batch. Split them into smaller batches.",
            print_exception=False,
        )
    inspector = get_inspector()
    if threshold is None:
        threshold = inspector.threshold

    readable: list[tuple[str, np.ndarray]] = []
    rows: list[dict] = []
    for path in paths:
        name = Path(path).name
        try:
            readable.append((name, read_image(path)))
        except ImageLoadError as error:
            rows.append({"file": name, "score": None, "normalized": None, "verdict": "error", "note": str(error)})

    for start in range(0, len(readable), BATCH_SIZE):
        chunk = readable[start : start + BATCH_SIZE]
        predictions = predict_images([image for _, image in chunk])
        for (name, _), prediction in zip(chunk, predictions):
            rows.append(
                {
                    "file": name,
                    "score": prediction.score,
                    "normalized": prediction.normalized_score(inspector.calibration),
                    "verdict": verdict_for(prediction.score, threshold),
                    "note": " ".join(prediction.warnings),
                }
            )
    logger.info("Batch scored: %d files, %d unreadable", len(readable), len(paths) - len(readable))

    table = pd.DataFrame(rows, columns=["file", "score", "normalized", "verdict", "note"])
    table = table.sort_values("score", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    return table, write_csv(table)


def write_csv(table: pd.DataFrame) -> str:
    """Write the batch table as CSV into Gradio's cache, so the scheduled cache cleanup deletes it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "aeflow-scores.csv"
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(table.columns)
            writer.writerows(table.itertuples(index=False))
        # Copies the file into the cache and registers it for delete_cache; the temporary
        # folder with the original is removed when the with block ends.
        return batch_csv.move_resource_to_block_cache(str(path))


# ---------------------------------------------------------------------------------------------
# Layout

CSS = """
.notice { border-left: 4px solid #d97706; padding: 6px 12px !important; background: rgba(217, 119, 6, 0.08); }
.legend img { object-fit: contain; }
"""

# NOTE: Gradio checks the suffix of uploads against this list on the server too, so a DICOM
# file without a suffix (common in PACS exports) is rejected until it is renamed to .dcm.
FILE_TYPES = list(SUPPORTED_SUFFIXES)
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.jpeg"))

with gr.Blocks(title="AE-FLOW chest X-ray anomaly inspector", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
    gr.Markdown("# AE-FLOW chest X-ray anomaly inspector")
    gr.Markdown(NOTICE, elem_classes="notice")
    prediction_state = gr.State(None)
    # Built here because the examples above the image panels fill it; rendered in the panel row.
    input_view = gr.Image(
        label="Input (as the model sees it)", format="png", interactive=False, elem_id="input-view", render=False
    )

    with gr.Tab("Inspect"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                upload = gr.File(
                    label="X-ray image (PNG, JPEG, BMP, TIFF, GIF or DICOM)",
                    file_types=FILE_TYPES,
                    type="filepath",
                    height=140,
                    elem_id="upload",
                )
                gr.Examples(
                    examples=[[str(path), str(path)] for path in EXAMPLE_FILES],
                    inputs=[upload, input_view],
                    visible_columns=[1],
                    label="Examples: 2 normal, then 2 pneumonia (Kermany et al. validation split)",
                    cache_examples=False,
                )
            with gr.Column(scale=3):
                verdict = gr.Textbox(label="Verdict at the current threshold", interactive=False, elem_id="verdict")
                with gr.Row():
                    score = gr.Number(label="Anomaly score (raw)", interactive=False, precision=None, elem_id="score")
                    normalized = gr.Number(
                        label="Normalised score (0.5 = shipped threshold)", interactive=False, elem_id="normalized"
                    )
                threshold = gr.Slider(
                    label="Decision threshold on the raw score",
                    info="Scores at or above it are anomalous. Starts at the shipped threshold.",
                    visible=False,
                    elem_id="threshold",
                )

        result = gr.Markdown("Upload an image or pick an example to see its verdict.", elem_id="result")

        with gr.Row(equal_height=False):
            input_view.render()
            reconstruction = gr.Image(label="Reconstruction", format="png", interactive=False, elem_id="reconstruction")
            with gr.Column(min_width=160):
                residual_map = gr.Image(label="Residual map", format="png", interactive=False, elem_id="residual-map")
                residual_legend = gr.Image(
                    show_label=False, container=False, format="png", interactive=False, buttons=[], elem_classes="legend"
                )
            with gr.Column(min_width=160):
                flow_map = gr.Image(label="Flow-likelihood map", format="png", interactive=False, elem_id="flow-map")
                flow_legend = gr.Image(
                    show_label=False, container=False, format="png", interactive=False, buttons=[], elem_classes="legend"
                )

        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                overlay_map = gr.Radio(
                    choices=[("Residual map", "residual"), ("Flow-likelihood map", "flow")],
                    value="residual",
                    label="Overlay",
                )
                opacity = gr.Slider(0.0, 1.0, value=DEFAULT_OPACITY, step=0.05, label="Heat map opacity")
                overlay_view = gr.Image(label="Heat map over the input", format="png", interactive=False, elem_id="overlay")
            with gr.Column(scale=3):
                calibration_plot = gr.Image(label="Calibration", format="png", interactive=False, elem_id="calibration-plot")
                operating_point = gr.Markdown(elem_id="operating-point")

        with gr.Accordion("Details (JSON)", open=False):
            details = gr.JSON(label="Details")

    with gr.Tab("Batch"):
        gr.Markdown(
            f"Score up to {MAX_BATCH_FILES} files at once. Verdicts use the threshold set on the Inspect tab. "
            "Files that cannot be read are listed with the reason."
        )
        batch_files = gr.File(label="Image files", file_count="multiple", file_types=FILE_TYPES, type="filepath")
        # A Number, not the Inspect tab's slider: API calls skip the page load that sets the
        # slider's range, and the slider's static range would reject negative thresholds.
        batch_threshold = gr.Number(
            label="Decision threshold on the raw score",
            info="Follows the Inspect tab's slider. Empty means the shipped threshold.",
            value=None,
            elem_id="batch-threshold",
        )
        batch_button = gr.Button("Score files", variant="primary")
        batch_table = gr.Dataframe(
            headers=["file", "score", "normalized", "verdict", "note"],
            label="Scores, highest first",
            interactive=False,
            wrap=True,
        )
        batch_csv = gr.File(label="CSV download", interactive=False)

    with gr.Accordion("About the model", open=False):
        model_card = gr.Markdown("The model card appears once the model has loaded.")

    # The inspect endpoint returns what an API client needs. The .then steps fill the views that
    # depend on the UI's threshold, overlay choice and opacity from the stored prediction.
    upload.change(
        inspect_image,
        inputs=upload,
        outputs=[reconstruction, residual_map, flow_map, overlay_view, score, normalized, verdict, details, prediction_state],
        api_name="inspect",
        concurrency_id="model",
    ).then(
        show_prediction,
        inputs=[prediction_state, threshold, overlay_map, opacity],
        outputs=[input_view, overlay_view, verdict, result, calibration_plot, operating_point],
        api_visibility="private",
    ).then(
        fit_slider_to_score,
        inputs=prediction_state,
        outputs=threshold,
        api_visibility="private",
    )
    threshold.change(
        lambda value: value,
        inputs=threshold,
        outputs=batch_threshold,
        api_visibility="private",
        show_progress="hidden",
    )
    threshold.change(
        update_decision,
        inputs=[prediction_state, threshold],
        outputs=[verdict, result, operating_point],
        api_visibility="private",
        show_progress="hidden",
    ).then(
        update_calibration_plot,
        inputs=[prediction_state, threshold],
        outputs=calibration_plot,
        api_visibility="private",
        show_progress="hidden",
    )
    gr.on(
        [overlay_map.change, opacity.change],
        update_overlay,
        inputs=[prediction_state, overlay_map, opacity],
        outputs=overlay_view,
        api_visibility="private",
        show_progress="hidden",
    )
    batch_button.click(
        score_batch,
        inputs=[batch_files, batch_threshold],
        outputs=[batch_table, batch_csv],
        api_name="score_batch",
        concurrency_id="model",
    )
    demo.load(
        load_page,
        outputs=[threshold, calibration_plot, operating_point, model_card, residual_legend, flow_legend],
        api_visibility="private",
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request Gradio makes to itself at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo.launch(**LAUNCH_OPTIONS, css=CSS)
