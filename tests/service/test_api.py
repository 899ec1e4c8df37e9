"""The JSON API under /api/v1, as a practice's own system uses it.

Each test reads as a line of the specification: a bearer token per practice,
404 for anything that is not the caller's, 422 naming the field to fix, due
times that keep the practice's wall-clock hour, scored results, alerts, the
message log and the OpenAPI document. Patients answer through the same
service the Twilio webhook calls (``handle_inbound``), on the fixed ``clock``.

Every name and number is invented; phones are Ofcom drama numbers.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from sqlmodel import func, select

from bot.services import queries
from bot.services.demo import Demo
from bot.services.dispatch import dispatch_due
from bot.services.enrolment import InputError, create_practice, new_api_token
from bot.services.inbound import InboundSms, handle_inbound
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Patient,
    Practice,
)
from tests.service.conftest import Clock

LONDON = ZoneInfo("Europe/London")
PHQ9_ITEMS = [
    "interest",
    "mood",
    "sleep",
    "energy",
    "appetite",
    "self_worth",
    "concentration",
    "psychomotor",
    "self_harm",
]
NEW_PATIENT = {
    "name": "Robin Invented",
    "phone": "07700 900123",
    "nhs_number": "943 476 5870",
    "date_of_birth": "1980-04-21",
}
MISSING = object()  # in a table of changes: leave this field out of the body


# -- helpers shared with test_fhir.py ----------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def changed(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of body with changes applied; a MISSING value removes the field."""
    result = {**body, **changes}
    return {k: v for k, v in result.items() if v is not MISSING}


def text(runtime: Runtime, clock: Clock, sms_number: str, phone: str, *bodies: str) -> list[str]:
    """The patient texts each body in turn, a minute apart; the replies to the last one."""
    replies: list[str] = []
    for body in bodies:
        clock.advance(minutes=1)
        sms = InboundSms(sid=f"SM{uuid.uuid4().hex}", from_=phone, to=sms_number, body=body)
        replies = handle_inbound(runtime, sms, clock.now).replies
    return replies


def start_now(
    client: FlaskClient,
    headers: dict[str, str],
    runtime: Runtime,
    clock: Clock,
    patient_id: str,
    instrument: str = "phq9",
) -> str:
    """Schedule one questionnaire for now and start it as the scheduler would: its id."""
    response = client.post(
        "/api/v1/consultations",
        headers=headers,
        json={
            "patient_id": patient_id,
            "occurred_at": clock.now.isoformat(),
            "schedule": [{"instrument": instrument, "after": "P0D"}],
        },
    )
    assert response.status_code == 201, response.json
    assert dispatch_due(runtime, clock.now)["started"] == 1
    return response.json["invitations"][0]["id"]


def answer_phq9(
    client: FlaskClient,
    headers: dict[str, str],
    runtime: Runtime,
    clock: Clock,
    practice: Practice,
    patient: Patient,
    replies: list[str],
) -> str:
    """Start a PHQ-9 for the patient and text the replies: the invitation's id."""
    invitation_id = start_now(client, headers, runtime, clock, patient.id)
    text(runtime, clock, practice.sms_number, patient.phone, *replies)
    return invitation_id


def zulu(moment: datetime) -> str:
    """A time as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


def count(runtime: Runtime, model: type, *where: Any) -> int:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def patient(demo: Demo) -> Patient:
    """Alex Example, who has an NHS number."""
    return demo.patients[0]


@dataclass
class OtherPractice:
    practice: Practice
    headers: dict[str, str]
    patient_id: str
    invitation_id: str
    alert_id: str


@pytest.fixture
def other(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo) -> OtherPractice:
    """A second practice with a patient, a PHQ-9 under way and an open alert."""
    with transaction(runtime.engine) as session:
        practice = create_practice(
            session, name="Elsewhere Medical Centre", sms_number="+447700900999", now=clock.now
        )
        token = new_api_token(session, practice, now=clock.now)
    headers = bearer(token)
    created = client.post(
        "/api/v1/patients",
        headers=headers,
        json={"name": "Quinn Madeup", "phone": "07700 900201"},
    )
    assert created.status_code == 201, created.json
    patient_id = created.json["id"]
    invitation_id = start_now(client, headers, runtime, clock, patient_id)
    text(runtime, clock, practice.sms_number, "+447700900201", "1", "I want to end it all")
    alerts = client.get("/api/v1/alerts", headers=headers).json
    assert len(alerts) == 1
    return OtherPractice(practice, headers, patient_id, invitation_id, alerts[0]["id"])


# -- authentication ----------------------------------------------------------------

ENDPOINTS = [
    ("POST", "/api/v1/patients"),
    ("GET", "/api/v1/patients/{patient_id}"),
    ("POST", "/api/v1/consultations"),
    ("GET", "/api/v1/patients/{patient_id}/invitations"),
    ("GET", "/api/v1/patients/{patient_id}/results"),
    ("GET", "/api/v1/alerts"),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"),
    ("GET", "/api/v1/messages"),
    ("GET", "/api/v1/fhir/QuestionnaireResponse/{invitation_id}"),
]
PUBLIC_ENDPOINTS = [("GET", "/api/v1/openapi.json")]
# Protocols, cancelling and moving invitations, the practice's settings and the
# instruments: tested (401s and documented answers included) in test_schedule_api.py.
SCHEDULE_ENDPOINTS = [
    ("GET", "/api/v1/protocols"),
    ("POST", "/api/v1/protocols"),
    ("PUT", "/api/v1/protocols/{name}"),
    ("DELETE", "/api/v1/protocols/{name}"),
    ("GET", "/api/v1/consultations/{consultation_id}"),
    ("POST", "/api/v1/consultations/{consultation_id}/cancel"),
    ("POST", "/api/v1/consultations/{consultation_id}/reschedule"),
    ("PATCH", "/api/v1/invitations/{invitation_id}"),
    ("POST", "/api/v1/invitations/{invitation_id}/cancel"),
    ("GET", "/api/v1/practice"),
    ("PATCH", "/api/v1/practice"),
    ("GET", "/api/v1/instruments"),
]
# FHIR beyond the QuestionnaireResponse above: tested (401s, 404s, 422s and every
# answer validated as FHIR R4) in test_fhir.py.
FHIR_ENDPOINTS = [
    ("GET", "/api/v1/fhir/QuestionnaireResponse"),
    ("GET", "/api/v1/fhir/Observation"),
    ("GET", "/api/v1/fhir/Observation/{observation_id}"),
    ("GET", "/api/v1/fhir/Questionnaire/{questionnaire_id}"),
    ("GET", "/api/v1/fhir/CodeSystem/{code_system_id}"),
]
# The practice's staff: tested (401s and documented answers included) in test_staff_api.py.
STAFF_ENDPOINTS = [
    ("GET", "/api/v1/staff"),
    ("POST", "/api/v1/staff"),
    ("PATCH", "/api/v1/staff/{staff_id}"),
    ("DELETE", "/api/v1/staff/{staff_id}"),
]

BAD_AUTHORIZATION = [
    # what                              the Authorization header
    ("no header", None),
    ("scheme alone", "Bearer"),
    ("empty token", "Bearer   "),
    ("unknown token", "Bearer pb_not_a_real_token"),
    ("the demo token with a typo", "Bearer pb_demo_token_do_not_use_in_productioN"),
    ("the demo token without a scheme", "pb_demo_token_do_not_use_in_production"),
    ("basic auth", "Basic ZGVtbzpkZW1v"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_answers_401_without_a_valid_bearer_token(
    client: FlaskClient, runtime: Runtime, patient: Patient, method: str, path: str
) -> None:
    url = path.format(patient_id=patient.id, alert_id=uuid.uuid4().hex, invitation_id="x")
    body = changed(NEW_PATIENT, {"phone": "07700 900124"}) if method == "POST" else None
    for what, header in BAD_AUTHORIZATION:
        headers = {"Authorization": header} if header else {}
        response = client.open(url, method=method, headers=headers, json=body)
        assert response.status_code == 401, what
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), what
        assert response.json == {"error": "a valid bearer token is required"}, what
    assert count(runtime, Patient) == 3  # the demo's patients, and nobody new


def test_a_revoked_token_is_refused(
    client: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    with transaction(runtime.engine) as session:
        spare = new_api_token(session, demo.practice, now=clock.now, label="spare")
    assert client.get("/api/v1/alerts", headers=bearer(spare)).status_code == 200
    with transaction(runtime.engine) as session:
        for token in session.exec(select(ApiToken).where(ApiToken.label == "spare")):
            token.revoked_at = clock.now
    response = client.get("/api/v1/alerts", headers=bearer(spare))
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_the_openapi_document_needs_no_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.1")


# -- practices ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sms_number", "field"),
    [("", "sms_number"), ("123", "sms_number"), ("not a number", "sms_number"),
     ("+447700900000", "sms_number")],  # the last is the demo practice's
    ids=["empty", "too short", "words", "taken"],
)  # fmt: skip
def test_a_practice_needs_an_sms_number_of_its_own(
    runtime: Runtime, clock: Clock, demo: Demo, sms_number: str, field: str
) -> None:
    with transaction(runtime.engine) as session, pytest.raises(InputError) as refused:
        create_practice(session, name="Elsewhere", sms_number=sms_number, now=clock.now)
    assert refused.value.field == field
    assert count(runtime, Practice) == 1


# -- patients ------------------------------------------------------------------------


def test_a_patient_is_registered_and_read_back(
    client: FlaskClient, api_headers: dict[str, str]
) -> None:
    created = client.post("/api/v1/patients", headers=api_headers, json=NEW_PATIENT)
    assert created.status_code == 201
    patient = created.json
    assert re.fullmatch(r"[0-9a-f]{32}", patient["id"])
    assert patient == {
        "id": patient["id"],
        "name": "Robin Invented",
        "phone": "+447700900123",
        "nhs_number": "9434765870",
        "date_of_birth": "1980-04-21",
        "language": "en",
        "opted_out": False,
        "created_at": "2026-03-02T10:00:00Z",
    }
    fetched = client.get(f"/api/v1/patients/{patient['id']}", headers=api_headers)
    assert fetched.status_code == 200
    assert fetched.json == patient


@pytest.mark.parametrize(
    ("phone", "stored"),
    [
        ("07700 900123", "+447700900123"),
        ("07700900123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
    ],
)
def test_phone_numbers_are_stored_in_e164(
    client: FlaskClient, api_headers: dict[str, str], phone: str, stored: str
) -> None:
    body = {"name": "Robin Invented", "phone": phone}
    response = client.post("/api/v1/patients", headers=api_headers, json=body)
    assert response.status_code == 201, response.json
    assert response.json["phone"] == stored


def test_only_name_and_phone_are_needed(client: FlaskClient, api_headers: dict[str, str]) -> None:
    body = {"name": "Robin Invented", "phone": "07700 900123"}
    response = client.post("/api/v1/patients", headers=api_headers, json=body)
    assert response.status_code == 201
    assert response.json["nhs_number"] is None
    assert response.json["date_of_birth"] is None
    assert response.json["language"] == "en"


BAD_PATIENTS = [
    # what                                   changes to NEW_PATIENT                   field
    ("no name", {"name": MISSING}, "name"),
    ("a null name", {"name": None}, "name"),
    ("a blank name", {"name": "   "}, "name"),
    ("a name that is not text", {"name": 42}, "name"),
    ("a name too long", {"name": "A" * 121}, "name"),
    ("a name with a NUL byte", {"name": "Robin\x00Invented"}, "name"),
    ("a name with a line break", {"name": "Robin\nInvented"}, "name"),
    ("no phone", {"phone": MISSING}, "phone"),
    ("a blank phone", {"phone": ""}, "phone"),
    ("a drama landline", {"phone": "01632 960123"}, "phone"),
    ("a drama landline in E.164", {"phone": "+441632960123"}, "phone"),
    ("a London landline", {"phone": "020 7946 0123"}, "phone"),
    ("a freephone number", {"phone": "0808 157 0123"}, "phone"),
    ("a premium rate number", {"phone": "0909 879 0123"}, "phone"),
    ("a US number", {"phone": "+1 202 555 0123"}, "phone"),
    ("a French mobile", {"phone": "+33 6 39 98 00 00"}, "phone"),
    ("garbage for a phone", {"phone": "call me maybe"}, "phone"),
    ("a mobile too short", {"phone": "07700 9001"}, "phone"),
    ("a mobile with an extension", {"phone": "07700 900123 x5"}, "phone"),
    ("a phone that is not text", {"phone": 7700900123}, "phone"),
    ("an over-long phone", {"phone": "0" * 31}, "phone"),
    ("an NHS number with a bad checksum", {"nhs_number": "9434765918"}, "nhs_number"),
    ("an NHS number of nine digits", {"nhs_number": "943476591"}, "nhs_number"),
    ("an NHS number in words", {"nhs_number": "unknown"}, "nhs_number"),
    ("an NHS number that is a list", {"nhs_number": ["9434765919"]}, "nhs_number"),
    ("a date of birth in another format", {"date_of_birth": "21/04/1980"}, "date_of_birth"),
    ("a date of birth that does not exist", {"date_of_birth": "1980-02-30"}, "date_of_birth"),
    ("a date of birth in the future", {"date_of_birth": "2026-03-03"}, "date_of_birth"),
    ("a language with no validated translation", {"language": "cy"}, "language"),
]


@pytest.mark.parametrize(
    ("changes", "field"),
    [(changes, field) for _what, changes, field in BAD_PATIENTS],
    ids=[what for what, _changes, _field in BAD_PATIENTS],
)
def test_bad_patient_details_answer_422_naming_the_field(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    changes: dict[str, Any],
    field: str,
) -> None:
    response = client.post(
        "/api/v1/patients", headers=api_headers, json=changed(NEW_PATIENT, changes)
    )
    assert response.status_code == 422
    assert response.json["field"] == field
    assert field in response.json["error"]
    assert count(runtime, Patient) == 3  # the demo's patients only


NOT_JSON_OBJECTS = [
    # what                          body                     content type          status
    ("not JSON", "Robin Invented", "application/json", 400),
    ("truncated JSON", '{"name": "Robin"', "application/json", 400),
    ("NaN, which JSON does not have", '{"name": NaN}', "application/json", 400),
    ("bytes that are not UTF-8", b'{"name": "\xff"}', "application/json", 400),
    ("a JSON list", json.dumps([NEW_PATIENT]), "application/json", 422),
    ("a JSON string", '"Robin Invented"', "application/json", 422),
    ("JSON null", "null", "application/json", 422),
    ("empty", "", "application/json", 422),
    ("JSON sent as text", json.dumps(NEW_PATIENT), "text/plain", 415),
    ("a form", "name=Robin+Invented&phone=07700900123", "application/x-www-form-urlencoded",
     415),
]  # fmt: skip


@pytest.mark.parametrize("path", ["/api/v1/patients", "/api/v1/consultations"])
@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [(data, content_type, status) for _what, data, content_type, status in NOT_JSON_OBJECTS],
    ids=[what for what, *_rest in NOT_JSON_OBJECTS],
)
def test_a_body_that_is_not_a_json_object_is_refused_naming_the_body(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    path: str,
    data: str,
    content_type: str,
    status: int,
) -> None:
    # malformed JSON is a 400 and JSON of the wrong media type a 415 (both were a 422
    # before: the request, not a field, is at fault); valid JSON that is not an object,
    # or no body, is a 422 naming the body
    response = client.post(path, headers=api_headers, data=data, content_type=content_type)
    assert response.status_code == status
    assert response.json["field"] == "body"
    assert response.json["error"]
    assert count(runtime, Patient) == 3


def test_a_phone_number_belongs_to_one_patient_per_practice(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    first = client.post("/api/v1/patients", headers=api_headers, json=NEW_PATIENT)
    assert first.status_code == 201
    again = changed(NEW_PATIENT, {"name": "Robin Twice", "phone": "+44 7700 900123"})
    second = client.post("/api/v1/patients", headers=api_headers, json=again)
    assert second.status_code == 422
    assert second.json["field"] == "phone"
    assert "already" in second.json["error"]
    assert count(runtime, Patient, Patient.phone == "+447700900123") == 1


def test_two_requests_registering_one_number_at_once_make_one_patient(
    app: Flask, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    start = threading.Barrier(2)
    statuses: list[int] = []

    def register(name: str) -> None:
        client = app.test_client()
        start.wait()
        body = {"name": name, "phone": "07700 900123"}
        statuses.append(client.post("/api/v1/patients", headers=api_headers, json=body).status_code)

    threads = [threading.Thread(target=register, args=(n,)) for n in ("Robin A", "Robin B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 422]
    assert count(runtime, Patient, Patient.phone == "+447700900123") == 1


def test_an_unknown_patient_is_404(client: FlaskClient, api_headers: dict[str, str]) -> None:
    response = client.get(f"/api/v1/patients/{uuid.uuid4().hex}", headers=api_headers)
    assert response.status_code == 404
    assert response.json == {"error": "not found"}


# -- consultations and invitations -----------------------------------------------------


def consultation(patient_id: str, **fields: Any) -> dict[str, Any]:
    return {"patient_id": patient_id, "occurred_at": "2026-03-16T10:00:00", **fields}


def test_depression_review_sends_phq9_at_2_6_and_12_weeks_at_the_consultations_local_hour(
    client: FlaskClient, api_headers: dict[str, str], patient: Patient
) -> None:
    # 10:00 on Monday 16 March 2026 is 10:00Z (GMT); the clocks go forward on 29 March,
    # so every questionnaire after that is due at 10:00 BST, which is 09:00Z
    body = consultation(patient.id, protocol="depression_review")
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 201
    created = response.json
    assert created["occurred_at"] == "2026-03-16T10:00:00Z"
    assert created["protocol"] == "depression_review"
    assert [(i["instrument"], i["due_at"], i["status"]) for i in created["invitations"]] == [
        ("phq9", "2026-03-30T09:00:00Z", "pending"),
        ("phq9", "2026-04-27T09:00:00Z", "pending"),
        ("phq9", "2026-06-08T09:00:00Z", "pending"),
    ]
    for invitation in created["invitations"]:
        due = datetime.fromisoformat(invitation["due_at"]).astimezone(LONDON)
        assert (due.hour, due.minute) == (10, 0)
        assert invitation["consultation_id"] == created["id"]
        assert invitation["patient_id"] == patient.id

    listed = client.get(f"/api/v1/patients/{patient.id}/invitations", headers=api_headers)
    assert listed.status_code == 200
    assert listed.json == created["invitations"]


DUE_TIMES = [
    # occurred_at                  after    due_at (UTC)             why
    ("2026-03-16T10:00:00", "P2W", "2026-03-30T09:00:00Z", "GMT to BST: still 10:00 local"),
    ("2026-03-16T10:00:00Z", "P14D", "2026-03-30T09:00:00Z", "the same instant given in UTC"),
    ("2026-03-28T10:00:00", "P1D", "2026-03-29T09:00:00Z", "the day the clocks go forward"),
    ("2026-10-19T10:00:00+01:00", "P2W", "2026-11-02T10:00:00Z", "BST to GMT: still 10:00"),
    ("2026-03-16T10:00:00", "P1M", "2026-04-16T09:00:00Z", "a calendar month"),
    ("2026-03-16T10:00:00", "P0D", "2026-03-16T10:00:00Z", "P0D: at the consultation"),
    ("2026-03-16T10:00:00", "PT0S", "2026-03-16T10:00:00Z", "zero seconds, the same"),
    ("2026-06-01T17:45:00", "P0D", "2026-06-01T16:45:00Z", "P0D in summer time"),
]


@pytest.mark.parametrize(
    ("occurred_at", "after", "due_at"),
    [(occurred, after, due) for occurred, after, due, _why in DUE_TIMES],
    ids=[why for *_times, why in DUE_TIMES],
)
def test_due_times_keep_the_practices_wall_clock_time(
    client: FlaskClient,
    api_headers: dict[str, str],
    patient: Patient,
    occurred_at: str,
    after: str,
    due_at: str,
) -> None:
    body = {
        "patient_id": patient.id,
        "occurred_at": occurred_at,
        "schedule": [{"instrument": "gad7", "after": after}],
    }
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 201, response.json
    assert [i["due_at"] for i in response.json["invitations"]] == [due_at]
    assert response.json["protocol"] is None


def test_a_schedule_can_mix_instruments_and_is_listed_in_due_order(
    client: FlaskClient, api_headers: dict[str, str], patient: Patient
) -> None:
    schedule = [
        {"instrument": "who5", "after": "P4W"},
        {"instrument": "phq2", "after": "P0D"},
        {"instrument": "auditc", "after": "P1W"},
    ]
    body = consultation(patient.id, schedule=schedule)
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 201
    assert [i["instrument"] for i in response.json["invitations"]] == ["who5", "phq2", "auditc"]
    listed = client.get(f"/api/v1/patients/{patient.id}/invitations", headers=api_headers).json
    assert [i["instrument"] for i in listed] == ["phq2", "auditc", "who5"]


BAD_CONSULTATIONS = [
    # what                                  changes to a good one                 field
    ("an unknown instrument", {"schedule": [{"instrument": "phq10", "after": "P14D"}]},
     "schedule[0].instrument"),
    ("an instrument in capitals", {"schedule": [{"instrument": "PHQ9", "after": "P14D"}]},
     "schedule[0].instrument"),
    ("an instrument that is a list", {"schedule": [{"instrument": ["phq9"], "after": "P1D"}]},
     "schedule[0].instrument"),
    ("no instrument", {"schedule": [{"after": "P14D"}]}, "schedule[0].instrument"),
    ("an unknown instrument second",
     {"schedule": [{"instrument": "phq9", "after": "P1D"}, {"instrument": "x", "after": "P2D"}]},
     "schedule[1].instrument"),
    ("a duration in words", {"schedule": [{"instrument": "phq9", "after": "fortnight"}]},
     "schedule[0].after"),
    ("a negative duration", {"schedule": [{"instrument": "phq9", "after": "-P1D"}]},
     "schedule[0].after"),
    ("a negative month", {"schedule": [{"instrument": "phq9", "after": "-P1M"}]},
     "schedule[0].after"),
    ("days as a number", {"schedule": [{"instrument": "phq9", "after": 14}]},
     "schedule[0].after"),
    ("an empty duration", {"schedule": [{"instrument": "phq9", "after": "P"}]},
     "schedule[0].after"),
    ("no duration", {"schedule": [{"instrument": "phq9"}]}, "schedule[0].after"),
    ("a duration past the calendar", {"schedule": [{"instrument": "phq9", "after": "P9000Y"}]},
     "schedule[0].after"),
    ("an empty schedule", {"schedule": []}, "schedule"),
    ("a schedule that is not a list", {"schedule": {"instrument": "phq9", "after": "P1D"}},
     "schedule"),
    ("a schedule entry that is not an object", {"schedule": ["phq9"]}, "schedule[0]"),
    ("an unknown protocol", {"protocol": "depression"}, "protocol"),
    ("a protocol that is not text", {"protocol": 7}, "protocol"),
    ("a protocol with a NUL byte", {"protocol": "depression\x00review"}, "protocol"),
    ("both protocol and schedule",
     {"protocol": "depression_review", "schedule": [{"instrument": "phq9", "after": "P1D"}]},
     "protocol"),
    ("neither protocol nor schedule", {}, "protocol"),
    ("occurred_at in words", {"occurred_at": "yesterday", "protocol": "wellbeing"},
     "occurred_at"),
    ("occurred_at on 30 February", {"occurred_at": "2026-02-30T10:00:00",
                                   "protocol": "wellbeing"}, "occurred_at"),
    ("occurred_at as a number", {"occurred_at": 1773655200, "protocol": "wellbeing"},
     "occurred_at"),
    ("occurred_at with an impossible offset",
     {"occurred_at": "2026-03-16T10:00:00+25:00", "protocol": "wellbeing"}, "occurred_at"),
    ("no occurred_at", {"occurred_at": MISSING, "protocol": "wellbeing"}, "occurred_at"),
    ("no patient_id", {"patient_id": MISSING, "protocol": "wellbeing"}, "patient_id"),
    ("continue_if_positive in words", {"continue_if_positive": "yes", "protocol": "wellbeing"},
     "continue_if_positive"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field"),
    [(changes, field) for _what, changes, field in BAD_CONSULTATIONS],
    ids=[what for what, _changes, _field in BAD_CONSULTATIONS],
)
def test_bad_consultations_answer_422_naming_the_field_and_schedule_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    patient: Patient,
    changes: dict[str, Any],
    field: str,
) -> None:
    body = changed(consultation(patient.id), changes)
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert field.split("[")[0] in response.json["error"]
    assert count(runtime, Invitation) == 0


def test_a_consultation_for_an_unknown_patient_is_404_naming_the_field(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    body = consultation(uuid.uuid4().hex, protocol="depression_review")
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 404
    assert response.json["field"] == "patient_id"
    assert count(runtime, Invitation) == 0


def test_a_patient_who_opted_out_gets_no_new_questionnaires(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], patient: Patient
) -> None:
    with transaction(runtime.engine) as session:
        session.get(Patient, patient.id).opted_out = True
    body = consultation(patient.id, protocol="depression_review")
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 422
    assert response.json["field"] == "patient_id"
    assert "opted out" in response.json["error"]


def test_an_invitation_due_now_is_started_by_the_dispatcher(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient: Patient,
) -> None:
    invitation_id = start_now(client, api_headers, runtime, clock, patient.id)
    listed = client.get(f"/api/v1/patients/{patient.id}/invitations", headers=api_headers).json
    assert [(i["id"], i["status"], i["started_at"]) for i in listed] == [
        (invitation_id, "active", "2026-03-02T10:00:00Z")
    ]


# -- results -------------------------------------------------------------------------

PHQ9_RESULTS = [
    # replies: nine items, then "how difficult" when any is above 0
    #                                   total  band                 flags
    (["0"] * 9, 0, "none_minimal", []),
    (["1"] * 9 + ["1"], 9, "mild", ["self_harm_risk"]),
    (["1"] * 8 + ["2", "0"], 10, "moderate", ["self_harm_risk"]),
    (["2"] * 8 + ["0", "2"], 16, "moderately_severe", []),
    (["3"] * 8 + ["0", "3"], 24, "severe", ["severe_score"]),
    (["3"] * 9 + ["3"], 27, "severe", ["self_harm_risk", "severe_score"]),
]


@pytest.mark.parametrize(("replies", "total", "band", "flags"), PHQ9_RESULTS)
def test_a_completed_phq9_is_scored_in_the_results(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
    replies: list[str],
    total: int,
    band: str,
    flags: list[str],
) -> None:
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, patient, replies
    )
    response = client.get(f"/api/v1/patients/{patient.id}/results", headers=api_headers)
    assert response.status_code == 200
    [result] = response.json
    answers = {item: int(reply) for item, reply in zip(PHQ9_ITEMS, replies, strict=False)}
    if len(replies) == 10:
        answers["difficulty"] = int(replies[9])
    assert result["invitation_id"] == invitation_id
    assert result["instrument"] == "phq9"
    assert result["status"] == "completed"
    assert result["completed_at"] == zulu(clock.now)
    assert (result["total"], result["band"]) == (total, band)
    assert result["answers"] == answers
    assert sorted(result["flags"]) == flags
    invitations = client.get(f"/api/v1/patients/{patient.id}/invitations", headers=api_headers)
    assert invitations.json[0]["status"] == "completed"


def test_no_results_before_a_questionnaire_is_finished(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
) -> None:
    answer_phq9(client, api_headers, runtime, clock, demo.practice, patient, ["1", "2", "3"])
    response = client.get(f"/api/v1/patients/{patient.id}/results", headers=api_headers)
    assert response.status_code == 200
    assert response.json == []


@pytest.mark.parametrize("answered", [0, 1, 5, 8])
def test_a_questionnaire_stopped_before_all_scored_items_has_no_total(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
    answered: int,
) -> None:
    replies = ["2"] * answered + ["STOP"]
    answer_phq9(client, api_headers, runtime, clock, demo.practice, patient, replies)
    [result] = client.get(f"/api/v1/patients/{patient.id}/results", headers=api_headers).json
    assert result["status"] in ("incomplete", "opted_out")
    assert (result["total"], result["band"], result["completed_at"]) == (None, None, None)
    assert result["answers"] == dict.fromkeys(PHQ9_ITEMS[:answered], 2)
    patient_now = client.get(f"/api/v1/patients/{patient.id}", headers=api_headers).json
    assert patient_now["opted_out"] is True


def test_results_only_show_that_patients_questionnaires(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex, bo = demo.patients[0], demo.patients[1]
    answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, ["0"] * 9)
    assert client.get(f"/api/v1/patients/{bo.id}/results", headers=api_headers).json == []
    assert len(client.get(f"/api/v1/patients/{alex.id}/results", headers=api_headers).json) == 1


# -- alerts --------------------------------------------------------------------------


def test_an_alert_is_raised_acknowledged_once_and_filtered_by_status(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
) -> None:
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, patient, ["0"] * 8 + ["1"]
    )
    raised_at = zulu(clock.now)
    [alert] = client.get("/api/v1/alerts", headers=api_headers).json
    assert alert["flag"] == "self_harm_risk"
    assert alert["severity"] == "urgent"
    assert alert["status"] == "open"
    assert (alert["patient_id"], alert["invitation_id"]) == (patient.id, invitation_id)
    assert alert["created_at"] == raised_at
    assert client.get("/api/v1/alerts?status=open", headers=api_headers).json == [alert]
    assert client.get("/api/v1/alerts?status=acknowledged", headers=api_headers).json == []

    acknowledged_at = zulu(clock.advance(minutes=5))
    acknowledged = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=api_headers,
        json={"outcome": "contacted", "note": "Called back; safe tonight"},
    )
    assert acknowledged.status_code == 200
    assert acknowledged.json["status"] == "acknowledged"
    assert acknowledged.json["outcome"] == "contacted"
    assert acknowledged.json["outcome_note"] == "Called back; safe tonight"
    assert acknowledged.json["acknowledged_at"] == acknowledged_at
    assert acknowledged.json["acknowledged_by"].startswith("token:")

    clock.advance(minutes=5)
    again = client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge",
        headers=api_headers,
        json={"outcome": "no_action"},
    )
    assert again.status_code == 200
    assert again.json == acknowledged.json  # the first acknowledgement stands

    assert client.get("/api/v1/alerts?status=open", headers=api_headers).json == []
    assert client.get("/api/v1/alerts?status=acknowledged", headers=api_headers).json == [
        acknowledged.json
    ]
    assert client.get("/api/v1/alerts", headers=api_headers).json == [acknowledged.json]
    with transaction(runtime.engine, read_only=True) as session:
        audit = session.exec(
            select(AuditEvent).where(AuditEvent.action == "alert.acknowledged")
        ).all()
    assert [(a.subject_type, a.subject_id, a.actor) for a in audit] == [
        ("alert", alert["id"], acknowledged.json["acknowledged_by"])
    ]


def test_alerts_are_listed_newest_first(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex, bo = demo.patients[0], demo.patients[1]
    answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, ["3"] * 8 + ["0", "3"])
    answer_phq9(client, api_headers, runtime, clock, demo.practice, bo, ["0"] * 8 + ["2"])
    alerts = client.get("/api/v1/alerts", headers=api_headers).json
    assert [(a["patient_id"], a["flag"]) for a in alerts] == [
        (bo.id, "self_harm_risk"),
        (alex.id, "severe_score"),
    ]


@pytest.mark.parametrize("status", ["closed", "OPEN", "all", ""])
def test_an_unknown_alert_status_answers_422(
    client: FlaskClient, api_headers: dict[str, str], status: str
) -> None:
    response = client.get(f"/api/v1/alerts?status={status}", headers=api_headers)
    assert response.status_code == 422
    assert response.json["field"] == "status"


def test_acknowledging_an_unknown_alert_is_404(
    client: FlaskClient, api_headers: dict[str, str]
) -> None:
    response = client.post(
        f"/api/v1/alerts/{uuid.uuid4().hex}/acknowledge",
        headers=api_headers,
        json={"outcome": "contacted"},
    )
    assert response.status_code == 404


# -- the message log -------------------------------------------------------------------


def test_the_message_log_shows_a_patients_texts_in_order_both_ways(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
) -> None:
    answer_phq9(client, api_headers, runtime, clock, demo.practice, patient, ["1", "not sure"])
    bo = demo.patients[1]
    answer_phq9(client, api_headers, runtime, clock, demo.practice, bo, ["0"])

    response = client.get(f"/api/v1/messages?patient_id={patient.id}", headers=api_headers)
    assert response.status_code == 200
    log = response.json
    assert [m["direction"] for m in log] == [
        "outbound",  # the introduction
        "outbound",  # the first question
        "inbound",  # "1"
        "outbound",  # the second question
        "inbound",  # "not sure"
        "outbound",  # not understood: the options again
    ]
    assert [m["body"] for m in log if m["direction"] == "inbound"] == ["1", "not sure"]
    assert log[0]["body"].startswith("Hello from Demo Surgery.")
    assert "Little interest or pleasure" in log[1]["body"]
    assert "Feeling down" in log[3]["body"]
    assert "didn't understand" in log[5]["body"]
    assert {m["patient_id"] for m in log} == {patient.id}
    assert [m["created_at"] for m in log] == sorted(m["created_at"] for m in log)
    assert [m["status"] for m in log[:2]] == ["delivered", "delivered"]  # the local gateway
    assert log[2]["status"] == "received"

    everyone = client.get("/api/v1/messages", headers=api_headers).json
    assert {m["patient_id"] for m in everyone} == {patient.id, bo.id}
    assert len(everyone) == len(log) + 4


def test_a_long_message_log_shows_its_latest_messages(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
) -> None:
    answer_phq9(client, api_headers, runtime, clock, demo.practice, patient, ["1", "2", "3"])
    full = queries.messages_of(runtime, demo.practice, patient.id)
    latest = queries.messages_of(runtime, demo.practice, patient.id, limit=3)
    assert len(full) == 8
    assert [m.id for m in latest] == [m.id for m in full[-3:]]


def test_the_message_log_of_an_unknown_patient_is_404(
    client: FlaskClient, api_headers: dict[str, str]
) -> None:
    response = client.get(f"/api/v1/messages?patient_id={uuid.uuid4().hex}", headers=api_headers)
    assert response.status_code == 404


# -- one practice never sees another's --------------------------------------------------


def _other_practices_ids(other: OtherPractice) -> dict[str, str]:
    return {
        "patient_id": other.patient_id,
        "alert_id": other.alert_id,
        "invitation_id": other.invitation_id,
    }


ID_ENDPOINTS = [
    ("GET", "/api/v1/patients/{patient_id}"),
    ("GET", "/api/v1/patients/{patient_id}/invitations"),
    ("GET", "/api/v1/patients/{patient_id}/results"),
    ("GET", "/api/v1/messages?patient_id={patient_id}"),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"),
    ("GET", "/api/v1/fhir/QuestionnaireResponse/{invitation_id}"),
]
ID_ENDPOINT_BODIES = {"/api/v1/alerts/{alert_id}/acknowledge": {"outcome": "contacted"}}


@pytest.mark.parametrize(("method", "path"), ID_ENDPOINTS)
def test_another_practices_ids_answer_404_like_ids_that_never_existed(
    client: FlaskClient,
    api_headers: dict[str, str],
    other: OtherPractice,
    method: str,
    path: str,
) -> None:
    url = path.format(**_other_practices_ids(other))
    body = ID_ENDPOINT_BODIES.get(path)
    theirs = client.open(url, method=method, headers=api_headers, json=body)
    assert theirs.status_code == 404
    assert theirs.json == {"error": "not found"}
    nobodys = {key: uuid.uuid4().hex for key in _other_practices_ids(other)}
    never = client.open(path.format(**nobodys), method=method, headers=api_headers, json=body)
    assert (never.status_code, never.json) == (theirs.status_code, theirs.json)
    if method == "GET":  # while their own practice reads it
        assert client.get(url, headers=other.headers).status_code == 200


@pytest.mark.parametrize(("method", "path"), ID_ENDPOINTS)
def test_the_first_practices_ids_answer_404_to_the_second(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
    other: OtherPractice,
    method: str,
    path: str,
) -> None:
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, patient, ["0"] * 8 + ["1"]
    )
    [alert] = client.get("/api/v1/alerts", headers=api_headers).json
    ours = {"patient_id": patient.id, "alert_id": alert["id"], "invitation_id": invitation_id}
    response = client.open(
        path.format(**ours), method=method, headers=other.headers, json=ID_ENDPOINT_BODIES.get(path)
    )
    assert response.status_code == 404
    assert response.json == {"error": "not found"}
    assert client.get("/api/v1/alerts?status=open", headers=api_headers).json == [alert]


def test_a_consultation_for_another_practices_patient_is_404(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], other: OtherPractice
) -> None:
    body = consultation(other.patient_id, protocol="depression_review")
    response = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert response.status_code == 404
    assert response.json["field"] == "patient_id"
    nobody = consultation(uuid.uuid4().hex, protocol="depression_review")
    never = client.post("/api/v1/consultations", headers=api_headers, json=nobody)
    assert (never.status_code, never.json) == (response.status_code, response.json)
    assert count(runtime, Invitation, Invitation.patient_id == other.patient_id) == 1


def test_acknowledging_another_practices_alert_changes_nothing(
    client: FlaskClient, api_headers: dict[str, str], other: OtherPractice
) -> None:
    client.post(
        f"/api/v1/alerts/{other.alert_id}/acknowledge",
        headers=api_headers,
        json={"outcome": "contacted"},
    )
    [alert] = client.get("/api/v1/alerts", headers=other.headers).json
    assert (alert["id"], alert["status"]) == (other.alert_id, "open")


def test_each_practices_lists_show_only_its_own_records(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
    other: OtherPractice,
) -> None:
    answer_phq9(client, api_headers, runtime, clock, demo.practice, patient, ["0"] * 8 + ["2"])
    ours = {p.id for p in demo.patients}
    for headers, own_patients in [(api_headers, ours), (other.headers, {other.patient_id})]:
        for query in ["", "?status=open", "?status=acknowledged"]:
            alerts = client.get(f"/api/v1/alerts{query}", headers=headers).json
            assert {a["patient_id"] for a in alerts} <= own_patients
        messages = client.get("/api/v1/messages", headers=headers).json
        assert messages
        assert {m["patient_id"] for m in messages} <= own_patients
    assert len(client.get("/api/v1/alerts", headers=api_headers).json) == 1
    assert len(client.get("/api/v1/alerts", headers=other.headers).json) == 1


def test_the_same_mobile_may_be_a_patient_at_two_practices(
    client: FlaskClient, api_headers: dict[str, str], other: OtherPractice
) -> None:
    body = {"name": "Quinn Madeup", "phone": "07700 900201"}  # registered at the other
    response = client.post("/api/v1/patients", headers=api_headers, json=body)
    assert response.status_code == 201
    assert response.json["id"] != other.patient_id


WEIRD_IDS = [
    ("words", "nope"),
    ("all zeros", "0" * 32),
    ("very long", "a" * 300),
    ("a NUL byte", "%00"),
    ("a quote", "%27%20OR%20%271%27%3D%271"),
    ("non-ASCII", "%C3%A9"),
]


@pytest.mark.parametrize("raw_id", [raw for _what, raw in WEIRD_IDS],
                         ids=[what for what, _raw in WEIRD_IDS])  # fmt: skip
@pytest.mark.parametrize(("method", "path"), ID_ENDPOINTS)
def test_ids_of_any_shape_answer_404_not_500(
    client: FlaskClient, api_headers: dict[str, str], method: str, path: str, raw_id: str
) -> None:
    url = path.format(patient_id=raw_id, alert_id=raw_id, invitation_id=raw_id)
    response = client.open(
        url, method=method, headers=api_headers, json=ID_ENDPOINT_BODIES.get(path)
    )
    assert response.status_code == 404
    assert response.json == {"error": "not found"}


# -- errors outside the routes ---------------------------------------------------------


def test_unknown_api_paths_and_methods_answer_json(
    client: FlaskClient, api_headers: dict[str, str], patient: Patient
) -> None:
    missing = client.get("/api/v1/patient", headers=api_headers)
    assert (missing.status_code, missing.json) == (404, {"error": "not found"})
    wrong = client.delete(f"/api/v1/patients/{patient.id}", headers=api_headers)
    assert (wrong.status_code, wrong.json) == (405, {"error": "method not allowed"})
    assert "GET" in wrong.headers["Allow"]
    elsewhere = client.get("/no-such-page")
    assert elsewhere.status_code == 404
    assert not elsewhere.is_json  # pages outside the API keep their own errors


# -- the OpenAPI document -------------------------------------------------------------


def _api_routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            routes |= {(m, path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return routes


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "delete", "patch")
    }


def test_the_endpoint_tables_here_cover_every_api_route(app: Flask) -> None:
    tables = ENDPOINTS + SCHEDULE_ENDPOINTS + STAFF_ENDPOINTS + FHIR_ENDPOINTS + PUBLIC_ENDPOINTS
    assert _api_routes(app) == {(m, p.split("?")[0]) for m, p in tables}


def test_the_openapi_document_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert _documented(document) == _api_routes(app)


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        assert node["$ref"].startswith("#/"), node["$ref"]
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_the_openapi_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    validate(document)  # openapi-spec-validator: the document is valid OpenAPI 3.1

    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert set(document) <= {
        "openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks",
        "components", "security", "tags", "externalDocs",
    }  # fmt: skip
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    for requirement in document["security"]:
        assert set(requirement) <= set(schemes)
    for ref in _refs(document):
        assert _resolve(document, {"$ref": ref}) is not None, ref
    for path, operations in document["paths"].items():
        assert path.startswith("/api/v1/")
        in_path = set(re.findall(r"{([^}]+)}", path))
        for method, operation in operations.items():
            assert method in ("get", "put", "post", "delete", "patch"), (path, method)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == in_path, (path, method)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in ("path", "query", "header", "cookie")
                assert parameter["in"] != "path" or parameter["required"] is True
                assert "schema" in parameter
            assert operation["responses"], (path, method)
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", status), (path, status)
                assert _resolve(document, response)["description"], (path, status)
            if "requestBody" in operation:
                assert operation["requestBody"]["content"], (path, method)
            if operation.get("security") != []:
                assert "401" in operation["responses"], (path, method)


def conforms(document: dict[str, Any], schema: Any, value: Any, where: str) -> list[str]:
    """Problems with value against a schema of the document (JSON Schema 2020-12, as
    OpenAPI 3.1 uses it), checked by the jsonschema library."""
    root = {"$ref": "#/x-checked", "x-checked": schema, "components": document["components"]}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = validator.iter_errors(value)
    return [f"{where}: {e.message} at {list(e.absolute_path)}" for e in errors]


def test_every_api_answer_matches_its_documented_schema(
    app: Flask,
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    patient: Patient,
) -> None:
    document = client.get("/api/v1/openapi.json").json
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, patient, ["1"] * 9 + ["1"]
    )
    [alert] = client.get("/api/v1/alerts", headers=api_headers).json
    answers = [
        ("POST", "/api/v1/patients", NEW_PATIENT),
        ("POST", "/api/v1/patients", {"name": "Robin Invented"}),
        ("GET", f"/api/v1/patients/{patient.id}", None),
        ("GET", f"/api/v1/patients/{uuid.uuid4().hex}", None),
        ("POST", "/api/v1/consultations", consultation(patient.id, protocol="wellbeing")),
        ("POST", "/api/v1/consultations", consultation(patient.id, protocol="nope")),
        ("GET", f"/api/v1/patients/{patient.id}/invitations", None),
        ("GET", f"/api/v1/patients/{patient.id}/results", None),
        ("GET", "/api/v1/alerts?status=open", None),
        ("POST", f"/api/v1/alerts/{alert['id']}/acknowledge", {"outcome": "no_action"}),
        ("GET", f"/api/v1/messages?patient_id={patient.id}", None),
        ("GET", f"/api/v1/fhir/QuestionnaireResponse/{invitation_id}", None),
    ]
    seen = set()
    for method, url, body in answers:
        response = client.open(url, method=method, headers=api_headers, json=body)
        path = url.split("?")[0]
        template = next(
            p
            for p in document["paths"]
            if re.fullmatch(re.sub(r"{[^}]+}", "[^/]+", p), path)
            and method.lower() in document["paths"][p]
        )
        responses = document["paths"][template][method.lower()]["responses"]
        assert str(response.status_code) in responses, (method, url, response.status_code)
        content = _resolve(document, responses[str(response.status_code)])["content"]
        [(media_type, described)] = content.items()
        assert response.mimetype == media_type, (method, url)
        problems = conforms(document, described["schema"], response.json, f"{method} {url}")
        assert problems == []
        seen.add((method, template))
    # the scheduling and staff endpoints' answers are checked the same way in
    # test_schedule_api.py and test_staff_api.py
    assert seen == _documented(document) - {("GET", "/api/v1/openapi.json")} - set(
        SCHEDULE_ENDPOINTS + STAFF_ENDPOINTS + FHIR_ENDPOINTS
    )
