"""Heat maps on a fixed colour scale, shared by the CLI and the app."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

# Perceptually uniform and readable in grey print (matplotlib's "inferno").
COLORMAP = "inferno"


def heatmap_rgb(values: np.ndarray, vmin: float, vmax: float, colormap: str = COLORMAP) -> np.ndarray:
    """Colour a 2D map on the fixed range [vmin, vmax]; returns uint8 ``(H, W, 3)``.

    Values outside the range take the end colours, so the same colour means the same value on
    every image, unlike a per-image min-max stretch.
    """
    span = max(vmax - vmin, 1e-12)
    scaled = np.clip((np.asarray(values, dtype=np.float64) - vmin) / span, 0.0, 1.0)
    return (colormaps[colormap](scaled)[..., :3] * 255).round().astype(np.uint8)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert a float image in [0, 1] to uint8."""
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float) -> np.ndarray:
    """Blend a uint8 heat map over a float image in [0, 1] with ``opacity`` in [0, 1]; returns uint8."""
    base = to_uint8(image).astype(np.float64)
    blended = (1.0 - opacity) * base + opacity * heat.astype(np.float64)
    return blended.round().astype(np.uint8)


def colorbar_rgb(vmin: float, vmax: float, *, height: int = 256, width: int = 24, colormap: str = COLORMAP) -> np.ndarray:
    """Return a vertical colour bar image, ``vmax`` at the top."""
    column = np.linspace(vmax, vmin, height)[:, None].repeat(width, axis=1)
    return heatmap_rgb(column, vmin, vmax, colormap)
