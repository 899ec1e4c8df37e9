"""A clinician works an urgent alert in a real browser: why, could not reach, contacted.

The real server (tests/e2e/conftest.py) and Debian's Chromium through Playwright.
A patient of the test's own answers a PHQ-9 by signed webhooks and says
"More than half the days" (2) at item 9: an urgent alert. The demo clinician
opens it from the inbox, reads why in words, records "could not reach" (the
alert stays open, the attempt is in its history), then "contacted the patient"
with a note, and it closes with the outcome, the note, who and when. With the
inbox open, another patient texts a risk phrase: the new row appears without
the page reloading (htmx polls the inbox's fragment), and the header's count
follows. axe-core on each page; screenshots at desktop and phone widths.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.e2e.browser import (
    check_accessibility,
    chromium_page,
    console_errors,
    screenshot,
    sync_api,
)
from tests.e2e.conftest import Server, new_patient

expect = sync_api.expect
CLINICIAN = "dr.riley@demo.prombot.test"
PASSWORD = "demo-password"
POLL_WAIT_MS = 60_000  # a bound on waiting for the inbox's next poll, not a timing


def _phq9_item9_answered_2(server: Server, patient: dict) -> None:
    response = server.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient["id"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": "phq9", "after": "P0D"}],
        },
    )
    assert response.status == 201, response.body
    assert server.tick()["dispatch"]["started"] == 1
    for body in ["1", "1", "1", "1", "1", "1", "1", "1", "2"]:
        assert server.text(body, from_=patient["phone"]).status == 200


def _open_urgent_count(page: sync_api.Page) -> str:
    return page.locator("#open-urgent-count").inner_text().split()[0]


def test_a_clinician_reads_why_records_could_not_reach_then_contacted_and_the_inbox_updates(
    server: Server,
) -> None:
    patient = new_patient(server)
    _phq9_item9_answered_2(server, patient)
    alerts = server.api("GET", "/alerts?status=open").json()
    (alert,) = [a for a in alerts if a["patient_id"] == patient["id"]]

    with chromium_page(1280) as page, console_errors(page) as errors:
        page.goto(f"{server.base_url}/staff/alerts")
        page.get_by_label("E-mail address").fill(CLINICIAN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/staff/alerts$"))

        row = page.locator(f"tr.alert-row[data-alert-id='{alert['id']}']")
        why = (
            "PHQ-9 Q9 (Thoughts that you would be better off dead or of hurting...) "
            "answered 'More than half the days' (2)"
        )
        expect(row).to_contain_text(why)
        check_accessibility(page)
        screenshot(page, "alerts-inbox")

        row.get_by_role("link", name=re.compile("Open")).click()
        expect(page).to_have_url(re.compile(rf"/staff/alerts/{alert['id']}$"))
        expect(page.locator("#alert-why")).to_have_text(why)
        expect(page.locator("#patient-phone")).to_contain_text(patient["phone"])
        expect(page.locator("#alert-status")).to_have_text("Open")
        check_accessibility(page)

        # no outcome chosen: the error summary, and the alert stays open
        page.get_by_role("button", name="Record").click()
        expect(page.locator("#error-summary")).to_contain_text(
            "Choose what you did about this alert"
        )
        check_accessibility(page)

        page.get_by_label("Could not reach the patient").check()
        page.get_by_label("Note (optional)").fill("Rang twice, no answer; voicemail left")
        page.get_by_role("button", name="Record").click()
        expect(page.locator(".flash-info")).to_contain_text("The alert stays open")
        expect(page.locator("#alert-status")).to_have_text("Open")
        history = page.locator("#alert-history")
        expect(history).to_contain_text("Could not reach the patient: recorded by Dr Sam Riley")
        expect(history).to_contain_text("Note: Rang twice, no answer; voicemail left")
        check_accessibility(page)
        screenshot(page, "alert-could-not-reach")

        page.get_by_label("Contacted the patient").check()
        page.get_by_label("Note (optional)").fill("Spoke to them; GP appointment tomorrow")
        page.get_by_role("button", name="Record").click()
        expect(page.locator("#alert-status")).to_have_text("Acknowledged")
        expect(page.locator("#alert-outcome")).to_have_text("Contacted the patient")
        expect(page.locator("#alert-note")).to_have_text("Spoke to them; GP appointment tomorrow")
        expect(page.locator("#acknowledged-by")).to_contain_text("Dr Sam Riley")
        expect(page.locator("#acknowledge-form")).to_have_count(0)
        check_accessibility(page)
        screenshot(page, "alert-acknowledged")
        closed = server.api("GET", "/alerts?status=acknowledged").json()
        assert alert["id"] in {a["id"] for a in closed}

        # The inbox refreshes itself: a new alert appears without a reload.
        page.goto(f"{server.base_url}/staff/alerts")
        expect(row).to_have_count(0)  # acknowledged: not among the open ones
        before = int(_open_urgent_count(page))
        page.evaluate("() => { document.body.dataset.loadedOnce = 'yes'; }")
        other = new_patient(server)
        assert server.text("Some days I want to end it all", from_=other["phone"]).status == 200
        new_row = page.locator("tr.alert-row", has_text=other["name"])
        expect(new_row).to_contain_text("end it all", timeout=POLL_WAIT_MS)
        expect(new_row.locator("mark")).to_have_text("end it all")
        expect(page.locator("#open-urgent-count")).to_contain_text(
            str(before + 1), timeout=POLL_WAIT_MS
        )
        # the same document all along: the page was never reloaded
        assert page.evaluate("() => document.body.dataset.loadedOnce") == "yes"
        check_accessibility(page)
    # the one refusal was the form posted without an outcome (400, with its error summary)
    refused = f"/staff/alerts/{alert['id']}/acknowledge: Failed to load resource: the server "
    assert [e for e in errors if refused not in e or "400" not in e] == []
