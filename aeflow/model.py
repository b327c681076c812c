"""AE-FLOW: normalizing flow based autoencoder for medical anomaly detection.

Y. Zhao, Q. Ding, X. Zhang, "AE-FLOW: Autoencoders with Normalizing Flows for Medical Images
Anomaly Detection", ICLR 2023, https://openreview.net/forum?id=9OmCr1q54Z

An encoder f maps the image x to features z at stride 16, a normalizing flow maps z to z'
under a standard Gaussian, and a decoder g rebuilds x' from z'. This module contains the networks
only: training, scoring, file and Hub I/O live in sibling modules.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> AnomalyResult:
        """Score a normalised batch ``(B, 3, H, W)``: anomaly scores and maps at input resolution.

        Runs without gradient tracking; call ``forward`` to train.
        """
        output = self(image)
        return anomaly_result(image, output.reconstruction, output.latent, output.log_jac_det, self.config)


def fuse_for_inference(model: AEFlowModel) -> AEFlowModel:
    """Return an eval-mode copy of ``model`` with each BatchNorm folded into the convolution before it.

    In eval mode BatchNorm is a fixed per-channel affine map, so it can be merged into the weights
    and bias of the preceding ``Conv2d`` or ``ConvTranspose2d``. The copy has gradients switched
    off and computes the same outputs up to float rounding, but its ``state_dict`` has different
    keys, so save ``model``, never the copy. ``model`` itself is left unchanged.
    """
    fused = copy.deepcopy(model).eval().requires_grad_(False)
    size = model.config.image_size
    device = next(model.parameters()).device
    pairs = _conv_batchnorm_pairs(fused, torch.zeros(1, 3, size, size, device=device))
    for parent, conv_name, bn_name in pairs:
        conv = getattr(parent, conv_name)
        bn = getattr(parent, bn_name)
        setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d)))
        setattr(parent, bn_name, _batchnorm_remainder(bn))
    return fused


def _batchnorm_remainder(bn: nn.BatchNorm2d) -> nn.Module:
    """Return what is left of ``bn`` once its affine map is folded away: nothing, or timm's activation."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    # timm's BatchNormAct2d applies dropout (identity in eval mode) and an activation after the norm.
    return nn.Sequential(bn.drop, bn.act)


def _conv_batchnorm_pairs(model: nn.Module, image: torch.Tensor) -> list[tuple[nn.Module, str, str]]:
    """Find each BatchNorm2d whose input is the output of a convolution with the same parent module.

    Runs ``model`` once on ``image`` with forward hooks, so a pair is found from the data flow,
    not from the order in which modules were registered.
    NOTE: a convolution whose output also feeds a module other than its BatchNorm would change
    that module's input when folded. No encoder, flow or decoder here does that.
    """
    conv_outputs: dict[int, nn.Module] = {}
    bn_inputs: dict[nn.Module, int] = {}
    kept: list[torch.Tensor] = []  # keeps the tensors alive, so their ids stay unique during the run

    def record_conv(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        conv_outputs[id(output)] = module
        kept.append(output)

    def record_bn(module: nn.Module, inputs: tuple) -> None:
        bn_inputs[module] = id(inputs[0])
        kept.append(inputs[0])

    folding_types = (nn.Conv2d, nn.ConvTranspose2d)
    handles = []
    for module in model.modules():
        if isinstance(module, folding_types):
            handles.append(module.register_forward_hook(record_conv))
        elif _is_foldable_batchnorm(module):
            handles.append(module.register_forward_pre_hook(record_bn))
    try:
        with torch.inference_mode():
            model(image)
    finally:
        for handle in handles:
            handle.remove()

    pairs = []
    for parent in model.modules():
        children = dict(parent.named_children())
        names = {id(child): name for name, child in children.items()}
        for bn_name, bn in children.items():
            conv = conv_outputs.get(bn_inputs.get(bn, -1))
            if conv is not None and id(conv) in names:
                pairs.append((parent, names[id(conv)], bn_name))
    return pairs


def _is_foldable_batchnorm(module: nn.Module) -> bool:
    """Check for a BatchNorm2d with running statistics that is plain or timm's BatchNormAct2d."""
    if not isinstance(module, nn.BatchNorm2d) or module.running_mean is None:
        return False
    if type(module) is nn.BatchNorm2d:
        return True
    return type(module).__name__ == "BatchNormAct2d" and hasattr(module, "act") and hasattr(module, "drop")
