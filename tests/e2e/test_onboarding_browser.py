"""Onboarding and passwords in a real browser, against the real server and the real command.

On the e2e server (``tests/e2e/conftest.py``: ``prombot db upgrade``, ``prombot
demo``, ``prombot serve``; SQLite, and PostgreSQL when TEST_DATABASE_URL is
set), ``prombot practice create ... --admin-email ...`` runs as a practice
would run it, against the server's database. In Debian's Chromium, driven by
Playwright, the new admin signs in with the one-time password it printed, is
made to choose a password of their own (a too-short one is refused, field by
field), and then reaches the staff pages. The admin resets a clinician's
password; the clinician signs in with the new one-time password, is made to
change it too, and gets in. No password reaches the server's log. axe-core
checks each page on the way (no serious or critical violations), each saved at
desktop and phone widths under build/screenshots/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.e2e.browser import (
    TIMEOUT_MS,
    check_accessibility,
    chromium_page,
    screenshot,
    sync_api,
)
from tests.e2e.conftest import Server, http

ADMIN_EMAIL = "pat.manager@harbour.prombot.test"
CLINICIAN_EMAIL = "dr.quinn@harbour.prombot.test"
ADMIN_PASSWORD = "harbour lantern porridge"
CLINICIAN_PASSWORD = "seagull umbrella biscuit"
FIRST_CLINICIAN_PASSWORD = "given by the integrator"


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1100) as page:
        yield page


def sign_in(page: sync_api.Page, server: Server, email: str, password: str) -> None:
    page.goto(f"{server.base_url}/staff/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def choose_password(page: sync_api.Page, current: str, new: str, again: str | None = None) -> None:
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("New password again").fill(new if again is None else again)
    page.get_by_role("button", name="Change password").click()


def test_a_new_practice_signs_in_with_its_one_time_password_and_resets_a_clinicians(
    page: sync_api.Page, server: Server
) -> None:
    expect = sync_api.expect
    created = server.prombot(
        "practice",
        "create",
        "--name",
        "Harbour View Surgery",
        "--sms-number",
        "+447700900980",
        "--nation",
        "SCT",
        "--admin-name",
        "Pat Manager",
        "--admin-email",
        ADMIN_EMAIL,
    )
    printed = dict(line.split(":", 1) for line in created.stdout.splitlines() if ":" in line)
    one_time = printed["Password"].split()[0]
    api_token = printed["API token"].split()[0]
    assert printed["Admin"].strip() == ADMIN_EMAIL
    assert created.stdout.count(one_time) == 1 and one_time not in created.stderr

    # The admin signs in with the printed password and must choose their own first.
    sign_in(page, server, ADMIN_EMAIL, one_time)
    expect(page).to_have_url(f"{server.base_url}/staff/password")
    expect(page.locator("#must-change")).to_contain_text("temporary password")
    check_accessibility(page)
    screenshot(page, f"{server.backend}-onboarding-must-change")
    page.goto(f"{server.base_url}/staff/alerts")
    expect(page).to_have_url(f"{server.base_url}/staff/password")

    # A password that breaks a rule is refused, in the error summary and by its field.
    choose_password(page, one_time, "too short")
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("There is a problem")
    expect(summary.get_by_role("link")).to_have_text(re.compile("at least 12 characters"))
    expect(page.locator("#new_password-error")).to_contain_text("at least 12 characters")
    summary.get_by_role("link").click()
    expect(page.get_by_label("New password", exact=True)).to_be_focused()
    check_accessibility(page)
    screenshot(page, f"{server.backend}-onboarding-password-errors")

    choose_password(page, one_time, ADMIN_PASSWORD)
    expect(page).to_have_url(f"{server.base_url}/staff/alerts")
    expect(page.get_by_role("status").first).to_contain_text("Your password has been changed")
    expect(page.locator("body")).to_contain_text("Harbour View Surgery")
    check_accessibility(page)

    # A clinician added by the practice's integrator; the admin resets their password.
    added = http(
        "POST",
        f"{server.base_url}/api/v1/staff",
        data=json.dumps(
            {
                "email": CLINICIAN_EMAIL,
                "name": "Dr Rory Quinn",
                "password": FIRST_CLINICIAN_PASSWORD,
            }
        ).encode(),
        headers={"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"},
    )
    assert added.status == 201, added.body
    clinician_id = added.json()["id"]
    page.goto(f"{server.base_url}/staff/settings/staff/{clinician_id}/password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset Dr Rory Quinn's password")
    check_accessibility(page)
    screenshot(page, f"{server.backend}-onboarding-reset")
    page.get_by_role("button", name="Reset password").click()
    reset_to = page.locator("#one-time-password").inner_text()
    assert len(reset_to) >= 12
    check_accessibility(page)  # (no screenshot: it shows a password)

    # Another practice's member is not found; the demo admin cannot see Harbour's staff.
    theirs = next(u for u in server.demo["users"] if u["role"] == "clinician")
    staff = http(
        "GET",
        f"{server.base_url}/api/v1/staff",
        headers={"Authorization": f"Bearer {server.demo['api_token']}"},
    ).json()
    their_id = next(s["id"] for s in staff if s["email"] == theirs["email"])
    response = page.goto(f"{server.base_url}/staff/settings/staff/{their_id}/password")
    assert response is not None and response.status == 404

    # The clinician, in a browser of their own: the old password no longer works.
    context = page.context.browser.new_context(viewport={"width": 420, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    clinician = context.new_page()
    try:
        sign_in(clinician, server, CLINICIAN_EMAIL, FIRST_CLINICIAN_PASSWORD)
        expect(clinician.get_by_role("alert").first).to_contain_text("do not match an account")
        sign_in(clinician, server, CLINICIAN_EMAIL, reset_to)
        expect(clinician).to_have_url(f"{server.base_url}/staff/password")
        check_accessibility(clinician)  # at a phone's width
        choose_password(clinician, reset_to, CLINICIAN_PASSWORD)
        expect(clinician).to_have_url(f"{server.base_url}/staff/alerts")
        expect(clinician.locator("body")).to_contain_text("Dr Rory Quinn")

        # A clinician cannot reset anyone's password.
        response = clinician.goto(f"{server.base_url}/staff/settings/staff/{clinician_id}/password")
        assert response is not None and response.status == 403
    finally:
        context.close()

    log = server.stderr() + "".join(server.command_stderr)
    for secret in (one_time, reset_to, ADMIN_PASSWORD, CLINICIAN_PASSWORD, "too short"):
        assert secret not in log
