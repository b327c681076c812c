"""ONNX export and the inference-time speed-ups: same outputs as the plain PyTorch model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aeflow import AEFlow, AEFlowConfig, Inspector
from aeflow.cli import main
from aeflow.io import load_image
from aeflow.model import fuse_for_inference
from aeflow.scoring import ssim

from tests.conftest import XRAY_DIR, randomize_

ONNX_MISSING = [name for name in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(name) is None]


def _small_model(backbone: str = "efficientnet_lite0") -> AEFlow:
    """A 64 px model with seeded weights and non-trivial BatchNorm statistics everywhere."""
    model = randomize_(AEFlow(AEFlowConfig(image_size=64, backbone=backbone, flow_steps=2)), scale=0.01)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "wide_resnet50_2"])
def test_fused_model_matches_plain_model(backbone: str) -> None:
    model = _small_model(backbone)
    keys = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    fused = fuse_for_inference(model).to(memory_format=torch.channels_last)
    image = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = model.predict(image)
        actual = fused.predict(image.contiguous(memory_format=torch.channels_last))

    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in fused.modules())
    assert {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()} == keys
    for name in expected._fields:
        torch.testing.assert_close(getattr(actual, name), getattr(expected, name), atol=1e-4, rtol=1e-4, msg=name)


def test_inspector_matches_model_predict() -> None:
    model = _small_model()
    path = XRAY_DIR / "IM-0001-0001.jpeg"
    with torch.inference_mode():
        expected = model.predict(load_image(path, image_size=64))
    prediction = Inspector(model, torch.device("cpu")).predict_file(path)

    assert prediction.score == pytest.approx(expected.score.item(), abs=1e-4)
    assert prediction.flow_nll == pytest.approx(expected.flow_nll.item(), abs=1e-4)
    np.testing.assert_allclose(prediction.residual_map, expected.residual_map[0, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(prediction.flow_map, expected.flow_map[0, 0].numpy(), atol=1e-4)
    assert prediction.residual_map.flags["C_CONTIGUOUS"]


def test_separable_ssim_matches_2d_window() -> None:
    """Blurring with two 1D passes equals blurring with the 11 x 11 outer-product window."""
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 40, 40, generator=generator)
    y = (x + 0.1 * torch.randn(2, 3, 40, 40, generator=generator)).clamp(0, 1)
    coords = torch.arange(11, dtype=torch.float32) - 5
    kernel_1d = torch.exp(-(coords**2) / (2 * 1.5**2))
    kernel_1d = kernel_1d / kernel_1d.sum()
    window = torch.outer(kernel_1d, kernel_1d).expand(3, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    expected_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    expected_map = expected_map.mean(dim=1, keepdim=True)

    # The variance terms subtract two nearly equal float32 values, which amplifies rounding to ~2e-6.
    similarity, ssim_map = ssim(x, y)
    torch.testing.assert_close(ssim_map, expected_map, atol=1e-5, rtol=0)
    torch.testing.assert_close(similarity, expected_map.flatten(1).mean(dim=1), atol=1e-5, rtol=0)


@pytest.mark.skipif(bool(ONNX_MISSING), reason=f"ONNX export needs the packages {', '.join(ONNX_MISSING)}")
def test_onnx_export_matches_pytorch(tmp_path: Path) -> None:
    import onnxruntime

    model = _small_model()
    model.save_pretrained(tmp_path / "model")
    output = tmp_path / "model.onnx"

    assert main(["export", "--model", str(tmp_path / "model"), "--format", "onnx", "--output", str(output)]) == 0
    assert output.is_file()

    # A batch size other than the one traced at export checks the dynamic batch dimension.
    image = torch.randn(3, 3, 64, 64)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_outputs()] == ["score", "residual_map", "flow_map", "reconstruction"]
    score, residual_map, flow_map, reconstruction = session.run(None, {"image": image.numpy()})
    with torch.inference_mode():
        expected = model.predict(image)

    np.testing.assert_allclose(score, expected.score.numpy(), atol=1e-4)
    np.testing.assert_allclose(residual_map, expected.residual_map.numpy(), atol=1e-4)
    np.testing.assert_allclose(flow_map, expected.flow_map.numpy(), atol=1e-4)
    np.testing.assert_allclose(reconstruction, expected.reconstruction.numpy(), atol=1e-4)
