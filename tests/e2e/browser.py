"""Debian's Chromium driven by Playwright, shared by the page tests.

Never `playwright install`: it would download a browser of its own. Without
/usr/bin/chromium the page tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


# -- accessibility and screenshots ---------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"  # `make assets` (package-lock.json)
SCREENSHOTS = REPO / "build" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}
FAILING_IMPACTS = ("serious", "critical")


def check_accessibility(page: sync_api.Page) -> None:
    """Run axe-core (WCAG 2.2 A and AA rules) on the page; fail on serious or critical
    violations, listing each rule, its impact, help text and the elements at fault.

    axe is evaluated through the DevTools protocol rather than added as a script tag,
    so the page's content security policy (no inline script) stays exactly as served.
    """
    assert AXE.is_file(), f"{AXE} is missing: run `make assets`"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    results = page.evaluate(
        """async () => {
            const results = await window.axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                "wcag22aa", "best-practice"]},
                resultTypes: ["violations"],
            });
            return results.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
            }));
        }"""
    )
    failing = [v for v in results if v["impact"] in FAILING_IMPACTS]
    listing = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    at {', '.join(v['targets'])}"
        for v in failing
    )
    assert not failing, f"axe-core: {len(failing)} serious or critical on {page.url}:\n{listing}"


def screenshot(page: sync_api.Page, name: str) -> list[Path]:
    """Save the whole page at desktop (1280 wide) and phone (390 wide) widths as
    build/screenshots/<name>-desktop.png and -phone.png, for a reviewer to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size or {"width": WIDTHS["desktop"], "height": 900}
    saved = []
    try:
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            path = SCREENSHOTS / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
    finally:
        page.set_viewport_size(before)
    return saved


@contextmanager
def console_errors(page: sync_api.Page) -> Iterator[list[str]]:
    """The console errors (content security policy refusals among them) while in the block."""
    errors: list[str] = []

    def record(message: sync_api.ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", record)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    try:
        yield errors
    finally:
        page.remove_listener("console", record)
