"""Training loop of AE-FLOW on normal images only, with per-epoch checkpoints and exact resume.

Sections run in order: settings, seed and device, data, model, optimiser, loop with a
checkpoint per epoch, calibration on held-out normals, export.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from tqdm.auto import tqdm

from .calibration import Calibration, fit_calibration
from .config import AEFlowConfig
from .data import NORMAL_CLASS, DataFolderError, holdout_split, split_folder
from .hub import AEFlow, load_model
from .inference import score_tensors, select_device
from .io import read_image, to_model_input
from .loss import aeflow_loss
from .metrics import roc_auc

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "training_state.pt"


@dataclass
class TrainSettings:
    """Options of one training run. ``model`` is the architecture."""

    data: Path
    output: Path
    model: AEFlowConfig = field(default_factory=AEFlowConfig)
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    # Fraction of train/NORMAL kept out of training to choose the threshold and heat-map scales.
    holdout_fraction: float = 0.15
    # Fraction of held-out normals that must score below the shipped threshold.
    target_specificity: float = 0.95
    resume: bool = False
    device: str | None = None


def _load_tensors(paths: list[Path], config: AEFlowConfig, description: str) -> torch.Tensor:
    images = []
    for path in tqdm(paths, desc=description, unit="img", leave=False):
        images.append(to_model_input(read_image(path), config.image_size, config.mean, config.std))
    return torch.cat(images)


@torch.no_grad()
def _encode(model: AEFlow, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    features = []
    for start in tqdm(range(0, len(images), batch_size), desc="encode", unit="batch", leave=False):
        features.append(model.encoder(images[start : start + batch_size].to(device)).cpu())
    return torch.cat(features)


def _validation_anomalies(data: Path) -> list[Path]:
    """Return the abnormal images of DATA/val, or [] when there is no such folder."""
    try:
        classes = split_folder(data, "val", require_abnormal=True)
    except DataFolderError:
        return []
    return [path for name, paths in classes.items() if name != NORMAL_CLASS for path in paths]


def _save_checkpoint(model: AEFlow, optimizer: torch.optim.Optimizer, epoch: int, history: list, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_model(model, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    state = {"epoch": epoch, "optimizer": optimizer.state_dict(), "history": history}
    temporary = folder / (STATE_NAME + ".tmp")
    torch.save(state, temporary)
    temporary.replace(folder / STATE_NAME)


def _load_checkpoint(model: AEFlow, optimizer: torch.optim.Optimizer, folder: Path) -> tuple[int, list]:
    saved_config = json.loads((folder / "config.json").read_text())
    if saved_config != model.config.to_dict():
        msg = f"The checkpoint in {folder} was trained with another config; resume with the same options or pick a new --output."
        raise DataFolderError(msg)
    safetensors.torch.load_model(model, str(folder / "model.safetensors"), strict=True)
    # weights_only=True: the state contains tensors, numbers and lists only, never pickled code.
    state = torch.load(folder / STATE_NAME, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"], state["history"]


def _calibration_source(data: Path, normal_count: int, anomaly_count: int) -> str:
    source = f"{normal_count} normal images held out of {Path(data) / 'train' / NORMAL_CLASS}"
    if anomaly_count:
        source += f"; the ROC display adds {anomaly_count} abnormal images of {Path(data) / 'val'}"
    return source


def calibrate_model(
    model: AEFlow,
    holdout_images: torch.Tensor,
    anomaly_images: torch.Tensor | None,
    batch_size: int,
    target_specificity: float,
    source: str,
) -> tuple[Calibration, float | None]:
    """Fit the calibration on held-out normal images; return it with the validation AUROC.

    Known anomalies, when given, are scored for the ROC display and the validation AUROC only.
    """
    model.eval()
    holdout = score_tensors(model, holdout_images, batch_size)
    anomaly_scores = anomaly_nll = validation_auroc = None
    if anomaly_images is not None:
        anomalies = score_tensors(model, anomaly_images, batch_size)
        anomaly_scores, anomaly_nll = anomalies.score.numpy(), anomalies.flow_nll.numpy()
        validation_auroc = roc_auc(holdout.score.numpy(), anomaly_scores)
        logger.info("Validation AUROC (held-out normals vs %d abnormal images): %.4f",
                    len(anomaly_images), validation_auroc)
    calibration = fit_calibration(
        holdout.score.numpy(),
        holdout.flow_nll.numpy(),
        holdout.residual_map.numpy(),
        holdout.flow_map.numpy(),
        target_specificity=target_specificity,
        anomaly_scores=anomaly_scores,
        anomaly_flow_nll=anomaly_nll,
        source=source,
    )
    logger.info("Threshold %.5f at %.0f%% specificity on held-out normals",
                calibration.threshold, 100 * target_specificity)
    return calibration, validation_auroc


def recalibrate(
    source: str,
    data: Path,
    output: Path,
    *,
    score_options: dict,
    seed: int = 0,
    holdout_fraction: float = 0.15,
    target_specificity: float = 0.95,
    batch_size: int = 16,
) -> AEFlow:
    """Change the score settings of a trained model and fit its calibration again.

    The weights stay as they are. The held-out normals are the ones that training held out,
    given the same ``seed`` and ``holdout_fraction``; the result is saved into ``output``.
    """
    model = load_model(source)
    model.config = replace(model.config, **score_options)
    logger.info("Score settings: %s", ", ".join(f"{key}={value}" for key, value in score_options.items()))

    _, holdout_paths = holdout_split(split_folder(data, "train")[NORMAL_CLASS], holdout_fraction, seed)
    abnormal_val = _validation_anomalies(data)
    holdout_images = _load_tensors(holdout_paths, model.config, "read held-out")
    anomaly_images = _load_tensors(abnormal_val, model.config, "read val anomalies") if abnormal_val else None
    model.calibration, _ = calibrate_model(
        model, holdout_images, anomaly_images, batch_size, target_specificity,
        source=_calibration_source(data, len(holdout_paths), len(abnormal_val)),
    )
    model.save_pretrained(output)
    logger.info("Saved the recalibrated model to %s", output)
    return model


def train(settings: TrainSettings) -> AEFlow:
    """Train, calibrate and save a model into ``settings.output``; return it.

    With a frozen encoder the encoder runs once per image and its features are cached in
    memory, which makes each epoch cost only the flow and the decoder.
    """
    started = time.perf_counter()
    config = settings.model

    # seed and device
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    device = torch.device(settings.device) if settings.device else select_device()
    logger.info("Training on %s", device)

    # data: normal training images only, minus a held-out part for calibration
    train_classes = split_folder(settings.data, "train")
    normal_paths = train_classes[NORMAL_CLASS]
    ignored = sorted(set(train_classes) - {NORMAL_CLASS})
    if ignored:
        logger.info("Ignoring train/%s: AE-FLOW trains on normal images only", ", train/".join(ignored))
    train_paths, holdout_paths = holdout_split(normal_paths, settings.holdout_fraction, settings.seed)
    logger.info("%d normal images: %d for training, %d held out for calibration",
                len(normal_paths), len(train_paths), len(holdout_paths))

    # model
    model = AEFlow(config)
    model.encoder.load_imagenet_weights()
    model.to(device)

    images = _load_tensors(train_paths, config, "read train")
    if config.train_encoder:
        features = None
        logger.info("Encoder is trained: features are recomputed every step")
    else:
        features = _encode(model, images, device, settings.batch_size)
        logger.info("Encoder is frozen: its features for %d images were computed once and cached in memory",
                    len(images))

    if config.feature_norm != "none" and not settings.resume:
        fit_features = features if features is not None else _encode(model, images, device, settings.batch_size)
        model.flow.standardizer.fit(fit_features.to(device), config.feature_norm)
        logger.info("Fitted the %s-wise feature standardisation on %d training images", config.feature_norm, len(images))

    # validation: held-out normals, plus the abnormal images of DATA/val when there are any
    holdout_images = _load_tensors(holdout_paths, config, "read held-out")
    abnormal_val = _validation_anomalies(settings.data)
    anomaly_images = _load_tensors(abnormal_val, config, "read val anomalies") if abnormal_val else None
    if abnormal_val:
        logger.info("Validation AUROC each epoch: %d held-out normals vs %d abnormal images of %s",
                    len(holdout_paths), len(abnormal_val), Path(settings.data) / "val")

    # optimiser
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)

    checkpoint_dir = Path(settings.output) / CHECKPOINT_DIR
    first_epoch, history = 0, []
    if settings.resume:
        if not (checkpoint_dir / STATE_NAME).is_file():
            msg = f"--resume: no checkpoint in {checkpoint_dir}; start without --resume."
            raise DataFolderError(msg)
        first_epoch, history = _load_checkpoint(model, optimizer, checkpoint_dir)
        logger.info("Resuming from %s after epoch %d", checkpoint_dir, first_epoch)
    logger.info("Checkpoints go to %s after every epoch", checkpoint_dir)

    # loop
    steps_per_epoch = (len(images) + settings.batch_size - 1) // settings.batch_size
    for epoch in range(first_epoch, settings.epochs):
        model.train()
        # One generator per epoch, seeded from the run seed, so a resumed run shuffles identically.
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch))
        totals = np.zeros(3)
        progress = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{settings.epochs}", unit="step")
        for step in progress:
            index = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            batch = images[index].to(device)
            if features is None:
                output = model(batch)
            else:
                output = model.forward_features(features[index].to(device))
            loss = aeflow_loss(batch, output.reconstruction, output.latent, output.log_jac_det, config.loss_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            optimizer.step()

            totals += [loss.total.item(), loss.flow.item(), loss.recon.item()]
            mean = totals / (step + 1)
            progress.set_postfix(loss=f"{mean[0]:.4f}", flow=f"{mean[1]:.4f}", recon=f"{mean[2]:.4f}")
        record = {"epoch": epoch + 1, "loss": float(mean[0]), "flow_nll": float(mean[1]), "recon_mse": float(mean[2])}
        if anomaly_images is not None:
            model.eval()
            normal = score_tensors(model, holdout_images, settings.batch_size).score.numpy()
            abnormal = score_tensors(model, anomaly_images, settings.batch_size).score.numpy()
            record["validation_auroc"] = roc_auc(normal, abnormal)
        history.append(record)
        _save_checkpoint(model, optimizer, epoch + 1, history, checkpoint_dir)
        logger.info("Epoch %d: %s; checkpoint saved", epoch + 1,
                    ", ".join(f"{key} {value:.4f}" for key, value in record.items() if key != "epoch"))

    # calibration on held-out normals
    model.calibration, validation_auroc = calibrate_model(
        model, holdout_images, anomaly_images, settings.batch_size, settings.target_specificity,
        source=_calibration_source(settings.data, len(holdout_paths), len(abnormal_val)),
    )

    # export
    model.cpu()
    model.save_pretrained(settings.output)
    summary = {
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(settings).items()},
        "history": history,
        "validation_auroc": validation_auroc,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device)},
    }
    (Path(settings.output) / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("Saved the model to %s in %.0f s", settings.output, summary["wall_time_s"])
    return model
