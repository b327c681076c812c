"""Shared fixtures: tiny seeded models and paths to the shipped real X-rays."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
XRAY_DIR = ROOT / "tests" / "data" / "xray"


def randomize_(module: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Add seeded noise to every trainable weight, so couplings are no longer the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.requires_grad and parameter.dtype.is_floating_point:
                parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return module


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
