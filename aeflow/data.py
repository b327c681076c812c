"""Image folders in the benchmark layout: ``DATA/<split>/<CLASS>/<image files>``.

``NORMAL`` is the normal class; every other class folder counts as abnormal.
"""

from __future__ import annotations

import random
from pathlib import Path

from .io import SUPPORTED_SUFFIXES

NORMAL_CLASS = "NORMAL"


class DataFolderError(ValueError):
    """A data folder that does not have the expected layout. The message names what is missing."""


def list_images(folder: str | Path) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES)


def split_folder(data: str | Path, split: str, *, require_abnormal: bool = False) -> dict[str, list[Path]]:
    """Map each class folder of ``data/split`` to its image files.

    Raises:
        DataFolderError: When the folder, its NORMAL class, or any image is missing.
    """
    root = Path(data) / split
    if not Path(data).is_dir():
        msg = f"Data folder {data} not found; pass the folder that contains train/ and test/."
        raise DataFolderError(msg)
    if not root.is_dir():
        msg = f"{root} not found; the data folder needs a {split}/ folder with one folder per class."
        raise DataFolderError(msg)
    classes = {path.name: list_images(path) for path in sorted(root.iterdir()) if path.is_dir()}
    if NORMAL_CLASS not in classes:
        msg = f"{root} has no {NORMAL_CLASS}/ folder; normal images must be in {root / NORMAL_CLASS}."
        raise DataFolderError(msg)
    for name, paths in classes.items():
        if not paths:
            msg = f"{root / name} contains no images ({', '.join(SUPPORTED_SUFFIXES)})."
            raise DataFolderError(msg)
    if require_abnormal and len(classes) < 2:
        msg = f"{root} has only {NORMAL_CLASS}/; AUROC needs at least one abnormal class folder beside it."
        raise DataFolderError(msg)
    return classes


def holdout_split(paths: list[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` into (train, held-out) with a fixed seed; the held-out part is ``fraction``."""
    shuffled = list(paths)
    random.Random(seed).shuffle(shuffled)
    count = max(2, int(round(fraction * len(shuffled))))
    if count >= len(shuffled):
        msg = f"Need more than {count} normal images to hold {fraction:.0%} out for calibration, got {len(shuffled)}."
        raise DataFolderError(msg)
    return sorted(shuffled[count:]), sorted(shuffled[:count])
