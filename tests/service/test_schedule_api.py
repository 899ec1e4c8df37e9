"""Changing what is scheduled through /api/v1: protocols, invitations, the practice's settings.

Each test reads as a line of the specification: a practice adds and edits its
own protocols (future consultations only); cancels or moves a consultation's
*pending* invitations (an active questionnaire is never touched, and the
answer says so); moves or cancels one pending invitation (anything else is a
409); and changes its send window, reminders and expiry, which the scheduler
(``run_due_work``) then obeys. Every change is audited with the token as the
actor; another practice's records answer 404; bad input is a 422 naming the field.

The ``clock`` starts on Monday 2 March 2026 at 10:00 UTC (10:00 in London);
the clocks go forward on Sunday 29 March.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.demo import Demo
from bot.services.dispatch import dispatch_due
from bot.services.due_work import run_due_work
from bot.services.enrolment import create_practice, hash_token, new_api_token
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import ApiToken, AuditEvent, Conversation, Invitation, Protocol
from tests.service.conftest import Clock
from tests.service.test_api import (
    BAD_AUTHORIZATION,
    LONDON,
    MISSING,
    SCHEDULE_ENDPOINTS,
    WEIRD_IDS,
    _resolve,
    bearer,
    changed,
    conforms,
    count,
    zulu,
)

INSTRUMENTS = {"phq9", "phq2", "gad7", "gad2", "auditc", "who5"}
DEFAULT_PROTOCOLS = [
    "alcohol_brief_intervention",
    "anxiety_review",
    "depression_review",
    "wellbeing",
]
NEW_PROTOCOL = {
    "name": "low_mood_review",
    "title": "Low mood review (PHQ-2 at once, PHQ-9 at 4 weeks)",
    "schedule": [{"instrument": "phq2", "after": "P0D"}, {"instrument": "phq9", "after": "P4W"}],
}


# -- helpers ------------------------------------------------------------------------


def consult(
    client: FlaskClient,
    headers: dict[str, str],
    patient_id: str,
    occurred_at: str = "2026-03-16T10:00:00",
    **fields: Any,
) -> dict[str, Any]:
    """Register a consultation (local time unless a zone is given): the API's answer."""
    body = {"patient_id": patient_id, "occurred_at": occurred_at, **fields}
    response = client.post("/api/v1/consultations", headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def after(*offsets: str, instrument: str = "phq9") -> list[dict[str, str]]:
    return [{"instrument": instrument, "after": offset} for offset in offsets]


def statuses(client: FlaskClient, headers: dict[str, str], consultation_id: str) -> list[str]:
    response = client.get(f"/api/v1/consultations/{consultation_id}", headers=headers)
    assert response.status_code == 200
    return [i["status"] for i in response.json["invitations"]]


def audited(runtime: Runtime) -> list[tuple[str, str, str | None, str]]:
    """(action, subject_type, subject_id, actor) of every audit row written through the API."""
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.actor).startswith("token:"))
            .order_by(col(AuditEvent.at))
        ).all()
    setup = {"patient.created", "consultation.created"}  # by the tests, before the calls
    return [
        (r.action, r.subject_type, r.subject_id, r.actor) for r in rows if r.action not in setup
    ]


def token_actor(runtime: Runtime, demo: Demo) -> str:
    with transaction(runtime.engine, read_only=True) as session:
        token = session.exec(
            select(ApiToken).where(ApiToken.token_hash == hash_token(demo.api_token))
        ).one()
    return f"token:{token.id}"


def invitation_row(runtime: Runtime, invitation_id: str) -> Invitation:
    with transaction(runtime.engine, read_only=True) as session:
        row = session.get(Invitation, invitation_id)
        assert row is not None
        return row


def set_status(runtime: Runtime, invitation_id: str, status: str) -> None:
    with transaction(runtime.engine) as session:
        row = session.get(Invitation, invitation_id)
        assert row is not None
        row.status = status


def ok(response: Any) -> bool:
    return 200 <= response.status_code < 300


def practice_now(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    """The practice's settings (its alert warnings are tested in test_alert_reach.py)."""
    response = client.get("/api/v1/practice", headers=headers)
    assert response.status_code == 200
    return {k: v for k, v in response.json.items() if k != "warnings"}


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def patient_id(demo: Demo) -> str:
    return demo.patients[0].id


@dataclass
class Scene:
    """Ids to fill an endpoint's path with."""

    name: str
    consultation_id: str
    invitation_id: str

    def url(self, path: str) -> str:
        return path.format(
            name=self.name, consultation_id=self.consultation_id, invitation_id=self.invitation_id
        )


@pytest.fixture
def ours(client: FlaskClient, api_headers: dict[str, str], patient_id: str) -> Scene:
    """A depression review on 16 March: three pending PHQ-9s."""
    created = consult(client, api_headers, patient_id, protocol="depression_review")
    return Scene("depression_review", created["id"], created["invitations"][0]["id"])


@dataclass
class Elsewhere:
    headers: dict[str, str]
    scene: Scene


@pytest.fixture
def elsewhere(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo) -> Elsewhere:
    """A second practice with a protocol of its own and a consultation with pending invitations."""
    with transaction(runtime.engine) as session:
        practice = create_practice(
            session, name="Elsewhere Medical Centre", sms_number="+447700900999", now=clock.now
        )
        headers = bearer(new_api_token(session, practice, now=clock.now))
    protocol = {**NEW_PROTOCOL, "name": "elsewhere_review"}
    assert client.post("/api/v1/protocols", headers=headers, json=protocol).status_code == 201
    patient = client.post(
        "/api/v1/patients", headers=headers, json={"name": "Quinn Madeup", "phone": "07700 900201"}
    )
    assert patient.status_code == 201
    created = consult(client, headers, patient.json["id"], protocol="elsewhere_review")
    return Elsewhere(
        headers, Scene("elsewhere_review", created["id"], created["invitations"][0]["id"])
    )


# -- every endpoint: success, the audit row, the documented answer, 401 ----------------

CALLS = [
    # method    path                                              body
    #           status  audit actions written
    ("GET", "/api/v1/protocols", None,
     200, []),
    ("POST", "/api/v1/protocols", NEW_PROTOCOL,
     201, ["protocol.created"]),
    ("PUT", "/api/v1/protocols/{name}", {"title": "Depression follow-up"},
     200, ["protocol.updated"]),
    ("DELETE", "/api/v1/protocols/{name}", None,
     204, ["protocol.deleted"]),
    ("GET", "/api/v1/consultations/{consultation_id}", None,
     200, []),
    ("POST", "/api/v1/consultations/{consultation_id}/cancel", None,
     200, ["invitation.cancelled"] * 3 + ["consultation.cancelled"]),
    ("POST", "/api/v1/consultations/{consultation_id}/reschedule", {"shift": "P1D"},
     200, ["invitation.rescheduled"] * 3 + ["consultation.rescheduled"]),
    ("PATCH", "/api/v1/invitations/{invitation_id}", {"due_at": "2026-04-01T10:00:00"},
     200, ["invitation.rescheduled"]),
    ("POST", "/api/v1/invitations/{invitation_id}/cancel", None,
     200, ["invitation.cancelled"]),
    ("GET", "/api/v1/practice", None,
     200, []),
    ("PATCH", "/api/v1/practice", {"send_window_start": "08:00"},
     200, ["practice.settings_changed"]),
    ("GET", "/api/v1/instruments", None,
     200, []),
]  # fmt: skip
CALL_IDS = [f"{method} {path}" for method, path, *_rest in CALLS]


def test_the_call_table_covers_every_scheduling_endpoint() -> None:
    assert {(method, path) for method, path, *_rest in CALLS} == set(SCHEDULE_ENDPOINTS)


@pytest.mark.parametrize(("method", "path", "body", "status", "actions"), CALLS, ids=CALL_IDS)
def test_each_endpoint_works_is_audited_and_answers_as_documented(
    client: FlaskClient,
    runtime: Runtime,
    demo: Demo,
    api_headers: dict[str, str],
    ours: Scene,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    actions: list[str],
) -> None:
    before = audited(runtime)
    response = client.open(ours.url(path), method=method, headers=api_headers, json=body)
    assert response.status_code == status, response.json
    written = audited(runtime)[len(before) :]
    assert Counter(action for action, *_ in written) == Counter(actions)
    assert {actor for *_, actor in written} <= {token_actor(runtime, demo)}
    assert documented_problems(client, method, path, response) == []


def documented_problems(client: FlaskClient, method: str, path: str, response: Any) -> list[str]:
    document = client.get("/api/v1/openapi.json").json
    responses = document["paths"][path][method.lower()]["responses"]
    if str(response.status_code) not in responses:
        return [f"{method} {path}: {response.status_code} is not documented"]
    described = _resolve(document, responses[str(response.status_code)])
    if "content" not in described:
        return [] if not response.data else [f"{method} {path}: an undocumented body"]
    [(media_type, content)] = described["content"].items()
    if response.mimetype != media_type:
        return [f"{method} {path}: {response.mimetype}, documented {media_type}"]
    return conforms(document, content["schema"], response.json, f"{method} {path}")


ERROR_CALLS = [
    # method    path                                          body                      status
    ("POST", "/api/v1/protocols", {"name": "depression_review"}, 422),
    ("PUT", "/api/v1/protocols/{name}", {}, 422),
    ("PUT", "/api/v1/protocols/no_such_protocol", {"title": "x"}, 404),
    ("DELETE", "/api/v1/protocols/no_such_protocol", None, 404),
    ("GET", "/api/v1/consultations/" + "0" * 32, None, 404),
    ("POST", "/api/v1/consultations/" + "0" * 32 + "/cancel", None, 404),
    ("POST", "/api/v1/consultations/{consultation_id}/reschedule", {}, 422),
    ("PATCH", "/api/v1/invitations/{invitation_id}", {"due_at": "soon"}, 422),
    ("PATCH", "/api/v1/practice", {"nation": "FRA"}, 422),
    ("POST", "/api/v1/invitations/{invitation_id}/cancel", None, 200),
    ("POST", "/api/v1/invitations/{invitation_id}/cancel", None, 409),  # the second time
    ("PATCH", "/api/v1/invitations/{invitation_id}", {"due_at": "2026-04-01T10:00:00Z"}, 409),
]


def test_error_answers_are_documented_too(
    client: FlaskClient, api_headers: dict[str, str], ours: Scene
) -> None:
    document = client.get("/api/v1/openapi.json").json
    for method, path, body, status in ERROR_CALLS:
        response = client.open(ours.url(path), method=method, headers=api_headers, json=body)
        assert response.status_code == status, (method, path, response.json)
        template = path if path in document["paths"] else _template(document, path)
        assert documented_problems(client, method, template, response) == []


def _template(document: dict[str, Any], path: str) -> str:
    for template in document["paths"]:
        parts, wanted = template.split("/"), path.split("/")
        if len(parts) == len(wanted) and all(
            p == w or p.startswith("{") for p, w in zip(parts, wanted, strict=True)
        ):
            return template
    raise AssertionError(path)


@pytest.mark.parametrize(("method", "path", "body", "status", "actions"), CALLS, ids=CALL_IDS)
def test_every_endpoint_answers_401_without_a_valid_bearer_token_and_changes_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    actions: list[str],
) -> None:
    before = (audited(runtime), practice_now(client, api_headers))
    for what, header in BAD_AUTHORIZATION:
        headers = {"Authorization": header} if header else {}
        response = client.open(ours.url(path), method=method, headers=headers, json=body)
        assert response.status_code == 401, what
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), what
        assert response.json == {"error": "a valid bearer token is required"}, what
    assert (audited(runtime), practice_now(client, api_headers)) == before
    assert statuses(client, api_headers, ours.consultation_id) == ["pending"] * 3
    assert count(runtime, Protocol) == 4


# -- one practice never sees or changes another's --------------------------------------

ID_CALLS = [(method, path, body) for method, path, body, *_ in CALLS if "{" in path]


@pytest.mark.parametrize(("method", "path", "body"), ID_CALLS,
                         ids=[f"{m} {p}" for m, p, _b in ID_CALLS])  # fmt: skip
def test_another_practices_records_answer_404_like_ones_that_never_existed(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    elsewhere: Elsewhere,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = audited(runtime)
    theirs = client.open(elsewhere.scene.url(path), method=method, headers=api_headers, json=body)
    assert (theirs.status_code, theirs.json) == (404, {"error": "not found"})
    nobodys = Scene("never_made", uuid.uuid4().hex, uuid.uuid4().hex)
    never = client.open(nobodys.url(path), method=method, headers=api_headers, json=body)
    assert (never.status_code, never.json) == (theirs.status_code, theirs.json)
    assert audited(runtime) == before
    # ...and theirs is as it was
    their_consultation = f"/api/v1/consultations/{elsewhere.scene.consultation_id}"
    got = client.get(their_consultation, headers=elsewhere.headers).json
    assert [i["status"] for i in got["invitations"]] == ["pending", "pending"]
    assert [i["due_at"] for i in got["invitations"]] == [
        "2026-03-16T10:00:00Z",
        "2026-04-13T09:00:00Z",
    ]
    [their_protocol] = [
        p
        for p in client.get("/api/v1/protocols", headers=elsewhere.headers).json
        if p["name"] == "elsewhere_review"
    ]
    assert their_protocol["title"] == NEW_PROTOCOL["title"]


def test_each_practice_lists_and_edits_only_its_own_protocols_and_settings(
    client: FlaskClient, api_headers: dict[str, str], elsewhere: Elsewhere
) -> None:
    ours_before = client.get("/api/v1/protocols", headers=api_headers).json
    assert [p["name"] for p in ours_before] == DEFAULT_PROTOCOLS
    theirs = [p["name"] for p in client.get("/api/v1/protocols", headers=elsewhere.headers).json]
    assert theirs == sorted([*DEFAULT_PROTOCOLS, "elsewhere_review"])

    # a name both practices have: each edits its own
    edit = {"title": "Ours now"}
    assert ok(client.put("/api/v1/protocols/wellbeing", headers=api_headers, json=edit))
    assert ok(client.delete("/api/v1/protocols/anxiety_review", headers=api_headers))
    assert ok(client.patch("/api/v1/practice", headers=api_headers, json={"nation": "WLS"}))
    theirs_now = {
        p["name"]: p for p in client.get("/api/v1/protocols", headers=elsewhere.headers).json
    }
    assert theirs_now["wellbeing"]["title"] == "Wellbeing (WHO-5 monthly for 6 months)"
    assert "anxiety_review" in theirs_now
    assert practice_now(client, elsewhere.headers)["nation"] == "ENG"
    assert practice_now(client, api_headers)["nation"] == "WLS"


@pytest.mark.parametrize("raw_id", [raw for _what, raw in WEIRD_IDS],
                         ids=[what for what, _raw in WEIRD_IDS])  # fmt: skip
@pytest.mark.parametrize(("method", "path", "body"), ID_CALLS,
                         ids=[f"{m} {p}" for m, p, _b in ID_CALLS])  # fmt: skip
def test_ids_and_names_of_any_shape_answer_404_not_500(
    client: FlaskClient,
    api_headers: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    raw_id: str,
) -> None:
    url = path.format(name=raw_id, consultation_id=raw_id, invitation_id=raw_id)
    response = client.open(url, method=method, headers=api_headers, json=body)
    assert (response.status_code, response.json) == (404, {"error": "not found"})


# -- protocols -----------------------------------------------------------------------


def test_every_practice_starts_with_the_default_protocols(
    client: FlaskClient, api_headers: dict[str, str]
) -> None:
    protocols = client.get("/api/v1/protocols", headers=api_headers).json
    assert [p["name"] for p in protocols] == DEFAULT_PROTOCOLS
    by_name = {p["name"]: p for p in protocols}
    assert by_name["depression_review"]["schedule"] == after("P2W", "P6W", "P12W")
    assert by_name["alcohol_brief_intervention"]["schedule"] == after(
        "P4W", "P12W", instrument="auditc"
    )
    assert [s["after"] for s in by_name["wellbeing"]["schedule"]] == [f"P{m}M" for m in range(1, 7)]


def test_a_new_protocol_is_listed_and_schedules_consultations(
    client: FlaskClient, runtime: Runtime, demo: Demo, api_headers: dict[str, str], patient_id: str
) -> None:
    response = client.post("/api/v1/protocols", headers=api_headers, json=NEW_PROTOCOL)
    assert response.status_code == 201
    assert response.json == {**NEW_PROTOCOL, "created_at": "2026-03-02T10:00:00Z"}
    listed = client.get("/api/v1/protocols", headers=api_headers).json
    assert response.json in listed
    [(action, subject_type, subject_id, actor)] = audited(runtime)
    assert (action, subject_type, actor) == (
        "protocol.created",
        "protocol",
        token_actor(runtime, demo),
    )
    with transaction(runtime.engine, read_only=True) as session:
        assert session.get(Protocol, subject_id).name == "low_mood_review"

    created = consult(client, api_headers, patient_id, protocol="low_mood_review")
    assert [(i["instrument"], i["due_at"]) for i in created["invitations"]] == [
        ("phq2", "2026-03-16T10:00:00Z"),
        ("phq9", "2026-04-13T09:00:00Z"),  # 10:00 BST, four weeks on
    ]


def test_durations_are_stored_as_given(client: FlaskClient, api_headers: dict[str, str]) -> None:
    body = {**NEW_PROTOCOL, "schedule": [{"instrument": "gad7", "after": " P1Y2M3DT4H "}]}
    response = client.post("/api/v1/protocols", headers=api_headers, json=body)
    assert response.status_code == 201
    assert response.json["schedule"] == [{"instrument": "gad7", "after": "P1Y2M3DT4H"}]


BAD_PROTOCOLS = [
    # what                                  changes to a good one                  field
    ("a name already used", {"name": "depression_review"}, "name"),
    ("a name in capitals", {"name": "Low_Mood"}, "name"),
    ("a name with spaces", {"name": "low mood"}, "name"),
    ("a name with a hyphen", {"name": "low-mood"}, "name"),
    ("a name starting with a digit", {"name": "2_weeks"}, "name"),
    ("a name of 61 characters", {"name": "a" * 61}, "name"),
    ("a name that is a number", {"name": 7}, "name"),
    ("no name", {"name": MISSING}, "name"),
    ("no title", {"title": MISSING}, "title"),
    ("a blank title", {"title": "   "}, "title"),
    ("a title of 121 characters", {"title": "t" * 121}, "title"),
    ("a title with a line break", {"title": "Low\nmood"}, "title"),
    ("a title that is a list", {"title": ["Low mood"]}, "title"),
    ("no schedule", {"schedule": MISSING}, "schedule"),
    ("an empty schedule", {"schedule": []}, "schedule"),
    ("a schedule that is not a list", {"schedule": {"instrument": "phq9", "after": "P1D"}},
     "schedule"),
    ("a schedule entry that is not an object", {"schedule": ["phq9"]}, "schedule[0]"),
    ("an unknown instrument", {"schedule": after("P1D", instrument="phq10")},
     "schedule[0].instrument"),
    ("an unknown instrument second",
     {"schedule": [*after("P1D"), *after("P2D", instrument="bdi")]}, "schedule[1].instrument"),
    ("a duration in words", {"schedule": after("fortnight")}, "schedule[0].after"),
    ("a negative duration", {"schedule": after("-P1D")}, "schedule[0].after"),
    ("days as a number", {"schedule": [{"instrument": "phq9", "after": 14}]},
     "schedule[0].after"),
    ("no duration", {"schedule": [{"instrument": "phq9"}]}, "schedule[0].after"),
    ("more than five years", {"schedule": after("P1D", "P5Y1D")}, "schedule[1].after"),
    ("a duration past the calendar", {"schedule": after("P9000Y")}, "schedule[0].after"),
    ("53 questionnaires", {"schedule": after(*[f"P{w}W" for w in range(53)])}, "schedule"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "field"), [(c, f) for _w, c, f in BAD_PROTOCOLS],
                         ids=[w for w, _c, _f in BAD_PROTOCOLS])  # fmt: skip
def test_bad_protocols_answer_422_naming_the_field_and_store_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    changes: dict[str, Any],
    field: str,
) -> None:
    response = client.post(
        "/api/v1/protocols", headers=api_headers, json=changed(NEW_PROTOCOL, changes)
    )
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert field.split("[")[0] in response.json["error"]
    assert count(runtime, Protocol) == 4
    assert audited(runtime) == []


@pytest.mark.parametrize("body", [[NEW_PROTOCOL], "low_mood_review", None])
def test_a_protocol_body_that_is_not_a_json_object_answers_422(
    client: FlaskClient, api_headers: dict[str, str], body: Any
) -> None:
    response = client.post("/api/v1/protocols", headers=api_headers, json=body)
    assert (response.status_code, response.json["field"]) == (422, "body")


DEPRESSION_REVIEW = "Depression review (PHQ-9 at 2, 6 and 12 weeks)"
EDITS = [
    # what              the edit                                     title after      schedule after
    ("the title", {"title": "  Depression follow-up "}, "Depression follow-up",
     after("P2W", "P6W", "P12W")),
    ("the schedule", {"schedule": after("P1W", "P4W")}, DEPRESSION_REVIEW,
     after("P1W", "P4W")),
    ("both", {"title": "Short", "schedule": after("P3D", instrument="phq2")}, "Short",
     after("P3D", instrument="phq2")),
    ("both, with its own name", {"name": "depression_review", "title": "Same name"}, "Same name",
     after("P2W", "P6W", "P12W")),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "title", "schedule"), [e[1:] for e in EDITS],
                         ids=[e[0] for e in EDITS])  # fmt: skip
def test_a_protocol_is_edited_for_future_consultations_only(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    patient_id: str,
    edit: dict[str, Any],
    title: str,
    schedule: list[dict[str, str]],
) -> None:
    already = client.get(f"/api/v1/consultations/{ours.consultation_id}", headers=api_headers).json

    response = client.put("/api/v1/protocols/depression_review", headers=api_headers, json=edit)
    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["title"]) == ("depression_review", title)
    assert response.json["schedule"] == schedule
    assert [a[:2] for a in audited(runtime)] == [("protocol.updated", "protocol")]

    # the consultation registered before keeps its invitations; a new one follows the edit
    unchanged = client.get(f"/api/v1/consultations/{ours.consultation_id}", headers=api_headers)
    assert unchanged.json == already
    created = consult(client, api_headers, patient_id, protocol="depression_review")
    assert [i["instrument"] for i in created["invitations"]] == [s["instrument"] for s in schedule]


BAD_EDITS = [
    # what                          the edit                                         field
    ("nothing to change", {}, "body"),
    ("a new name", {"name": "low_mood"}, "name"),
    ("a field protocols do not have", {"status": "retired"}, "status"),
    ("a blank title", {"title": ""}, "title"),
    ("a title with a NUL byte", {"title": "Low\x00mood"}, "title"),
    ("an empty schedule", {"schedule": []}, "schedule"),
    ("an unknown instrument", {"schedule": after("P1W", instrument="phq10")},
     "schedule[0].instrument"),
    ("a bad duration", {"title": "Fine", "schedule": after("P1W", "soon")}, "schedule[1].after"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "field"), [(e, f) for _w, e, f in BAD_EDITS],
                         ids=[w for w, _e, _f in BAD_EDITS])  # fmt: skip
def test_bad_edits_answer_422_naming_the_field_and_change_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    edit: dict[str, Any],
    field: str,
) -> None:
    before = client.get("/api/v1/protocols", headers=api_headers).json
    response = client.put("/api/v1/protocols/depression_review", headers=api_headers, json=edit)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert client.get("/api/v1/protocols", headers=api_headers).json == before
    assert audited(runtime) == []


def test_a_deleted_protocol_is_gone_but_its_consultations_keep_their_invitations(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    patient_id: str,
) -> None:
    response = client.delete("/api/v1/protocols/depression_review", headers=api_headers)
    assert (response.status_code, response.data) == (204, b"")
    names = [p["name"] for p in client.get("/api/v1/protocols", headers=api_headers).json]
    assert "depression_review" not in names
    assert statuses(client, api_headers, ours.consultation_id) == ["pending"] * 3
    assert [a[:2] for a in audited(runtime)] == [("protocol.deleted", "protocol")]

    again = client.delete("/api/v1/protocols/depression_review", headers=api_headers)
    assert (again.status_code, again.json) == (404, {"error": "not found"})
    body = {
        "patient_id": patient_id,
        "occurred_at": "2026-03-16T10:00:00",
        "protocol": "depression_review",
    }
    refused = client.post("/api/v1/consultations", headers=api_headers, json=body)
    assert (refused.status_code, refused.json["field"]) == (422, "protocol")
    # and the name can be used again
    recreated = {**NEW_PROTOCOL, "name": "depression_review"}
    assert client.post("/api/v1/protocols", headers=api_headers, json=recreated).status_code == 201


# -- a consultation: read, cancel, reschedule -----------------------------------------


def test_a_consultation_is_read_back_with_its_invitations(
    client: FlaskClient, api_headers: dict[str, str], patient_id: str
) -> None:
    created = consult(client, api_headers, patient_id, schedule=after("P6W", "P2W"))
    response = client.get(f"/api/v1/consultations/{created['id']}", headers=api_headers)
    assert response.status_code == 200
    assert response.json == {
        **created,
        "invitations": sorted(created["invitations"], key=lambda i: i["due_at"]),
    }


def test_cancelling_a_consultation_cancels_its_pending_invitations_and_leaves_the_active_one(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    demo: Demo,
    api_headers: dict[str, str],
    patient_id: str,
) -> None:
    # one questionnaire now (sent: active), two more to come
    created = consult(
        client, api_headers, patient_id, occurred_at=clock.now.isoformat(),
        schedule=after("P0D", "P2W", "P6W"),
    )  # fmt: skip
    assert dispatch_due(runtime, clock.now)["started"] == 1
    sent_before = count(runtime, Conversation)

    clock.advance(minutes=30)
    response = client.post(f"/api/v1/consultations/{created['id']}/cancel", headers=api_headers)
    assert response.status_code == 200
    answer = response.json
    assert [(i["status"], i["finished_at"]) for i in answer["invitations"]] == [
        ("active", None),
        ("cancelled", zulu(clock.now)),
        ("cancelled", zulu(clock.now)),
    ]
    outcome = answer["outcome"]
    assert (outcome["cancelled"], outcome["moved"], outcome["left"]) == (2, 0, 1)
    assert outcome["left_by_status"] == {"active": 1}
    assert "Cancelled 2 pending questionnaires" in outcome["message"]
    assert "already sent is still open and was left alone" in outcome["message"]

    actor = token_actor(runtime, demo)
    cancelled_ids = [i["id"] for i in answer["invitations"][1:]]
    assert sorted(audited(runtime)) == sorted(
        [("invitation.cancelled", "invitation", i, actor) for i in cancelled_ids]
        + [("consultation.cancelled", "consultation", created["id"], actor)]
    )

    # the scheduler, weeks later, starts nothing for them
    for days in (14, 42, 60):
        clock.now = datetime.fromisoformat("2026-03-02T10:00:00+00:00") + timedelta(days=days)
        summary = run_due_work(runtime, clock.now)
        assert summary["dispatch"]["started"] == 0
    assert count(runtime, Conversation) == sent_before
    assert statuses(client, api_headers, created["id"]) == ["incomplete", "cancelled", "cancelled"]


def test_cancelling_twice_cancels_nothing_more(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], ours: Scene
) -> None:
    url = f"/api/v1/consultations/{ours.consultation_id}/cancel"
    first = client.post(url, headers=api_headers).json
    second = client.post(url, headers=api_headers)
    assert second.status_code == 200
    assert second.json["invitations"] == first["invitations"]
    assert second.json["outcome"] == {
        "cancelled": 0,
        "moved": 0,
        "left": 3,
        "left_by_status": {"cancelled": 3},
        "message": "Cancelled 0 pending questionnaires. "
        "3 finished invitations were left as they were.",
    }


RESCHEDULES = [
    # consultation (local)  offsets      the move                                 due_at after (UTC)
    #                                                                             why
    ("2026-03-16T10:00:00", ["P2W"], {"shift": "-P1W"}, ["2026-03-23T10:00:00Z"],
     "a week earlier, back into GMT: still 10:00 local"),
    ("2026-03-16T10:00:00", ["P1W"], {"shift": "P1W"}, ["2026-03-30T09:00:00Z"],
     "a week later, into BST: still 10:00 local"),
    ("2026-03-16T10:00:00", ["P1W"], {"shift": "P7D"}, ["2026-03-30T09:00:00Z"],
     "seven days is the same as a week"),
    ("2026-03-16T10:00:00", ["P2W"], {"shift": "PT2H"}, ["2026-03-30T11:00:00Z"],
     "two hours later: 12:00 local"),
    ("2026-03-16T10:00:00", ["P2W"], {"shift": "P1M"}, ["2026-04-30T09:00:00Z"],
     "a calendar month"),
    ("2026-03-16T10:00:00", ["P2W"], {"shift": "-P1M"}, ["2026-03-02T10:00:00Z"],
     "into the past: due now, at the next opening"),
    ("2026-03-16T10:00:00", ["P1W", "P2W"], {"occurred_at": "2026-03-23T10:00:00"},
     ["2026-03-30T09:00:00Z", "2026-04-06T09:00:00Z"],
     "a later consultation: each keeps its offset, across the change"),
    ("2026-03-30T10:00:00", ["P0D", "P2W"], {"occurred_at": "2026-03-23T10:00:00"},
     ["2026-03-23T10:00:00Z", "2026-04-06T09:00:00Z"],
     "an earlier consultation, back across the change"),
    ("2026-03-16T10:00:00", ["P2W"], {"occurred_at": "2026-03-09T09:00:00Z"},
     ["2026-03-23T09:00:00Z"], "a new time given in UTC"),
    ("2026-10-19T10:00:00", ["P1W"], {"shift": "P1W"}, ["2026-11-02T10:00:00Z"],
     "autumn, BST to GMT: still 10:00 local"),
]  # fmt: skip


@pytest.mark.parametrize(("occurred_at", "offsets", "move", "due_at"),
                         [r[:4] for r in RESCHEDULES], ids=[r[4] for r in RESCHEDULES])  # fmt: skip
def test_rescheduling_moves_pending_invitations_on_the_practices_wall_clock(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    patient_id: str,
    occurred_at: str,
    offsets: list[str],
    move: dict[str, str],
    due_at: list[str],
) -> None:
    created = consult(client, api_headers, patient_id, occurred_at, schedule=after(*offsets))
    url = f"/api/v1/consultations/{created['id']}/reschedule"
    response = client.post(url, headers=api_headers, json=move)
    assert response.status_code == 200, response.json
    assert [i["due_at"] for i in response.json["invitations"]] == due_at
    assert [i["status"] for i in response.json["invitations"]] == ["pending"] * len(offsets)
    assert response.json["outcome"]["moved"] == len(offsets)
    if "occurred_at" in move:
        moved_to = datetime.fromisoformat(move["occurred_at"])
        moved_to = moved_to if moved_to.tzinfo else moved_to.replace(tzinfo=LONDON)
        assert response.json["occurred_at"] == zulu(moved_to.astimezone(UTC))
    else:
        assert response.json["occurred_at"] == created["occurred_at"]
    assert client.get(f"/api/v1/consultations/{created['id']}", headers=api_headers).json == {
        k: v for k, v in response.json.items() if k != "outcome"
    }


def test_rescheduling_across_the_spring_clock_change_keeps_10_00_local(
    client: FlaskClient, api_headers: dict[str, str], patient_id: str
) -> None:
    created = consult(client, api_headers, patient_id, protocol="depression_review")
    url = f"/api/v1/consultations/{created['id']}/reschedule"
    # the consultation was really a week later, then the plan moves three days earlier
    for move in ({"occurred_at": "2026-03-23T10:00:00"}, {"shift": "-P3D"}):
        response = client.post(url, headers=api_headers, json=move)
        assert response.status_code == 200, response.json
    due = [datetime.fromisoformat(i["due_at"]) for i in response.json["invitations"]]
    assert [d.astimezone(LONDON).strftime("%a %d %b %H:%M") for d in due] == [
        "Fri 03 Apr 10:00",
        "Fri 01 May 10:00",
        "Fri 12 Jun 10:00",
    ]
    assert {d.hour for d in due} == {9}  # 10:00 BST


def test_rescheduling_leaves_the_active_questionnaire_alone_and_says_so(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
) -> None:
    created = consult(
        client, api_headers, patient_id, occurred_at=clock.now.isoformat(),
        schedule=after("P0D", "P2W"),
    )  # fmt: skip
    assert dispatch_due(runtime, clock.now)["started"] == 1
    url = f"/api/v1/consultations/{created['id']}/reschedule"
    response = client.post(url, headers=api_headers, json={"shift": "P1D"})
    assert response.status_code == 200
    assert [(i["status"], i["due_at"]) for i in response.json["invitations"]] == [
        ("active", "2026-03-02T10:00:00Z"),
        ("pending", "2026-03-17T10:00:00Z"),
    ]
    outcome = response.json["outcome"]
    assert (outcome["moved"], outcome["left"], outcome["left_by_status"]) == (1, 1, {"active": 1})
    assert "left alone" in outcome["message"]


def test_a_cancel_waits_for_a_scheduler_starting_an_invitation_then_leaves_it_alone(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
) -> None:
    created = consult(client, api_headers, patient_id, schedule=after("P0D", "P2W"))
    first, second = (i["id"] for i in created["invitations"])
    url = f"/api/v1/consultations/{created['id']}/cancel"
    answers: list[Any] = []
    cancel = threading.Thread(target=lambda: answers.append(client.post(url, headers=api_headers)))
    # a scheduler has claimed the first invitation and is starting it...
    with transaction(runtime.engine) as session:
        claimed = session.exec(
            select(Invitation).where(Invitation.id == first).with_for_update()
        ).one()
        claimed.status, claimed.started_at = "active", clock.now
        session.flush()
        cancel.start()
        cancel.join(timeout=0.5)
        assert cancel.is_alive()  # ...so the cancel waits for it
    cancel.join(timeout=10)
    [response] = answers
    assert response.status_code == 200
    assert [(i["id"], i["status"]) for i in response.json["invitations"]] == [
        (first, "active"),
        (second, "cancelled"),
    ]
    assert response.json["outcome"]["left_by_status"] == {"active": 1}


BAD_RESCHEDULES = [
    # what                            the body                                          field
    ("neither", {}, "shift"),
    ("both", {"shift": "P1D", "occurred_at": "2026-03-17T10:00:00"}, "shift"),
    ("a shift in words", {"shift": "a week"}, "shift"),
    ("a shift as a number", {"shift": 7}, "shift"),
    ("a blank shift", {"shift": " "}, "shift"),
    ("a shift past the calendar", {"shift": "P9000Y"}, "shift"),
    ("occurred_at in words", {"occurred_at": "last Tuesday"}, "occurred_at"),
    ("occurred_at as a number", {"occurred_at": 1773655200}, "occurred_at"),
    ("occurred_at on 30 February", {"occurred_at": "2026-02-30T10:00:00"}, "occurred_at"),
    ("a list", [{"shift": "P1D"}], "body"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), [(b, f) for _w, b, f in BAD_RESCHEDULES],
                         ids=[w for w, _b, _f in BAD_RESCHEDULES])  # fmt: skip
def test_bad_reschedules_answer_422_naming_the_field_and_move_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    body: Any,
    field: str,
) -> None:
    url = f"/api/v1/consultations/{ours.consultation_id}"
    before = client.get(url, headers=api_headers).json
    response = client.post(f"{url}/reschedule", headers=api_headers, json=body)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert client.get(url, headers=api_headers).json == before
    assert audited(runtime) == []


def test_rescheduling_is_audited_per_invitation(
    client: FlaskClient, runtime: Runtime, demo: Demo, api_headers: dict[str, str], ours: Scene
) -> None:
    url = f"/api/v1/consultations/{ours.consultation_id}/reschedule"
    answer = client.post(url, headers=api_headers, json={"shift": "P1W"}).json
    actor = token_actor(runtime, demo)
    assert sorted(audited(runtime)) == sorted(
        [("invitation.rescheduled", "invitation", i["id"], actor) for i in answer["invitations"]]
        + [("consultation.rescheduled", "consultation", ours.consultation_id, actor)]
    )


# -- one invitation -------------------------------------------------------------------


def test_one_pending_invitation_is_cancelled(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    demo: Demo,
    api_headers: dict[str, str],
    ours: Scene,
) -> None:
    response = client.post(f"/api/v1/invitations/{ours.invitation_id}/cancel", headers=api_headers)
    assert response.status_code == 200
    assert (response.json["id"], response.json["status"]) == (ours.invitation_id, "cancelled")
    assert response.json["finished_at"] == zulu(clock.now)
    assert statuses(client, api_headers, ours.consultation_id) == [
        "cancelled",
        "pending",
        "pending",
    ]
    assert audited(runtime) == [
        ("invitation.cancelled", "invitation", ours.invitation_id, token_actor(runtime, demo))
    ]


MOVES = [
    # due_at given                    stored (UTC)              why
    ("2026-04-01T10:00:00", "2026-04-01T09:00:00Z", "local time, in BST"),
    ("2026-03-20T10:00:00", "2026-03-20T10:00:00Z", "local time, in GMT"),
    ("2026-04-01T10:00:00+02:00", "2026-04-01T08:00:00Z", "with an offset"),
    ("2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z", "now"),
    ("2026-03-02T09:58:00Z", "2026-03-02T10:00:00Z", "a moment ago (a caller's slow clock)"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "stored"), [m[:2] for m in MOVES], ids=[m[2] for m in MOVES])
def test_one_pending_invitation_is_moved(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    given: str,
    stored: str,
) -> None:
    url = f"/api/v1/invitations/{ours.invitation_id}"
    response = client.patch(url, headers=api_headers, json={"due_at": given})
    assert response.status_code == 200, response.json
    assert (response.json["due_at"], response.json["status"]) == (stored, "pending")
    assert [a[:3] for a in audited(runtime)] == [
        ("invitation.rescheduled", "invitation", ours.invitation_id)
    ]


def test_a_moved_invitation_goes_at_its_new_time(
    client: FlaskClient, runtime: Runtime, clock: Clock, api_headers: dict[str, str], ours: Scene
) -> None:
    url = f"/api/v1/invitations/{ours.invitation_id}"
    assert ok(client.patch(url, headers=api_headers, json={"due_at": "2026-03-03T11:00:00"}))
    clock.now = datetime.fromisoformat("2026-03-03T10:59:00+00:00")
    assert run_due_work(runtime, clock.now)["dispatch"]["started"] == 0
    clock.now = datetime.fromisoformat("2026-03-03T11:00:00+00:00")
    assert run_due_work(runtime, clock.now)["dispatch"]["started"] == 1
    assert statuses(client, api_headers, ours.consultation_id) == ["active", "pending", "pending"]


BAD_MOVES = [
    # what                        the body                                            field
    ("no due_at", {}, "due_at"),
    ("due_at in words", {"due_at": "tomorrow"}, "due_at"),
    ("due_at as a number", {"due_at": 1773655200}, "due_at"),
    ("due_at yesterday", {"due_at": "2026-03-01T10:00:00Z"}, "due_at"),
    ("due_at ten minutes ago", {"due_at": "2026-03-02T09:50:00Z"}, "due_at"),
    ("the status", {"status": "cancelled"}, "status"),
    ("the instrument too", {"due_at": "2026-04-01T10:00:00", "instrument": "gad7"}, "instrument"),
    ("a list", [{"due_at": "2026-04-01T10:00:00"}], "body"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), [(b, f) for _w, b, f in BAD_MOVES],
                         ids=[w for w, _b, _f in BAD_MOVES])  # fmt: skip
def test_bad_moves_answer_422_naming_the_field(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    body: Any,
    field: str,
) -> None:
    response = client.patch(
        f"/api/v1/invitations/{ours.invitation_id}", headers=api_headers, json=body
    )
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert field in response.json["error"]
    assert invitation_row(runtime, ours.invitation_id).due_at == datetime.fromisoformat(
        "2026-03-30T09:00:00+00:00"
    )
    assert audited(runtime) == []


NOT_PENDING = ["active", "completed", "incomplete", "opted_out", "expired", "cancelled"]


@pytest.mark.parametrize("status", NOT_PENDING)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/api/v1/invitations/{id}/cancel", None),
     ("PATCH", "/api/v1/invitations/{id}", {"due_at": "2026-04-01T10:00:00"})],
    ids=["cancel", "move"],
)  # fmt: skip
def test_an_invitation_that_is_not_pending_answers_409_and_is_left_as_it_is(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ours: Scene,
    status: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    set_status(runtime, ours.invitation_id, status)
    before = invitation_row(runtime, ours.invitation_id)
    url = path.format(id=ours.invitation_id)
    response = client.open(url, method=method, headers=api_headers, json=body)
    assert response.status_code == 409
    assert response.json["error"].startswith(f"this invitation is {status}, not pending")
    assert ("may be answering" in response.json["error"]) == (status == "active")
    assert invitation_row(runtime, ours.invitation_id) == before
    assert audited(runtime) == []


def test_an_invitation_already_sent_cannot_be_cancelled_or_moved(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
) -> None:
    created = consult(
        client, api_headers, patient_id, occurred_at=clock.now.isoformat(), schedule=after("P0D")
    )
    [invitation] = created["invitations"]
    assert dispatch_due(runtime, clock.now)["started"] == 1
    cancel = client.post(f"/api/v1/invitations/{invitation['id']}/cancel", headers=api_headers)
    move = client.patch(
        f"/api/v1/invitations/{invitation['id']}",
        headers=api_headers,
        json={"due_at": "2026-04-01T10:00:00"},
    )
    assert (cancel.status_code, move.status_code) == (409, 409)
    assert statuses(client, api_headers, created["id"]) == ["active"]


# -- the practice's settings ----------------------------------------------------------

DEFAULT_SETTINGS = {
    "name": "Demo Surgery",
    "sms_number": "+447700900000",
    "timezone": "Europe/London",
    "nation": "ENG",
    "send_window_start": "09:00",
    "send_window_end": "17:00",
    "working_days": ["mon", "tue", "wed", "thu", "fri"],
    "reminder_after_hours": 24,
    "max_reminders": 1,
    "expire_after_days": 7,
    "invitation_valid_days": 14,
    "escalate_after_minutes": 30,
    "escalate_every_minutes": 30,
    "contact_phone": "01632 960000",
    "contact_email": "reception@demo.prombot.test",
}


def test_the_practice_and_its_default_settings_are_read(
    client: FlaskClient, demo: Demo, api_headers: dict[str, str]
) -> None:
    assert practice_now(client, api_headers) == {"id": demo.practice.id, **DEFAULT_SETTINGS}


GOOD_SETTINGS = [
    # the change                                       what is stored
    ({"send_window_start": "08:00", "send_window_end": "12:00"},
     {"send_window_start": "08:00", "send_window_end": "12:00"}),
    ({"send_window_start": "8:30"}, {"send_window_start": "08:30"}),
    ({"send_window_end": "24:00"}, {"send_window_end": "24:00"}),
    ({"working_days": ["sat", "MON", "mon"]}, {"working_days": ["mon", "sat"]}),
    ({"working_days": "mon, wed fri"}, {"working_days": ["mon", "wed", "fri"]}),
    ({"nation": "sct"}, {"nation": "SCT"}),
    ({"nation": "NONE"}, {"nation": "NONE"}),
    ({"timezone": "Europe/Dublin"}, {"timezone": "Europe/Dublin"}),
    ({"reminder_after_hours": 167, "expire_after_days": 7},
     {"reminder_after_hours": 167, "expire_after_days": 7}),
    ({"max_reminders": 0, "reminder_after_hours": 168},
     {"max_reminders": 0, "reminder_after_hours": 168}),
    ({"max_reminders": 5}, {"max_reminders": 5}),
    ({"expire_after_days": 60, "invitation_valid_days": 90},
     {"expire_after_days": 60, "invitation_valid_days": 90}),
    ({"escalate_after_minutes": 5, "escalate_every_minutes": 1440},
     {"escalate_after_minutes": 5, "escalate_every_minutes": 1440}),
    ({"contact_phone": "020 7946 0000"}, {"contact_phone": "020 7946 0000"}),
    ({"contact_phone": "+441632960001"}, {"contact_phone": "01632 960001"}),
    ({"contact_phone": None, "contact_email": ""}, {"contact_phone": None, "contact_email": None}),
    ({"contact_email": "  gp@example.nhs.uk "}, {"contact_email": "gp@example.nhs.uk"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "stored"), GOOD_SETTINGS, ids=[str(c) for c, _s in GOOD_SETTINGS]
)
def test_settings_are_changed_and_audited(
    client: FlaskClient,
    runtime: Runtime,
    demo: Demo,
    api_headers: dict[str, str],
    change: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    response = client.patch("/api/v1/practice", headers=api_headers, json=change)
    assert response.status_code == 200, response.json
    expected = {"id": demo.practice.id, **DEFAULT_SETTINGS, **stored}
    assert response.json == {**expected, "warnings": []}
    assert practice_now(client, api_headers) == expected
    assert audited(runtime) == [
        ("practice.settings_changed", "practice", demo.practice.id, token_actor(runtime, demo))
    ]


def test_setting_what_is_already_set_writes_no_audit_row(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    same = {"nation": "ENG", "send_window_start": "09:00", "working_days": "mon tue wed thu fri"}
    assert client.patch("/api/v1/practice", headers=api_headers, json=same).status_code == 200
    assert audited(runtime) == []


BAD_SETTINGS = [
    # what                                   the change                              field
    ("nothing to change", {}, "body"),
    ("the practice's name", {"name": "New Surgery"}, "name"),
    ("the SMS number", {"sms_number": "+447700900001"}, "sms_number"),
    ("the id", {"id": "0" * 32}, "id"),
    ("a setting that does not exist", {"colour": "blue"}, "colour"),
    ("a zone that does not exist", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ("a zone abbreviation in lower case", {"timezone": "europe/london"}, "timezone"),
    ("a blank zone", {"timezone": ""}, "timezone"),
    ("a zone that is a number", {"timezone": 0}, "timezone"),
    ("a nation outside the UK", {"nation": "FRA"}, "nation"),
    ("England spelt out", {"nation": "England"}, "nation"),
    ("a start in words", {"send_window_start": "9am"}, "send_window_start"),
    ("a start at 25:00", {"send_window_start": "25:00"}, "send_window_start"),
    ("a start at 24:00", {"send_window_start": "24:00"}, "send_window_start"),
    ("a start at 12:60", {"send_window_start": "12:60"}, "send_window_start"),
    ("an end with seconds", {"send_window_end": "17:00:00"}, "send_window_end"),
    ("an end at 24:30", {"send_window_end": "24:30"}, "send_window_end"),
    ("an end that is a number", {"send_window_end": 17}, "send_window_end"),
    ("a start at the end", {"send_window_start": "17:00"}, "send_window_start"),
    ("an end before the start", {"send_window_start": "10:00", "send_window_end": "09:00"},
     "send_window_end"),
    ("no working days", {"working_days": []}, "working_days"),
    ("an unknown day", {"working_days": ["mon", "funday"]}, "working_days"),
    ("days in words", {"working_days": "weekdays"}, "working_days"),
    ("days as a number", {"working_days": 5}, "working_days"),
    ("reminders after 0 hours", {"reminder_after_hours": 0}, "reminder_after_hours"),
    ("reminders after 169 hours", {"reminder_after_hours": 169}, "reminder_after_hours"),
    ("reminder hours as text", {"reminder_after_hours": "24"}, "reminder_after_hours"),
    ("reminder hours with a fraction", {"reminder_after_hours": 1.5}, "reminder_after_hours"),
    ("reminder hours as true", {"reminder_after_hours": True}, "reminder_after_hours"),
    ("a reminder after the expiry", {"reminder_after_hours": 168}, "reminder_after_hours"),
    ("an expiry before the reminder", {"expire_after_days": 1}, "expire_after_days"),
    ("six reminders", {"max_reminders": 6}, "max_reminders"),
    ("minus one reminder", {"max_reminders": -1}, "max_reminders"),
    ("expiry after 0 days", {"expire_after_days": 0}, "expire_after_days"),
    ("expiry after 61 days", {"expire_after_days": 61}, "expire_after_days"),
    ("invitations valid 0 days", {"invitation_valid_days": 0}, "invitation_valid_days"),
    ("invitations valid 91 days", {"invitation_valid_days": 91}, "invitation_valid_days"),
    ("escalation after 4 minutes", {"escalate_after_minutes": 4}, "escalate_after_minutes"),
    ("escalation after a day and a minute", {"escalate_after_minutes": 1441},
     "escalate_after_minutes"),
    ("escalation every 0 minutes", {"escalate_every_minutes": 0}, "escalate_every_minutes"),
    ("escalation every 1441 minutes", {"escalate_every_minutes": 1441},
     "escalate_every_minutes"),
    ("a phone too short", {"contact_phone": "12345"}, "contact_phone"),
    ("a phone abroad", {"contact_phone": "+33 1 23 45 67 89"}, "contact_phone"),
    ("a phone in words", {"contact_phone": "ring reception"}, "contact_phone"),
    ("a phone that is a number", {"contact_phone": 2079460000}, "contact_phone"),
    ("an e-mail without @", {"contact_email": "reception"}, "contact_email"),
    ("an e-mail without a domain", {"contact_email": "reception@surgery"}, "contact_email"),
    ("an e-mail with a space", {"contact_email": "front desk@example.nhs.uk"}, "contact_email"),
    ("an e-mail with a line break", {"contact_email": "a@example.nhs.uk\nBcc: b@x.org"},
     "contact_email"),
    ("one good, one bad", {"send_window_start": "08:00", "max_reminders": 9}, "max_reminders"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), [(c, f) for _w, c, f in BAD_SETTINGS],
                         ids=[w for w, _c, _f in BAD_SETTINGS])  # fmt: skip
def test_bad_settings_answer_422_naming_the_field_and_change_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    change: dict[str, Any],
    field: str,
) -> None:
    before = practice_now(client, api_headers)
    response = client.patch("/api/v1/practice", headers=api_headers, json=change)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert field in response.json["error"]
    assert practice_now(client, api_headers) == before
    assert audited(runtime) == []


WINDOWS = [
    # the settings                                     due and checked at       outcome
    #                                                                           why
    ({}, "2026-03-02T10:00:00Z", "started", "the default window, 09:00-17:00"),
    ({"send_window_start": "08:00", "send_window_end": "12:00"}, "2026-03-02T10:00:00Z",
     "started", "08:00-12:00 at 10:00"),
    ({"send_window_start": "08:00", "send_window_end": "12:00"}, "2026-03-02T12:30:00Z",
     "deferred", "08:00-12:00 at 12:30"),
    ({}, "2026-03-02T12:30:00Z", "started", "the default window at 12:30"),
    ({"send_window_start": "11:00"}, "2026-03-02T10:00:00Z", "deferred", "11:00-17:00 at 10:00"),
    ({"send_window_end": "24:00"}, "2026-03-02T23:30:00Z", "started", "open until midnight"),
    ({"working_days": ["tue", "wed", "thu", "fri"]}, "2026-03-02T10:00:00Z", "deferred",
     "closed on Mondays"),
    ({}, "2026-03-07T10:00:00Z", "deferred", "Saturday, by default"),
    ({"working_days": "mon tue wed thu fri sat"}, "2026-03-07T10:00:00Z", "started",
     "open on Saturdays"),
    ({}, "2026-03-17T10:00:00Z", "started", "St Patrick's Day, in England"),
    ({"nation": "NIR"}, "2026-03-17T10:00:00Z", "deferred",
     "St Patrick's Day, a bank holiday in Northern Ireland"),
    ({"nation": "NONE"}, "2026-04-06T09:00:00Z", "started", "Easter Monday, ignoring holidays"),
    ({}, "2026-04-06T09:00:00Z", "deferred", "Easter Monday, in England"),
    ({"timezone": "America/New_York"}, "2026-03-02T10:00:00Z", "deferred",
     "05:00 in New York"),
    ({"timezone": "Asia/Kolkata"}, "2026-03-02T10:00:00Z", "started", "15:30 in India"),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "at", "outcome"), [w[:3] for w in WINDOWS],
                         ids=[w[3] for w in WINDOWS])  # fmt: skip
def test_the_scheduler_follows_the_practices_send_window(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
    settings: dict[str, Any],
    at: str,
    outcome: str,
) -> None:
    if settings:
        assert ok(client.patch("/api/v1/practice", headers=api_headers, json=settings))
    clock.now = datetime.fromisoformat(at)
    created = consult(client, api_headers, patient_id, at, schedule=after("P0D"))
    summary = run_due_work(runtime, clock.now)
    assert summary["dispatch"][outcome] == 1
    assert statuses(client, api_headers, created["id"]) == [
        "active" if outcome == "started" else "pending"
    ]


def test_a_narrower_window_defers_to_the_next_morning(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
) -> None:
    window = {"send_window_start": "08:00", "send_window_end": "12:00"}
    assert ok(client.patch("/api/v1/practice", headers=api_headers, json=window))
    created = consult(client, api_headers, patient_id, "2026-03-02T12:30:00", schedule=after("P0D"))
    for at, outcome, status in [
        ("2026-03-02T12:30:00+00:00", "deferred", "pending"),
        ("2026-03-03T07:59:00+00:00", "deferred", "pending"),
        ("2026-03-03T08:00:00+00:00", "started", "active"),
    ]:
        clock.now = datetime.fromisoformat(at)
        assert run_due_work(runtime, clock.now)["dispatch"][outcome] == 1, at
        assert statuses(client, api_headers, created["id"]) == [status]


@pytest.mark.parametrize(("valid_days", "outcome"), [(None, "started"), (1, "expired")])
def test_invitation_valid_days_decides_whether_a_missed_invitation_still_goes(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
    valid_days: int | None,
    outcome: str,
) -> None:
    if valid_days:
        change = {"invitation_valid_days": valid_days}
        assert ok(client.patch("/api/v1/practice", headers=api_headers, json=change))
    # due on Friday, the scheduler was down until Monday
    consult(client, api_headers, patient_id, "2026-02-27T10:00:00", schedule=after("P0D"))
    assert run_due_work(runtime, clock.now)["dispatch"][outcome] == 1


REMINDER_SETTINGS = [
    # the settings                    reminders sent two hours after the start
    ({}, 0),
    ({"reminder_after_hours": 2}, 1),
    ({"reminder_after_hours": 2, "max_reminders": 0}, 0),
]


@pytest.mark.parametrize(("settings", "reminded"), REMINDER_SETTINGS)
def test_the_reminder_settings_decide_when_a_reminder_goes(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    patient_id: str,
    settings: dict[str, Any],
    reminded: int,
) -> None:
    if settings:
        assert ok(client.patch("/api/v1/practice", headers=api_headers, json=settings))
    consult(client, api_headers, patient_id, clock.now.isoformat(), schedule=after("P0D"))
    assert run_due_work(runtime, clock.now)["dispatch"]["started"] == 1
    clock.advance(hours=2)
    assert run_due_work(runtime, clock.now)["reminders"]["reminded"] == reminded


# -- the instruments ------------------------------------------------------------------


def test_the_instruments_are_listed_from_the_catalogue(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/instruments", headers=api_headers)
    assert response.status_code == 200
    by_id = {i["id"]: i for i in response.json}
    assert set(by_id) == INSTRUMENTS == set(runtime.catalogue)
    for instrument_id, row in by_id.items():
        instrument = runtime.catalogue[instrument_id]
        assert row["items"] == len(instrument.items)
        assert (row["title"], row["short_title"]) == (instrument.title, instrument.short_title)
        assert row["version"] == instrument.version
        assert row["licence"]
    assert by_id["phq9"]["short_title"] == "PHQ-9"
    assert by_id["phq9"]["scored_items"] == 9
