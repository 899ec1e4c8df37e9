"""The front office's patient journey in the browser, against a real server: enrol a
patient (after fixing what the form names), find them, open their page, schedule
follow-ups in one step, reschedule one and cancel another; axe on every page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from tests.e2e.browser import check_accessibility, chromium_page, screenshot, sync_api
from tests.e2e.conftest import Server


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1280) as page:
        yield page


def test_enrol_find_schedule_reschedule_and_cancel_a_patients_follow_ups(
    page: sync_api.Page, server: Server
) -> None:
    expect = sync_api.expect
    clinician = next(u for u in server.demo["users"] if u["role"] == "clinician")
    page.goto(f"{server.base_url}/staff/login")
    page.get_by_label("E-mail address").fill(clinician["email"])
    page.get_by_label("Password").fill(clinician["password"])
    page.get_by_role("button", name="Sign in").click()

    # Enrol: a wrong mobile and NHS number are named, field by field.
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="Enrol a patient").click()
    expect(page.get_by_role("heading", name="Enrol a patient")).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Full name").fill("Jules Journey")
    page.get_by_label("Mobile").fill("01632 960000")
    page.get_by_label("NHS number (optional)").fill("943 476 5910")
    page.get_by_role("button", name="Enrol patient").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary.get_by_role("link")).to_have_count(2)
    expect(summary).to_contain_text("Mobile")
    expect(summary).to_contain_text("NHS number")
    check_accessibility(page)
    screenshot(page, f"{server.backend}-patient-enrol-errors")
    page.get_by_label("Mobile").fill("07700 900871")
    page.get_by_label("NHS number (optional)").fill("943 476 5919")
    page.get_by_label("Day").fill("21")
    page.get_by_label("Month").fill("4")
    page.get_by_label("Year").fill("1980")
    page.get_by_role("button", name="Enrol patient").click()
    expect(page.locator("h1")).to_have_text("Jules Journey")
    expect(page.get_by_role("status")).to_contain_text("Jules Journey is enrolled.")

    # Find them from the list (1), open their page (2), schedule in one step (3).
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Patients").click()
    page.get_by_label("Find a patient").fill("0871")
    page.get_by_role("button", name="Search").click()
    page.locator("tr.patient-row").get_by_role("link", name="Jules Journey").click()
    expect(page.locator("h1")).to_have_text("Jules Journey")
    check_accessibility(page)
    page.get_by_label("What to send").select_option("depression_review")
    page.get_by_role("button", name="Schedule follow-ups").click()
    expect(page.get_by_role("status")).to_contain_text("Scheduled 3 follow-ups.")
    rows = page.locator("tr.follow-up")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Waiting to send")
    check_accessibility(page)
    screenshot(page, f"{server.backend}-patient-scheduled")

    # Reschedule the first to a later day: it keeps its time of day.
    new_day = date.today() + timedelta(days=30)
    while new_day.weekday() >= 5:
        new_day += timedelta(days=1)
    rows.first.get_by_role("link", name=re.compile("Reschedule")).click()
    expect(page.get_by_role("heading", name=re.compile("Reschedule"))).to_be_visible()
    check_accessibility(page)
    page.get_by_label("Day").fill(str(new_day.day))
    page.get_by_label("Month").fill(str(new_day.month))
    page.get_by_label("Year").fill(str(new_day.year))
    page.get_by_role("button", name="Reschedule").click()
    expect(page.get_by_role("status")).to_contain_text("The follow-up is rescheduled.")
    expect(page.locator("tr.follow-up").first).to_contain_text(new_day.strftime("%d %b %Y"))

    # Cancel the last one.
    rows.last.get_by_role("button", name=re.compile("^Cancel")).click()
    expect(page.get_by_role("status")).to_contain_text("The follow-up is cancelled")
    expect(page.locator('tr.follow-up[data-state="cancelled"]')).to_have_count(1)
    expect(page.locator('tr.follow-up[data-state="pending"]')).to_have_count(2)
    check_accessibility(page)

    # The practice's follow-ups show it, filtered by state.
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Follow-ups").click()
    page.get_by_label("State").select_option("cancelled")
    page.get_by_role("button", name="Show follow-ups").click()
    expect(page.locator("tr.follow-up-row").filter(has_text="Jules Journey")).to_have_count(1)
    check_accessibility(page)
    screenshot(page, f"{server.backend}-followups")
