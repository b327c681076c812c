"""AE-FLOW anomaly detection for medical images (Zhao, Ding, Zhang, ICLR 2023).

See Also:
    - :class:`aeflow.AEFlow`: the model with Hub save and load.
    - :func:`aeflow.load_image`: an image file to the model's input tensor.
    - :class:`aeflow.Inspector`: score image files with a trained model.
"""

from .calibration import Calibration
from .config import AEFlowConfig
from .hub import AEFlow, ModelLoadError, load_model
from .inference import Inspector, Prediction, select_device
from .io import ImageLoadError, load_image, read_image
from .model import AEFlowModel, AEFlowOutput
from .scoring import AnomalyResult

__all__ = [
    "AEFlow",
    "AEFlowConfig",
    "AEFlowModel",
    "AEFlowOutput",
    "AnomalyResult",
    "Calibration",
    "ImageLoadError",
    "Inspector",
    "ModelLoadError",
    "Prediction",
    "load_image",
    "load_model",
    "read_image",
    "select_device",
]

__version__ = "0.1.0"
