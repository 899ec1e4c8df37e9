"""Debian's Chromium driven by Playwright, shared by the page tests.

Never `playwright install`: it would download a browser of its own. Without
/usr/bin/chromium the page tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("PROMBOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # a bound on waiting for the page, not an expectation of speed


@contextmanager
def chromium_page(width: int) -> Iterator[sync_api.Page]:
    """A fresh page in headless Chromium, closed afterwards."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run scripts/ensure-chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            yield context.new_page()
            context.close()
        finally:
            browser.close()
