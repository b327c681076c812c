"""Tests of aeflow.io: image files of every supported kind in, (H, W, 3) float arrays out.

Every fixture file is generated into a temporary folder by the builders below, from the pixels
of a real chest X-ray in tests/data/xray/ where the case allows it.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate

from aeflow.io import (
    MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    ImageLoadError,
    load_image,
    read_image,
    to_model_input,
)

XRAY_DIR = Path(__file__).parent / "data" / "xray"
XRAY_FILES = {
    "IM-0001-0001.jpeg": "NORMAL",
    "IM-0003-0001.jpeg": "NORMAL",
    "person100_bacteria_475.jpeg": "PNEUMONIA",
    "person100_bacteria_477.jpeg": "PNEUMONIA",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"

# Window used by the windowed DICOM fixture, in rescaled units (slope 2, intercept -1000).
WINDOW_CENTER = 3000.0
WINDOW_WIDTH = 4001.0
RESCALE_SLOPE = 2.0
RESCALE_INTERCEPT = -1000.0


# ---------------------------------------------------------------- source pixels


def xray_grey() -> np.ndarray:
    """Return the NORMAL X-ray IM-0001-0001 as uint8 (224, 224) grey."""
    with Image.open(XRAY_DIR / "IM-0001-0001.jpeg") as image:
        return np.asarray(image.convert("L"))


def xray_12bit() -> np.ndarray:
    """Return the X-ray as 12-bit stored values (0..4095) in uint16, as in a 12-bit CR image."""
    grey = xray_grey().astype(np.uint16)
    # Fill the low 4 bits from the pixel position so that all 12 bits carry data.
    rows, cols = np.indices(grey.shape)
    return grey * 16 + ((rows + cols) % 16).astype(np.uint16)


def voi_lut() -> np.ndarray:
    """Return a 4096-entry, 16-bit gamma curve used as the VOI LUT Sequence fixture."""
    return np.round(65535 * (np.arange(4096) / 4095) ** 0.5).astype(np.uint16)


# ---------------------------------------------------------------- DICOM builder


def new_dicom(transfer_syntax: str = uid.ExplicitVRLittleEndian) -> Dataset:
    """Return a CR image dataset with patient, study and series identifiers but no pixels."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.file_meta.MediaStorageSOPClassUID = CR_IMAGE_STORAGE
    dataset.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()

    dataset.SOPClassUID = CR_IMAGE_STORAGE
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = uid.generate_uid()
    dataset.SeriesInstanceUID = uid.generate_uid()
    dataset.PatientName = "Test^Phantom"
    dataset.PatientID = "AEFLOW-TEST"
    dataset.Modality = "CR"
    dataset.BodyPartExamined = "CHEST"
    dataset.ViewPosition = "PA"
    return dataset


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    **elements: object,
) -> Path:
    """Write `pixels` as an uncompressed DICOM Part 10 file with extra `elements` set."""
    dataset = new_dicom()
    dataset.set_pixel_data(pixels, photometric, bits_stored)
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    dataset.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------- file builders


def save(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def make_grey16_png(directory: Path) -> Path:
    values = xray_grey().astype(np.uint16) * 256 + 128
    return save(Image.fromarray(values), directory / "grey16.png")


def make_grey8_png(directory: Path) -> Path:
    return save(Image.fromarray(xray_grey()), directory / "grey8.png")


def make_bilevel_png(directory: Path) -> Path:
    return save(Image.fromarray(xray_grey() > 127), directory / "bilevel.png")


def make_rgba_png(directory: Path) -> Path:
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:16, :, 3] = 255  # opaque top half
    rgba[16:, :, 3] = 0  # transparent bottom half
    rgba[0, 0, 3] = 128  # half-transparent corner
    return save(Image.fromarray(rgba), directory / "rgba.png")


def make_grey_alpha_png(directory: Path) -> Path:
    grey_alpha = np.zeros((32, 32, 2), dtype=np.uint8)
    grey_alpha[..., 0] = 180
    grey_alpha[..., 1] = 255
    grey_alpha[:, 16:, 1] = 0
    return save(Image.fromarray(grey_alpha, mode="LA"), directory / "grey_alpha.png")


def make_palette_png(directory: Path) -> Path:
    indices = np.zeros((32, 32), dtype=np.uint8)
    indices[:, 16:] = 1
    image = Image.fromarray(indices, mode="P")
    image.putpalette([10, 20, 30, 250, 240, 230])
    return save(image, directory / "palette.png")


def cmyk_source() -> np.ndarray:
    """Return a 64 x 64 RGB colour ramp that survives JPEG compression well."""
    ramp = np.linspace(0, 255, 64, dtype=np.float64)
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[..., 0] = ramp[np.newaxis, :]
    rgb[..., 1] = ramp[:, np.newaxis]
    rgb[..., 2] = 128
    return rgb


def make_cmyk_jpeg(directory: Path) -> Path:
    image = Image.fromarray(cmyk_source()).convert("CMYK")
    return save(image, directory / "cmyk.jpg", quality=95)


def make_exif_rotated_jpeg(directory: Path) -> Path:
    # Stored 64 wide x 32 high with a white block in the top-left corner. EXIF orientation 6
    # means "rotate 90 degrees clockwise to display", so the display is 32 wide x 64 high with
    # the block in the top-right corner.
    pixels = np.zeros((32, 64), dtype=np.uint8)
    pixels[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(Image.fromarray(pixels), directory / "rotated.jpg", exif=exif, quality=95)


def make_bmp(directory: Path) -> Path:
    rgb = np.repeat(xray_grey()[..., np.newaxis], 3, axis=2)
    rgb[..., 0] = 255 - rgb[..., 0]  # make the channels differ
    return save(Image.fromarray(rgb), directory / "xray.bmp")


def make_multipage_tiff(directory: Path) -> Path:
    first = Image.fromarray(np.full((32, 32), 50, dtype=np.uint8))
    second = Image.fromarray(np.full((32, 32), 200, dtype=np.uint8))
    return save(first, directory / "pages.tiff", save_all=True, append_images=[second])


def make_animated_gif(directory: Path) -> Path:
    first = Image.fromarray(np.full((32, 32), 30, dtype=np.uint8))
    second = Image.fromarray(np.full((32, 32), 220, dtype=np.uint8))
    return save(
        first, directory / "animated.gif", save_all=True, append_images=[second], duration=100
    )


def make_float_tiff(directory: Path) -> Path:
    values = np.linspace(-1.5, 2.5, 32 * 32, dtype=np.float32).reshape(32, 32)
    return save(Image.fromarray(values), directory / "float.tif")


def make_grey16_tiff(directory: Path) -> Path:
    values = np.full((32, 32), 65535, dtype=np.uint16)
    values[:, :16] = 0
    return save(Image.fromarray(values), directory / "grey16.tif")


def make_16x16_png(directory: Path) -> Path:
    small = Image.fromarray(xray_grey()).resize((16, 16), Image.Resampling.BILINEAR)
    return save(small, directory / "small16.png")


def make_4000x4000_png(directory: Path) -> Path:
    large = Image.fromarray(xray_grey()).resize((4000, 4000), Image.Resampling.BILINEAR)
    return save(large, directory / "large4000.png", compress_level=1)


def make_portrait_jpeg(directory: Path) -> Path:
    # 2500 wide x 3000 high: a portrait, non-square X-ray.
    portrait = Image.fromarray(xray_grey()).resize((2500, 3000), Image.Resampling.BILINEAR)
    return save(portrait, directory / "portrait.jpg", quality=90)


def make_black_png(directory: Path) -> Path:
    return save(Image.fromarray(np.zeros((64, 64), dtype=np.uint8)), directory / "black.png")


def make_dicom_mono2(directory: Path) -> Path:
    return write_dicom(directory / "mono2.dcm", xray_12bit())


def make_dicom_mono1(directory: Path) -> Path:
    return write_dicom(directory / "mono1.dcm", xray_12bit(), photometric="MONOCHROME1")


def make_dicom_windowed(directory: Path) -> Path:
    return write_dicom(
        directory / "windowed.dcm",
        xray_12bit(),
        RescaleSlope=RESCALE_SLOPE,
        RescaleIntercept=RESCALE_INTERCEPT,
        RescaleType="US",
        WindowCenter=WINDOW_CENTER,
        WindowWidth=WINDOW_WIDTH,
    )


def make_dicom_voi_lut(directory: Path) -> Path:
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = voi_lut().tolist()
    item["LUTData"].VR = "US"
    return write_dicom(directory / "voi_lut.dcm", xray_12bit(), VOILUTSequence=[item])


def make_dicom_rgb(directory: Path) -> Path:
    return write_dicom(directory / "colour.dcm", cmyk_source(), photometric="RGB", bits_stored=8)


def make_dicom_multiframe(directory: Path) -> Path:
    frames = np.stack([xray_12bit(), 4095 - xray_12bit()])
    return write_dicom(directory / "frames.dcm", frames)


def make_dicom_named_png(directory: Path) -> Path:
    # A DICOM Part 10 file with a misleading suffix: the DICM prefix decides the format.
    return write_dicom(directory / "exported.png", xray_12bit())


def make_dicom_without_preamble(directory: Path) -> Path:
    # A bare implicit VR dataset with no preamble and no file meta, which pydicom reads only with
    # force=True.
    dataset = new_dicom()
    dataset.set_pixel_data(xray_12bit(), "MONOCHROME2", 12)
    del dataset.file_meta
    path = directory / "bare.dcm"
    pydicom.dcmwrite(path, dataset, implicit_vr=True, little_endian=True)
    return path


def make_empty_file(directory: Path) -> Path:
    path = directory / "empty.png"
    path.write_bytes(b"")
    return path


def make_truncated_jpeg(directory: Path) -> Path:
    data = (XRAY_DIR / "IM-0001-0001.jpeg").read_bytes()
    path = directory / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def make_truncated_png(directory: Path) -> Path:
    data = make_grey8_png(directory).read_bytes()
    path = directory / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def make_random_png(directory: Path) -> Path:
    path = directory / "random.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def make_pdf_jpg(directory: Path) -> Path:
    path = directory / "report.jpg"
    path.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n")
    return path


def make_html_jpg(directory: Path) -> Path:
    path = directory / "download.jpg"
    path.write_text("<!DOCTYPE html>\n<html><body>Sign in to view this image</body></html>\n")
    return path


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """Return a PNG whose IHDR chunk declares width x height, with a matching CRC."""
    # Layout: 8-byte signature, IHDR length (4), "IHDR" (4), 13 data bytes, CRC (4).
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return data[:12] + bytes(ihdr) + crc + data[33:]


def make_bomb_png(directory: Path) -> Path:
    path = directory / "bomb.png"
    path.write_bytes(with_png_size(make_16x16_png(directory).read_bytes(), 30000, 30000))
    return path


def make_bomb_120mp_png(directory: Path) -> Path:
    # 12000 x 10000 = 120 million pixels: over MAX_PIXELS, under Pillow's own hard limit.
    path = directory / "bomb120.png"
    path.write_bytes(with_png_size(make_16x16_png(directory).read_bytes(), 12000, 10000))
    return path


def make_tiny_png(directory: Path) -> Path:
    return save(Image.fromarray(np.zeros((4, 4), dtype=np.uint8)), directory / "tiny.png")


def make_dicom_without_pixels(directory: Path) -> Path:
    path = directory / "report.dcm"
    new_dicom().save_as(path, enforce_file_format=True)
    return path


def make_dicom_jpeg_ls(directory: Path) -> Path:
    dataset = new_dicom(uid.JPEGLSLossless)
    dataset.Rows = 224
    dataset.Columns = 224
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelRepresentation = 0
    # A JPEG-LS start-of-image and start-of-frame marker followed by bogus bytes.
    dataset.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(60)])
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    path = directory / "jpegls.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def make_nan_tiff(directory: Path) -> Path:
    values = np.ones((32, 32), dtype=np.float32)
    values[5, 7] = np.nan
    return save(Image.fromarray(values), directory / "nan.tif")


def make_directory(directory: Path) -> Path:
    path = directory / "folder.png"
    path.mkdir(exist_ok=True)
    return path


def make_missing_path(directory: Path) -> Path:
    return directory / "missing.png"


def make_xray_copy(directory: Path) -> Path:
    return XRAY_DIR / "IM-0001-0001.jpeg"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Callable[[Path], Path]], Path]:
    """Return a function that runs a builder once per module and returns its file's path."""
    directory = tmp_path_factory.mktemp("io")
    built: dict[Callable[[Path], Path], Path] = {}

    def build_file(builder: Callable[[Path], Path]) -> Path:
        if builder not in built:
            built[builder] = builder(directory)
        return built[builder]

    return build_file


# ---------------------------------------------------------------- accepted files


def grey(image: np.ndarray) -> np.ndarray:
    """Return channel 0 after checking that all three channels are equal."""
    assert np.array_equal(image[..., 0], image[..., 1])
    assert np.array_equal(image[..., 0], image[..., 2])
    return image[..., 0]


def check_grey16_png(image: np.ndarray) -> None:
    expected = (xray_grey().astype(np.float64) * 256 + 128) / 65535
    np.testing.assert_allclose(grey(image), expected, atol=1e-6)


def check_grey8_png(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image), xray_grey() / 255, atol=1e-6)


def check_bilevel_png(image: np.ndarray) -> None:
    np.testing.assert_array_equal(grey(image), (xray_grey() > 127).astype(np.float32))


def check_rgba_png(image: np.ndarray) -> None:
    np.testing.assert_allclose(image[8, 8], np.array([200, 100, 50]) / 255, atol=1e-6)
    assert not image[16:].any()  # fully transparent pixels composite to black
    np.testing.assert_allclose(image[0, 0], np.array([200, 100, 50]) / 255 * 128 / 255, atol=1e-6)


def check_grey_alpha_png(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image)[:, :16], 180 / 255, atol=1e-6)
    assert not image[:, 16:].any()


def check_palette_png(image: np.ndarray) -> None:
    np.testing.assert_allclose(image[0, 0], np.array([10, 20, 30]) / 255, atol=1e-6)
    np.testing.assert_allclose(image[0, 31], np.array([250, 240, 230]) / 255, atol=1e-6)


def check_cmyk_jpeg(image: np.ndarray) -> None:
    error = np.abs(image - cmyk_source() / 255).mean()
    assert error < 0.02, f"mean absolute error {error:.4f} against the RGB source"


def check_exif_rotated_jpeg(image: np.ndarray) -> None:
    assert image[:8, -8:].mean() > 0.9  # the white block moved to the top-right corner
    assert image[:8, :8].mean() < 0.1


def check_bmp(image: np.ndarray) -> None:
    np.testing.assert_allclose(image[..., 1], xray_grey() / 255, atol=1e-6)
    np.testing.assert_allclose(image[..., 0], (255 - xray_grey()) / 255, atol=1e-6)


def check_first_page_50(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image), 50 / 255, atol=1e-6)


def check_first_frame_30(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image), 30 / 255, atol=1e-6)


def check_float_tiff(image: np.ndarray) -> None:
    expected = (np.linspace(-1.5, 2.5, 32 * 32).reshape(32, 32) + 1.5) / 4.0
    np.testing.assert_allclose(grey(image), expected, atol=1e-6)


def check_grey16_tiff(image: np.ndarray) -> None:
    assert not grey(image)[:, :16].any()
    np.testing.assert_array_equal(grey(image)[:, 16:], 1.0)


def check_resized_xray(image: np.ndarray) -> None:
    assert 0.2 < grey(image).mean() < 0.8


def check_portrait_jpeg(image: np.ndarray) -> None:
    assert 0.2 < image.mean() < 0.8


def check_all_black(image: np.ndarray) -> None:
    assert not image.any()


def check_dicom_mono2(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image), xray_12bit() / 4095, atol=1e-6)


def check_dicom_mono1(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image), 1 - xray_12bit() / 4095, atol=1e-6)


def check_dicom_windowed(image: np.ndarray) -> None:
    # DICOM PS3.3 C.11.2.1.2.1 linear windowing, applied to the rescaled values.
    rescaled = xray_12bit() * RESCALE_SLOPE + RESCALE_INTERCEPT
    center = WINDOW_CENTER - 0.5
    width = WINDOW_WIDTH - 1
    expected = np.clip((rescaled - center) / width + 0.5, 0.0, 1.0)
    values = grey(image)
    np.testing.assert_allclose(values, expected, atol=1e-5)
    # The window spans rescaled values 999.5 .. 4999.5, which are stored values 999.75 ..
    # 2999.75, so stored values up to 999 clip to 0 and values from 3000 up clip to 1.
    stored = xray_12bit()
    assert (values[stored <= 999] == 0).all()
    assert values[stored >= 1000].min() > 0
    assert (values[stored >= 3000] == 1).all()
    assert values[stored <= 2999].max() < 1


def check_dicom_voi_lut(image: np.ndarray) -> None:
    np.testing.assert_allclose(grey(image), voi_lut()[xray_12bit()] / 65535, atol=1e-6)


def check_dicom_rgb(image: np.ndarray) -> None:
    np.testing.assert_allclose(image, cmyk_source() / 255, atol=1e-6)


ACCEPTED = [
    # (builder, expected (H, W, 3), value check)
    pytest.param(make_grey16_png, (224, 224, 3), check_grey16_png, id="png-grey-16bit"),  # / 65535
    pytest.param(make_grey8_png, (224, 224, 3), check_grey8_png, id="png-grey-8bit"),  # / 255
    pytest.param(make_bilevel_png, (224, 224, 3), check_bilevel_png, id="png-bilevel"),  # mode 1
    pytest.param(make_rgba_png, (32, 32, 3), check_rgba_png, id="png-rgba"),  # on black
    pytest.param(make_grey_alpha_png, (32, 32, 3), check_grey_alpha_png, id="png-grey-alpha"),
    pytest.param(make_palette_png, (32, 32, 3), check_palette_png, id="png-palette"),
    pytest.param(make_cmyk_jpeg, (64, 64, 3), check_cmyk_jpeg, id="jpeg-cmyk"),
    # Stored 64 x 32 (W x H) with EXIF orientation 6: displayed 32 wide, 64 high.
    pytest.param(make_exif_rotated_jpeg, (64, 32, 3), check_exif_rotated_jpeg, id="jpeg-exif-6"),
    pytest.param(make_bmp, (224, 224, 3), check_bmp, id="bmp-rgb"),
    pytest.param(make_multipage_tiff, (32, 32, 3), check_first_page_50, id="tiff-first-page"),
    pytest.param(make_animated_gif, (32, 32, 3), check_first_frame_30, id="gif-first-frame"),
    pytest.param(make_float_tiff, (32, 32, 3), check_float_tiff, id="tiff-float-min-max"),
    pytest.param(make_grey16_tiff, (32, 32, 3), check_grey16_tiff, id="tiff-grey-16bit"),
    pytest.param(make_16x16_png, (16, 16, 3), check_resized_xray, id="png-16x16"),  # small, valid
    pytest.param(make_4000x4000_png, (4000, 4000, 3), check_resized_xray, id="png-4000x4000"),
    pytest.param(make_portrait_jpeg, (3000, 2500, 3), check_portrait_jpeg, id="jpeg-2500x3000"),
    pytest.param(make_black_png, (64, 64, 3), check_all_black, id="png-uniform-black"),
    pytest.param(make_dicom_mono2, (224, 224, 3), check_dicom_mono2, id="dicom-mono2-12bit"),
    pytest.param(make_dicom_mono1, (224, 224, 3), check_dicom_mono1, id="dicom-mono1-inverted"),
    pytest.param(make_dicom_windowed, (224, 224, 3), check_dicom_windowed, id="dicom-window"),
    pytest.param(make_dicom_voi_lut, (224, 224, 3), check_dicom_voi_lut, id="dicom-voi-lut"),
    pytest.param(make_dicom_rgb, (64, 64, 3), check_dicom_rgb, id="dicom-rgb"),
    pytest.param(make_dicom_multiframe, (224, 224, 3), check_dicom_mono2, id="dicom-frame-0"),
    pytest.param(make_dicom_named_png, (224, 224, 3), check_dicom_mono2, id="dicom-named-png"),
    pytest.param(make_dicom_without_preamble, (224, 224, 3), check_dicom_mono2, id="dicom-bare"),
]


@pytest.mark.parametrize(("builder", "shape", "check"), ACCEPTED)
def test_read_image_accepts(
    build: Callable[[Callable[[Path], Path]], Path],
    builder: Callable[[Path], Path],
    shape: tuple[int, int, int],
    check: Callable[[np.ndarray], None],
) -> None:
    image = read_image(build(builder))

    assert image.shape == shape
    assert image.dtype == np.float32
    assert image.flags.c_contiguous
    assert image.min() >= 0.0
    assert image.max() <= 1.0
    check(image)


# ---------------------------------------------------------------- rejected files

REJECTED = [
    # (builder, read_image keyword arguments, expected message pattern)
    pytest.param(make_empty_file, {}, r"empty\.png is empty \(0 bytes\)", id="empty-file"),
    pytest.param(
        make_truncated_jpeg, {}, r"truncated\.jpg is truncated or corrupt", id="jpeg-truncated"
    ),
    pytest.param(
        make_truncated_png, {}, r"truncated\.png is truncated or corrupt", id="png-truncated"
    ),
    pytest.param(make_random_png, {}, r"random\.png is not a supported image", id="random-bytes"),
    pytest.param(make_pdf_jpg, {}, r"report\.jpg is a PDF document, not an image", id="pdf"),
    pytest.param(make_html_jpg, {}, r"download\.jpg is an HTML page, not an image", id="html"),
    # 30000 x 30000 declared: Pillow's own limit (2 x MAX_IMAGE_PIXELS) fires while opening.
    pytest.param(make_bomb_png, {}, r"bomb\.png declares .*decompression-bomb", id="bomb-900mp"),
    # 120 million pixels declared: over MAX_PIXELS, caught by read_image's own check.
    pytest.param(
        make_bomb_120mp_png,
        {},
        r"bomb120\.png declares 12000x10000 = 120,000,000 pixels, more than the limit",
        id="bomb-120mp",
        marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    ),
    pytest.param(
        make_grey8_png,
        {"max_pixels": 1000},
        r"grey8\.png declares 224x224 = 50,176 pixels, more than the limit of 1,000",
        id="over-max-pixels",
    ),
    pytest.param(
        make_xray_copy,
        {"max_bytes": 1000},
        r"IM-0001-0001\.jpeg is 7\.2 KiB, larger than the 1000 bytes limit",
        id="over-max-bytes",
    ),
    pytest.param(make_tiny_png, {}, r"tiny\.png is 4x4 pixels, smaller than", id="too-small"),
    pytest.param(
        make_dicom_without_pixels,
        {},
        r"report\.dcm is a DICOM file without Pixel Data",
        id="dicom-no-pixel-data",
    ),
    pytest.param(
        make_dicom_jpeg_ls,
        {},
        r"jpegls\.dcm is compressed with JPEG-LS Lossless Image Compression .*Install pylibjpeg",
        id="dicom-jpeg-ls-no-codec",
    ),
    pytest.param(make_nan_tiff, {}, r"nan\.tif contains NaN or infinite", id="tiff-float-nan"),
    pytest.param(make_directory, {}, r"folder\.png is a directory", id="directory"),
    pytest.param(make_missing_path, {}, r"missing\.png: file not found", id="missing-path"),
]


@pytest.mark.parametrize(("builder", "options", "pattern"), REJECTED)
def test_read_image_rejects(
    build: Callable[[Callable[[Path], Path]], Path],
    builder: Callable[[Path], Path],
    options: dict[str, int],
    pattern: str,
) -> None:
    with pytest.raises(ImageLoadError, match=pattern) as raised:
        read_image(build(builder), **options)

    assert "\n" not in str(raised.value)


# ---------------------------------------------------------------- DICOM details


def test_dicom_mono1_inverts_mono2(build: Callable[[Callable[[Path], Path]], Path]) -> None:
    mono1 = read_image(build(make_dicom_mono1))
    mono2 = read_image(build(make_dicom_mono2))

    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)


def test_dicom_window_changes_contrast(build: Callable[[Callable[[Path], Path]], Path]) -> None:
    plain = read_image(build(make_dicom_mono2))
    windowed = read_image(build(make_dicom_windowed))

    assert windowed.std() > plain.std()


# ---------------------------------------------------------------- model input


def test_load_image_default_size() -> None:
    batch = load_image(XRAY_DIR / "IM-0001-0001.jpeg")

    assert batch.shape == (1, 3, 256, 256)
    assert batch.dtype == torch.float32


def test_load_image_size_224(build: Callable[[Callable[[Path], Path]], Path]) -> None:
    batch = load_image(build(make_portrait_jpeg), image_size=224)

    assert batch.shape == (1, 3, 224, 224)
    assert batch.dtype == torch.float32


def test_load_image_normalises_pixels(tmp_path: Path) -> None:
    colour = (100, 150, 200)
    path = save(Image.new("RGB", (40, 30), colour), tmp_path / "uniform.png")

    batch = load_image(path, image_size=224)

    for channel in range(3):
        expected = (colour[channel] / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        assert batch[0, channel].sub(expected).abs().max().item() < 1e-5


def test_to_model_input_ignores_aspect_ratio() -> None:
    # Left half black, right half white on a wide image: the edge stays in the middle column.
    image = np.zeros((100, 400, 3), dtype=np.float32)
    image[:, 200:] = 1.0

    batch = to_model_input(image, 64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))

    assert batch.shape == (1, 3, 64, 64)
    assert batch[0, :, :, :31].max().item() == 0.0
    assert batch[0, :, :, 33:].min().item() == pytest.approx(1.0)


def test_to_model_input_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\)"):
        to_model_input(np.zeros((32, 32), dtype=np.float32), 64, IMAGENET_MEAN, IMAGENET_STD)


# ---------------------------------------------------------------- real X-rays


@pytest.mark.parametrize("file_name", sorted(XRAY_FILES))
def test_read_image_real_xray(file_name: str) -> None:
    image = read_image(XRAY_DIR / file_name)

    assert image.shape == (224, 224, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0
    assert image.max() <= 1.0
    # Stored as RGB with R = G = B, but JPEG chroma rounding can move a channel a few levels.
    assert np.abs(image[..., 0] - image[..., 1]).max() <= 4 / 255
    assert 0.2 < image.mean() < 0.8


def test_xray_folder_contains_loader_files() -> None:
    found = {path.name for path in XRAY_DIR.glob("*.jpeg")}

    assert set(XRAY_FILES) <= found


# ---------------------------------------------------------------- constants and logging


def test_constants_cover_formats() -> None:
    for suffix in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".dcm", ".dicom"):
        assert suffix in SUPPORTED_SUFFIXES
    assert 4000 * 4000 <= MAX_PIXELS < 30000 * 30000


def test_read_image_logs_name_only(
    build: Callable[[Callable[[Path], Path]], Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = build(make_grey8_png)

    with caplog.at_level(logging.DEBUG, logger="aeflow.io"):
        read_image(path)

    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["Reading grey8.png: format=PNG mode=L size=224x224"]
    assert str(path.parent) not in messages[0]


def test_read_image_accepts_str_path(tmp_path: Path) -> None:
    path = save(Image.new("L", (16, 16), 255), tmp_path / "white.png")

    image = read_image(str(path))

    assert image.shape == (16, 16, 3)
    np.testing.assert_array_equal(image, 1.0)
