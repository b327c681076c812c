"""Save docs/screenshot.png: the app in Chromium after scoring one example X-ray.

Usage: python scripts/screenshot.py [--output docs/screenshot.png] [--example FILE]

The model comes from AEFLOW_MODEL (default weights/chest-xray), as in app.py. The app runs on a
free loopback port and stops when the screenshot is saved.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 180_000


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    """Launch the app, score the example in the browser and save a full-page screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "screenshot.png", help="PNG file to write.")
    parser.add_argument(
        "--example",
        type=Path,
        default=ROOT / "examples" / "person1946_bacteria_4874.jpeg",
        help="Image to upload before the screenshot.",
    )
    parser.add_argument("--width", type=int, default=1400, help="Browser viewport width in pixels.")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import app
    from playwright.sync_api import sync_playwright

    _, url, _ = app.demo.launch(
        **app.LAUNCH_OPTIONS, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": args.width, "height": 1000})
                page.goto(url)
                page.wait_for_selector("#threshold", state="visible", timeout=TIMEOUT_MS)
                page.locator("#upload input[type=file]").set_input_files(str(args.example))
                page.wait_for_selector("#overlay img", timeout=TIMEOUT_MS)
                page.wait_for_selector("#calibration-plot img", timeout=TIMEOUT_MS)
                page.wait_for_function("() => document.querySelector('#verdict textarea, #verdict input').value !== ''")
                # Let the images finish decoding and the progress indicators fade.
                page.wait_for_timeout(1500)
                args.output.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.output), full_page=True)
            finally:
                browser.close()
    finally:
        app.demo.close()
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
