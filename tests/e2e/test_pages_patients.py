"""Finding a patient in the browser, as reception would: from the header to the patient,
searching by name and by the end of the mobile, without JavaScript or with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.browser import check_accessibility, chromium_page, screenshot, sync_api
from tests.e2e.conftest import Server, new_patient


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1280) as page:
        yield page


def test_staff_find_a_patient_by_name_or_the_end_of_their_mobile(
    page: sync_api.Page, server: Server
) -> None:
    expect = sync_api.expect
    patient = new_patient(server, nhs_number="9434765919")
    clinician = next(u for u in server.demo["users"] if u["role"] == "clinician")
    page.goto(f"{server.base_url}/staff/login")
    page.get_by_label("E-mail address").fill(clinician["email"])
    page.get_by_label("Password").fill(clinician["password"])
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Patients").click()
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    page.get_by_label("Find a patient").fill(patient["name"].split()[0].lower())
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tr.patient-row")
    expect(rows.filter(has_text=patient["name"])).to_have_count(1)
    check_accessibility(page)
    screenshot(page, f"{server.backend}-patients-search")

    page.get_by_label("Find a patient").fill(patient["phone"][-4:])
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(patient["name"])
    rows.get_by_role("link", name=patient["name"]).click()
    expect(page.locator("h1")).to_have_text(patient["name"])
