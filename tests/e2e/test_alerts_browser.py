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
# The inbox and the header's count poll every 2 s here (10 s and 30 s by default), so the
# tests wait for a poll without waiting out production's intervals.
SERVER_ENV = {"STAFF_INBOX_POLL_SECONDS": "2", "STAFF_COUNT_POLL_SECONDS": "2"}


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
        expect(page.locator("#last-scores")).to_be_visible()
        expect(page.get_by_text("Reason", exact=True)).to_have_count(0)  # the why line says it
        expect(page.locator("#alert-outcomes")).to_have_text("Nothing recorded yet.")
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
        done = page.locator("#alert-outcomes tbody tr")
        expect(done).to_have_count(2)
        expect(done.nth(0)).to_contain_text("Dr Sam Riley")
        expect(done.nth(0)).to_contain_text("Could not reach the patient (the alert stayed open)")
        expect(done.nth(0)).to_contain_text("Rang twice, no answer; voicemail left")
        expect(done.nth(1)).to_contain_text("Contacted the patient")
        expect(done.nth(1)).to_contain_text("Spoke to them; GP appointment tomorrow")
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


def _tab_to(page: sync_api.Page, element_id: str, limit: int = 80) -> None:
    """Press Tab until the element has the focus (as a keyboard user moves through a page)."""
    for _ in range(limit):
        if page.evaluate("() => document.activeElement && document.activeElement.id") == (
            element_id
        ):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} was not reached with Tab")


def _focused_id(page: sync_api.Page) -> str:
    return page.evaluate("() => document.activeElement.id")


def test_acknowledging_by_keyboard_alone_and_a_poll_after_sign_out_goes_to_sign_in(
    server: Server,
) -> None:
    """No mouse: Tab to the outcomes, arrow to one, Tab to the note, Enter to record. Then
    the session ends while the inbox is open: its next poll takes the page to sign-in
    (HX-Redirect) instead of swapping the sign-in page into the table."""
    patient = new_patient(server)
    assert server.text("Some days I want to end it all", from_=patient["phone"]).status == 200
    alerts = server.api("GET", "/alerts?status=open").json()
    (alert,) = [a for a in alerts if a["patient_id"] == patient["id"]]

    with chromium_page(1280) as page:
        page.goto(f"{server.base_url}/staff/alerts/{alert['id']}")
        page.get_by_label("E-mail address").fill(CLINICIAN)
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(rf"/staff/alerts/{alert['id']}$"))

        _tab_to(page, "outcome-0")  # into the radio group: its first choice
        expect(page.locator("#outcome-0")).to_be_focused()
        page.keyboard.press("ArrowDown")  # arrows move and choose within the group
        assert _focused_id(page) == "outcome-1"
        expect(page.get_by_label("Safety plan in place")).to_be_checked()
        page.keyboard.press("Tab")
        assert _focused_id(page) == "note"
        page.keyboard.type("Crisis line given; review Friday")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Record")).to_be_focused()
        page.keyboard.press("Enter")

        expect(page.locator("#alert-status")).to_have_text("Acknowledged")
        expect(page.locator("#alert-outcome")).to_have_text("Safety plan in place")
        expect(page.locator("#alert-outcomes tbody tr")).to_contain_text(
            "Crisis line given; review Friday"
        )
        check_accessibility(page)
        screenshot(page, "alert-acknowledged-by-keyboard")
        (acknowledged,) = [
            a
            for a in server.api("GET", "/alerts?status=acknowledged").json()
            if a["id"] == alert["id"]
        ]
        assert (acknowledged["outcome"], acknowledged["outcome_note"]) == (
            "safety_plan",
            "Crisis line given; review Friday",
        )

        # The session ends (the cookie is gone) while the inbox polls.
        page.goto(f"{server.base_url}/staff/alerts?state=all")
        expect(page.locator("#alert-inbox, table").first).to_be_visible()
        page.context.clear_cookies()
        expect(page).to_have_url(
            re.compile(r"/staff/login\?next=/staff/alerts\?state%3Dall$"), timeout=POLL_WAIT_MS
        )
        expect(page.get_by_role("heading", name=re.compile("Sign in"))).to_be_visible()
        expect(page.locator("table tr.alert-row")).to_have_count(0)
        page.get_by_label("E-mail address").fill(CLINICIAN)
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/staff/alerts\?state=all$"))
