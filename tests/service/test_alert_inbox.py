"""The alert inbox and acknowledging with an outcome, through Flask's test client.

On SQLite and PostgreSQL. An acknowledgement needs an outcome (an error summary
otherwise) and may carry a note; both are stored, shown in the alert's history
and audited. "Could not reach" records the attempt but keeps the alert open,
and the escalation job (driven with the test clock, as the scheduler drives it)
keeps escalating it. The inbox lists urgent first, then the oldest; it filters
by state and severity with a plain GET form, and its rows and the header's
count come as fragments for htmx to poll, under the same role guard.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.alert_notices import escalate_due, notify_due
from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, AlertAction, AuditEvent, Patient, StaffUser
from tests.service.alerting import (
    STAFF_PASSWORD,
    Mailbox,
    add_alert,
    add_staff,
    other_practice,
    raise_urgent,
    smtp_server,
)
from tests.service.conftest import Clock
from tests.service.test_staff_views import csrf_token, sign_in, staff_id
from tests.support import use_settings

RILEY = "dr.riley@demo.prombot.test"
NOTHING = {"alerts": 0, "sent": 0, "failed": 0}


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Mailbox]:
    with smtp_server() as box:
        app.config["SMTP_URL"] = box.url
        yield box


@pytest.fixture
def alex(demo: Demo) -> Patient:
    return next(p for p in demo.patients if p.name == "Alex Example")


@pytest.fixture
def signed_in(client: FlaskClient, demo: Demo) -> FlaskClient:
    assert sign_in(client).status_code == 302
    return client


def acknowledge(client: FlaskClient, alert_id: str, **fields: str):
    page = client.get(f"/staff/alerts/{alert_id}")
    return client.post(
        f"/staff/alerts/{alert_id}/acknowledge",
        data={"csrf_token": csrf_token(page.text), **fields},
    )


def get_alert(runtime: Runtime, alert_id: str) -> Alert:
    with transaction(runtime.engine, read_only=True) as session:
        return session.get(Alert, alert_id)


def audit_of(runtime: Runtime, alert_id: str) -> list[tuple[str, str]]:
    with transaction(runtime.engine, read_only=True) as session:
        events = session.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_id == alert_id)
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        ).all()
        return [(e.action, e.actor) for e in events]


def listed(html: str) -> list[str]:
    return re.findall(r'data-alert-id="([0-9a-f]{32})"', html)


# -- acknowledging with an outcome ---------------------------------------------------------


def test_acknowledging_without_an_outcome_shows_an_error_summary_and_changes_nothing(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    response = acknowledge(signed_in, alert_id, note="Left a voicemail")
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert '<a href="#outcome-0">Choose what you did about this alert</a>' in response.text
    assert "<title>Error: Alert" in response.text
    assert "Left a voicemail</textarea>" in response.text  # what was typed is kept
    alert = get_alert(runtime, alert_id)
    assert (alert.status, alert.outcome) == ("open", None)
    assert [a for a, _ in audit_of(runtime, alert_id) if a.startswith("alert.outcome")] == []


def test_the_outcome_and_note_are_stored_shown_in_the_history_and_audited(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    clock.advance(minutes=4)
    note = "Spoke to Alex; crisis line given.\r\nReview on Friday."
    response = acknowledge(signed_in, alert_id, outcome="safety_plan", note=note)
    assert response.status_code == 302
    alert = get_alert(runtime, alert_id)
    riley = f"user:{staff_id(runtime, RILEY)}"
    assert (alert.status, alert.outcome, alert.acknowledged_by) == (
        "acknowledged",
        "safety_plan",
        riley,
    )
    assert alert.outcome_note == "Spoke to Alex; crisis line given.\nReview on Friday."
    assert alert.acknowledged_at == clock.now
    assert {("alert.outcome.safety_plan", riley), ("alert.acknowledged", riley)} <= set(
        audit_of(runtime, alert_id)
    )
    page = signed_in.get(f"/staff/alerts/{alert_id}").text
    assert re.search(r'id="alert-outcome">\s*Safety plan in place', page)
    assert "Spoke to Alex; crisis line given." in page
    recorded = page.index("Safety plan in place: recorded by Dr Sam Riley.")
    assert recorded < page.index("Acknowledged by Dr Sam Riley.")  # what was done, then closed
    assert 'class="staff-patient-words history-note">Note: Spoke to Alex' in page
    assert 'id="acknowledge-form"' not in page  # nothing left to acknowledge
    inbox = signed_in.get("/staff/alerts?state=acknowledged").text
    assert alert_id in inbox and "Safety plan in place" in inbox


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("call back \u202eyadirf", "Remove the control characters or direction marks"),
        ("nul\x00byte", "Remove the control characters or direction marks"),
        ("x" * 1001, "Keep the note to 1000 characters or fewer"),
    ],
    ids=["bidirectional override", "NUL", "too long"],
)
def test_a_hostile_or_overlong_note_is_refused(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock, note: str, message: str
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    response = acknowledge(signed_in, alert_id, outcome="contacted", note=note)
    assert response.status_code == 400
    assert f'<a href="#note">{message}' in response.text
    assert get_alert(runtime, alert_id).status == "open"
    with transaction(runtime.engine, read_only=True) as session:
        assert session.exec(select(AlertAction)).all() == []


def test_could_not_reach_keeps_the_alert_open_and_its_escalation_running(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock, mailbox: Mailbox
) -> None:
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)
    notify_due(runtime, raised)
    assert escalate_due(runtime, raised) == NOTHING

    clock.advance(minutes=10)
    response = acknowledge(signed_in, alert_id, outcome="could_not_reach", note="No answer")
    assert response.status_code == 302
    page = signed_in.get(f"/staff/alerts/{alert_id}").text
    assert "Attempt recorded. The alert stays open and escalation continues." in page
    assert 'id="alert-status" class="status-open"' in page
    assert "Could not reach the patient: recorded by Dr Sam Riley. The alert stays open." in page
    assert "Note: No answer" in page
    alert = get_alert(runtime, alert_id)
    assert (alert.status, alert.acknowledged_at, alert.outcome) == ("open", None, None)
    riley = f"user:{staff_id(runtime, RILEY)}"
    assert ("alert.outcome.could_not_reach", riley) in audit_of(runtime, alert_id)
    assert ("alert.acknowledged", riley) not in audit_of(runtime, alert_id)

    # the scheduler's next pass at 30 minutes escalates it as if nobody had tried
    assert escalate_due(runtime, raised + timedelta(minutes=30))["alerts"] == 1
    assert get_alert(runtime, alert_id).escalations == 1

    clock.advance(minutes=25)
    acknowledge(signed_in, alert_id, outcome="contacted", note="Reached on the second try")
    alert = get_alert(runtime, alert_id)
    assert (alert.status, alert.outcome) == ("acknowledged", "contacted")
    assert escalate_due(runtime, raised + timedelta(minutes=60)) == NOTHING
    with transaction(runtime.engine, read_only=True) as session:
        actions = session.exec(select(AlertAction).order_by(col(AlertAction.at))).all()
        assert [(a.outcome, a.note) for a in actions] == [
            ("could_not_reach", "No answer"),
            ("contacted", "Reached on the second try"),
        ]


def api_acknowledge(client: FlaskClient, headers, alert_id: str, body=None):
    return client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=headers, json=body)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (None, "body", None),  # no body at all
        ({}, "outcome", "outcome is required"),
        ({"note": "Called"}, "outcome", "outcome is required"),
        (
            {"outcome": "phoned"},
            "outcome",
            "outcome must be one of contacted, safety_plan, referred, no_action, could_not_reach",
        ),
        ({"outcome": ["contacted"]}, "outcome", None),
        ({"outcome": "contacted", "note": 5}, "note", "note must be text"),
        # the staff page's note rule, word for word
        (
            {"outcome": "contacted", "note": "call back \u202eyadirf"},
            "note",
            "Remove the control characters or direction marks from the note",
        ),
        (
            {"outcome": "contacted", "note": "a lone\rreturn"},
            "note",
            "Remove the control characters or direction marks from the note",
        ),
        (
            {"outcome": "contacted", "note": "x" * 1001},
            "note",
            "Keep the note to 1000 characters or fewer",
        ),
        ({"outcome": "contacted", "extra": 1}, "extra", "extra is not a field of this request"),
    ],
    ids=[
        "no body",
        "empty",
        "note only",
        "unknown outcome",
        "outcome a list",
        "note not text",
        "bidirectional override",
        "lone CR",
        "too long",
        "unknown field",
    ],
)
def test_the_api_needs_an_outcome_and_keeps_the_pages_note_rules(
    client: FlaskClient,
    runtime: Runtime,
    alex: Patient,
    clock: Clock,
    api_headers,
    body,
    field: str,
    message: str | None,
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    response = api_acknowledge(client, api_headers, alert_id, body)
    assert 400 <= response.status_code < 500
    assert response.json["field"] == field
    if message is not None:
        assert (response.status_code, response.json["error"]) == (422, message)
    alert = get_alert(runtime, alert_id)
    assert (alert.status, alert.outcome) == ("open", None)
    with transaction(runtime.engine, read_only=True) as session:
        assert session.exec(select(AlertAction)).all() == []


def test_the_api_records_the_outcome_and_could_not_reach_keeps_escalating(
    client: FlaskClient,
    runtime: Runtime,
    alex: Patient,
    clock: Clock,
    api_headers,
    mailbox: Mailbox,
) -> None:
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)
    notify_due(runtime, raised)
    clock.advance(minutes=10)
    tried = api_acknowledge(
        client, api_headers, alert_id, {"outcome": "could_not_reach", "note": "No answer"}
    )
    assert tried.status_code == 200
    assert (tried.json["status"], tried.json["outcome"], tried.json["acknowledged_at"]) == (
        "open",
        None,
        None,
    )
    assert escalate_due(runtime, raised + timedelta(minutes=30))["alerts"] == 1  # still escalating
    assert get_alert(runtime, alert_id).escalations == 1

    clock.advance(minutes=25)
    note = "  Reached on the mobile.\r\nSafety plan agreed.  "
    done = api_acknowledge(client, api_headers, alert_id, {"outcome": "safety_plan", "note": note})
    assert done.status_code == 200
    assert (done.json["status"], done.json["outcome"], done.json["outcome_note"]) == (
        "acknowledged",
        "safety_plan",
        "Reached on the mobile.\nSafety plan agreed.",  # kept as the page keeps it
    )
    assert done.json["acknowledged_by"].startswith("token:")
    assert escalate_due(runtime, raised + timedelta(minutes=60)) == NOTHING
    again = api_acknowledge(client, api_headers, alert_id, {"outcome": "no_action"})
    assert again.json == done.json  # the first outcome stands
    with transaction(runtime.engine, read_only=True) as session:
        actions = session.exec(select(AlertAction).order_by(col(AlertAction.at))).all()
        assert [(a.outcome, a.note, a.actor) for a in actions] == [
            ("could_not_reach", "No answer", done.json["acknowledged_by"]),
            (
                "safety_plan",
                "Reached on the mobile.\nSafety plan agreed.",
                done.json["acknowledged_by"],
            ),
        ]
    audited = [
        a for a, _ in audit_of(runtime, alert_id) if a.startswith(("alert.outcome", "alert.ack"))
    ]
    assert audited[0] == "alert.outcome.could_not_reach"  # the last two share an instant
    assert sorted(audited[1:]) == ["alert.acknowledged", "alert.outcome.safety_plan"]
    # the staff page shows what the practice's system recorded, by whom
    page_rows = signed_in_page(client, alert_id)
    assert "Safety plan in place" in page_rows and "the practice&#39;s system (API)" in page_rows


def signed_in_page(client: FlaskClient, alert_id: str) -> str:
    assert sign_in(client).status_code == 302
    page = client.get(f"/staff/alerts/{alert_id}").text
    return page[page.index('id="alert-outcomes"') :]


# -- why, in words -------------------------------------------------------------------------


def test_the_page_and_the_inbox_say_why_with_the_matched_words_marked(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)  # "Some days I want to end it all"
    why = "Texted: \u201cSome days I want to <mark>end it all</mark>\u201d"
    page = signed_in.get(f"/staff/alerts/{alert_id}").text
    assert why in page
    assert f'<a href="tel:{alex.phone}">{alex.phone}</a>' in page
    assert why in signed_in.get("/staff/alerts").text
    assert why in signed_in.get("/staff/alerts/fragment").text


# -- the inbox -----------------------------------------------------------------------------


def test_the_inbox_lists_urgent_first_then_the_oldest(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    routine_old = add_alert(runtime, alex, clock.now, flag="severe_score", severity="routine")
    clock.advance(minutes=1)
    urgent_old = add_alert(runtime, alex, clock.now, flag="self_harm_risk", severity="urgent")
    clock.advance(minutes=1)
    information = add_alert(runtime, alex, clock.now, flag="severe_score", severity="information")
    clock.advance(minutes=1)
    urgent_new = add_alert(runtime, alex, clock.now, flag="self_harm_risk", severity="urgent")
    clock.advance(minutes=1)
    routine_new = add_alert(runtime, alex, clock.now, flag="severe_score", severity="routine")
    expected = [urgent_old, urgent_new, routine_old, routine_new, information]
    assert listed(signed_in.get("/staff/alerts").text) == expected
    assert listed(signed_in.get("/staff/alerts/fragment").text) == expected


def test_the_inbox_filters_by_state_and_severity(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    urgent = add_alert(runtime, alex, clock.now, flag="self_harm_risk", severity="urgent")
    routine = add_alert(runtime, alex, clock.now, flag="severe_score", severity="routine")
    done = add_alert(runtime, alex, clock.now, flag="severe_score", severity="routine")
    acknowledge(signed_in, done, outcome="no_action")

    def shown(query: str) -> set[str]:
        page = signed_in.get(f"/staff/alerts{query}")
        fragment = signed_in.get(f"/staff/alerts/fragment{query}")
        assert page.status_code == fragment.status_code == 200
        assert set(listed(page.text)) == set(listed(fragment.text))
        return set(listed(page.text))

    assert shown("") == {urgent, routine}  # open, any severity
    assert shown("?state=acknowledged") == {done}
    assert shown("?state=all") == {urgent, routine, done}
    assert shown("?state=all&severity=routine") == {routine, done}
    assert shown("?state=open&severity=urgent") == {urgent}
    assert shown("?state=open&severity=information") == set()
    assert shown("?state=nonsense&severity=%3Cscript%3E") == {urgent, routine}
    page = signed_in.get("/staff/alerts?state=acknowledged&severity=routine").text
    assert '<option value="acknowledged" selected>' in page
    assert '<option value="routine" selected>' in page
    # the poll keeps the filters
    assert 'hx-get="/staff/alerts/fragment?state=acknowledged&amp;severity=routine"' in page
    assert 'hx-trigger="every 10s"' in page
    empty = signed_in.get("/staff/alerts?severity=information").text
    assert "No open information alerts for Demo Surgery." in empty


def test_the_fragments_are_only_rows_and_the_count(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    fragment = signed_in.get("/staff/alerts/fragment")
    assert "<html" not in fragment.text and "No open alerts" in fragment.text
    assert fragment.headers["Cache-Control"] == "no-store"
    count = signed_in.get("/staff/alerts/count").text
    assert re.search(r'id="open-urgent-count">0<', count)
    alert_id = raise_urgent(runtime, alex, clock.now)
    assert alert_id in listed(signed_in.get("/staff/alerts/fragment").text)
    count = signed_in.get("/staff/alerts/count").text
    assert re.search(r'id="open-urgent-count">1<', count)
    assert 'hx-get="/staff/alerts/count"' in count  # it keeps polling after each swap


HTMX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/staff/alerts?state=all"}


@pytest.mark.parametrize("path", ["/staff/alerts/fragment", "/staff/alerts/count"])
def test_a_poll_after_the_session_ended_sends_the_page_to_sign_in_not_into_the_table(
    signed_in: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock, path: str
) -> None:
    """htmx would swap a redirected sign-in page into the inbox; HX-Redirect moves the page."""
    raise_urgent(runtime, alex, clock.now)
    assert signed_in.get(path, headers=HTMX).status_code == 200
    with transaction(runtime.engine) as session:  # the session ends: a new password
        user = session.exec(select(StaffUser).where(StaffUser.email == RILEY)).one()
        user.password_hash = "scrypt:changed-elsewhere"

    polled = signed_in.get(path, headers=HTMX)
    assert polled.status_code == 401
    assert polled.data == b""  # nothing to swap into the table
    assert polled.headers["HX-Redirect"] == "/staff/login?next=/staff/alerts?state%3Dall"
    assert polled.headers["Cache-Control"] == "no-store"
    assert "Location" not in polled.headers
    sign_in_page = signed_in.get(polled.headers["HX-Redirect"])
    assert sign_in_page.status_code == 200
    assert "Please sign in to see that page." in sign_in_page.text
    assert alex.name not in sign_in_page.text

    # without htmx (a page load, or JavaScript off) it is the ordinary redirect
    plain = signed_in.get(path)
    assert plain.status_code == 302
    assert plain.headers["Location"].startswith("/staff/login?next=")
    assert "HX-Redirect" not in plain.headers


@pytest.mark.parametrize(
    "current",
    ["https://evil.example/staff/alerts", "http://localhost/api/v1/alerts", ""],
    ids=["another site", "not a staff page", "no current page"],
)
def test_a_signed_out_poll_only_returns_to_a_staff_page_of_ours(
    client: FlaskClient, demo: Demo, current: str
) -> None:
    polled = client.get(
        "/staff/alerts/fragment", headers={"HX-Request": "true", "HX-Current-URL": current}
    )
    assert polled.status_code == 401
    assert polled.headers["HX-Redirect"] == "/staff/login"


def test_reception_is_refused_the_fragments_and_another_practice_sees_nothing_of_ours(
    app: Flask, runtime: Runtime, demo: Demo, alex: Patient, clock: Clock
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    desk = add_staff(
        runtime, demo.practice.id, clock.now, email="desk@demo.prombot.test", name="Pat Desk"
    )
    with transaction(runtime.engine) as session:
        session.get(StaffUser, desk.id).role = "reception"
    reception = app.test_client()
    assert (
        sign_in(reception, email="desk@demo.prombot.test", password=STAFF_PASSWORD).status_code
        == 302
    )
    for path in ("/staff/alerts/fragment", "/staff/alerts/count"):
        response = reception.get(path)
        assert response.status_code == 403, path
        assert alert_id not in response.text and alex.name not in response.text

    other = other_practice(runtime, clock.now)
    theirs = app.test_client()
    assert sign_in(theirs, email=other.clinician.email, password=STAFF_PASSWORD).status_code == 302
    for query in ("", "?state=all", "?state=all&severity=urgent"):
        fragment = theirs.get(f"/staff/alerts/fragment{query}")
        assert fragment.status_code == 200
        assert alert_id not in fragment.text and alex.name not in fragment.text
    assert re.search(r'id="open-urgent-count">0<', theirs.get("/staff/alerts/count").text)


# -- the alert page: why, last scores, contact number, what was done -----------------------


def test_the_alert_page_says_why_with_the_last_scores_the_number_and_what_was_done(
    signed_in: FlaskClient,
    client: FlaskClient,
    runtime: Runtime,
    alex: Patient,
    clock: Clock,
    demo: Demo,
    api_headers,
) -> None:
    from tests.service.test_api import answer_phq9

    answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, ["1"] * 8 + ["0", "1"])
    clock.advance(days=14)
    answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, ["2"] * 8 + ["2", "1"])
    with transaction(runtime.engine, read_only=True) as session:
        alert = session.exec(
            select(Alert).where(Alert.patient_id == alex.id).where(Alert.reason == "item_answer")
        ).one()
    alert_id = alert.id
    page = signed_in.get(f"/staff/alerts/{alert_id}").text
    why = re.search(r'id="alert-why">\s*(.*?)\s*</dd>', page, re.S)
    assert why is not None
    assert why.group(1) == (
        "PHQ-9 Q9 (Thoughts that you would be better off dead or of hurting...) "
        "answered &#39;More than half the days&#39; (2)"
    )
    assert "Reason" not in page and "questionnaire)" not in page  # the old row is gone
    scores = re.search(r'id="last-scores">(.*?)</dd>', page, re.S)
    assert scores is not None and "PHQ-9 18, moderately severe (" in scores.group(1)
    assert f'<a href="tel:{alex.phone}">{alex.phone}</a>' in page
    assert 'id="alert-outcomes">Nothing recorded yet.' in page

    clock.advance(minutes=5)
    acknowledge(signed_in, alert_id, outcome="could_not_reach", note="No answer; voicemail")
    first = clock.now
    clock.advance(minutes=20)
    acknowledge(signed_in, alert_id, outcome="contacted", note="Safe tonight; GP call tomorrow")
    page = signed_in.get(f"/staff/alerts/{alert_id}").text
    table = page[
        page.index('id="alert-outcomes"') : page.index(
            "</table>", page.index('id="alert-outcomes"')
        )
    ]
    rows = [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r'<tr class="nhsuk-table__row outcome-row".*?</tr>', table, re.S)
    ]
    assert rows == [
        [
            "Mon 16 Mar 2026, 10:" + f"{first.minute:02d}",
            "Dr Sam Riley",
            "Could not reach the patient (the alert stayed open)",
            "No answer; voicemail",
        ],
        [
            "Mon 16 Mar 2026, 10:" + f"{clock.now.minute:02d}",
            "Dr Sam Riley",
            "Contacted the patient",
            "Safe tonight; GP call tomorrow",
        ],
    ]


def test_the_inbox_and_the_header_count_poll_as_often_as_the_practice_set(
    app: Flask, signed_in: FlaskClient
) -> None:
    page = signed_in.get("/staff/alerts").text
    assert page.count('hx-trigger="every 10s"') == 1  # the inbox (STAFF_INBOX_POLL_SECONDS)
    assert page.count('hx-trigger="every 30s"') == 1  # the header's count
    use_settings(app, staff_inbox_poll_seconds=3, staff_count_poll_seconds=7)
    page = signed_in.get("/staff/alerts").text
    assert page.count('hx-trigger="every 3s"') == 1
    assert page.count('hx-trigger="every 7s"') == 1
    count = signed_in.get("/staff/alerts/count").text
    assert 'hx-trigger="every 7s"' in count
