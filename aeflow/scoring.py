"""Anomaly maps and scores of AE-FLOW. Higher always means more anomalous.

- Flow NLL: negative log-likelihood of z' under the standard Gaussian, in nats per dimension;
  with ``score_log_det`` it also subtracts the flow's log|det J|, which makes it the NLL of z.
  Every value stays in log space: the likelihood of a 112 x 16 x 16 map is exp(-40,000) or so,
  which float32 rounds to 0.
- S_flow = -exp(-NLL per dimension), the negated per-dimension (geometric mean) likelihood as
  in the AE-FLOW paper; it lies in [-1 / sqrt(2 pi), 0) for a perfect Gaussian fit.
- S_recon = 1 - SSIM(x, x'), in [0, 2].
- S = b * S_flow + (1 - b) * S_recon.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .config import AEFlowConfig

# log(2 pi) / 2: the constant in the log-density of one standard Gaussian dimension.
HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)

# SSIM stabilisers for data in [0, 1] (Wang et al., 2004): C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 1.
_SSIM_C1 = 0.01**2
_SSIM_C2 = 0.03**2


class AnomalyResult(NamedTuple):
    """Scores ``(B,)``, maps ``(B, 1, H, W)`` and the reconstruction ``(B, 3, H, W)`` in [0, 1]."""

    score: torch.Tensor
    flow_score: torch.Tensor
    recon_score: torch.Tensor
    flow_nll: torch.Tensor
    residual_map: torch.Tensor
    flow_map: torch.Tensor
    reconstruction: torch.Tensor


def flow_nll_map(latent: torch.Tensor, log_jac_det: torch.Tensor) -> torch.Tensor:
    """Compute the flow's negative log-likelihood per location, in nats per dimension.

    The log-determinant is spread evenly over locations, so the mean of the map over all
    locations is exactly the per-dimension NLL of the whole map.

    Args:
        latent (torch.Tensor): z' of shape ``(B, C, h, w)``.
        log_jac_det (torch.Tensor): log|det dz'/dz| of shape ``(B,)``.

    Returns:
        torch.Tensor: NLL map of shape ``(B, 1, h, w)``.
    """
    _, channels, height, width = latent.shape
    gaussian = 0.5 * latent.pow(2).mean(dim=1, keepdim=True) + HALF_LOG_TWO_PI
    log_det_share = log_jac_det.view(-1, 1, 1, 1) / (channels * height * width)
    return gaussian - log_det_share


def pooled_flow_nll(latent: torch.Tensor) -> torch.Tensor:
    """Compute the NLL of the spatial mean of z', in nats per channel ``(B,)``.

    If z' is standard Gaussian at every location, the mean of each channel over the h w
    locations is N(0, 1 / (h w)). This scores the whole map at once, so it catches a shift that
    spreads over the image, which a per-location score averages away against its noise.
    """
    locations = latent.shape[-2] * latent.shape[-1]
    pooled = latent.mean(dim=(2, 3))  # (B, C)
    return 0.5 * locations * pooled.pow(2).mean(dim=1) + HALF_LOG_TWO_PI - 0.5 * math.log(locations)


def reduce_flow_nll(nll_map: torch.Tensor, reduction: str, topk: float) -> torch.Tensor:
    """Reduce an NLL map ``(B, 1, h, w)`` to one value per image ``(B,)``.

    ``"mean"`` gives the per-dimension NLL of the whole map, ``"max"`` the worst location and
    ``"topk"`` the mean of the highest ``topk`` fraction of locations.
    """
    flat = nll_map.flatten(1)
    if reduction == "mean":
        return flat.mean(dim=1)
    if reduction == "max":
        return flat.amax(dim=1)
    if reduction == "topk":
        count = max(1, int(round(topk * flat.shape[1])))
        return flat.topk(count, dim=1).values.mean(dim=1)
    msg = f"Unknown flow reduction {reduction!r}; choose mean, max or topk."
    raise ValueError(msg)


def _gaussian_kernel_1d(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).to(dtype)


def ssim(x: torch.Tensor, y: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute the structural similarity of two image batches with values in [0, 1].

    Uses a Gaussian window without padding, per channel, as in Wang et al. (2004).

    Args:
        x (torch.Tensor): Images ``(B, C, H, W)``.
        y (torch.Tensor): Images ``(B, C, H, W)``.
        window (int): Side of the Gaussian window. Defaults to ``11``.
        sigma (float): Standard deviation of the window. Defaults to ``1.5``.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: Mean SSIM per image ``(B,)`` and the SSIM map
        ``(B, 1, H - window + 1, W - window + 1)`` averaged over channels.
    """
    if x.shape != y.shape:
        msg = f"SSIM needs two batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}."
        raise ValueError(msg)
    channels = x.shape[1]
    kernel = _gaussian_kernel_1d(window, sigma, x.device, x.dtype)

    # The 2D Gaussian window is the outer product of two 1D ones, so one horizontal and one
    # vertical pass (2 * window taps) give the same blur as the window x window kernel. The five
    # blurred maps share one grouped convolution per pass.
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = stacked.shape[1]
    blurred = F.conv2d(stacked, kernel.view(1, 1, 1, window).expand(groups, 1, 1, window), groups=groups)
    blurred = F.conv2d(blurred, kernel.view(1, 1, window, 1).expand(groups, 1, window, 1), groups=groups)
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = blurred.split(channels, dim=1)

    var_x = mean_xx - mu_x.pow(2)
    var_y = mean_yy - mu_y.pow(2)
    cov = mean_xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)
    denominator = (mu_x.pow(2) + mu_y.pow(2) + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    ssim_map = (numerator / denominator).mean(dim=1, keepdim=True)
    return ssim_map.flatten(1).mean(dim=1), ssim_map


def denormalize(image: torch.Tensor, config: AEFlowConfig) -> torch.Tensor:
    """Undo the ImageNet normalisation and clamp to [0, 1]."""
    mean = torch.tensor(config.mean, device=image.device, dtype=image.dtype).view(1, -1, 1, 1)
    std = torch.tensor(config.std, device=image.device, dtype=image.dtype).view(1, -1, 1, 1)
    return (image * std + mean).clamp(0.0, 1.0)


def anomaly_result(
    image: torch.Tensor,
    reconstruction: torch.Tensor,
    latent: torch.Tensor,
    log_jac_det: torch.Tensor,
    config: AEFlowConfig,
) -> AnomalyResult:
    """Score a batch from the model's outputs.

    Args:
        image (torch.Tensor): Normalised input x ``(B, 3, H, W)``.
        reconstruction (torch.Tensor): Normalised x' ``(B, 3, H, W)``.
        latent (torch.Tensor): z' ``(B, C, h, w)``.
        log_jac_det (torch.Tensor): log|det J| ``(B,)``.
        config (AEFlowConfig): Supplies the score weight, the flow reduction and the SSIM window.

    Returns:
        AnomalyResult: Scores and maps, higher = more anomalous.
    """
    size = image.shape[-2:]
    if not config.score_log_det:
        log_jac_det = torch.zeros_like(log_jac_det)
    nll_map = flow_nll_map(latent, log_jac_det)
    if config.flow_reduction == "pooled":
        flow_nll = pooled_flow_nll(latent)
        if config.score_log_det:
            flow_nll = flow_nll - log_jac_det / latent[0].numel()
    else:
        flow_nll = reduce_flow_nll(nll_map, config.flow_reduction, config.flow_topk)
    flow_score = -torch.exp(-flow_nll)

    pixels = denormalize(image, config)
    rebuilt = denormalize(reconstruction, config)
    similarity, _ = ssim(pixels, rebuilt, window=config.ssim_window, sigma=config.ssim_sigma)
    recon_score = 1.0 - similarity

    score = config.score_weight * flow_score + (1.0 - config.score_weight) * recon_score
    residual_map = (pixels - rebuilt).abs().mean(dim=1, keepdim=True)
    flow_map = F.interpolate(nll_map, size=size, mode="bilinear", align_corners=False)
    return AnomalyResult(score, flow_score, recon_score, flow_nll, residual_map, flow_map, rebuilt)
