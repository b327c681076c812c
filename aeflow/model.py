"""AE-FLOW: normalizing flow based autoencoder for medical anomaly detection.

Y. Zhao, Q. Ding, X. Zhang, "AE-FLOW: Autoencoders with Normalizing Flows for Medical Images
Anomaly Detection", ICLR 2023, https://openreview.net/forum?id=9OmCr1q54Z

An encoder f maps the image x to features z at stride 16, a normalizing flow maps z to z'
under a standard Gaussian, and a decoder g rebuilds x' from z'. This module holds the networks
only: training, scoring, file and Hub I/O live in sibling modules.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import AEFlowConfig
from .decoder import Decoder
from .encoder import Encoder
from .flow import CouplingFlow
from .scoring import AnomalyResult, anomaly_result


class AEFlowOutput(NamedTuple):
    """Outputs of one forward pass, in training and evaluation alike."""

    features: torch.Tensor  # z, (B, C, h, w)
    latent: torch.Tensor  # z', (B, C, h, w)
    log_jac_det: torch.Tensor  # log|det dz'/dz|, (B,)
    reconstruction: torch.Tensor  # x', (B, 3, H, W), normalised like the input


class AEFlowModel(nn.Module):
    """Encoder, flow and decoder of AE-FLOW, built from an :class:`AEFlowConfig`.

    The encoder starts with random weights; training calls ``encoder.load_imagenet_weights()``
    and saved models carry every weight, so loading one never downloads a backbone.

    Args:
        config (AEFlowConfig): Architecture, loss and score settings.

    Example:
        >>> model = AEFlowModel(AEFlowConfig(image_size=64)).eval()
        >>> model(torch.zeros(1, 3, 64, 64)).latent.shape
        torch.Size([1, 112, 4, 4])
    """

    def __init__(self, config: AEFlowConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.backbone, trainable=config.train_encoder)
        channels = self.encoder.channels
        self.flow = CouplingFlow(
            channels,
            config.feature_size,
            steps=config.flow_steps,
            subnet=config.subnet,
            hidden_ratio=config.hidden_ratio,
            clamp=config.clamp,
        )
        self.decoder = Decoder(channels, config.decoder_channels)

    def forward(self, image: torch.Tensor) -> AEFlowOutput:
        """Run encoder, flow and decoder on a normalised batch ``(B, 3, H, W)``."""
        # encode
        features = self.encoder(image)  # (B, C, H / 16, W / 16)

        # flow and decode
        return self.forward_features(features)

    def forward_features(self, features: torch.Tensor) -> AEFlowOutput:
        """Run flow and decoder on encoder features ``(B, C, h, w)``.

        Training with a frozen encoder computes the features once and calls this directly.
        """
        if features.shape[-1] != self.config.feature_size or features.shape[-2] != self.config.feature_size:
            msg = (
                f"Expected {self.config.feature_size} x {self.config.feature_size} features for "
                f"{self.config.image_size} px images, got {tuple(features.shape[-2:])}."
            )
            raise ValueError(msg)

        # flow
        latent, log_jac_det = self.flow(features)  # (B, C, h, w), (B,)

        # decode
        reconstruction = self.decoder(latent)  # (B, 3, 16 h, 16 w)
        return AEFlowOutput(features, latent, log_jac_det, reconstruction)

    def predict(self, image: torch.Tensor) -> AnomalyResult:
        """Score a normalised batch ``(B, 3, H, W)``: anomaly scores and maps at input resolution."""
        output = self(image)
        return anomaly_result(image, output.reconstruction, output.latent, output.log_jac_det, self.config)
