"""The practice outcomes report in a real browser, against the real server.

The server (tests/e2e/conftest.py: ``prombot db upgrade``, ``prombot demo``,
``prombot serve``) gets a known history of invitations and alerts written
straight into its database. The demo clinician signs in in Debian's Chromium,
opens Reports, narrows it to January 2026 with the form (no JavaScript of
ours involved), sees the figures for that month, and downloads the CSV, which
has the same figures and names no patient. A wrong date gets an error summary.
axe-core on the report and on its error summary (no serious or critical
violations); screenshots of both at desktop and phone widths under
build/screenshots/.
"""

from __future__ import annotations

import csv
from pathlib import Path

from bot.store.db import make_engine, transaction
from bot.store.models import Practice
from tests.e2e.browser import check_accessibility, chromium_page, console_errors, screenshot
from tests.e2e.conftest import Server
from tests.service import outcome_history

CLINICIAN = "dr.riley@demo.prombot.test"
PASSWORD = "demo-password"


def add_history(server: Server) -> outcome_history.History:
    engine = make_engine(server.env["DATABASE_URL"])
    try:
        with transaction(engine) as session:
            practice = session.get(Practice, server.demo["practice_id"])
            assert practice is not None
            return outcome_history.reach_and_safety(session, practice, 600)
    finally:
        engine.dispose()


def test_a_clinician_filters_the_report_to_a_month_and_downloads_its_csv(
    server: Server, tmp_path: Path
) -> None:
    history = add_history(server)
    with chromium_page(1280) as page, console_errors(page) as errors:
        page.goto(f"{server.base_url}/staff/reports")
        # signed out: to the sign-in page, and back to the report after
        page.get_by_label("E-mail address").fill(CLINICIAN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Practice outcomes report").wait_for()
        assert page.url.startswith(f"{server.base_url}/staff/reports")

        page.get_by_label("From").fill("2026-01-01")
        page.get_by_label("To (inclusive)").fill("2026-01-31")
        page.get_by_role("button", name="Show report").click()
        page.get_by_text("Showing 1 January 2026 to 31 January 2026").wait_for()
        assert "from=2026-01-01" in page.url and "to=2026-01-31" in page.url

        reach = page.locator("#reach-table")
        assert reach.get_by_role("row", name="Invitations due").inner_text().split()[-1] == "5"
        urgent = page.locator('#safety-table tr[data-severity="urgent"]')
        assert urgent.locator("td").first.inner_text() == "2"
        chart = page.get_by_role("img", name="Alerts raised in the period, by severity")
        assert chart.count() == 1
        check_accessibility(page)
        screenshot(page, "reports")

        with page.expect_download() as info:
            page.get_by_role("link", name="Download these figures (CSV)").click()
        download = info.value
        assert download.suggested_filename == "outcomes-2026-01-01-to-2026-01-31.csv"
        saved = tmp_path / "report.csv"
        download.save_as(saved)
        text = saved.read_text(encoding="utf-8")
        rows = {(s, g, m): v for s, g, m, v in list(csv.reader(text.splitlines()))[1:]}
        assert rows[("reach", "all", "due")] == "5"
        assert rows[("safety", "urgent", "raised")] == "2"
        assert rows[("safety", "all", "median_minutes_to_acknowledge")] == "75.0"
        for person in history.patients:
            assert person.name not in text and person.phone not in text and person.id not in text

        page.get_by_label("From").fill("2026-02-01")
        page.get_by_label("To (inclusive)").fill("2026-01-01")
        page.get_by_role("button", name="Show report").click()
        summary = page.locator("#error-summary")
        summary.get_by_text("There is a problem").wait_for()
        check_accessibility(page)
        screenshot(page, "reports-error")
        summary.get_by_role("link", name="The start date must be the same as or before").click()
        assert page.url.endswith("#from")
        assert page.get_by_label("From").input_value() == "2026-02-01"
    # the one refusal was the wrong date range (400, with its error summary)
    assert [e for e in errors if "/staff/reports" not in e or "400" not in e] == []
