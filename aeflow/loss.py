"""Training loss of AE-FLOW: L = a * L_flow + (1 - a) * L_recon."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .scoring import flow_nll_map


class LossParts(NamedTuple):
    """Scalar loss and its two parts, for logging."""

    total: torch.Tensor
    flow: torch.Tensor
    recon: torch.Tensor


def flow_nll(latent: torch.Tensor, log_jac_det: torch.Tensor) -> torch.Tensor:
    """Compute the batch mean of the flow's negative log-likelihood in nats per dimension.

    NLL(z) = (0.5 |z'|^2 + D/2 log(2 pi) - log|det J|) / D with D = C h w.
    """
    return flow_nll_map(latent, log_jac_det).flatten(1).mean(dim=1).mean()


def aeflow_loss(
    image: torch.Tensor,
    reconstruction: torch.Tensor,
    latent: torch.Tensor,
    log_jac_det: torch.Tensor,
    loss_weight: float,
) -> LossParts:
    """Combine the flow NLL and the reconstruction MSE with weight ``loss_weight`` (a)."""
    flow = flow_nll(latent, log_jac_det)
    recon = F.mse_loss(reconstruction, image)
    total = loss_weight * flow + (1.0 - loss_weight) * recon
    return LossParts(total, flow, recon)
