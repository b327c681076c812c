"""Read medical images from disk into the tensors that AE-FLOW takes as input.

``read_image`` turns one file into a float32 ``(H, W, 3)`` array in ``[0, 1]``.
``to_model_input`` resizes and normalises that array, and ``load_image`` does both.

Supported formats, detected from the file content rather than its suffix:

* PNG, JPEG, BMP, TIFF (first page) and GIF (first frame), decoded by Pillow.
* DICOM (Part 10 files with the ``DICM`` prefix at byte 128, or a ``.dcm`` / ``.dicom`` file
  without the prefix), decoded by pydicom.

Intensity scaling to ``[0, 1]``:

* 1-bit, 8-bit grey, palette, RGB and CMYK images: divided by 255, never stretched per image.
  CMYK uses Pillow's conversion without a colour profile.
* 16-bit grey (Pillow modes ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``): divided by 65535, the full
  16-bit range. 12-bit data stored in a 16-bit PNG therefore looks dark.
* 32-bit integer grey (mode ``I``): divided by 65535 when every value lies in ``0..65535``,
  otherwise stretched from the image minimum to its maximum.
* 32-bit float grey (mode ``F``, for example float TIFF): stretched from the image minimum to its
  maximum. A constant image becomes all zeros. NaN or Inf values raise ``ImageLoadError``.
* Alpha (RGBA, LA, palette with transparency) is composited on black, so fully transparent
  pixels become 0.
* DICOM: the modality LUT (Rescale Slope/Intercept) is applied, then the VOI LUT Sequence or the
  first Window Center/Width, then the result is divided by its output range (see
  ``_read_dicom_pixels``). MONOCHROME1 is inverted so that higher values are brighter.

Grey images are returned as three identical channels.

Problems with the input file raise ``ImageLoadError`` with a one-line message that names
the file, the problem and the fix. Logging is at DEBUG level and records only the file name,
format, mode and size, never pixel data or file contents.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Importing a plugin registers its format, which Image.open(formats=...) requires.
from PIL import (  # noqa: F401
    BmpImagePlugin,
    GifImagePlugin,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
)
from pydicom import uid as dicom_uid
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.pixels import pixel_array as dicom_pixel_array

logger = logging.getLogger(__name__)

MAX_FILE_BYTES: int = 64 * 1024 * 1024
"""Default size limit of one input file in bytes (64 MiB)."""

MAX_PIXELS: int = 100_000_000
"""Default limit on width * height declared by a file, checked before decoding.

A 4000 x 4000 X-ray (16 million pixels) passes; a declared 30000 x 30000 image (900 million
pixels) is rejected as a decompression bomb.
"""

MIN_SIDE: int = 8
"""Smallest accepted image width or height in pixels. A 16 x 16 image is accepted."""

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
    ".dcm",
    ".dicom",
)

_DICOM_SUFFIXES = (".dcm", ".dicom")
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"

# Pillow decoders that read_image accepts. The allow-list keeps Pillow from opening other
# formats it can read (for example EPS, which runs Ghostscript). The JPEG opener also opens
# multi-picture (MPO) JPEG files from cameras, and reports their format as "MPO".
_PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF")
_FORMAT_LIST = "PNG, JPEG, BMP, TIFF, GIF or DICOM"

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_UINT16_MAX = 65535.0

# Exceptions that Pillow and its C decoders raise for truncated or corrupt data. OSError covers
# "image file is truncated" and "broken data stream". The others come from header parsers, for
# example TypeError("Missing dimensions") from a damaged TIFF.
_PILLOW_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)

# Exceptions that pydicom raises for files it cannot parse or pixel data it cannot decode.
_DICOM_DECODE_ERRORS = (
    InvalidDicomError,
    OSError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    NotImplementedError,
    RuntimeError,
    struct.error,
)

# Leading bytes of common files that are not images, with the words used in the error message.
_NON_IMAGE_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"<?xml", "an XML or SVG document"),
    (b"<svg", "an SVG drawing"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)

# Python packages that add pydicom decoders for each compressed transfer syntax family
# (pydicom 3.0 pixel data handler documentation).
_JPEG_CODECS = "pylibjpeg with pylibjpeg-libjpeg, or python-gdcm"
_CODEC_PACKAGES: dict[str, str] = {
    **dict.fromkeys(dicom_uid.JPEGTransferSyntaxes, _JPEG_CODECS),
    **dict.fromkeys(
        dicom_uid.JPEGLSTransferSyntaxes,
        "pylibjpeg with pylibjpeg-libjpeg, pyjpegls, or python-gdcm",
    ),
    **dict.fromkeys(
        dicom_uid.JPEG2000TransferSyntaxes,
        "pylibjpeg with pylibjpeg-openjpeg, or python-gdcm",
    ),
    **dict.fromkeys(dicom_uid.RLETransferSyntaxes, "pylibjpeg with pylibjpeg-rle"),
}
_DEFAULT_CODEC_PACKAGES = "pylibjpeg with its codec plugins, or python-gdcm"

_REQUIRED_DICOM_ELEMENTS = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "SamplesPerPixel",
    "PhotometricInterpretation",
)
_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class ImageLoadError(ValueError):
    """An input that cannot be turned into an image.

    Its message names the file, the problem and the fix.
    """


def read_image(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Read an image file into float32 (H, W, 3) in [0, 1].

    The format is detected from the file content. EXIF orientation is applied, so the shape is
    that of the image as displayed. The module docstring lists how each pixel mode is scaled.

    Args:
        path: Image file (PNG, JPEG, BMP, TIFF, GIF or DICOM).
        max_bytes: Largest accepted file size in bytes.
        max_pixels: Largest accepted width * height, checked against the size that the file
            declares before any pixel data is decoded. Pillow's own limit,
            ``PIL.Image.MAX_IMAGE_PIXELS`` times two, also applies to non-DICOM files.

    Returns:
        A C-contiguous float32 array of shape (H, W, 3) with values in [0, 1].

    Raises:
        ImageLoadError: The file is missing, empty, too large, not a supported image,
            truncated or corrupt, declares more than ``max_pixels`` pixels, is smaller than
            ``MIN_SIDE`` on a side, contains NaN or Inf values, or is a compressed DICOM whose
            codec is not installed.
    """
    path = Path(path)
    data = _read_file_bytes(path, max_bytes)

    if _has_dicom_magic(data):
        image = _read_dicom(data, path.name, max_pixels, force=False)
    else:
        image = _read_with_pillow(data, path, max_pixels)

    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=np.float32)


def to_model_input(
    image: np.ndarray,
    image_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> torch.Tensor:
    """(H, W, 3) float in [0, 1] -> (1, 3, image_size, image_size) float32, resized and normalised.

    The image is resized with ``torch.nn.functional.interpolate`` (bilinear, antialias=True)
    to a square without keeping the aspect ratio, because the training data was resized the
    same way. Each channel is then normalised as ``(x - mean) / std``.

    Args:
        image: Array of shape (H, W, 3) with values in [0, 1], as returned by ``read_image``.
        image_size: Side of the square output in pixels.
        mean: Per-channel mean (R, G, B) subtracted after resizing.
        std: Per-channel standard deviation (R, G, B) that the result is divided by.

    Returns:
        A float32 tensor of shape (1, 3, image_size, image_size).

    Raises:
        ValueError: ``image`` is not (H, W, 3), ``image_size`` is not positive, or ``mean`` /
            ``std`` do not have three values or ``std`` has a value that is not positive.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        msg = f"image must have shape (H, W, 3), got {image.shape}"
        raise ValueError(msg)
    if image_size <= 0:
        msg = f"image_size must be a positive number of pixels, got {image_size}"
        raise ValueError(msg)
    if len(mean) != 3 or len(std) != 3:
        msg = f"mean and std must have 3 values (R, G, B), got {len(mean)} and {len(std)}"
        raise ValueError(msg)
    if min(std) <= 0:
        msg = f"std values must be positive, got {tuple(std)}"
        raise ValueError(msg)

    pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    batch = pixels.permute(2, 0, 1).unsqueeze(0)
    resized = F.interpolate(
        batch,
        size=(image_size, image_size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )

    mean_tensor = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_tensor = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((resized - mean_tensor) / std_tensor).contiguous()


def load_image(
    path: str | os.PathLike[str],
    image_size: int = 256,
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
    std: tuple[float, float, float] = (0.229, 0.224, 0.225),
) -> torch.Tensor:
    """Load an image file as the model's input tensor.

    Reads the file with ``read_image``, which accepts PNG, JPEG, BMP, TIFF, GIF and DICOM,
    detects the format from the content, applies EXIF orientation, copies grey to three
    channels and scales values to [0, 1]. The image is then resized to a square without keeping
    the aspect ratio (bilinear with antialiasing, as the training data was resized). Last, each
    channel is normalised as ``(x - mean) / std``. The default mean and std are the ImageNet
    statistics that the pretrained encoders expect.

    Args:
        path: Image file to read.
        image_size: Side of the square model input in pixels.
        mean: Per-channel mean (R, G, B) of the normalisation.
        std: Per-channel standard deviation (R, G, B) of the normalisation.

    Returns:
        A float32 tensor of shape (1, 3, image_size, image_size).

    Raises:
        ImageLoadError: The file cannot be read as an image. The message names the file, the
            problem and the fix. Typical causes are a missing or empty file, a file over
            ``MAX_FILE_BYTES``, a PDF or HTML file, a truncated JPEG, an image that declares
            more than ``MAX_PIXELS`` pixels, and a compressed DICOM without its codec.
        ValueError: ``image_size``, ``mean`` or ``std`` is invalid.

    Example:
        >>> from aeflow.io import load_image
        >>> batch = load_image("tests/data/xray/IM-0001-0001.jpeg", image_size=256)
        >>> batch.shape
        torch.Size([1, 3, 256, 256])
    """
    image = read_image(path)
    return to_model_input(image, image_size, mean, std)


def _read_file_bytes(path: Path, max_bytes: int) -> bytes:
    """Read the whole file after checking that it exists, is a file and fits in ``max_bytes``."""
    name = path.name or str(path)
    if not path.exists():
        msg = f"{name}: file not found at {path}. Check the path."
        raise ImageLoadError(msg)
    if path.is_dir():
        msg = f"{name} is a directory, not an image file. Pass the path of one image file."
        raise ImageLoadError(msg)

    try:
        size = path.stat().st_size
    except OSError as error:
        msg = f"{name} cannot be read ({error.strerror or error}). Check its permissions."
        raise ImageLoadError(msg) from error

    if size > max_bytes:
        msg = (
            f"{name} is {_format_size(size)}, larger than the {_format_size(max_bytes)} "
            "limit. Downscale or crop the image, or raise max_bytes."
        )
        raise ImageLoadError(msg)
    if size == 0:
        msg = f"{name} is empty (0 bytes). Export or copy the image again."
        raise ImageLoadError(msg)

    try:
        # Read at most one byte over the limit, in case the file grew after the size check.
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        msg = f"{name} cannot be read ({error.strerror or error}). Check its permissions."
        raise ImageLoadError(msg) from error

    if len(data) > max_bytes:
        msg = f"{name} is larger than the {_format_size(max_bytes)} limit. Raise max_bytes."
        raise ImageLoadError(msg)
    if not data:
        msg = f"{name} is empty (0 bytes). Export or copy the image again."
        raise ImageLoadError(msg)
    return data


def _format_size(num_bytes: int) -> str:
    """Format a byte count in MiB, KiB or bytes, whichever reads best."""
    if num_bytes >= 1024 * 1024:
        return f"{num_bytes / (1024 * 1024):.1f} MiB"
    if num_bytes >= 1024:
        return f"{num_bytes / 1024:.1f} KiB"
    return f"{num_bytes} bytes"


def _has_dicom_magic(data: bytes) -> bool:
    end = _DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC)
    return data[_DICOM_MAGIC_OFFSET:end] == _DICOM_MAGIC


def _looks_like_raw_dicom(data: bytes) -> bool:
    """Check whether the data starts like a DICOM dataset stored without the 128-byte preamble.

    Such files start with a little-endian element tag of group 0x0002 (file meta) or
    0x0008 (identifying information).
    """
    return data[:2] in (b"\x02\x00", b"\x08\x00")


def _describe_non_image(data: bytes) -> str | None:
    """Name the kind of a common non-image file from its leading bytes, or return None."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for signature, description in _NON_IMAGE_SIGNATURES:
        if head.startswith(signature.lower()):
            return description
    return None


def _read_with_pillow(data: bytes, path: Path, max_pixels: int) -> np.ndarray:
    """Decode a non-DICOM file with Pillow, or a DICOM file that lacks the ``DICM`` prefix."""
    name = path.name
    non_image = _describe_non_image(data)
    if non_image is not None:
        msg = f"{name} is {non_image}, not an image. Export the image itself as {_FORMAT_LIST}."
        raise ImageLoadError(msg)

    # Pillow must fail on truncated files instead of padding them with grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except UnidentifiedImageError as error:
        if path.suffix.lower() in _DICOM_SUFFIXES and _looks_like_raw_dicom(data):
            return _read_dicom(data, name, max_pixels, force=True)
        msg = (
            f"{name} is not a supported image (cannot identify its format). "
            f"Use a {_FORMAT_LIST} file."
        )
        raise ImageLoadError(msg) from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow raises DecompressionBombError while opening a file that declares more than
        # 2 * PIL.Image.MAX_IMAGE_PIXELS pixels (178,956,970 in Pillow 12), so max_pixels above
        # that value has no effect.
        # NOTE: from MAX_IMAGE_PIXELS (89,478,485) up to max_pixels, Pillow only emits
        # DecompressionBombWarning. Such images load, unless warnings are turned into errors.
        msg = (
            f"{name} declares more pixels than Pillow's decompression-bomb limit ({error}). "
            "The file is likely corrupt or malicious, so use a smaller image."
        )
        raise ImageLoadError(msg) from error
    except _PILLOW_DECODE_ERRORS as error:
        msg = f"{name} has a corrupt image header ({error}). Export the image again."
        raise ImageLoadError(msg) from error

    with image:
        return _decode_pillow_image(image, name, max_pixels)


def _check_dimensions(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        msg = (
            f"{name} declares {width}x{height} = {width * height:,} pixels, more than the "
            f"limit of {max_pixels:,} (decompression-bomb guard). Use a smaller image "
            "or raise max_pixels."
        )
        raise ImageLoadError(msg)
    if min(width, height) < MIN_SIDE:
        msg = (
            f"{name} is {width}x{height} pixels, smaller than the minimum of "
            f"{MIN_SIDE}x{MIN_SIDE}. Use a larger image."
        )
        raise ImageLoadError(msg)


def _decode_pillow_image(image: Image.Image, name: str, max_pixels: int) -> np.ndarray:
    """Check the declared size, decode the first frame, apply EXIF orientation and scale it."""
    width, height = image.size
    _check_dimensions(name, width, height, max_pixels)
    logger.debug(
        "Reading %s: format=%s mode=%s size=%dx%d", name, image.format, image.mode, width, height
    )

    try:
        # Image.open leaves multi-page TIFF and animated GIF files on their first frame.
        image.load()
        oriented = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        msg = (
            f"{name} exceeds Pillow's decompression-bomb limit while decoding. "
            "Use a smaller image."
        )
        raise ImageLoadError(msg) from error
    except _PILLOW_DECODE_ERRORS as error:
        msg = f"{name} is truncated or corrupt ({error}). Export or copy the image again."
        raise ImageLoadError(msg) from error

    return _pillow_to_rgb(oriented, name)


def _pillow_to_rgb(image: Image.Image, name: str) -> np.ndarray:
    """Scale a decoded Pillow image to float32 (H, W, 3) in [0, 1] by its mode."""
    mode = image.mode

    if mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image).astype(np.float32) / _UINT16_MAX
        return _grey_to_rgb(grey)

    if mode == "I":
        values = np.asarray(image).astype(np.float64)
        if values.min() >= 0 and values.max() <= _UINT16_MAX:
            return _grey_to_rgb(values / _UINT16_MAX)
        return _grey_to_rgb(_stretch_to_unit_range(values, name))

    if mode == "F":
        values = np.asarray(image).astype(np.float64)
        return _grey_to_rgb(_stretch_to_unit_range(values, name))

    if mode in ("1", "L"):
        grey = np.asarray(image.convert("L")).astype(np.float32) / 255.0
        return _grey_to_rgb(grey)

    if mode == "RGB":
        return np.asarray(image).astype(np.float32) / 255.0

    if mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        rgba = np.asarray(image.convert("RGBA")).astype(np.float32) / 255.0
        # Composite on black: a fully transparent pixel becomes 0.
        return rgba[..., :3] * rgba[..., 3:4]

    try:
        # CMYK, YCbCr, LAB and HSV.
        rgb = image.convert("RGB")
    except ValueError as error:
        msg = f"{name} has the unsupported pixel mode {mode!r}. Convert it to 8-bit RGB or grey."
        raise ImageLoadError(msg) from error
    return np.asarray(rgb).astype(np.float32) / 255.0


def _stretch_to_unit_range(values: np.ndarray, name: str) -> np.ndarray:
    """Map the minimum to 0 and the maximum to 1. A constant image becomes all zeros."""
    if not np.isfinite(values).all():
        msg = f"{name} contains NaN or infinite pixel values. Replace them before export."
        raise ImageLoadError(msg)

    low = float(values.min())
    high = float(values.max())
    if high == low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    grey = grey.astype(np.float32, copy=False)
    return np.repeat(grey[..., np.newaxis], 3, axis=2)


def _read_dicom(data: bytes, name: str, max_pixels: int, *, force: bool) -> np.ndarray:
    """Parse a DICOM file, check it, and decode the first frame to float32 (H, W, 3)."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=force)
    except _DICOM_DECODE_ERRORS as error:
        msg = f"{name} is not a readable DICOM file ({error}). Export it again as DICOM Part 10."
        raise ImageLoadError(msg) from error

    if len(dataset) == 0:
        msg = f"{name} contains no DICOM data elements. Export it again as DICOM Part 10."
        raise ImageLoadError(msg)
    if not any(keyword in dataset for keyword in _PIXEL_DATA_KEYWORDS):
        msg = (
            f"{name} is a DICOM file without Pixel Data (7FE0,0010), for example a report or "
            "presentation state. Open the DICOM image of the series instead."
        )
        raise ImageLoadError(msg)

    missing = [keyword for keyword in _REQUIRED_DICOM_ELEMENTS if keyword not in dataset]
    if missing:
        msg = (
            f"{name} is a DICOM file missing the Image Pixel elements {', '.join(missing)}. "
            "Export it again from the modality or PACS."
        )
        raise ImageLoadError(msg)

    _check_dimensions(name, int(dataset.Columns), int(dataset.Rows), max_pixels)
    _set_missing_transfer_syntax(dataset)
    _check_dicom_codec(dataset, name)

    logger.debug(
        "Reading %s: format=DICOM transfer_syntax=%s photometric=%s size=%dx%d frames=%s",
        name,
        _transfer_syntax(dataset).name,
        dataset.PhotometricInterpretation,
        dataset.Columns,
        dataset.Rows,
        dataset.get("NumberOfFrames", 1),
    )

    try:
        return _read_dicom_pixels(dataset, name)
    except ImageLoadError:
        raise
    except _DICOM_DECODE_ERRORS as error:
        reason = " ".join(str(error).split())
        msg = f"{name} has DICOM pixel data that cannot be decoded ({reason}). Export it again."
        raise ImageLoadError(msg) from error


def _transfer_syntax(dataset: pydicom.Dataset) -> dicom_uid.UID:
    return dicom_uid.UID(str(dataset.file_meta.TransferSyntaxUID))


def _set_missing_transfer_syntax(dataset: pydicom.Dataset) -> None:
    """Record the encoding pydicom detected when a file has no (0002,0010) Transfer Syntax UID.

    Files without the 128-byte preamble usually lack file meta information, and pydicom's pixel
    decoding needs the transfer syntax. Such files can only hold uncompressed pixel data.
    """
    if "TransferSyntaxUID" in dataset.file_meta:
        return
    implicit_vr, little_endian = dataset.original_encoding
    if implicit_vr:
        syntax = dicom_uid.ImplicitVRLittleEndian
    elif little_endian:
        syntax = dicom_uid.ExplicitVRLittleEndian
    else:
        syntax = dicom_uid.ExplicitVRBigEndian
    dataset.file_meta.TransferSyntaxUID = syntax


def _check_dicom_codec(dataset: pydicom.Dataset, name: str) -> None:
    """Raise ImageLoadError when no installed plugin can decode the transfer syntax."""
    syntax = _transfer_syntax(dataset)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as error:
        msg = (
            f"{name} is a DICOM file in the transfer syntax {syntax.name} ({syntax}), which "
            "pydicom cannot decode. Export it uncompressed (Explicit VR Little Endian)."
        )
        raise ImageLoadError(msg) from error

    if not decoder.is_available:
        packages = _CODEC_PACKAGES.get(syntax, _DEFAULT_CODEC_PACKAGES)
        msg = (
            f"{name} is compressed with {syntax.name} ({syntax}) and no installed codec can "
            f"decode it. Install {packages}, or export it uncompressed "
            "(Explicit VR Little Endian)."
        )
        raise ImageLoadError(msg)


def _read_dicom_pixels(dataset: pydicom.Dataset, name: str) -> np.ndarray:
    """Decode the first frame and scale it to float32 (H, W, 3) in [0, 1].

    Grey images go through the modality LUT, then the VOI LUT or windowing. The result is divided
    by the output range of that transform: 0 .. 2**n - 1 for a VOI LUT Sequence with n-bit
    entries, otherwise the range of Bits Stored values after the modality LUT, which is also the
    output range of pydicom's windowing. MONOCHROME1 is inverted after scaling.
    """
    photometric = str(dataset.PhotometricInterpretation).upper()
    frame = dicom_pixel_array(dataset, index=0)

    if frame.ndim == 3 and photometric == "PALETTE COLOR":
        msg = f"{name} is a multi-sample PALETTE COLOR DICOM, which is invalid. Export it again."
        raise ImageLoadError(msg)

    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(frame, dataset)
        return rgb.astype(np.float32) / float(np.iinfo(rgb.dtype).max)

    if frame.ndim == 3:
        # pydicom converts YBR_FULL and YBR_FULL_422 to RGB while decoding.
        if np.issubdtype(frame.dtype, np.floating):
            return _stretch_to_unit_range(frame.astype(np.float64), name)
        bits_stored = int(dataset.get("BitsStored", dataset.BitsAllocated))
        return frame.astype(np.float32) / float(2**bits_stored - 1)

    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        msg = (
            f"{name} has one sample per pixel but the photometric interpretation "
            f"{photometric!r}. Export it as MONOCHROME2."
        )
        raise ImageLoadError(msg)

    if np.issubdtype(frame.dtype, np.floating):
        # Float Pixel Data has no stored bit depth to scale by.
        grey = _stretch_to_unit_range(frame.astype(np.float64), name)
    else:
        grey = _apply_dicom_luts(frame, dataset)

    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return _grey_to_rgb(grey)


def _apply_dicom_luts(frame: np.ndarray, dataset: pydicom.Dataset) -> np.ndarray:
    """Apply the modality LUT and the VOI LUT or windowing, and scale by their output range."""
    values = apply_modality_lut(frame, dataset)

    voi_items = dataset.get("VOILUTSequence")
    has_voi_lut = bool(voi_items) and "LUTDescriptor" in voi_items[0] and "LUTData" in voi_items[0]
    if has_voi_lut:
        entry_bits = int(voi_items[0].LUTDescriptor[2])
        low, high = 0.0, float(2**entry_bits - 1)
    else:
        low, high = _modality_output_range(dataset)

    windowed = apply_voi_lut(values, dataset, index=0).astype(np.float64)
    if high <= low:
        return np.zeros(windowed.shape, dtype=np.float32)
    return ((windowed - low) / (high - low)).astype(np.float32)


def _modality_output_range(dataset: pydicom.Dataset) -> tuple[float, float]:
    """Return the range of stored values after the modality LUT, as pydicom 3.0 windowing does."""
    bits_stored = int(dataset.get("BitsStored", dataset.BitsAllocated))
    modality_items = dataset.get("ModalityLUTSequence")
    if modality_items:
        return 0.0, float(2 ** int(modality_items[0].LUTDescriptor[2]) - 1)

    if int(dataset.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits_stored - 1)
    else:
        low, high = float(-(2 ** (bits_stored - 1))), float(2 ** (bits_stored - 1) - 1)

    slope = dataset.get("RescaleSlope")
    intercept = dataset.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low = low * float(slope) + float(intercept)
        high = high * float(slope) + float(intercept)
    return min(low, high), max(low, high)
