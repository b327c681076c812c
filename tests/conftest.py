"""Shared fixtures: tiny seeded models and paths to the shipped real X-rays."""

from __future__ import annotations

import importlib
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
XRAY_DIR = ROOT / "tests" / "data" / "xray"
# The model that the app tests serve: AEFLOW_MODEL when set, else the shipped weights.
MODEL_SOURCE = os.environ.get("AEFLOW_MODEL") or str(ROOT / "weights" / "chest-xray")


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def randomize_(module: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Add seeded noise to every trainable weight, so couplings are no longer the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.requires_grad and parameter.dtype.is_floating_point:
                parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return module


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def app_module(tmp_path_factory: pytest.TempPathFactory):
    """Import app with Gradio's temporary folder and the model source pointed at test values."""
    with pytest.MonkeyPatch.context() as patch:
        if "app" not in sys.modules:
            # Components read GRADIO_TEMP_DIR when they are built, that is when app is imported.
            patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        patch.setenv("AEFLOW_MODEL", MODEL_SOURCE)
        patch.syspath_prepend(str(ROOT))
        yield importlib.import_module("app")


@pytest.fixture(scope="module")
def app_url(app_module):
    """Launch the demo on a free loopback port, return its URL and close it after the module."""
    _, local_url, _ = app_module.demo.launch(
        **app_module.LAUNCH_OPTIONS,
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
    )
    try:
        yield local_url
    finally:
        app_module.demo.close()
