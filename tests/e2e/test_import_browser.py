"""The CSV import in a real browser, against the real server, as a practice manager does it.

Debian's Chromium (Playwright) signs in as the demo practice's admin, uploads
a file as Excel writes "CSV UTF-8" (a BOM, CRLF line ends, a quoted name with
a comma) holding good rows, a patient already enrolled and bad rows, reads the
preview, confirms, sees the result, downloads the rows that failed with their
reasons, then uploads the same file again and sees that nothing would be
created twice. No JavaScript is needed by the pages; the API confirms what
was created. axe-core checks each page (no serious or critical violations) and
each is saved at desktop and phone widths under build/screenshots/.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import check_accessibility, chromium_page, screenshot, sync_api
from tests.e2e.conftest import Server

ADMIN = "admin@demo.prombot.test"
PASSWORD = "demo-password"
ROWS = [
    "Patient Name,Mobile,NHS No,DOB,Consultation Date,Protocol",
    '"Placeholder, Robin",07700 900301,,21/04/1980,01/03/2026,depression_review',
    "Kit Imaginary,07700900302,,1975-01-31,,",
    "Alex Example,07700 900101,943 476 5919,,,",  # the demo's patient: already enrolled
    "Sol Madeup,01632 960000,,,,",  # a landline
    "Ash Notreal,07700900303,943 476 5910,,,",  # NHS number fails its check digit
    "Lee Pretend,07700900304,,31/02/1980,,",  # no such day
    "Jo Unknown,07700900305,,,01/03/2026,no_such_protocol",
]
FILE = codecs.BOM_UTF8 + ("\r\n".join(ROWS) + "\r\n").encode("utf-8")


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1100) as page:
        yield page


def outcomes(page: sync_api.Page) -> list[str]:
    return page.locator("#import-rows tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.outcome)"
    )


def upload(page: sync_api.Page, server: Server, path: Path) -> None:
    page.goto(f"{server.base_url}/staff/import")
    page.get_by_label("CSV file", exact=True).set_input_files(str(path))
    page.get_by_role("button", name="Preview import").click()
    sync_api.expect(page.get_by_role("heading", name="Check the import")).to_be_visible()


def test_a_practice_imports_a_spreadsheet_of_patients_and_importing_it_again_changes_nothing(
    page: sync_api.Page, server: Server, tmp_path: Path
) -> None:
    expect = sync_api.expect
    path = tmp_path / "patients.csv"
    path.write_bytes(FILE)

    page.goto(f"{server.base_url}/staff/import")
    expect(page).to_have_url(re.compile(r"/staff/login\?next=%2Fstaff%2Fimport"))
    page.get_by_label("E-mail address").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Import patients from a CSV file")).to_be_visible()
    check_accessibility(page)
    screenshot(page, f"{server.backend}-import-upload")

    upload(page, server, path)
    assert outcomes(page) == ["enrol_schedule", "enrol", "duplicate"] + ["error"] * 4
    check_accessibility(page)
    screenshot(page, f"{server.backend}-import-preview")
    rows = page.locator("#import-rows tbody tr")
    expect(rows.nth(0)).to_contain_text("Placeholder, Robin")
    expect(rows.nth(3)).to_contain_text("Bad mobile")
    expect(rows.nth(4)).to_contain_text("Bad NHS number")
    expect(rows.nth(5)).to_contain_text("Bad date")
    expect(rows.nth(6)).to_contain_text("Unknown protocol")
    assert server.api("GET", "/patients/nope").status == 404  # the API still answers

    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.get_by_role("heading", name="Import done")).to_be_visible()
    expect(page.locator("#enrolled")).to_have_text("2")
    expect(page.locator("#scheduled")).to_have_text("1")
    expect(page.locator("#failed")).to_have_text("4")
    check_accessibility(page)
    screenshot(page, f"{server.backend}-import-done")

    with page.expect_download() as info:
        page.get_by_role("button", name="Download the 4 rows not imported (CSV)").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    table = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert table[0][:3] == ["row", "reason", "problem"]
    assert [(r[0], r[1]) for r in table[1:]] == [
        ("5", "bad mobile"),
        ("6", "bad NHS number"),
        ("7", "bad date"),
        ("8", "unknown protocol"),
    ]
    assert table[1][3:] == ["Sol Madeup", "01632 960000", "", "", "", ""]

    upload(page, server, path)
    assert outcomes(page) == ["duplicate"] * 3 + ["error"] * 4
    expect(page.get_by_role("button", name="Import 0 rows")).to_be_visible()
    page.get_by_role("button", name="Import 0 rows").click()
    expect(page.locator("#enrolled")).to_have_text("0")
    expect(page.locator("#scheduled")).to_have_text("0")
