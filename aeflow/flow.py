"""Normalizing flow on the encoder's feature map, built from FrEIA affine coupling blocks.

The flow keeps the spatial layout (FastFlow-style, Yu et al. 2021): each step splits the
channels, predicts a scale and shift for one half from the other with a small convolutional
subnet, and permutes the channels. ``FrEIA.modules.AllInOneBlock`` adds a learned global affine
scale and the permutation to every step.
"""

from __future__ import annotations

from functools import partial

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import torch
from torch import nn


class ConvSubnet(nn.Sequential):
    """Coupling subnet "conv": 3x3 conv, ReLU, 1x1 conv.

    The last convolution starts at zero, so every coupling starts as the identity and the flow
    starts as a pure channel permutation with zero log-determinant (as in Glow, Kingma and
    Dhariwal 2018).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, out_channels, kernel_size=1),
        )
        nn.init.zeros_(self[-1].weight)
        nn.init.zeros_(self[-1].bias)


class ResidualSubnet(nn.Module):
    """Coupling subnet "resnet": 3x3 conv, BatchNorm, ReLU, 1x1 conv, plus a 1x1 conv shortcut.

    Both output convolutions start at zero, for the same reason as in :class:`ConvSubnet`.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(hidden_channels),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, out_channels, kernel_size=1),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        for layer in (self.body[-1], self.shortcut):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


_SUBNETS = {"conv": ConvSubnet, "resnet": ResidualSubnet}


def _make_subnet(in_channels: int, out_channels: int, *, kind: str, hidden_ratio: float) -> nn.Module:
    # A module-level function behind functools.partial, not a lambda, so the flow stays picklable
    # apart from FrEIA's own permutation lambda.
    hidden_channels = max(1, int(round(in_channels * hidden_ratio)))
    return _SUBNETS[kind](in_channels, out_channels, hidden_channels)


class CouplingFlow(nn.Module):
    """Invertible map z to z' on ``(B, C, H, W)`` feature maps.

    Args:
        channels (int): Feature channels C.
        size (int): Feature map side H = W.
        steps (int): Number of affine coupling steps.
        subnet (str): ``"conv"`` or ``"resnet"``.
        hidden_ratio (float): Subnet hidden channels as a multiple of its input channels.
        clamp (float): Soft clamp of the coupling log-scales.

    NOTE: FrEIA's hard permutation stores a lambda, so this module cannot be pickled. Save its
    ``state_dict``, which also holds the random permutations as int64 parameters.
    """

    def __init__(
        self, channels: int, size: int, *, steps: int = 8, subnet: str = "conv", hidden_ratio: float = 1.0,
        clamp: float = 2.0,
    ) -> None:
        super().__init__()
        if subnet not in _SUBNETS:
            msg = f"Unknown subnet {subnet!r}; choose one of {', '.join(_SUBNETS)}."
            raise ValueError(msg)
        self.inn = Ff.SequenceINN(channels, size, size)
        constructor = partial(_make_subnet, kind=subnet, hidden_ratio=hidden_ratio)
        for _ in range(steps):
            self.inn.append(Fm.AllInOneBlock, subnet_constructor=constructor, affine_clamping=clamp, permute_soft=False)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map features z ``(B, C, H, W)`` to z' of the same shape and log|det dz'/dz| ``(B,)``."""
        latent, log_jac_det = self.inn(features)
        return latent, log_jac_det

    def inverse(self, latent: torch.Tensor) -> torch.Tensor:
        """Map z' back to z."""
        features, _ = self.inn(latent, rev=True)
        return features
