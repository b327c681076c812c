"""SSIM, reconstruction score and the mixed anomaly score."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from aeflow import AEFlowConfig
from aeflow.scoring import anomaly_result, reduce_flow_nll, ssim


def test_ssim_of_identical_images_is_one() -> None:
    image = torch.rand(2, 3, 32, 32)
    similarity, ssim_map = ssim(image, image)
    torch.testing.assert_close(similarity, torch.ones(2), atol=1e-6, rtol=0)
    assert ssim_map.shape == (2, 1, 22, 22)


def test_ssim_matches_scikit_image() -> None:
    """Same Gaussian window and constants as scikit-image's reference implementation."""
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 48, 48, generator=generator)
    y = (x + 0.2 * torch.randn(1, 1, 48, 48, generator=generator)).clamp(0, 1)
    ours, _ = ssim(x, y)
    reference = structural_similarity(
        x[0, 0].numpy(), y[0, 0].numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )
    # scikit-image pads and crops by (window - 1) / 2, which is exactly the valid region used here.
    assert ours.item() == pytest.approx(reference, abs=1e-4)


def test_ssim_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))


def _normalize(pixels: torch.Tensor, config: AEFlowConfig) -> torch.Tensor:
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (pixels - mean) / std


def test_perfect_reconstruction_scores_zero() -> None:
    config = AEFlowConfig(image_size=64)
    image = _normalize(torch.rand(1, 3, 64, 64), config)
    latent = torch.zeros(1, 8, 4, 4)
    result = anomaly_result(image, image, latent, torch.zeros(1), config)
    assert result.recon_score.item() == pytest.approx(0.0, abs=1e-6)
    assert result.residual_map.abs().max().item() == pytest.approx(0.0, abs=1e-6)


def test_score_rises_for_corrupted_image() -> None:
    """A bright square that the reconstruction does not contain raises S_recon, the residual and S."""
    config = AEFlowConfig(image_size=64)
    clean = torch.full((1, 3, 64, 64), 0.4) + 0.05 * torch.rand(1, 3, 64, 64)
    corrupted = clean.clone()
    corrupted[..., 20:40, 20:40] = 1.0
    latent = 0.1 * torch.randn(1, 8, 4, 4)
    reconstruction = _normalize(clean, config)

    clean_result = anomaly_result(_normalize(clean, config), reconstruction, latent, torch.zeros(1), config)
    corrupt_result = anomaly_result(_normalize(corrupted, config), reconstruction, latent, torch.zeros(1), config)
    assert corrupt_result.recon_score.item() > clean_result.recon_score.item() + 0.05
    assert corrupt_result.score.item() > clean_result.score.item()
    # The residual map points at the square.
    residual = corrupt_result.residual_map[0, 0]
    assert residual[20:40, 20:40].mean() > 10 * residual[:15, :15].mean()


def test_flow_score_stays_finite_for_huge_nll() -> None:
    """Log-space scoring: an NLL of thousands of nats per dimension still orders correctly."""
    config = AEFlowConfig(image_size=64)
    image = torch.zeros(2, 3, 64, 64)
    latent = torch.zeros(2, 8, 4, 4)
    latent[1] = 3.0
    result = anomaly_result(image, image, latent, torch.zeros(2), config)
    assert torch.isfinite(result.flow_nll).all()
    assert result.flow_nll[1] > result.flow_nll[0]
    assert result.score[1] > result.score[0]


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("mean", 2.5),  # mean of 1, 2, 3, 4
        ("max", 4.0),
        ("topk", 3.5),  # top half: 3 and 4
    ],
)
def test_reduce_flow_nll(reduction: str, expected: float) -> None:
    nll_map = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert reduce_flow_nll(nll_map, reduction, topk=0.5).item() == pytest.approx(expected)


def test_score_mixes_with_weight() -> None:
    config = AEFlowConfig(image_size=64, score_weight=0.9)
    image = torch.randn(1, 3, 64, 64)
    result = anomaly_result(image, torch.randn(1, 3, 64, 64), torch.randn(1, 8, 4, 4), torch.zeros(1), config)
    expected = 0.9 * result.flow_score + 0.1 * result.recon_score
    torch.testing.assert_close(result.score, expected)
    np.testing.assert_allclose(result.flow_score.numpy(), -np.exp(-result.flow_nll.numpy()), rtol=1e-6)


@pytest.mark.parametrize(("score_log_det", "shift"), [(False, 0.0), (True, -1.0)])
def test_score_log_det_option(score_log_det: bool, shift: float) -> None:
    """log|det J| = D lowers the flow NLL by exactly 1 nat per dimension only when enabled."""
    config = AEFlowConfig(image_size=64, score_log_det=score_log_det)
    image = torch.zeros(1, 3, 64, 64)
    latent = torch.ones(1, 8, 4, 4)
    without = anomaly_result(image, image, latent, torch.zeros(1), config).flow_nll
    with_log_det = anomaly_result(image, image, latent, torch.tensor([8.0 * 4 * 4]), config).flow_nll
    assert (with_log_det - without).item() == pytest.approx(shift, abs=1e-6)


def test_pooled_flow_nll_matches_gaussian_of_mean() -> None:
    """The spatial mean of z' is scored under N(0, 1 / (h w)) per channel, by hand."""
    from aeflow.scoring import pooled_flow_nll

    latent = torch.zeros(2, 2, 4, 4)
    latent[1, 0] = 0.5  # channel 0 mean 0.5, channel 1 mean 0
    locations = 16
    constant = 0.5 * math.log(2 * math.pi) - 0.5 * math.log(locations)
    result = pooled_flow_nll(latent)
    assert result[0].item() == pytest.approx(constant, abs=1e-6)
    # 0.5 * 16 * mean(0.25, 0) = 1 nat above the constant
    assert result[1].item() == pytest.approx(constant + 1.0, abs=1e-6)


def test_pooled_score_ignores_zero_mean_noise() -> None:
    """Pooling separates a shift of the whole map from zero-mean noise of the same energy."""
    config = AEFlowConfig(image_size=64, flow_reduction="pooled")
    image = torch.zeros(2, 3, 64, 64)
    checkerboard = torch.ones(4, 4)
    checkerboard[::2, 1::2] = -1
    checkerboard[1::2, ::2] = -1
    latent = torch.stack([checkerboard.expand(8, 4, 4), torch.ones(8, 4, 4)])  # same z'^2 everywhere
    result = anomaly_result(image, image, latent, torch.zeros(2), config)
    assert result.flow_nll[1] > result.flow_nll[0] + 5
