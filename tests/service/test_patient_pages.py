"""The front office's patient pages (bot/web/patient_pages.py): enrol and edit a patient
with the API's rules, schedule follow-ups in one step, cancel, reschedule and send one
now, and the practice's follow-ups; every role, this practice only, on SQLite and
PostgreSQL. The clock is Monday 2 March 2026, 10:00 in London; the send window is the
default, 09:00-17:00 on weekdays."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.enrolment import create_consultation
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Conversation,
    Invitation,
    Message,
    Patient,
    Practice,
    StaffUser,
)
from tests.service.alerting import STAFF_PASSWORD, add_staff, other_practice
from tests.service.conftest import Clock
from tests.service.test_api import answer_phq9, bearer, start_now, text
from tests.service.test_clinical_record import COMPLETE
from tests.service.test_staff_views import csrf_token, sign_in

RECEPTION = "desk@demo.prombot.test"


@pytest.fixture
def desk(client: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock) -> FlaskClient:
    """Signed in as reception: everything here is theirs to do."""
    member = add_staff(runtime, demo.practice.id, clock.now, email=RECEPTION, name="Pat Desk")
    with transaction(runtime.engine) as session:
        session.get(StaffUser, member.id).role = "reception"
    assert sign_in(client, email=RECEPTION, password=STAFF_PASSWORD).status_code == 302
    return client


@pytest.fixture
def alex(demo: Demo) -> Patient:
    return next(p for p in demo.patients if p.name == "Alex Example")


def _token(client: FlaskClient, path: str = "/staff/patients/new") -> str:
    return csrf_token(client.get(path).text)


def _summary(html: str) -> list[tuple[str, str]]:
    """The error summary's links: (field id, message)."""
    box = re.search(r'<div class="nhsuk-error-summary".*?</ul>', html, re.S)
    assert box, html
    return [
        (href, re.sub(r"<[^>]+>", "", text).strip())
        for href, text in re.findall(r'<li><a href="#([^"]+)">(.*?)</a></li>', box.group(0), re.S)
    ]


def _enrol(client: FlaskClient, **fields: str):
    data = {
        "csrf_token": _token(client),
        "name": "Robin Newcome",
        "phone": "07700 900321",
        "nhs_number": "",
        "dob_day": "",
        "dob_month": "",
        "dob_year": "",
        **fields,
    }
    return client.post("/staff/patients/new", data=data)


def _user_actor(runtime: Runtime, email: str) -> str:
    with transaction(runtime.engine, read_only=True) as session:
        user = session.exec(select(StaffUser).where(StaffUser.email == email)).one()
        return f"user:{user.id}"


def _audit(runtime: Runtime, action: str, subject_id: str) -> list[str]:
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(
            select(AuditEvent.actor)
            .where(AuditEvent.action == action)
            .where(AuditEvent.subject_id == subject_id)
        ).all()
        return list(rows)


def _invitations(runtime: Runtime, patient_id: str) -> list[Invitation]:
    with transaction(runtime.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Invitation)
                .where(Invitation.patient_id == patient_id)
                .order_by(col(Invitation.due_at))
            ).all()
        )


def _schedule(client: FlaskClient, patient_id: str, **fields: str):
    page = f"/staff/patients/{patient_id}"
    data = {
        "csrf_token": _token(client, page),
        "protocol": "depression_review",
        "instrument": "phq9",
        "after_days": "14",
        "day": "2",
        "month": "3",
        "year": "2026",
        **fields,
    }
    return client.post(f"{page}/schedule", data=data)


# -- enrol ---------------------------------------------------------------------------------


def test_enrolling_shows_every_wrong_field_in_the_error_summary(desk: FlaskClient) -> None:
    response = _enrol(
        desk,
        name="",
        phone="01632 960000",  # a landline: texts to it are read aloud
        nhs_number="943 476 5910",  # fails its check digit
        dob_day="1",
        dob_month="1",
        dob_year="2099",
    )
    assert response.status_code == 400
    problems = dict(_summary(response.text))
    assert set(problems) == {"name", "phone", "nhs_number", "dob_day"}
    assert problems["phone"].startswith("Mobile ")
    assert problems["nhs_number"].startswith("NHS number ")
    assert problems["dob_day"] == "Date of birth must be today or in the past"
    assert 'id="phone-error"' in response.text and "nhsuk-input--error" in response.text
    assert "Error: Enrol a patient" in response.text


def test_enrolling_refuses_a_date_of_birth_that_is_not_a_date(desk: FlaskClient) -> None:
    response = _enrol(desk, dob_day="31", dob_month="2", dob_year="1980")
    assert response.status_code == 400
    assert _summary(response.text) == [
        ("dob_day", "Date of birth must be a real date, for example 21 4 1980")
    ]


def test_enrolling_a_patient_opens_their_page_and_is_audited(
    desk: FlaskClient, runtime: Runtime
) -> None:
    response = _enrol(desk, nhs_number="943 476 5919", dob_day="21", dob_month="4", dob_year="1980")
    assert response.status_code == 302
    patient_id = response.headers["Location"].rsplit("/", 1)[1]
    page = desk.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Robin Newcome is enrolled." in page.text
    assert "+447700900321" in page.text and "9434765919" in page.text
    assert "21 Apr 1980" in page.text
    assert _audit(runtime, "patient.created", patient_id) == [_user_actor(runtime, RECEPTION)]


def test_a_duplicate_mobile_names_the_patient_already_enrolled(
    desk: FlaskClient, alex: Patient
) -> None:
    response = _enrol(desk, phone=alex.phone)
    assert response.status_code == 400
    assert _summary(response.text) == [
        ("phone", "This mobile is already enrolled for Alex Example")
    ]
    assert f'<a href="/staff/patients/{alex.id}">Alex Example</a>' in response.text


def test_the_patients_list_links_to_enrolment(desk: FlaskClient) -> None:
    assert 'href="/staff/patients/new"' in desk.get("/staff/patients").text


# -- edit ----------------------------------------------------------------------------------


def test_editing_details_follows_the_same_rules_and_names_a_duplicate(
    desk: FlaskClient, runtime: Runtime, demo: Demo, alex: Patient
) -> None:
    bo = next(p for p in demo.patients if p.name == "Bo Sample")
    path = f"/staff/patients/{alex.id}/edit"
    form = desk.get(path)
    assert form.status_code == 200 and f'value="{alex.phone}"' in form.text
    data = {"csrf_token": csrf_token(form.text), "name": "Alex Example", "phone": alex.phone}
    wrong = desk.post(path, data={**data, "nhs_number": "1234567890"})
    assert wrong.status_code == 400
    assert [field for field, _ in _summary(wrong.text)] == ["nhs_number"]
    taken = desk.post(path, data={**data, "phone": bo.phone})
    assert taken.status_code == 400
    assert _summary(taken.text) == [("phone", "This mobile is already enrolled for Bo Sample")]
    saved = desk.post(path, data={**data, "name": "Alex Renamed", "phone": "07700 900333"})
    assert saved.status_code == 302
    with transaction(runtime.engine, read_only=True) as session:
        changed = session.get(Patient, alex.id)
        assert (changed.name, changed.phone) == ("Alex Renamed", "+447700900333")
    assert _audit(runtime, "patient.updated", alex.id) == [_user_actor(runtime, RECEPTION)]


# -- the patient page ------------------------------------------------------------------------


def test_a_patient_who_texted_stop_shows_it_and_only_they_can_opt_back_in(
    desk: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    with transaction(runtime.engine) as session:
        person = session.get(Patient, alex.id)
        person.opted_out, person.opted_out_at = True, clock.now
    page = desk.get(f"/staff/patients/{alex.id}")
    assert "Opted out of texts" in page.text
    assert "Only the patient can, by texting START" in page.text
    assert 'id="schedule-form"' not in page.text
    refused = _schedule(desk, alex.id)
    assert refused.status_code == 400
    assert "has opted out of texts" in refused.text
    assert _invitations(runtime, alex.id) == []


# -- schedule in one step ------------------------------------------------------------------


def test_the_schedule_form_is_dated_today_in_the_practice_time_zone(
    desk: FlaskClient, alex: Patient
) -> None:
    page = desk.get(f"/staff/patients/{alex.id}").text
    assert re.search(r'<input [^>]*id="day"[^>]*value="2"', page)
    assert re.search(r'<input [^>]*id="year"[^>]*value="2026"', page)
    assert '<option value="depression_review">' in page


def test_scheduling_a_protocol_in_one_step_shows_its_follow_ups_with_their_send_dates(
    desk: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    response = _schedule(desk, alex.id)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/patients/{alex.id}#follow-ups-title"
    invitations = _invitations(runtime, alex.id)
    assert [i.instrument for i in invitations] == ["phq9", "phq9", "phq9"]
    assert invitations[0].due_at.astimezone(UTC) == datetime(2026, 3, 16, 10, 0, tzinfo=UTC)
    page = desk.get(f"/staff/patients/{alex.id}").text
    assert "Scheduled 3 follow-ups." in page
    assert page.count('class="nhsuk-table__row follow-up"') == 3
    assert "Mon 16 Mar 2026, 10:00" in page  # two weeks on, inside the window
    assert "Mon 13 Apr 2026, 10:00" in page  # six weeks on: 10:00 in summer time too
    (consultation,) = re.findall(r'data-consultation="([^"]+)"', page)
    assert _audit(runtime, "consultation.created", consultation) == [
        _user_actor(runtime, RECEPTION)
    ]


def test_a_follow_up_due_at_the_weekend_shows_when_the_send_window_next_opens(
    desk: FlaskClient, runtime: Runtime, alex: Patient
) -> None:
    response = _schedule(desk, alex.id, protocol="", instrument="gad7", after_days="5")
    assert response.status_code == 302
    (invitation,) = _invitations(runtime, alex.id)
    assert invitation.due_at.astimezone(UTC) == datetime(2026, 3, 7, 10, 0, tzinfo=UTC)  # Sat
    page = desk.get(f"/staff/patients/{alex.id}").text
    assert "Mon 09 Mar 2026, 09:00" in page
    assert "Sat 07 Mar 2026" not in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"protocol": "", "after_days": ""}, "after_days", "Enter the number of days"),
        ({"protocol": "", "after_days": "99999"}, "after_days", "Enter the number of days"),
        ({"protocol": "", "after_days": "two"}, "after_days", "Enter the number of days"),
        ({"protocol": "", "instrument": "nosuch"}, "instrument", "Choose a questionnaire"),
        ({"day": "30", "month": "2"}, "day", "Consultation date must be a real date"),
        ({"protocol": "no_such_protocol"}, "protocol", "Choose a protocol"),
    ],
)
def test_scheduling_names_what_to_fix_and_schedules_nothing(
    desk: FlaskClient,
    runtime: Runtime,
    alex: Patient,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = _schedule(desk, alex.id, **fields)
    assert response.status_code == 400
    ((got_field, got_message),) = _summary(response.text)
    assert got_field == field and got_message.startswith(message), got_message
    assert _invitations(runtime, alex.id) == []


# -- per follow-up actions -----------------------------------------------------------------


def test_cancel_reschedule_and_send_now_change_one_follow_up_each_and_are_audited(
    desk: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    assert _schedule(desk, alex.id).status_code == 302
    first, second, third = _invitations(runtime, alex.id)
    token = _token(desk, f"/staff/patients/{alex.id}")
    actor = _user_actor(runtime, RECEPTION)

    cancelled = desk.post(f"/staff/followups/{first.id}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 302

    form = desk.get(f"/staff/followups/{second.id}/reschedule")
    assert form.status_code == 200 and 'value="13"' in form.text  # 13 April, as scheduled
    wrong = desk.post(
        f"/staff/followups/{second.id}/reschedule",
        data={"csrf_token": token, "day": "1", "month": "1", "year": "2020"},
    )
    assert wrong.status_code == 400
    assert _summary(wrong.text) == [("day", "New date must be today or later")]
    moved = desk.post(
        f"/staff/followups/{second.id}/reschedule",
        data={"csrf_token": token, "day": "20", "month": "4", "year": "2026"},
    )
    assert moved.status_code == 302

    sent = desk.post(f"/staff/followups/{third.id}/send-now", data={"csrf_token": token})
    assert sent.status_code == 302

    after = {i.id: i for i in _invitations(runtime, alex.id)}
    assert after[first.id].status == "cancelled"
    # 10:00 in London keeps its wall-clock time: 09:00 UTC in summer time
    assert after[second.id].due_at.astimezone(UTC) == datetime(2026, 4, 20, 9, 0, tzinfo=UTC)
    assert after[third.id].due_at.astimezone(UTC) == clock.now
    assert _audit(runtime, "invitation.cancelled", first.id) == [actor]
    assert _audit(runtime, "invitation.rescheduled", second.id) == [actor]
    assert _audit(runtime, "invitation.rescheduled", third.id) == [actor]

    again = desk.post(
        f"/staff/followups/{first.id}/cancel", data={"csrf_token": token}, follow_redirects=True
    )
    assert "already been sent or closed (cancelled)" in again.text
    page = desk.get(f"/staff/patients/{alex.id}").text
    assert 'data-state="cancelled"' in page and "Mon 20 Apr 2026, 10:00" in page


def test_cancelling_a_consultation_cancels_its_waiting_follow_ups(
    desk: FlaskClient, runtime: Runtime, alex: Patient
) -> None:
    assert _schedule(desk, alex.id).status_code == 302
    page = desk.get(f"/staff/patients/{alex.id}").text
    (consultation,) = re.findall(r'data-consultation="([^"]+)"', page)
    response = desk.post(
        f"/staff/consultations/{consultation}/cancel",
        data={"csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    assert "Cancelled 3 follow-ups waiting to send." in response.text
    assert {i.status for i in _invitations(runtime, alex.id)} == {"cancelled"}


def test_actions_without_the_csrf_token_are_refused(
    desk: FlaskClient, runtime: Runtime, alex: Patient
) -> None:
    assert _schedule(desk, alex.id).status_code == 302
    first = _invitations(runtime, alex.id)[0]
    for action in ("cancel", "send-now", "reschedule"):
        assert desk.post(f"/staff/followups/{first.id}/{action}").status_code == 400
    assert desk.post(f"/staff/patients/{alex.id}/schedule").status_code == 400
    assert _invitations(runtime, alex.id)[0].status == "pending"


# -- another practice ----------------------------------------------------------------------


def test_another_practices_patient_and_follow_ups_are_not_found_on_every_route(
    desk: FlaskClient, runtime: Runtime, clock: Clock
) -> None:
    other = other_practice(runtime, clock.now)
    with transaction(runtime.engine) as session:
        consultation, (invitation, *_) = create_consultation(
            session,
            session.get(Practice, other.practice.id),
            runtime.catalogue,
            patient_id=other.patient.id,
            occurred_at=clock.now,
            protocol="depression_review",
            now=clock.now,
            actor="test",
        )
        ids = (other.patient.id, consultation.id, invitation.id)
    patient_id, consultation_id, invitation_id = ids
    token = _token(desk)
    for method, path in [
        ("GET", f"/staff/patients/{patient_id}"),
        ("GET", f"/staff/patients/{patient_id}/edit"),
        ("POST", f"/staff/patients/{patient_id}/edit"),
        ("POST", f"/staff/patients/{patient_id}/schedule"),
        ("GET", f"/staff/followups/{invitation_id}/reschedule"),
        ("POST", f"/staff/followups/{invitation_id}/reschedule"),
        ("POST", f"/staff/followups/{invitation_id}/cancel"),
        ("POST", f"/staff/followups/{invitation_id}/send-now"),
        ("POST", f"/staff/consultations/{consultation_id}/cancel"),
    ]:
        data = {"csrf_token": token, "name": "X", "phone": "07700900444", "day": "1",
                "month": "5", "year": "2026", "protocol": "depression_review"}  # fmt: skip
        response = desk.open(path, method=method, data=data if method == "POST" else None)
        assert response.status_code == 404, (method, path)
        assert "Dana Otherplace" not in response.text
    with transaction(runtime.engine, read_only=True) as session:
        assert session.get(Invitation, invitation_id).status == "pending"
        assert session.get(Patient, patient_id).name == "Dana Otherplace"
    assert "Dana Otherplace" not in desk.get("/staff/followups").text


# -- the practice's follow-ups -------------------------------------------------------------


def test_the_follow_ups_page_filters_by_state_and_date(
    desk: FlaskClient, runtime: Runtime, alex: Patient, demo: Demo
) -> None:
    assert _schedule(desk, alex.id).status_code == 302
    first = _invitations(runtime, alex.id)[0]
    token = _token(desk, f"/staff/patients/{alex.id}")
    desk.post(f"/staff/followups/{first.id}/cancel", data={"csrf_token": token})

    def rows(**query: str) -> list[str]:
        page = desk.get("/staff/followups", query_string=query)
        assert page.status_code == 200, page.text
        return re.findall(
            r'class="nhsuk-table__row follow-up-row"[^>]*data-state="([^"]+)"', page.text
        )

    with transaction(runtime.engine) as session:  # a follow-up that went two months ago
        create_consultation(
            session,
            session.get(Practice, demo.practice.id),
            runtime.catalogue,
            patient_id=alex.id,
            occurred_at=datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
            schedule=[{"instrument": "gad7", "after": "P1D"}],
            now=datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
            actor="test",
        )
    recent = rows()  # first opened: from two weeks ago on
    assert recent.count("cancelled") == 1 and recent.count("pending") == 2
    assert rows(since="").count("pending") == 3  # no lower bound: the old one too
    assert rows(since="", until="31/01/2026") == ["pending"]
    assert set(rows(state="cancelled")) == {"cancelled"}
    assert rows(state="pending", since="01/04/2026", until="30/04/2026") == ["pending"]  # 13 Apr
    assert rows(state="expired", since="01/01/2030") == []
    page = desk.get("/staff/followups", query_string={"since": "31/02/2026"})
    assert page.status_code == 400
    assert _summary(page.text) == [("since", "From must be a date such as 02/03/2026")]
    html = desk.get("/staff/followups").text
    assert "Alex Example" in html and "score" not in html.lower()


def test_the_follow_ups_page_is_in_the_header(desk: FlaskClient) -> None:
    assert 'href="/staff/followups"' in desk.get("/staff/patients").text


def test_a_clinician_sees_the_same_front_office_pages(
    client: FlaskClient, alex: Patient, demo: Demo
) -> None:
    assert sign_in(client, password=DEMO_PASSWORD).status_code == 302
    assert client.get("/staff/followups").status_code == 200
    assert client.get("/staff/patients/new").status_code == 200
    assert _schedule(client, alex.id).status_code == 302


# -- what reception sees ---------------------------------------------------------------------


def test_reception_sees_follow_ups_and_the_opt_out_but_no_score_answer_or_alert(
    desk: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo, alex: Patient
) -> None:
    headers = bearer(demo.api_token)
    answer_phq9(desk, headers, runtime, clock, demo.practice, alex, COMPLETE)  # total 15
    clock.advance(days=14)
    start_now(desk, headers, runtime, clock, alex.id)
    text(runtime, clock, demo.practice.sms_number, alex.phone, "1", "1", "1", "STOP")
    page = desk.get(f"/staff/patients/{alex.id}")
    assert page.status_code == 200
    assert "Opted out of texts" in page.text and "by texting START" in page.text
    assert 'data-state="completed"' in page.text and "Finished" in page.text
    health = ["Moderately severe", "more than half", "SNOMED", "answer-missing", "copy.js",
              "/transcript", "instrument-section", "alerts-title", "Self-harm"]  # fmt: skip
    assert [h for h in health if h in page.text] == []
    clinician = desk.application.test_client()
    assert sign_in(clinician, password=DEMO_PASSWORD).status_code == 302
    theirs = clinician.get(f"/staff/patients/{alex.id}").text
    assert "Moderately severe" in theirs and "SNOMED" in theirs


def test_a_follow_up_whose_text_failed_is_shown_and_found_by_the_failed_filter(
    desk: FlaskClient, runtime: Runtime, alex: Patient, clock: Clock
) -> None:
    assert _schedule(desk, alex.id).status_code == 302
    first = _invitations(runtime, alex.id)[0]
    with transaction(runtime.engine) as session:
        invitation = session.get(Invitation, first.id)
        invitation.status = "expired"
        conversation = Conversation(
            practice_id=alex.practice_id,
            patient_id=alex.id,
            invitation_id=first.id,
            phone=alex.phone,
            active=False,
            status="expired",
            state_json="{}",
            created_at=clock.now,
            updated_at=clock.now,
        )
        session.add(conversation)
        session.flush()
        session.add(
            Message(
                practice_id=alex.practice_id,
                patient_id=alex.id,
                conversation_id=conversation.id,
                direction="outbound",
                phone=alex.phone,
                body="(test)",
                status="failed",
                error_code=30006,
                created_at=clock.now,
                updated_at=clock.now,
            )
        )
    listed = desk.get("/staff/followups", query_string={"state": "failed"}).text
    assert re.findall(r'data-follow-up="([^"]+)"', listed) == [first.id]
    assert "Text not delivered" in listed and "Expired" in listed
    assert "Text not delivered" in desk.get(f"/staff/patients/{alex.id}").text
