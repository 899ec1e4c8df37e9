"""A clinician reads a patient's record in a real browser: trend, change, words, copy, transcript.

The real server (tests/e2e/conftest.py: ``prombot db upgrade``, ``prombot
demo``, ``prombot serve``) and Debian's Chromium through Playwright. A patient
of the test's own answers three PHQ-9s by SMS (15, then 12, then 8, some
replies in words); the demo clinician signs in, opens the patient, and sees
the trend chart (SVG with its text alternative and the table of the same
figures), "Reliable improvement, reliable recovery" (15 to 8: a fall of 7,
from caseness to below), every question with the patient's own reply and the
option it was read as, copies the record summary with the Copy button (the
clipboard then holds the block's text, SNOMED CT 720433000 first), and opens
the transcript with each text's delivery state. axe-core on the record and
the transcript; screenshots at desktop and phone widths.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.e2e.browser import check_accessibility, chromium_page, screenshot, sync_api
from tests.e2e.conftest import Server, new_patient

expect = sync_api.expect
CLINICIAN = "dr.riley@demo.prombot.test"
PASSWORD = "demo-password"

# (reply texts for items 1-9, then the difficulty question); totals 15, 12, 8
PHQ9_SERIES = [
    (["2", "2", "2", "2", "2", "2", "2", "1", "0"], 15),
    (["2", "2", "2", "1", "1", "1", "1", "2", "0"], 12),
    (["1", "several days", "1", "1", "1", "1", "1", "1", "not at all"], 8),
]


def _phq9_by_sms(server: Server, phone: str, patient_id: str, replies: list[str]) -> None:
    response = server.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": "phq9", "after": "P0D"}],
        },
    )
    assert response.status == 201, response.body
    assert server.tick()["dispatch"]["started"] == 1
    for body in [*replies, "1"]:  # then the difficulty question: "Somewhat difficult"
        assert server.text(body, from_=phone).status == 200


def test_a_clinician_sees_the_trend_the_change_the_words_copies_and_reads_the_transcript(
    server: Server,
) -> None:
    patient = new_patient(server)
    for replies, _total in PHQ9_SERIES:
        _phq9_by_sms(server, patient["phone"], patient["id"], replies)
    results = server.api("GET", f"/patients/{patient['id']}/results").json()
    assert [r["total"] for r in results] == [total for _, total in PHQ9_SERIES]

    with chromium_page(1200) as page:
        page.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=server.base_url
        )
        page.goto(f"{server.base_url}/staff/patients/{patient['id']}")
        page.get_by_label("E-mail address").fill(CLINICIAN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(rf"/staff/patients/{patient['id']}$"))

        section = page.locator("#instrument-phq9")
        # The trend: an SVG with its text alternative, and the same figures as a table.
        chart = section.locator("svg#trend-phq9")
        expect(chart).to_be_visible()
        expect(chart.locator("g.point")).to_have_count(3)
        expect(chart.locator("rect.band")).to_have_count(5)
        expect(chart.locator("desc")).to_contain_text("Baseline 15")
        expect(page.get_by_role("img", name="PHQ-9 totals over time")).to_be_visible()
        rows = section.locator("table.trend-table tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_contain_text("(baseline)")
        # The change from baseline, labelled by the published definition.
        expect(section.locator(".change-summary")).to_contain_text(
            "Reliable improvement, reliable recovery"
        )
        expect(section.locator(".change-summary")).to_contain_text("-7 points")

        # The newest result in words: the patient's own reply and what it was read as.
        newest = section.locator("div.result").first
        mood = newest.locator("tr[data-item='mood']")
        expect(mood).to_contain_text("Feeling down, depressed, or hopeless")
        expect(mood).to_contain_text("\u201cseveral days\u201d")
        expect(mood).to_contain_text("Several days (1)")
        expect(newest.locator("tr[data-item='self_harm']")).to_contain_text("Not at all (0)")
        expect(newest).to_contain_text("(not prorated)")

        # Copy to record: the button copies the block's text to the clipboard.
        block = newest.locator("textarea.record-text")
        text = block.input_value()
        assert text.startswith(
            "SNOMED CT 720433000 |Patient Health Questionnaire Nine Item score| = 8\n"
        )
        assert "Change since 12 on " in text and "No reliable change, recovery" in text
        newest.get_by_role("button", name="Copy").click()
        expect(newest.locator(".copy-status")).to_contain_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == text

        check_accessibility(page)
        # Screenshots for review at desktop and phone widths; the chart fits a phone.
        screenshot(page, "clinician-record")
        page.set_viewport_size({"width": 390, "height": 844})
        expect(chart).to_be_visible()
        check_accessibility(page)
        page.set_viewport_size({"width": 1200, "height": 900})

        # The transcript: every text, its direction and delivery state.
        page.get_by_role("link", name=re.compile("transcript")).click()
        expect(page.get_by_role("heading", name=re.compile("Conversation with"))).to_be_visible()
        inbound = page.locator("tr.transcript-inbound")
        expect(inbound).to_have_count(3 * 10)
        expect(inbound.filter(has_text="several days")).to_have_count(1)
        outbound_states = page.locator("tr.transcript-outbound").evaluate_all(
            "rows => rows.map(r => r.dataset.state)"
        )
        assert outbound_states and set(outbound_states) <= {"queued", "sent", "delivered"}
        assert "delivered" in outbound_states
        check_accessibility(page)
        screenshot(page, "clinician-transcript")
