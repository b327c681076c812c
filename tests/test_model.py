"""Model shapes for both backbones, the frozen encoder, and the loss."""

from __future__ import annotations

import pytest
import torch

from aeflow import AEFlowConfig, AEFlowModel
from aeflow.encoder import Encoder
from aeflow.loss import aeflow_loss


@pytest.mark.parametrize(
    ("backbone", "image_size", "channels", "feature_size"),
    [
        ("efficientnet_lite0", 256, 112, 16),
        ("efficientnet_lite0", 224, 112, 14),
        ("wide_resnet50_2", 256, 1024, 16),
        ("wide_resnet50_2", 224, 1024, 14),
    ],
)
def test_output_shapes(backbone: str, image_size: int, channels: int, feature_size: int) -> None:
    config = AEFlowConfig(backbone=backbone, image_size=image_size, flow_steps=2)
    model = AEFlowModel(config).eval()
    image = torch.randn(2, 3, image_size, image_size)
    with torch.no_grad():
        output = model(image)
        result = model.predict(image)
    assert output.features.shape == (2, channels, feature_size, feature_size)
    assert output.latent.shape == (2, channels, feature_size, feature_size)
    assert output.log_jac_det.shape == (2,)
    assert output.reconstruction.shape == (2, 3, image_size, image_size)
    assert result.score.shape == (2,)
    assert result.residual_map.shape == (2, 1, image_size, image_size)
    assert result.flow_map.shape == (2, 1, image_size, image_size)


def test_frozen_encoder_unchanged_by_training_step() -> None:
    """Weights and BatchNorm running statistics of a frozen encoder survive a training step."""
    model = AEFlowModel(AEFlowConfig(image_size=64, flow_steps=2))
    before = {name: tensor.clone() for name, tensor in model.encoder.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)

    model.train()
    assert not model.encoder.training  # train() must not reach a frozen encoder
    image = torch.randn(4, 3, 64, 64) * 3 + 1  # far from ImageNet statistics, so BN would move
    output = model(image)
    loss = aeflow_loss(image, output.reconstruction, output.latent, output.log_jac_det, 0.5)
    loss.total.backward()
    optimizer.step()

    after = model.encoder.state_dict()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed == []
    assert all(not parameter.requires_grad for parameter in model.encoder.parameters())
    # The rest of the model did learn.
    assert any(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in model.flow.parameters())


def test_trainable_encoder_follows_train_mode() -> None:
    encoder = Encoder("efficientnet_lite0", trainable=True)
    encoder.train()
    assert encoder.training
    assert all(parameter.requires_grad for parameter in encoder.parameters())


def test_lite0_imagenet_weights_load() -> None:
    """The offline Lite0 weights map onto every tensor of timm's architecture."""
    encoder = Encoder("efficientnet_lite0")
    random_stem = encoder.body.conv_stem.weight.clone()
    encoder.load_imagenet_weights()
    assert not torch.equal(random_stem, encoder.body.conv_stem.weight)
    # ImageNet BatchNorm statistics are far from the defaults (mean 0, variance 1).
    assert not torch.allclose(encoder.body.bn1.running_var, torch.ones_like(encoder.body.bn1.running_var))


def test_wide_resnet_weights_error_is_actionable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without network access the wide_resnet50_2 error explains how to proceed."""
    from torchvision.models import Wide_ResNet50_2_Weights

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(Wide_ResNet50_2_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="--backbone efficientnet_lite0"):
        Encoder("wide_resnet50_2").load_imagenet_weights()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backbone": "vgg16"}, "Unknown backbone 'vgg16'"),
        ({"image_size": 250}, "multiple of 16"),
        ({"subnet": "mlp"}, "Unknown subnet"),
        ({"score_weight": 1.5}, r"score_weight must lie in \[0, 1\]"),
        ({"flow_reduction": "median"}, "Unknown flow_reduction"),
    ],
)
def test_config_rejects_invalid_values(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AEFlowConfig(**options)


def test_loss_mixes_parts_with_weight() -> None:
    image = torch.zeros(1, 3, 16, 16)
    reconstruction = torch.ones(1, 3, 16, 16)  # MSE exactly 1
    latent = torch.zeros(1, 2, 1, 1)
    loss = aeflow_loss(image, reconstruction, latent, torch.zeros(1), loss_weight=0.5)
    assert loss.recon.item() == pytest.approx(1.0)
    assert loss.total.item() == pytest.approx(0.5 * loss.flow.item() + 0.5)
