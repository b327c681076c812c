"""Browser test of app.py: Chromium (through Playwright) drives the real UI with the real model.

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import MODEL_SOURCE, ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
EXAMPLE = ROOT / "examples" / "person1946_bacteria_4874.jpeg"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Model loading and the first forward pass on a shared CPU can take a while.
MODEL_TIMEOUT_MS = 180_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not found at {CHROMIUM}"),
    pytest.mark.skipif(
        "AEFLOW_MODEL" not in os.environ and not Path(MODEL_SOURCE).is_dir(),
        reason=f"no model: set AEFLOW_MODEL or train one into {MODEL_SOURCE}",
    ),
]


@pytest.fixture(scope="module")
def page(app_url):
    """A Chromium page on the app, closed after the module."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            browser_page = browser.new_page(viewport={"width": 1400, "height": 1000})
            browser_page.goto(app_url)
            yield browser_page
        finally:
            browser.close()


def read_value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def set_threshold(page, value: float) -> None:
    """Type a threshold into the slider's number box and commit it with Enter."""
    box = page.locator("#threshold input[type=number]")
    box.fill(repr(value))
    box.press("Enter")


def test_upload_and_threshold_flip(page, app_module):
    # The threshold slider appears once the model has loaded on the page's first view.
    page.wait_for_selector("#threshold", state="visible", timeout=MODEL_TIMEOUT_MS)
    calls_before = app_module.INFERENCE_CALLS

    page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
    for panel in ("input-view", "reconstruction", "residual-map", "flow-map", "overlay"):
        page.wait_for_selector(f"#{panel} img", timeout=MODEL_TIMEOUT_MS)
    page.wait_for_function(
        "() => document.querySelector('#score input').value !== ''", timeout=MODEL_TIMEOUT_MS
    )
    page.screenshot(path=str(ARTIFACTS / "browser_after_upload.png"), full_page=True)

    assert app_module.INFERENCE_CALLS == calls_before + 1
    score = float(read_value(page, "score"))
    first_verdict = read_value(page, "verdict")
    assert first_verdict in ("normal", "anomalous")
    assert "Verdict: " + first_verdict in page.locator("#result").inner_text()

    # A threshold just above the score makes the image normal, one just below makes it anomalous.
    margin = abs(score) * 1e-3 + 1e-6
    flipped = "anomalous" if first_verdict == "normal" else "normal"
    flipped_threshold = score - margin if flipped == "anomalous" else score + margin
    set_threshold(page, flipped_threshold)
    page.wait_for_function(
        f"() => document.querySelector('#verdict textarea, #verdict input').value === '{flipped}'",
        timeout=30_000,
    )
    page.screenshot(path=str(ARTIFACTS / "browser_threshold_flipped.png"), full_page=True)

    original_threshold = score + margin if flipped == "anomalous" else score - margin
    set_threshold(page, original_threshold)
    page.wait_for_function(
        f"() => document.querySelector('#verdict textarea, #verdict input').value === '{first_verdict}'",
        timeout=30_000,
    )
    assert f"threshold {original_threshold:.6g}" in page.locator("#operating-point").inner_text().replace("**", "")

    # Moving the threshold re-decided the stored prediction without another forward pass.
    assert app_module.INFERENCE_CALLS == calls_before + 1
    assert float(read_value(page, "score")) == score
