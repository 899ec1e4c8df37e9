"""The front office's main journeys with the keyboard alone, in a real browser.

Sign in, enrol a patient, find them with the live search, schedule follow-ups
in one step, and import a CSV file: every field and button is reached with Tab
(never clicked), typed into, chosen with the arrow keys and pressed with Enter
or Space; the file is chosen from the browser's file chooser opened with the
keyboard. A step that cannot be reached by Tab fails, naming what was focused.
axe-core runs on the pages as they are left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import check_accessibility, chromium_page, screenshot, sync_api
from tests.e2e.conftest import Server

MAX_TABS = 80  # more than any of these pages has stops before its last button


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1280) as page:
        yield page


def focused(page: sync_api.Page) -> str:
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return e ? `${e.tagName.toLowerCase()}#${e.id} ${(e.innerText || e.value || '')"
        ".slice(0, 40)}` : 'nothing'; }"
    )


def tab_to(page: sync_api.Page, selector: str) -> None:
    """Press Tab until ``selector`` has the focus (it must be reachable from the keyboard)."""
    seen = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        seen.append(focused(page))
    raise AssertionError(f"Tab never reached {selector}; went through: {seen}")


def type_into(page: sync_api.Page, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def open_file_chooser_with_keyboard(page: sync_api.Page, selector: str) -> sync_api.FileChooser:
    """Tab to a file input and open the browser's file chooser with Space (or Enter).

    Headless Chromium on a busy machine now and then drops the chooser a key press
    asked for (seen once in CI, never reproduced), so a press that opens nothing is
    tried again, each time checking the input still has the focus: a keyboard user
    would press again too. Three presses that open nothing fail the test.
    """
    tab_to(page, selector)
    for key in ("Space", "Enter", "Space"):
        assert page.evaluate("s => document.activeElement?.matches(s) ?? false", selector), (
            f"{selector} lost the focus to {focused(page)}"
        )
        try:
            with page.expect_file_chooser(timeout=5_000) as chooser:
                page.keyboard.press(key)
            return chooser.value
        except sync_api.TimeoutError:
            continue
    raise AssertionError(f"no key press on {selector} opened the file chooser")


def choose(page: sync_api.Page, selector: str, value: str) -> None:
    """A <select>'s option chosen with the arrow keys."""
    tab_to(page, selector)
    for _ in range(40):
        if page.eval_on_selector(selector, "e => e.value") == value:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{value!r} is not among {selector}'s options")


def field(page: sync_api.Page, label: str) -> str:
    """The CSS selector of the field a label names."""
    return "#" + page.get_by_label(label, exact=True).get_attribute("id")


def test_sign_in_enrol_find_and_schedule_with_the_keyboard_alone(
    page: sync_api.Page, server: Server
) -> None:
    expect = sync_api.expect
    clinician = next(u for u in server.demo["users"] if u["role"] == "clinician")
    page.goto(f"{server.base_url}/staff/login")
    type_into(page, field(page, "E-mail address"), clinician["email"])
    type_into(page, field(page, "Password"), clinician["password"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Menu")).to_be_visible()

    # Enrol: from the patient list, by its "Enrol a patient" link.
    page.goto(f"{server.base_url}/staff/patients")
    tab_to(page, "#enrol-patient")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Enrol a patient")).to_be_visible()
    type_into(page, field(page, "Full name"), "Kay Keyboard")
    type_into(page, field(page, "Mobile"), "07700 900881")
    tab_to(page, "main [type=submit][value='Enrol patient']")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Kay Keyboard")

    # Find: the live search shows the patient as the digits are typed (no button).
    page.goto(f"{server.base_url}/staff/patients")
    type_into(page, "#q", "0881")
    rows = page.locator("#patient-results tr.patient-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Kay Keyboard")
    expect(page).to_have_url(f"{server.base_url}/staff/patients?q=0881")
    check_accessibility(page)
    screenshot(page, f"{server.backend}-patients-live-search")
    tab_to(page, "#patient-results tr.patient-row a")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Kay Keyboard")

    # Schedule in one step: choose the protocol with the arrow keys, press the button.
    choose(page, field(page, "What to send"), "depression_review")
    tab_to(page, "#schedule-form [type=submit]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Scheduled 3 follow-ups.")
    expect(page.locator("tr.follow-up")).to_have_count(3)
    check_accessibility(page)


def test_import_a_csv_file_with_the_keyboard_alone(
    page: sync_api.Page, server: Server, tmp_path: Path
) -> None:
    expect = sync_api.expect
    path = tmp_path / "patients.csv"
    path.write_bytes(b"Name,Mobile\r\nKai Keys,07700 900882\r\nLou Landline,01632 960001\r\n")
    admin = next(u for u in server.demo["users"] if u["role"] == "admin")
    page.goto(f"{server.base_url}/staff/login")
    type_into(page, field(page, "E-mail address"), admin["email"])
    type_into(page, field(page, "Password"), admin["password"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Menu")).to_be_visible()

    page.goto(f"{server.base_url}/staff/import")
    open_file_chooser_with_keyboard(page, "#file").set_files(str(path))
    tab_to(page, "#preview-import")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check the import")).to_be_visible()
    tab_to(page, "#confirm-import")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Import done")).to_be_visible()
    expect(page.locator("#enrolled")).to_have_text("1")
    expect(page.locator("#failed")).to_have_text("1")
    check_accessibility(page)
