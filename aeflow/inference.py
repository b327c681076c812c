"""Score image files with a trained model: the path shared by the CLI and the app."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .calibration import Calibration
from .hub import AEFlow, load_model
from .io import read_image, to_model_input
from .model import fuse_for_inference
from .scoring import AnomalyResult, denormalize

logger = logging.getLogger(__name__)


VERDICT_ANOMALOUS = "anomalous"
VERDICT_NORMAL = "normal"


def decide(score: float, threshold: float) -> str:
    """Return the verdict for a raw score: anomalous at or above ``threshold``, else normal."""
    return VERDICT_ANOMALOUS if score >= threshold else VERDICT_NORMAL


def select_device() -> torch.device:
    """Return CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Prediction:
    """Result for one image. Maps are ``(S, S)`` float32 arrays at the model's input size."""

    score: float  # raw anomaly score S, higher = more anomalous
    flow_score: float  # S_flow = -exp(-flow_nll)
    recon_score: float  # S_recon = 1 - SSIM(x, x')
    flow_nll: float  # flow negative log-likelihood, nats per dimension
    image: np.ndarray  # model input as seen by the model, (S, S, 3) in [0, 1]
    reconstruction: np.ndarray  # x', (S, S, 3) in [0, 1]
    residual_map: np.ndarray  # |x - x'| averaged over channels, in [0, 1]
    flow_map: np.ndarray  # per-location flow NLL, upsampled, nats per dimension
    warnings: list[str] = field(default_factory=list)

    def normalized_score(self, calibration: Calibration | None) -> float | None:
        """Return the score mapped to (0, 1) with the threshold at 0.5, or None without calibration."""
        return None if calibration is None else calibration.normalize(self.score)

    def is_anomalous(self, threshold: float) -> bool:
        """Apply a decision threshold: scores at or above it are anomalous."""
        return decide(self.score, threshold) == VERDICT_ANOMALOUS


class Inspector:
    """A loaded model on a device, ready to score images.

    Args:
        model (AEFlow): A trained model; its calibration supplies the threshold.
        device (torch.device | None): Defaults to :func:`select_device`.
    """

    def __init__(self, model: AEFlow, device: torch.device | None = None) -> None:
        self.device = device or select_device()
        self.model = model.to(self.device).eval()
        self.config = model.config
        # Scoring runs on a copy with BatchNorm folded into the convolutions and channels_last
        # weights, about 1.5x faster on a CPU (docs/benchmarks.md). Its outputs match
        # self.model's within 1e-4, and self.model keeps the state_dict for saving.
        self.inference_model = fuse_for_inference(self.model).to(memory_format=torch.channels_last)
        self.calibration = model.calibration

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, revision: str | None = None) -> Inspector:
        """Load a model folder or Hub repo id onto the best available device."""
        device = select_device()
        return cls(load_model(source, revision=revision, device=device), device)

    @property
    def threshold(self) -> float | None:
        """The shipped decision threshold, or None for an uncalibrated model."""
        return None if self.calibration is None else self.calibration.threshold

    @torch.inference_mode()
    def predict_arrays(self, images: list[np.ndarray]) -> list[Prediction]:
        """Score images given as ``(H, W, 3)`` float arrays in [0, 1], in one batch."""
        batch = torch.cat(
            [to_model_input(image, self.config.image_size, self.config.mean, self.config.std) for image in images]
        ).to(self.device, memory_format=torch.channels_last)
        result = self.inference_model.predict(batch)
        output_images = denormalize(batch, self.config).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        reconstructions = result.reconstruction.permute(0, 2, 3, 1).contiguous().cpu().numpy()

        predictions = []
        for index in range(len(images)):
            prediction = Prediction(
                score=float(result.score[index]),
                flow_score=float(result.flow_score[index]),
                recon_score=float(result.recon_score[index]),
                flow_nll=float(result.flow_nll[index]),
                image=output_images[index],
                reconstruction=reconstructions[index],
                residual_map=result.residual_map[index, 0].contiguous().cpu().numpy(),
                flow_map=result.flow_map[index, 0].contiguous().cpu().numpy(),
            )
            if self.calibration is not None and self.calibration.out_of_range(prediction.flow_nll):
                prediction.warnings.append(
                    f"The flow likelihood ({prediction.flow_nll:.3f} nats per dimension) is far outside the "
                    f"range of the calibration images ({self.calibration.flow_nll_low:.3f} to "
                    f"{self.calibration.flow_nll_high:.3f}): this input may not be a chest X-ray like the "
                    "training data, so treat the score with caution."
                )
            predictions.append(prediction)
        return predictions

    def predict_file(self, path: str | os.PathLike) -> Prediction:
        """Read and score one image file.

        Raises:
            aeflow.io.ImageLoadError: When the file cannot be read as an image.
        """
        return self.predict_arrays([read_image(path)])[0]


@torch.inference_mode()
def score_tensors(model: AEFlow, images: torch.Tensor, batch_size: int = 16) -> AnomalyResult:
    """Score normalised images ``(N, 3, S, S)`` in batches on the model's device; results on the CPU."""
    device = next(model.parameters()).device
    parts = [model.predict(images[start : start + batch_size].to(device)) for start in range(0, len(images), batch_size)]
    return AnomalyResult(*(torch.cat([getattr(part, name) for part in parts]).cpu() for name in AnomalyResult._fields))
