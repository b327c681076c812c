"""Coupling flow: invertibility, exact log-determinant, analytic NLL."""

from __future__ import annotations

import math

import pytest
import torch

from aeflow.flow import CouplingFlow
from aeflow.loss import flow_nll
from aeflow.scoring import flow_nll_map
from tests.conftest import randomize_


@pytest.mark.parametrize("subnet", ["conv", "resnet"])
def test_flow_round_trip(subnet: str) -> None:
    """inverse(forward(z)) gives z back on fresh random inputs."""
    flow = randomize_(CouplingFlow(8, 6, steps=4, subnet=subnet)).eval()
    features = torch.randn(3, 8, 6, 6)
    with torch.no_grad():
        latent, _ = flow(features)
        restored = flow.inverse(latent)
    # The couplings must have moved the input, or the round trip would prove nothing.
    assert (latent - features).abs().max() > 1e-2
    torch.testing.assert_close(restored, features, atol=1e-4, rtol=0)


@pytest.mark.parametrize("subnet", ["conv", "resnet"])
def test_log_det_matches_autograd_jacobian(subnet: str) -> None:
    """log|det J| equals the exact log-determinant of the full Jacobian (4 channels, 4 x 4)."""
    flow = randomize_(CouplingFlow(4, 4, steps=3, subnet=subnet), scale=0.2).double().eval()
    features = torch.randn(1, 4, 4, 4, dtype=torch.float64)

    def forward(flat: torch.Tensor) -> torch.Tensor:
        latent, _ = flow(flat.view(1, 4, 4, 4))
        return latent.flatten()

    jacobian = torch.autograd.functional.jacobian(forward, features.flatten())
    _, exact = torch.linalg.slogdet(jacobian)
    _, log_jac_det = flow(features)
    assert abs(exact.item()) > 1e-3  # a non-trivial Jacobian
    assert log_jac_det.item() == pytest.approx(exact.item(), abs=1e-6)


def test_fresh_flow_is_a_permutation() -> None:
    """At initialisation every coupling is the identity: zero log-det, z' a channel permutation of z."""
    flow = CouplingFlow(6, 4, steps=8).eval()
    features = torch.randn(2, 6, 4, 4)
    with torch.no_grad():
        latent, log_jac_det = flow(features)
    torch.testing.assert_close(log_jac_det, torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(latent.pow(2).sum(dim=1), features.pow(2).sum(dim=1), atol=1e-5, rtol=1e-5)


def test_nll_has_analytic_value() -> None:
    """NLL per dimension = 0.5 mean(z'^2) + 0.5 log(2 pi) - log|det J| / D, by hand."""
    latent = torch.zeros(2, 3, 2, 2)
    latent[0] = 2.0  # 0.5 * 4 = 2 nats from the Gaussian term in every dimension
    log_jac_det = torch.tensor([0.0, 12.0])  # D = 12, so image 1 gains exactly 1 nat per dimension
    half_log_two_pi = 0.5 * math.log(2 * math.pi)

    per_image = flow_nll_map(latent, log_jac_det).flatten(1).mean(dim=1)
    assert per_image[0].item() == pytest.approx(2.0 + half_log_two_pi, abs=1e-6)
    assert per_image[1].item() == pytest.approx(half_log_two_pi - 1.0, abs=1e-6)
    assert flow_nll(latent, log_jac_det).item() == pytest.approx(2 * half_log_two_pi / 2 + 0.5, abs=1e-6)


def test_unknown_subnet_rejected() -> None:
    with pytest.raises(ValueError, match="Unknown subnet 'mlp'"):
        CouplingFlow(4, 4, subnet="mlp")


def test_standardizer_log_det_and_inverse() -> None:
    """The fitted standardisation whitens its training features and its log-det is -sum(log std)."""
    flow = CouplingFlow(3, 4, steps=2).eval()
    features = 5.0 + 2.0 * torch.randn(64, 3, 4, 4)
    flow.standardizer.fit(features, "location")
    with torch.no_grad():
        latent, log_jac_det = flow(features)
        restored = flow.inverse(latent)
    # Fresh couplings are a permutation, so z' has the standardised statistics.
    assert latent.mean().abs() < 1e-4
    assert latent.std().item() == pytest.approx(1.0, abs=0.01)
    expected = -flow.standardizer.std.log().sum()
    torch.testing.assert_close(log_jac_det, expected.expand(64))
    torch.testing.assert_close(restored, features, atol=1e-4, rtol=0)
