"""Decision threshold and display scales, chosen on held-out data and shipped with the weights.

Stored as ``calibration.json`` beside ``config.json``. Nothing here looks at the test split: the
training command fits it on normal images held out from training (and, when given, a separate
set of known anomalies used only to draw the ROC curve).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

CALIBRATION_NAME = "calibration.json"

# Upper percentile of held-out normal pixels that fixes the top of each heat-map colour scale,
# so that the same colour means the same value on every image.
MAP_PERCENTILE = 99.5

# Widening of the calibration images' flow-NLL range, as a fraction of its span, before an input
# counts as far outside what the model was calibrated on.
OUT_OF_RANGE_MARGIN = 0.25


@dataclass
class Calibration:
    """Threshold, score normalisation and heat-map scales of one trained model."""

    threshold: float  # raw anomaly score at or above which an image is called anomalous
    score_scale: float  # spread of held-out normal scores; sets the slope of the normalised score
    target_specificity: float  # fraction of held-out normals below the threshold, by design
    residual_map_max: float  # top of the residual colour scale, in [0, 1] intensity units
    flow_map_min: float  # bottom and top of the flow NLL colour scale, nats per dimension
    flow_map_max: float
    flow_nll_low: float  # flow NLL range beyond which an input is out of the calibrated range
    flow_nll_high: float
    normal_scores: list[float] = field(default_factory=list)  # held-out normal training images
    anomaly_scores: list[float] = field(default_factory=list)  # known anomalies, ROC display only
    source: str = ""  # the data the values came from

    def normalize(self, score: float) -> float:
        """Map a raw score to (0, 1) with the threshold at exactly 0.5 (a logistic curve)."""
        return 1.0 / (1.0 + math.exp(-(score - self.threshold) / self.score_scale))

    def out_of_range(self, flow_nll: float) -> bool:
        """Tell whether a flow NLL lies far outside the calibration images' range."""
        return not self.flow_nll_low <= flow_nll <= self.flow_nll_high

    def save(self, directory: str | Path) -> Path:
        """Write ``calibration.json`` into ``directory``."""
        path = Path(directory) / CALIBRATION_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a ``calibration.json`` file."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
            return cls(**values)
        except (json.JSONDecodeError, TypeError) as error:
            msg = f"{path} is not a valid calibration file ({error}); recalibrate with `aeflow calibrate`."
            raise ValueError(msg) from error


def fit_calibration(
    normal_scores: np.ndarray,
    normal_flow_nll: np.ndarray,
    normal_residual_pixels: np.ndarray,
    normal_flow_map_pixels: np.ndarray,
    *,
    target_specificity: float = 0.95,
    anomaly_scores: np.ndarray | None = None,
    anomaly_flow_nll: np.ndarray | None = None,
    source: str = "",
) -> Calibration:
    """Choose the threshold and the display scales from held-out normal images.

    The threshold is the ``target_specificity`` quantile of the normal scores, so that fraction
    of normal images falls below it. Known anomalies, when given, only widen the in-range band
    of the flow NLL and feed the ROC display; they never move the threshold.
    """
    if len(normal_scores) < 2:
        msg = f"Calibration needs at least 2 held-out normal images, got {len(normal_scores)}."
        raise ValueError(msg)
    normal_scores = np.asarray(normal_scores, dtype=np.float64)
    threshold = float(np.quantile(normal_scores, target_specificity))
    score_scale = float(np.std(normal_scores)) or 1e-6

    nll_values = np.asarray(normal_flow_nll, dtype=np.float64)
    if anomaly_flow_nll is not None and len(anomaly_flow_nll):
        nll_values = np.concatenate([nll_values, np.asarray(anomaly_flow_nll, dtype=np.float64)])
    span = float(nll_values.max() - nll_values.min())

    return Calibration(
        threshold=threshold,
        score_scale=score_scale,
        target_specificity=target_specificity,
        residual_map_max=float(np.percentile(normal_residual_pixels, MAP_PERCENTILE)),
        flow_map_min=float(np.percentile(normal_flow_map_pixels, 100 - MAP_PERCENTILE)),
        flow_map_max=float(np.percentile(normal_flow_map_pixels, MAP_PERCENTILE)),
        flow_nll_low=float(nll_values.min() - OUT_OF_RANGE_MARGIN * span),
        flow_nll_high=float(nll_values.max() + OUT_OF_RANGE_MARGIN * span),
        normal_scores=[float(value) for value in normal_scores],
        anomaly_scores=[] if anomaly_scores is None else [float(value) for value in anomaly_scores],
        source=source,
    )
