"""Hyperparameters of an AE-FLOW model, stored as ``config.json`` beside the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

BACKBONES = ("efficientnet_lite0", "wide_resnet50_2")
SUBNETS = ("conv", "resnet")
FLOW_REDUCTIONS = ("mean", "max", "topk", "pooled")
FEATURE_NORMS = ("none", "channel", "location")

# Stride of every supported encoder's output map: the image side must be a multiple of it.
FEATURE_STRIDE = 16


@dataclass(frozen=True)
class AEFlowConfig:
    """Architecture, loss and score settings of one model.

    Every field is plain JSON so that ``PyTorchModelHubMixin`` can write it to ``config.json``
    and rebuild an identical model from it.
    """

    # Side of the square network input in pixels. 256 gives a 16 x 16 feature map at stride 16.
    image_size: int = 256
    backbone: str = "efficientnet_lite0"
    # True trains the encoder under the AE-FLOW loss; False keeps it frozen in eval mode so its
    # ImageNet BatchNorm statistics stay untouched.
    train_encoder: bool = False
    # Eight affine coupling steps, as in the AE-FLOW paper (Zhao et al., ICLR 2023).
    flow_steps: int = 8
    # Standardisation of encoder features before the couplings, fitted on the training features:
    # "location" uses a mean and std per channel and location (as PaDiM's per-location Gaussian
    # does), "channel" one per channel, "none" skips it.
    feature_norm: str = "location"
    subnet: str = "conv"
    # Hidden channels of each coupling subnet, as a multiple of the feature channels.
    hidden_ratio: float = 1.0
    # Soft clamp of the coupling log-scale (FrEIA's affine_clamping); 2.0 keeps early steps stable.
    clamp: float = 2.0
    # Channels of the four decoder stages, from the feature map up to the image. Doubling these
    # widths made a CPU training step about four times slower, for a part that carries only
    # 1 - b = 10% of the score.
    decoder_channels: tuple[int, ...] = (64, 32, 16, 8)
    # Loss weight a: L = a * L_flow + (1 - a) * L_recon. 0.5 in the paper.
    loss_weight: float = 0.5
    # Score weight b: S = b * S_flow + (1 - b) * S_recon. 0.9 in the paper.
    score_weight: float = 0.9
    # How z' becomes one flow score: "mean" of the per-location NLL (the paper), "max", "topk"
    # (the mean of the highest ``flow_topk`` fraction of locations), or "pooled", the NLL of the
    # spatial mean of z' (see aeflow.scoring.pooled_flow_nll).
    flow_reduction: str = "mean"
    flow_topk: float = 0.1
    # Whether the flow score subtracts log|det J| (the NLL of z) or scores z' under the Gaussian
    # alone, as FastFlow's anomaly map does. On held-out chest X-rays the Gaussian term alone
    # separated pneumonia better (docs/experiments.md); the training loss always uses log|det J|.
    score_log_det: bool = False
    # Side of the Gaussian SSIM window in pixels and its standard deviation (Wang et al., 2004).
    ssim_window: int = 11
    ssim_sigma: float = 1.5
    # Channel statistics of the ImageNet training set, which both pretrained encoders expect.
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        # config.json stores tuples as JSON lists; turn them back so equal configs compare equal.
        for name in ("decoder_channels", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.backbone not in BACKBONES:
            msg = f"Unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}."
            raise ValueError(msg)
        if self.subnet not in SUBNETS:
            msg = f"Unknown subnet {self.subnet!r}; choose one of {', '.join(SUBNETS)}."
            raise ValueError(msg)
        if self.feature_norm not in FEATURE_NORMS:
            msg = f"Unknown feature_norm {self.feature_norm!r}; choose one of {', '.join(FEATURE_NORMS)}."
            raise ValueError(msg)
        if self.flow_reduction not in FLOW_REDUCTIONS:
            msg = (
                f"Unknown flow_reduction {self.flow_reduction!r}; "
                f"choose one of {', '.join(FLOW_REDUCTIONS)}."
            )
            raise ValueError(msg)
        if self.image_size <= 0 or self.image_size % FEATURE_STRIDE:
            msg = f"image_size must be a positive multiple of {FEATURE_STRIDE}, got {self.image_size}."
            raise ValueError(msg)
        if len(self.decoder_channels) != 4:
            msg = f"decoder_channels needs one entry per x2 stage (4), got {list(self.decoder_channels)}."
            raise ValueError(msg)
        for name in ("loss_weight", "score_weight"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                msg = f"{name} must lie in [0, 1], got {value}."
                raise ValueError(msg)
        if not 0.0 < self.flow_topk <= 1.0:
            msg = f"flow_topk must lie in (0, 1], got {self.flow_topk}."
            raise ValueError(msg)
        if self.flow_steps < 1:
            msg = f"flow_steps must be at least 1, got {self.flow_steps}."
            raise ValueError(msg)

    @property
    def feature_size(self) -> int:
        """Side of the encoder's output map."""
        return self.image_size // FEATURE_STRIDE

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
