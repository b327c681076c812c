"""Export a trained model to ONNX: a normalised image batch in, scores and maps out.

The graph takes ``image`` ``(B, 3, S, S)``, normalised with the model's mean and std as
:func:`aeflow.io.to_model_input` does, and returns ``score`` ``(B,)``, ``residual_map`` and
``flow_map`` ``(B, 1, S, S)`` and ``reconstruction`` ``(B, 3, S, S)`` in [0, 1], the same
values as :meth:`aeflow.AEFlowModel.predict`. The batch dimension is dynamic. File decoding and
resizing stay outside the graph.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from .model import AEFlowModel, fuse_for_inference

logger = logging.getLogger(__name__)

INPUT_NAMES = ["image"]
OUTPUT_NAMES = ["score", "residual_map", "flow_map", "reconstruction"]

# ONNX operator set of the exported graph, tested with ONNX Runtime 1.32.
OPSET_VERSION = 18


class ScoringModule(nn.Module):
    """Model wrapper whose forward returns the exported outputs as a plain tuple."""

    def __init__(self, model: AEFlowModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        result = self.model.predict(image)
        return result.score, result.residual_map, result.flow_map, result.reconstruction


def export_onnx(model: AEFlowModel, output: str | os.PathLike) -> Path:
    """Write ``model`` as an ONNX file with a dynamic batch dimension and return its path.

    BatchNorm is folded into the convolutions first (see :func:`aeflow.model.fuse_for_inference`);
    ``model`` itself is not changed.

    Raises:
        RuntimeError: When torch.onnx cannot export the model, or the onnxscript package that
            it needs is missing.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    module = ScoringModule(fuse_for_inference(model.cpu())).eval()
    size = model.config.image_size
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_shapes={"image": {0: batch}},
            opset_version=OPSET_VERSION,
            external_data=False,
            verbose=False,
        )
    except ImportError as error:
        msg = f"ONNX export needs the onnx and onnxscript packages ({error}). Install them with `pip install onnx onnxscript`."
        raise RuntimeError(msg) from error
    program.save(str(output), external_data=False)
    logger.info("Wrote %s (%s px input, dynamic batch)", output, size)
    return output
