"""Every staff page in Debian's Chromium: accessible (axe-core), within its content
security policy, screenshotted at desktop and phone widths, and usable by keyboard.

Screenshots land in build/screenshots/ (not committed) for a reviewer. The pages
are whatever exists: the fixed ones below plus every link in the header's
navigation, so a new page in the navigation is checked without a change here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.browser import (
    check_accessibility,
    chromium_page,
    console_errors,
    screenshot,
    sync_api,
)
from tests.e2e.conftest import Server, new_patient

RISK_TEXT = "I just want to end it all"


def _user(server: Server, role: str) -> dict[str, str]:
    return next(u for u in server.demo["users"] if u["role"] == role)


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1280) as page:
        yield page


def _sign_in(page: sync_api.Page, server: Server, user: dict[str, str]) -> None:
    page.goto(f"{server.base_url}/staff/login")
    page.get_by_label("E-mail address").fill(user["email"])
    page.get_by_label("Password").fill(user["password"])
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#signed-in-user")).to_contain_text(user["name"])


def _check(page: sync_api.Page, name: str) -> None:
    check_accessibility(page)
    screenshot(page, name)


def test_every_staff_page_is_accessible_and_keeps_to_its_content_security_policy(
    page: sync_api.Page, server: Server
) -> None:
    expect = sync_api.expect
    patient = new_patient(server, nhs_number="9434765919")
    assert server.text(RISK_TEXT, from_=patient["phone"]).status == 200
    admin = _user(server, "admin")
    with console_errors(page) as errors:
        page.goto(f"{server.base_url}/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        _check(page, f"{server.backend}-sign-in")
        page.get_by_role("button", name="Sign in").click()  # empty: the error summary
        expect(page.locator(".nhsuk-error-summary")).to_contain_text("Enter your e-mail address")
        _check(page, f"{server.backend}-sign-in-errors")

        _sign_in(page, server, admin)
        expect(page).to_have_url(f"{server.base_url}/staff/alerts")
        expect(page.locator("#open-urgent-count")).to_contain_text(re.compile(r"^[1-9]"))
        _check(page, f"{server.backend}-alerts")

        page.locator("tr.alert-row").first.get_by_role("link").click()
        expect(page.get_by_role("button", name="Record")).to_be_visible()
        _check(page, f"{server.backend}-alert")

        page.get_by_role("link", name="See this patient's results").click()
        expect(page.locator("h1")).to_have_text(patient["name"])
        _check(page, f"{server.backend}-patient")

        for link in page.locator("#staff-navigation a").all():
            href = link.get_attribute("href") or ""
            page.goto(server.base_url + href)
            assert page.url.startswith(server.base_url + href)
            _check(page, f"{server.backend}-nav{href.replace('/', '-')}")

        missing = f"{server.base_url}/staff/alerts/0123456789abcdef0123456789abcdef"
        page.goto(missing)
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        _check(page, f"{server.backend}-not-found")

        page.goto(f"{server.base_url}/staff/start")
        _check(page, f"{server.backend}-start")

        page.goto(f"{server.base_url}/staff/logout")
        _check(page, f"{server.backend}-sign-out")
        page.get_by_role("main").get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # Nothing refused by the content security policy, no script errors, no missing file:
    # only the 404 asked for.
    assert [e for e in errors if not e.startswith(f"{missing}: Failed to load resource")] == []


def test_signing_in_with_the_keyboard_alone(page: sync_api.Page, server: Server) -> None:
    expect = sync_api.expect
    clinician = _user(server, "clinician")
    page.goto(f"{server.base_url}/staff/login")

    def focused() -> str:
        return page.evaluate(
            "() => document.activeElement.id || document.activeElement.textContent.trim()"
        )

    page.keyboard.press("Tab")
    assert focused() == "Skip to main content"  # the first stop, as on every NHS.UK page
    for _ in range(10):
        if focused() == "email":
            break
        page.keyboard.press("Tab")
    assert focused() == "email"
    page.keyboard.type(clinician["email"])
    page.keyboard.press("Tab")
    assert focused() == "password"
    page.keyboard.type(clinician["password"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.base_url}/staff/alerts")
    expect(page.get_by_role("heading", name="Open alerts")).to_be_visible()

    # Signing out is a keyboard stop too: Tab to it from the top, then Enter.
    for _ in range(15):
        page.keyboard.press("Tab")
        if focused() == "Sign out":
            break
    assert focused() == "Sign out"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
