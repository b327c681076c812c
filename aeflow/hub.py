"""Saving and loading AE-FLOW models as ``config.json`` + ``model.safetensors`` (+ calibration).

Loading goes through huggingface_hub, so a source is either a local folder or a Hub repo id,
optionally pinned to a revision. Only safetensors are read, strictly: a missing or unexpected
tensor is an error, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import json
import logging
import os
import re
from pathlib import Path

import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from .calibration import CALIBRATION_NAME, Calibration
from .config import AEFlowConfig
from .model import AEFlowModel

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class ModelLoadError(RuntimeError):
    """A model source that cannot be loaded; the message names the source and the fix."""


class AEFlow(
    AEFlowModel,
    PyTorchModelHubMixin,
    library_name="aeflow",
    tags=["anomaly-detection", "medical-imaging", "normalizing-flow"],
    paper_url="https://openreview.net/forum?id=9OmCr1q54Z",
    license="mit",
):
    """:class:`AEFlowModel` with ``save_pretrained``, ``from_pretrained`` and ``push_to_hub``.

    ``calibration`` is the shipped decision threshold and heat-map scales, or None for a model
    that was never calibrated.

    Example:
        >>> model = AEFlow.from_pretrained("weights/chest-xray")  # doctest: +SKIP
        >>> model = AEFlow.from_pretrained("org/aeflow-chest-xray", revision="<commit sha>")  # doctest: +SKIP
    """

    def __init__(self, config: AEFlowConfig | dict) -> None:
        # from_pretrained passes config.json as a plain dict.
        if isinstance(config, dict):
            config = AEFlowConfig(**config)
        super().__init__(config)
        self.calibration: Calibration | None = None

    def _save_pretrained(self, save_directory: Path) -> None:
        # Written here from self.config, so a config changed after construction is what gets saved.
        config_text = json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n"
        (Path(save_directory) / CONFIG_NAME).write_text(config_text)
        safetensors.torch.save_model(self, str(Path(save_directory) / WEIGHTS_NAME))
        if self.calibration is not None:
            self.calibration.save(save_directory)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ) -> AEFlow:
        model = cls(**model_kwargs)
        download = {
            "repo_id": model_id,
            "revision": revision,
            "cache_dir": cache_dir,
            "force_download": force_download,
            "token": token,
            "local_files_only": local_files_only,
        }
        weights_file = _resolve_file(model_id, WEIGHTS_NAME, download, required=True)
        try:
            state_dict = safetensors.torch.load_file(weights_file, device=map_location)
        except Exception as error:  # safetensors raises its own SafetensorError and OSError
            reason = " ".join(str(error).split())
            msg = (
                f"Could not read {weights_file} ({reason}). The file is damaged or incomplete: "
                "download or train the model again."
            )
            raise ModelLoadError(msg) from error

        # Compare names and shapes before loading, because load_state_dict reports a shape
        # mismatch as a multi-line RuntimeError that does not mention config.json.
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        mismatched = sorted(
            f"{name} {tuple(state_dict[name].shape)} != {tuple(expected[name].shape)}"
            for name in set(expected) & set(state_dict)
            if state_dict[name].shape != expected[name].shape
        )
        if mismatched or (strict and (missing or unexpected)):
            msg = (
                f"{weights_file} does not match its config.json: missing tensors {missing[:5]}, "
                f"unexpected tensors {unexpected[:5]}, tensors of another shape {mismatched[:5]}. "
                "Check that config.json belongs to these weights."
            )
            raise ModelLoadError(msg)
        model.load_state_dict(state_dict, strict=False)

        calibration_file = _resolve_file(model_id, CALIBRATION_NAME, download, required=False)
        if calibration_file is not None:
            model.calibration = Calibration.load(calibration_file)
        else:
            logger.warning("%s has no %s: scores have no threshold until it is calibrated", model_id, CALIBRATION_NAME)

        model.eval()
        logger.info("Loaded AE-FLOW model from %s (revision %s)", model_id, revision or "default")
        return model


def _resolve_file(model_id: str, filename: str, download: dict, *, required: bool) -> str | None:
    """Return the path of ``filename`` in a local folder or a Hub repo, or None if optional and absent."""
    if os.path.isdir(model_id):
        path = os.path.join(model_id, filename)
        if os.path.isfile(path):
            return path
        if required:
            msg = f"{model_id} has no {filename}; point to a folder written by `aeflow train` or save_pretrained."
            raise ModelLoadError(msg)
        return None
    try:
        return hf_hub_download(filename=filename, **download)
    except EntryNotFoundError:
        if required:
            msg = f"The Hub repo {model_id} has no {filename}; AE-FLOW models are stored as safetensors."
            raise ModelLoadError(msg) from None
        return None


def load_model(source: str | os.PathLike, *, revision: str | None = None, device: torch.device | str = "cpu") -> AEFlow:
    """Load a trained model from a local folder or a Hub repo id onto ``device``.

    Raises:
        ModelLoadError: When the source does not exist or its files are missing, damaged or
            do not match each other.
    """
    source = str(source)
    is_repo_id = re.fullmatch(r"[\w.-]+/[\w.-]+", source) is not None and not source.startswith(".")
    if not os.path.isdir(source) and not is_repo_id:
        msg = f"Model folder {source} not found; pass a folder with config.json and model.safetensors or a Hub repo id."
        raise ModelLoadError(msg)
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        msg = f"{source} has no config.json; point to a folder written by `aeflow train` or save_pretrained."
        raise ModelLoadError(msg)
    try:
        model = AEFlow.from_pretrained(source, revision=revision)
    except ModelLoadError:
        raise
    except json.JSONDecodeError as error:
        msg = f"{source}: config.json is not valid JSON ({error}). Restore it from the trained model folder."
        raise ModelLoadError(msg) from error
    except (OSError, ValueError, TypeError) as error:
        # huggingface_hub's not-found and offline errors derive from OSError or ValueError.
        if os.path.isdir(source):
            msg = f"Could not load a model from the folder {source}: {error}"
        else:
            msg = (
                f"{source} is not a local folder and could not be fetched from the Hub ({error}). "
                "Check the path or repo id, or set HF_HUB_OFFLINE=1 with a filled Hub cache."
            )
        raise ModelLoadError(msg) from error
    return model.to(device)
