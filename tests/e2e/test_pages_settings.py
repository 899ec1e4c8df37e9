"""The settings pages in Debian's Chromium, as a practice manager would use them.

Against the real server (``tests/e2e/conftest.py``; SQLite, and PostgreSQL when
TEST_DATABASE_URL is set): the demo admin changes the send window, adds a
clinician and reads their one-time password, signs out; the clinician signs in
with it, must choose a password of their own, and reaches the alerts page.
axe-core finds no serious or critical problem on any settings page, with and
without errors shown; screenshots land in build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.browser import (
    check_accessibility,
    chromium_page,
    console_errors,
    screenshot,
    sync_api,
)
from tests.e2e.conftest import Server

CLINICIAN_EMAIL = "dr.okafor@demo.prombot.test"
CLINICIAN_PASSWORD = "kestrel orchard lanterns"


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1280) as page:
        yield page


def sign_in(page: sync_api.Page, server: Server, email: str, password: str) -> None:
    page.goto(f"{server.base_url}/staff/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def checked(page: sync_api.Page, name: str) -> None:
    check_accessibility(page)
    screenshot(page, name)


def test_an_admin_changes_the_send_window_and_adds_a_clinician_who_then_signs_in(
    page: sync_api.Page, server: Server
) -> None:
    expect = sync_api.expect
    admin = next(u for u in server.demo["users"] if u["role"] == "admin")
    with console_errors(page) as errors:
        sign_in(page, server, admin["email"], admin["password"])
        page.get_by_role("link", name="Settings").first.click()
        expect(page).to_have_url(f"{server.base_url}/staff/settings")
        expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
        checked(page, "settings")

        # A window that closes before it opens is refused, by its field and in the summary.
        page.get_by_label("Send window start").fill("18:00")
        page.get_by_label("Send window end").fill("08:00")
        page.get_by_role("button", name="Save settings").click()
        summary = page.locator(".nhsuk-error-summary")
        expect(summary).to_contain_text("must be before")
        expect(page.locator("#send_window_end-error")).to_contain_text("must be before")
        checked(page, "settings-error")
        summary.get_by_role("link").first.click()
        expect(page.get_by_label("Send window end")).to_be_focused()

        page.get_by_label("Send window start").fill("08:30")
        page.get_by_label("Send window end").fill("18:30")
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status").first).to_contain_text("settings have been saved")
        expect(page.get_by_label("Send window start")).to_have_value("08:30")
        expect(page.get_by_label("Send window end")).to_have_value("18:30")

        # Protocols: the list and a new protocol's form.
        page.get_by_role("link", name="Protocols").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Protocols")
        checked(page, "settings-protocols")
        page.get_by_role("button", name="Add a protocol").click()
        page.get_by_label("Name").fill("low_mood_review")
        page.get_by_label("Title").fill("Low mood review (PHQ-9 at 3 weeks)")
        page.get_by_label("Questionnaire, row 1").select_option("phq9")
        page.get_by_label("How long after the consultation, row 1").fill("3")
        page.get_by_label("How long after the consultation, row 2").fill("soon")
        page.get_by_role("button", name="Save protocol").click()
        expect(page.locator("#amount-1-error")).to_contain_text("Row 2")
        checked(page, "settings-protocol-error")
        page.get_by_label("How long after the consultation, row 2").fill("")
        page.get_by_role("button", name="Save protocol").click()
        expect(page.locator("#protocol-low_mood_review")).to_contain_text("3 weeks after")

        # Staff: add a clinician and read the one-time password shown once.
        page.goto(f"{server.base_url}/staff/settings/staff")
        checked(page, "settings-staff")
        page.get_by_role("button", name="Add a member of staff").click()
        page.get_by_role("button", name="Add member").click()
        expect(page.locator(".nhsuk-error-summary")).to_contain_text("Name is required")
        checked(page, "settings-staff-new-error")
        page.get_by_label("Full name").fill("Dr Ade Okafor")
        page.get_by_label("E-mail address").fill(CLINICIAN_EMAIL)
        page.get_by_label("Role").select_option("clinician")
        page.get_by_label("Mobile (optional)").fill("07700 900077")
        page.get_by_label("On duty").check()
        page.get_by_role("button", name="Add member").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Dr Ade Okafor has been added")
        one_time = page.locator("#one-time-password").inner_text()
        assert len(one_time) >= 12
        checked(page, "settings-staff-added")
        page.get_by_role("link", name="Back to the staff list").click()
        row = page.locator(".staff-member", has_text="Dr Ade Okafor")
        expect(row).to_contain_text("Temporary password")
        expect(row).to_contain_text("+447700900077")
        row.get_by_role("link", name="Change").click()
        checked(page, "settings-staff-edit")
        page.go_back()
        row.get_by_role("link", name="Deactivate").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Deactivate Dr Ade Okafor?")
        checked(page, "settings-staff-deactivate")
        page.get_by_role("link", name="Keep them").click()

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

        # The clinician signs in with the one-time password and must choose their own.
        sign_in(page, server, CLINICIAN_EMAIL, one_time)
        expect(page).to_have_url(f"{server.base_url}/staff/password")
        page.get_by_label("Current password").fill(one_time)
        page.get_by_label("New password", exact=True).fill(CLINICIAN_PASSWORD)
        page.get_by_label("New password again").fill(CLINICIAN_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page).to_have_url(f"{server.base_url}/staff/alerts")
        expect(page.locator("#signed-in-user")).to_contain_text("Dr Ade Okafor")
        # A clinician has no settings: no link, and the page says no.
        expect(page.get_by_role("link", name="Settings")).to_have_count(0)
        response = page.goto(f"{server.base_url}/staff/settings")
        assert response is not None and response.status == 403
    # (a form refused with 400 and the 403 page are logged as failed loads: expected)
    assert [e for e in errors if "Failed to load resource" not in e] == []
