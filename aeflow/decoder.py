"""Decoder g of AE-FLOW: rebuilds the image from the flow's output z'."""

from __future__ import annotations

import torch
from torch import nn


class Decoder(nn.Module):
    """Four x2 upsampling stages from ``(B, C, h, w)`` to ``(B, out_channels, 16 h, 16 w)``.

    Each stage is a 2x2 stride-2 transposed convolution followed by a 3x3 convolution, each with
    BatchNorm and ReLU; a final 3x3 convolution maps to the image channels. The output lives in
    the same normalised space as the encoder's input.

    Args:
        in_channels (int): Channels of z'.
        channels (tuple[int, ...]): Output channels of the four stages.
        out_channels (int): Image channels. Defaults to ``3``.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], out_channels: int = 3) -> None:
        super().__init__()
        stages = []
        previous = in_channels
        for width in channels:
            stages.append(
                nn.Sequential(
                    nn.ConvTranspose2d(previous, width, kernel_size=2, stride=2, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                    nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                )
            )
            previous = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv2d(previous, out_channels, kernel_size=3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Decode z' ``(B, C, h, w)`` into an image ``(B, out_channels, 16 h, 16 w)``."""
        return self.head(self.stages(latent))
