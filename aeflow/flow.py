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


class FeatureStandardizer(nn.Module):
    """Fixed element-wise affine map (z - mean) / std, the flow's first invertible step.

    ``mean`` and ``std`` have shape ``(1, C, h, w)`` and are fitted once on training features
    (per location and channel, or per channel broadcast over locations). Like an ActNorm layer
    initialised from data, it is invertible with a constant log-determinant, -sum(log std).
    Before fitting it is the identity.
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, size, size))
        self.register_buffer("std", torch.ones(1, channels, size, size))

    @torch.no_grad()
    def fit(self, features: torch.Tensor, mode: str, eps: float = 1e-3) -> None:
        """Set the statistics from features ``(N, C, h, w)``; ``mode`` is "location" or "channel"."""
        if mode == "location":
            dims = (0,)
        elif mode == "channel":
            dims = (0, 2, 3)
        else:
            msg = f"Unknown feature standardisation {mode!r}; choose location or channel."
            raise ValueError(msg)
        self.mean.copy_(features.mean(dim=dims, keepdim=True).expand_as(self.mean))
        self.std.copy_((features.std(dim=dims, keepdim=True) + eps).expand_as(self.std))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_jac_det = -self.std.log().sum().expand(features.shape[0])
        return (features - self.mean) / self.std, log_jac_det

    def inverse(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self.std + self.mean


class CouplingFlow(nn.Module):
    """Invertible map z to z' on ``(B, C, H, W)`` feature maps: a fixed standardisation, then couplings.

    Args:
        channels (int): Feature channels C.
        size (int): Feature map side H = W.
        steps (int): Number of affine coupling steps.
        subnet (str): ``"conv"`` or ``"resnet"``.
        hidden_ratio (float): Subnet hidden channels as a multiple of its input channels.
        clamp (float): Soft clamp of the coupling log-scales.

    NOTE: FrEIA's hard permutation stores a lambda, so this module cannot be pickled. Save its
    ``state_dict``, which also contains the random permutation matrices as frozen parameters.
    """

    def __init__(
        self, channels: int, size: int, *, steps: int = 8, subnet: str = "conv", hidden_ratio: float = 1.0,
        clamp: float = 2.0,
    ) -> None:
        super().__init__()
        if subnet not in _SUBNETS:
            msg = f"Unknown subnet {subnet!r}; choose one of {', '.join(_SUBNETS)}."
            raise ValueError(msg)
        self.standardizer = FeatureStandardizer(channels, size)
        self.inn = Ff.SequenceINN(channels, size, size)
        constructor = partial(_make_subnet, kind=subnet, hidden_ratio=hidden_ratio)
        for _ in range(steps):
            self.inn.append(Fm.AllInOneBlock, subnet_constructor=constructor, affine_clamping=clamp, permute_soft=False)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map features z ``(B, C, H, W)`` to z' of the same shape and log|det dz'/dz| ``(B,)``."""
        standardized, standardizer_log_det = self.standardizer(features)
        latent, coupling_log_det = self.inn(standardized)
        return latent, standardizer_log_det + coupling_log_det

    def inverse(self, latent: torch.Tensor) -> torch.Tensor:
        """Map z' back to z."""
        standardized, _ = self.inn(latent, rev=True)
        return self.standardizer.inverse(standardized)
