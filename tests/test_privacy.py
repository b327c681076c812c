"""Privacy of the app: no copy of an upload stays on disk, logs contain no image data, and the
server listens on 127.0.0.1 and serves only examples/ as static files.

The app is launched once for this module without ``server_name``, as ``python app.py`` does.
Gradio 6 deletes cached files with ``gradio.route_utils.delete_files_created_by_app``, which the
``delete_cache`` schedule calls every 5 minutes. The tests call it directly with ``age=0``, so
they need not wait for the schedule.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import tempfile
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import MODEL_SOURCE, ROOT, free_port
from tests.test_app import EXAMPLE

pytestmark = pytest.mark.skipif(
    "AEFLOW_MODEL" not in os.environ and not Path(MODEL_SOURCE).is_dir(),
    reason=f"no model: set AEFLOW_MODEL or train one into {MODEL_SOURCE}",
)

LOGGER_NAMES = ("", "gradio", "gradio_client", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "aeflow", "app")
# Fifteen or more numbers in a row separated by commas or spaces look like a dumped array.
ARRAY_DUMP = re.compile(r"(?:-?\d+(?:\.\d+)?(?:e-?\d+)?[,\s]+){15,}")


@pytest.fixture(scope="module")
def server(app_module, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """Launch the demo with the app's launch options and no server_name; yield its local URL."""
    from gradio_client import Client

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("GRADIO_SERVER_NAME", raising=False)
        _, local_url, _ = app_module.demo.launch(
            **app_module.LAUNCH_OPTIONS, server_port=free_port(), prevent_thread_lock=True, quiet=True
        )
    api_client = None
    try:
        api_client = Client(local_url, verbose=False)
        yield local_url, api_client
    finally:
        if api_client is not None:
            api_client.close()
        app_module.demo.close()


def unique_upload(directory: Path) -> Path:
    """Write a real X-ray with a random pixel block under a unique name, so its bytes are unique."""
    name = f"privacy-{uuid.uuid4().hex}.png"
    with Image.open(EXAMPLE) as image:
        pixels = np.asarray(image.convert("L")).copy()
    pixels[:8, :8] = np.random.default_rng().integers(0, 256, (8, 8), dtype=np.uint8)
    path = directory / name
    Image.fromarray(pixels).save(path)
    return path


def copies_on_disk(upload: Path, roots: list[Path]) -> list[Path]:
    """Return files under ``roots`` with the upload's name or bytes, other than the upload itself."""
    data = upload.read_bytes()
    found = []
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                if path == upload:
                    continue
                if name == upload.name:
                    found.append(path)
                    continue
                try:
                    if path.stat().st_size == len(data) and path.read_bytes() == data:
                        found.append(path)
                except OSError:
                    continue  # removed or unreadable while walking
    return sorted(set(found))


def search_roots(app_module) -> list[Path]:  # noqa: F811
    roots = [Path(tempfile.gettempdir())]
    upload_dir = Path(app_module.demo.server_app.uploaded_file_dir)
    if not upload_dir.is_relative_to(roots[0]):
        roots.append(upload_dir)
    gradio_temp = os.environ.get("GRADIO_TEMP_DIR")
    if gradio_temp and not Path(gradio_temp).is_relative_to(roots[0]):
        roots.append(Path(gradio_temp))
    return roots


def test_upload_deleted_by_cache_cleanup(server, app_module, tmp_path: Path) -> None:  # noqa: F811
    from gradio.route_utils import delete_files_created_by_app
    from gradio_client import handle_file

    _, api_client = server
    upload = unique_upload(tmp_path)
    roots = search_roots(app_module)

    outputs = api_client.predict(handle_file(str(upload)), api_name="/inspect")
    assert outputs[6] in ("normal", "anomalous")

    # The search must find the server's copy before the clean-up, or it proves nothing after.
    before = copies_on_disk(upload, roots)
    assert before, "the uploaded copy was not found; the search looks in the wrong folders"

    delete_files_created_by_app(app_module.demo, age=0)

    assert copies_on_disk(upload, roots) == []


@pytest.fixture
def all_logs():
    """Capture every logger at DEBUG, including gradio, httpx and uvicorn, and return the records."""
    records: list[logging.LogRecord] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = ListHandler(level=logging.DEBUG)
    saved = {}
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.propagate, logger.disabled)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if name:
            logger.propagate = True
    logging.getLogger().addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger().removeHandler(handler)
        for name, (level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


def test_logs_hold_no_image_data(server, all_logs, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, api_client = server
    upload = unique_upload(tmp_path)
    bad_upload = tmp_path / f"privacy-bad-{uuid.uuid4().hex}.png"
    bad_upload.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(512))

    outputs = api_client.predict(handle_file(str(upload)), api_name="/inspect")
    assert outputs[6] in ("normal", "anomalous")
    with pytest.raises(AppError):
        api_client.predict(handle_file(str(bad_upload)), api_name="/inspect")

    assert all_logs, "no log records were captured, so the check below proves nothing"
    text = "\n".join(f"{record.name} {record.levelname} {record.getMessage()}" for record in all_logs)
    for path in (upload, bad_upload):
        data = path.read_bytes()
        assert path.name not in text
        assert path.stem.split("-")[-1] not in text  # the unique part, in any form
        # Any 48-byte slice of the file, base64-encoded at an offset of 0, 1 or 2 mod 3.
        for offset in range(0, len(data) - 48, 48):
            for shift in range(3):
                chunk = base64.b64encode(data[offset + shift : offset + shift + 48]).decode()
                assert chunk[4:-4] not in text
        assert data[8:40].hex() not in text
    assert ARRAY_DUMP.search(text) is None, ARRAY_DUMP.search(text).group(0)[:200]


def listening_addresses(port: int) -> set[str]:
    """Return the local IPv4 addresses in LISTEN state on ``port``, from /proc/net/tcp."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).is_file():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                if len(address) == 8:
                    addresses.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    addresses.add(address)
    return addresses


def test_server_binds_loopback_by_default(server, app_module) -> None:  # noqa: F811
    local_url, _ = server
    port = int(local_url.rstrip("/").rsplit(":", 1)[1])

    assert app_module.demo.server_name == "127.0.0.1"
    assert listening_addresses(port) == {"127.0.0.1"}


def fetch_file(local_url: str, path: Path) -> httpx.Response:
    """GET a file through Gradio 6's static route, /gradio_api/file=<absolute path>."""
    return httpx.get(f"{local_url.rstrip('/')}/gradio_api/file={path}", timeout=30)


@pytest.mark.parametrize(
    "relative",
    ["README.md", "app.py", "aeflow/io.py", "pyproject.toml", "tests/data/xray/IM-0001-0001.jpeg"],
)
def test_repo_files_not_served(server, relative: str) -> None:
    local_url, _ = server
    path = ROOT / relative
    assert path.is_file()

    response = fetch_file(local_url, path)

    assert response.status_code in (403, 404), response.status_code
    assert response.content != path.read_bytes()


def test_model_files_not_served(server) -> None:
    local_url, _ = server
    path = Path(MODEL_SOURCE) / "config.json"
    if not path.is_file():
        pytest.skip(f"{MODEL_SOURCE} is not a local folder")

    response = fetch_file(local_url, path)

    assert response.status_code in (403, 404), response.status_code


def test_example_image_served(server) -> None:
    local_url, _ = server

    response = fetch_file(local_url, EXAMPLE)

    assert response.status_code == 200
    assert response.content == EXAMPLE.read_bytes()
