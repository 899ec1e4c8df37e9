"""A practice's staff through /api/v1: duty clinicians and escalation contacts.

Each test reads as a line of the specification: a practice lists, adds,
changes and removes its own staff (another practice's answer 404); every
change is audited with the token as the actor; bad input is a 422 naming the
field; no answer ever carries a password hash; and whoever is put on duty
through the API is the one the next urgent alert reaches.

Every name and address is invented; mobiles are Ofcom drama numbers.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import col, select
from werkzeug.security import check_password_hash

from bot.services import staff_admin
from bot.services.alert_notices import notify_due
from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AlertNotification, AuditEvent, Message, StaffUser
from tests.service.alerting import other_practice, raise_urgent
from tests.service.conftest import Clock
from tests.service.test_api import (
    BAD_AUTHORIZATION,
    MISSING,
    STAFF_ENDPOINTS,
    WEIRD_IDS,
    _resolve,
    bearer,
    changed,
    conforms,
    count,
)
from tests.service.test_staff_views import sign_in

RILEY = "dr.riley@demo.prombot.test"  # the demo's duty clinician
RILEY_MOBILE = "+447700900050"
NEW_STAFF = {
    "email": "Dr.Patel@Demo.Prombot.Test",
    "name": "Dr Ash Patel",
    "role": "clinician",
    "on_duty": False,
    "escalation_contact": True,
    "mobile": "07700 900061",
    "password": "a-long-enough-password",
}
PASSWORD_WORDS = ("scrypt", "pbkdf2", "$")  # what a werkzeug hash looks like


# -- helpers ------------------------------------------------------------------------


def add(client: FlaskClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    """Add a member of staff; their record as listed (the answer's warnings set aside)."""
    response = client.post("/api/v1/staff", headers=headers, json=changed(NEW_STAFF, fields))
    assert response.status_code == 201, response.json
    assert isinstance(response.json["warnings"], list)
    return {k: v for k, v in response.json.items() if k != "warnings"}


def row(runtime: Runtime, staff_id: str) -> StaffUser | None:
    with transaction(runtime.engine, read_only=True) as session:
        return session.get(StaffUser, staff_id)


def by_email(runtime: Runtime, email: str) -> StaffUser:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.email == email)).one()


def staff_rows(runtime: Runtime) -> list[dict[str, Any]]:
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(select(StaffUser).order_by(col(StaffUser.id))).all()
        return [r.model_dump() for r in rows]


def audited(runtime: Runtime) -> list[tuple[str, str, str | None, str]]:
    """(action, subject_type, subject_id, actor) of every staff audit row written through
    the API (not the staff pages' sign-ins), oldest first."""
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(
            select(AuditEvent)
            .where(AuditEvent.subject_type == "staff_user")
            .where(col(AuditEvent.actor).startswith("token:"))
            .order_by(col(AuditEvent.at), col(AuditEvent.action))
        ).all()
    return [(r.action, r.subject_type, r.subject_id, r.actor) for r in rows]


def token_actor(client: FlaskClient, headers: dict[str, str], runtime: Runtime) -> str:
    """The actor the API writes for these headers: learned from a change it audits."""
    made = add(client, headers, email="actor.probe@demo.prombot.test", mobile=None)
    *_, (_action, _type, subject, actor) = audited(runtime)
    assert subject == made["id"]
    assert client.delete(f"/api/v1/staff/{made['id']}", headers=headers).status_code == 204
    return actor


def staff_texts(runtime: Runtime) -> list[str]:
    """The mobiles texted about alerts (outbound texts to no patient)."""
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(
            select(Message)
            .where(col(Message.patient_id).is_(None))
            .where(Message.direction == "outbound")
        ).all()
    return sorted(m.phone for m in rows)


def no_password_in(response: Any, hashes: list[str]) -> None:
    text = response.get_data(as_text=True)
    for word in (*PASSWORD_WORDS, *hashes, NEW_STAFF["password"], DEMO_PASSWORD):
        assert word not in text, f"{word!r} in {response.request.method} {response.request.path}"


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


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def riley_id(runtime: Runtime, demo: Demo) -> str:
    return by_email(runtime, RILEY).id


@dataclass
class Elsewhere:
    headers: dict[str, str]
    name: str
    staff_id: str
    email: str


@pytest.fixture
def elsewhere(runtime: Runtime, clock: Clock, demo: Demo) -> Elsewhere:
    """A second practice with an on-duty clinician of its own."""
    other = other_practice(runtime, clock.now)
    return Elsewhere(
        bearer(other.api_token), other.practice.name, other.clinician.id, other.clinician.email
    )


# -- every endpoint: success, the audit row, the documented answer, 401 ----------------

CALLS = [
    # method    path                        body                     status  audit actions
    ("GET", "/api/v1/staff", None, 200, []),
    ("POST", "/api/v1/staff", NEW_STAFF, 201, ["staff.created"]),
    ("PATCH", "/api/v1/staff/{staff_id}", {"on_duty": False, "mobile": None}, 200,
     ["staff.updated"]),
    ("PATCH", "/api/v1/staff/{staff_id}", {"password": "another-long-password"}, 200,
     ["staff.password_set"]),
    ("DELETE", "/api/v1/staff/{staff_id}", None, 204, ["staff.deleted"]),
]  # fmt: skip
CALL_IDS = [f"{method} {path} {body}" for method, path, body, *_rest in CALLS]


def test_the_call_table_covers_every_staff_endpoint() -> None:
    assert {(method, path) for method, path, *_rest in CALLS} == set(STAFF_ENDPOINTS)


@pytest.mark.parametrize(("method", "path", "body", "status", "actions"), CALLS, ids=CALL_IDS)
def test_each_endpoint_works_is_audited_and_answers_as_documented(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    riley_id: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    actions: list[str],
) -> None:
    actor = token_actor(client, api_headers, runtime)
    before = audited(runtime)
    url = path.format(staff_id=riley_id)
    response = client.open(url, method=method, headers=api_headers, json=body)
    assert response.status_code == status, response.json
    written = Counter(audited(runtime)) - Counter(before)  # rows written at one time
    assert Counter(action for action, *_ in written.elements()) == Counter(actions)
    assert {a for *_, a in written} <= {actor}
    assert actor.startswith("token:")
    assert documented_problems(client, method, path, response) == []
    no_password_in(response, [r["password_hash"] for r in staff_rows(runtime)])


ERROR_CALLS = [
    ("POST", "/api/v1/staff", {"name": "Dr Nobody"}, 422),
    ("PATCH", "/api/v1/staff/{staff_id}", {"role": "nurse"}, 422),
    ("PATCH", "/api/v1/staff/" + "0" * 32, {"on_duty": True}, 404),
    ("DELETE", "/api/v1/staff/" + "0" * 32, None, 404),
]


def test_error_answers_are_documented_too(
    client: FlaskClient, api_headers: dict[str, str], riley_id: str
) -> None:
    for method, path, body, status in ERROR_CALLS:
        url = path.format(staff_id=riley_id)
        response = client.open(url, method=method, headers=api_headers, json=body)
        assert response.status_code == status, (method, path, response.json)
        template = "/api/v1/staff/{staff_id}" if "/staff/" in path else path
        assert documented_problems(client, method, template, response) == []


@pytest.mark.parametrize(("method", "path", "body", "status", "actions"), CALLS, ids=CALL_IDS)
def test_every_endpoint_answers_401_without_a_valid_bearer_token_and_changes_nothing(
    client: FlaskClient,
    runtime: Runtime,
    riley_id: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    actions: list[str],
) -> None:
    before = (audited(runtime), staff_rows(runtime))
    for what, header in BAD_AUTHORIZATION:
        headers = {"Authorization": header} if header else {}
        url = path.format(staff_id=riley_id)
        response = client.open(url, method=method, headers=headers, json=body)
        assert response.status_code == 401, what
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), what
        assert response.json == {"error": "a valid bearer token is required"}, what
    assert (audited(runtime), staff_rows(runtime)) == before


# -- one practice never sees or changes another's staff ----------------------------------

ID_CALLS = [(method, path, body) for method, path, body, *_ in CALLS if "{" in path]


@pytest.mark.parametrize(("method", "path", "body"), ID_CALLS)
def test_another_practices_staff_answer_404_like_staff_that_never_existed(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    elsewhere: Elsewhere,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = (audited(runtime), staff_rows(runtime))
    theirs = client.open(
        path.format(staff_id=elsewhere.staff_id), method=method, headers=api_headers, json=body
    )
    assert (theirs.status_code, theirs.json) == (404, {"error": "not found"})
    never = client.open(
        path.format(staff_id=uuid.uuid4().hex), method=method, headers=api_headers, json=body
    )
    assert (never.status_code, never.json) == (theirs.status_code, theirs.json)
    assert (audited(runtime), staff_rows(runtime)) == before


def test_each_practice_lists_only_its_own_staff(
    client: FlaskClient, api_headers: dict[str, str], elsewhere: Elsewhere
) -> None:
    ours = client.get("/api/v1/staff", headers=api_headers).json
    theirs = client.get("/api/v1/staff", headers=elsewhere.headers).json
    assert [s["email"] for s in ours] == ["admin@demo.prombot.test", RILEY]
    assert [s["email"] for s in theirs] == [elsewhere.email]
    made = add(client, elsewhere.headers, email="nurse.lee@riverside.prombot.test")
    assert made["id"] not in {
        s["id"] for s in client.get("/api/v1/staff", headers=api_headers).json
    }


@pytest.mark.parametrize("raw_id", [raw for _what, raw in WEIRD_IDS],
                         ids=[what for what, _raw in WEIRD_IDS])  # fmt: skip
@pytest.mark.parametrize(("method", "path", "body"), ID_CALLS)
def test_ids_of_any_shape_answer_404_not_500(
    client: FlaskClient,
    api_headers: dict[str, str],
    demo: Demo,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    raw_id: str,
) -> None:
    response = client.open(
        path.format(staff_id=raw_id), method=method, headers=api_headers, json=body
    )
    assert (response.status_code, response.json) == (404, {"error": "not found"})


# -- adding staff ------------------------------------------------------------------------


def test_a_member_of_staff_is_added_and_listed(
    client: FlaskClient, runtime: Runtime, clock: Clock, api_headers: dict[str, str], demo: Demo
) -> None:
    made = add(client, api_headers)
    assert made == {
        "id": made["id"],
        "email": "dr.patel@demo.prombot.test",  # stored in lower case, as sign-in looks it up
        "name": "Dr Ash Patel",
        "role": "clinician",
        "on_duty": False,
        "escalation_contact": True,
        "mobile": "+447700900061",
        "created_at": "2026-03-02T10:00:00Z",
    }
    listed = client.get("/api/v1/staff", headers=api_headers).json
    assert [s["email"] for s in listed] == [
        "admin@demo.prombot.test",
        "dr.patel@demo.prombot.test",
        RILEY,
    ]
    assert made in listed
    stored = row(runtime, made["id"])
    assert stored is not None and stored.practice_id == demo.practice.id
    assert check_password_hash(stored.password_hash, NEW_STAFF["password"])


def test_only_email_and_name_are_needed(client: FlaskClient, api_headers: dict[str, str]) -> None:
    body = {"email": "reception.lead@demo.prombot.test", "name": "Mo Frontdesk"}
    made = client.post("/api/v1/staff", headers=api_headers, json=body)
    assert made.status_code == 201, made.json
    assert {k: made.json[k] for k in ("role", "on_duty", "escalation_contact", "mobile")} == {
        "role": "clinician",
        "on_duty": False,
        "escalation_contact": False,
        "mobile": None,
    }


def test_an_account_made_without_a_password_cannot_sign_in_until_one_is_set(
    app: Flask, client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    made = add(client, api_headers, password=MISSING)
    stored = row(runtime, made["id"])
    assert stored is not None
    for guess in ["", "!", stored.password_hash, DEMO_PASSWORD, NEW_STAFF["password"]]:
        assert not check_password_hash(stored.password_hash, guess)
    email = made["email"]
    assert (
        sign_in(app.test_client(), email=email, password=NEW_STAFF["password"]).status_code == 401
    )

    new_password = "now-a-password-is-set"
    response = client.patch(
        f"/api/v1/staff/{made['id']}", headers=api_headers, json={"password": new_password}
    )
    assert response.status_code == 200
    assert sign_in(app.test_client(), email=email, password=new_password).status_code == 302
    # two accounts without passwords do not share a hash (sessions are keyed on it)
    other = add(client, api_headers, email="dr.second@demo.prombot.test", password=MISSING)
    second = row(runtime, other["id"])
    assert second is not None and second.password_hash != stored.password_hash


BAD_STAFF = [
    # what                           changes to NEW_STAFF                      field
    ("no email", {"email": MISSING}, "email"),
    ("an empty email", {"email": "  "}, "email"),
    ("an email without @", {"email": "dr.patel.demo.prombot.test"}, "email"),
    ("an email with a space", {"email": "dr patel@demo.prombot.test"}, "email"),
    ("an email with a line break", {"email": "dr.patel@demo.prombot.test\nBcc: x@y.test"},
     "email"),
    ("an email that is a list", {"email": ["dr.patel@demo.prombot.test"]}, "email"),
    ("an email too long", {"email": "a" * 250 + "@x.test"}, "email"),
    ("an email at .invalid", {"email": "dr.patel@removed.prombot.invalid"}, "email"),
    ("the duty clinician's email", {"email": RILEY}, "email"),
    ("the duty clinician's email in capitals", {"email": " DR.RILEY@demo.prombot.test"},
     "email"),
    ("no name", {"name": MISSING}, "name"),
    ("an empty name", {"name": "   "}, "name"),
    ("a name that is a number", {"name": 42}, "name"),
    ("a name too long", {"name": "A" * 121}, "name"),
    ("a name with a line break", {"name": "Dr Ash\nPatel"}, "name"),
    ("a role of nurse", {"role": "nurse"}, "role"),
    ("a role in capitals", {"role": "Admin"}, "role"),
    ("a role of null", {"role": None}, "role"),
    ("on_duty as text", {"on_duty": "yes"}, "on_duty"),
    ("on_duty as 1", {"on_duty": 1}, "on_duty"),
    ("escalation_contact as null", {"escalation_contact": None}, "escalation_contact"),
    ("a landline", {"mobile": "020 7946 0000"}, "mobile"),
    ("a foreign mobile", {"mobile": "+33 6 12 34 56 78"}, "mobile"),
    ("not a number", {"mobile": "call reception"}, "mobile"),
    ("a mobile that is a number", {"mobile": 7700900061}, "mobile"),
    ("a mobile with an extension", {"mobile": "07700 900061 ext. 2"}, "mobile"),
    ("a password of 11 characters", {"password": "elevenchars"}, "password"),
    ("an empty password", {"password": ""}, "password"),
    ("a password that is a number", {"password": 123456789012345}, "password"),
    ("a password too long", {"password": "x" * 1025}, "password"),
    ("a field staff do not have", {"password_hash": "pbkdf2:sha256$x$y"}, "password_hash"),
    ("an id", {"id": "0" * 32}, "id"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "field"), [(c, f) for _w, c, f in BAD_STAFF],
                         ids=[w for w, _c, _f in BAD_STAFF])  # fmt: skip
def test_bad_staff_answer_422_naming_the_field_and_store_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    demo: Demo,
    changes: dict[str, Any],
    field: str,
) -> None:
    before = (audited(runtime), staff_rows(runtime))
    response = client.post("/api/v1/staff", headers=api_headers, json=changed(NEW_STAFF, changes))
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert response.json["error"]
    assert (audited(runtime), staff_rows(runtime)) == before


def test_a_body_that_is_not_a_json_object_answers_422(
    client: FlaskClient, api_headers: dict[str, str], riley_id: str
) -> None:
    for method, url in [("POST", "/api/v1/staff"), ("PATCH", f"/api/v1/staff/{riley_id}")]:
        for body in [None, [], "x", 1]:
            response = client.open(url, method=method, headers=api_headers, json=body)
            assert (response.status_code, response.json["field"]) == (422, "body"), (method, body)


def test_an_email_in_use_at_another_practice_is_refused_without_saying_where(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], elsewhere: Elsewhere
) -> None:
    response = client.post(
        "/api/v1/staff", headers=api_headers, json=changed(NEW_STAFF, {"email": elsewhere.email})
    )
    assert response.status_code == 422
    assert response.json == {"error": "this e-mail address is already in use", "field": "email"}
    assert elsewhere.name.split()[0] not in response.get_data(as_text=True)
    mine = client.post(
        "/api/v1/staff", headers=api_headers, json=changed(NEW_STAFF, {"email": RILEY})
    )
    assert mine.json == response.json  # the same answer as an address of this practice
    assert count(runtime, StaffUser, StaffUser.email == elsewhere.email) == 1


def test_two_requests_adding_one_address_at_once_make_one_member_of_staff(
    app: Flask, runtime: Runtime, api_headers: dict[str, str], elsewhere: Elsewhere
) -> None:
    start = threading.Barrier(2)
    statuses: list[int] = []

    def post(headers: dict[str, str], name: str) -> None:
        client = app.test_client()
        start.wait()
        body = changed(NEW_STAFF, {"name": name, "password": MISSING})
        statuses.append(client.post("/api/v1/staff", headers=headers, json=body).status_code)

    threads = [
        threading.Thread(target=post, args=(api_headers, "Dr Ash Patel")),
        threading.Thread(target=post, args=(elsewhere.headers, "Dr Ash Patel-Other")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 422]
    assert count(runtime, StaffUser, StaffUser.email == "dr.patel@demo.prombot.test") == 1


# -- changing staff ----------------------------------------------------------------------


def test_a_member_of_staff_is_changed_field_by_field(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    made = add(client, api_headers)
    url = f"/api/v1/staff/{made['id']}"
    steps = [
        ({"on_duty": True}, {"on_duty": True}),
        ({"name": "  Dr Ash Patel-Jones "}, {"name": "Dr Ash Patel-Jones"}),
        ({"role": "admin", "escalation_contact": False},
         {"role": "admin", "escalation_contact": False}),
        ({"mobile": "+44 7700 900062"}, {"mobile": "+447700900062"}),
        ({"mobile": None}, {"mobile": None}),  # null clears
        ({"mobile": "07700900063"}, {"mobile": "+447700900063"}),
        ({"mobile": ""}, {"mobile": None}),
    ]  # fmt: skip
    expected = dict(made)
    for body, effect in steps:
        response = client.patch(url, headers=api_headers, json=body)
        assert response.status_code == 200, response.json
        expected.update(effect)
        assert response.json == {**expected, "warnings": []}, body
    assert (
        next(
            s
            for s in client.get("/api/v1/staff", headers=api_headers).json
            if s["id"] == made["id"]
        )
        == expected
    )
    actions = [a for a, _t, subject, _actor in audited(runtime) if subject == made["id"]]
    assert actions == ["staff.created"] + ["staff.updated"] * len(steps)


def test_setting_what_is_already_set_writes_no_audit_row(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], riley_id: str
) -> None:
    before = audited(runtime)
    same = {"name": "Dr Sam Riley", "on_duty": True, "mobile": "07700 900050", "role": "clinician"}
    response = client.patch(f"/api/v1/staff/{riley_id}", headers=api_headers, json=same)
    assert response.status_code == 200
    assert audited(runtime) == before


def test_a_new_password_replaces_the_old_one_and_is_audited(
    app: Flask, client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], riley_id: str
) -> None:
    signed_in = app.test_client()
    assert sign_in(signed_in).status_code == 302
    assert signed_in.get("/staff/alerts").status_code == 200
    new_password = "correct horse battery staple"
    response = client.patch(
        f"/api/v1/staff/{riley_id}", headers=api_headers, json={"password": new_password}
    )
    assert response.status_code == 200
    no_password_in(response, [r["password_hash"] for r in staff_rows(runtime)])
    assert signed_in.get("/staff/alerts").status_code == 302  # signed out: sign in again
    assert sign_in(app.test_client(), password=DEMO_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), password=new_password).status_code == 302
    assert [a for a, _t, s, _a in audited(runtime) if s == riley_id] == ["staff.password_set"]


BAD_CHANGES = [
    ("an empty body", {}, "body"),
    ("an empty name", {"name": ""}, "name"),
    ("a null name", {"name": None}, "name"),
    ("a role of doctor", {"role": "doctor"}, "role"),
    ("on_duty as text", {"on_duty": "false"}, "on_duty"),
    ("escalation_contact as 0", {"escalation_contact": 0}, "escalation_contact"),
    ("a landline", {"mobile": "01632 960000"}, "mobile"),
    ("a short password", {"password": "short"}, "password"),
    ("a null password", {"password": None}, "password"),
    ("a new email", {"email": "sam.riley@demo.prombot.test"}, "email"),
    ("a new id", {"id": "0" * 32}, "id"),
    ("a password hash", {"password_hash": "x"}, "password_hash"),
    ("a good change with a bad one", {"on_duty": False, "mobile": "not a mobile"}, "mobile"),
]


@pytest.mark.parametrize(("body", "field"), [(b, f) for _w, b, f in BAD_CHANGES],
                         ids=[w for w, _b, _f in BAD_CHANGES])  # fmt: skip
def test_bad_changes_answer_422_naming_the_field_and_change_nothing(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    riley_id: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = (audited(runtime), staff_rows(runtime))
    response = client.patch(f"/api/v1/staff/{riley_id}", headers=api_headers, json=body)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert (audited(runtime), staff_rows(runtime)) == before


# -- no answer carries a password hash ---------------------------------------------------


def test_no_answer_carries_a_password_hash(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], riley_id: str
) -> None:
    made = add(client, api_headers)
    url = f"/api/v1/staff/{made['id']}"
    responses = [
        client.get("/api/v1/staff", headers=api_headers),
        client.patch(url, headers=api_headers, json={"password": "yet-another-password"}),
        client.patch(url, headers=api_headers, json={"on_duty": True}),
        client.patch(f"/api/v1/staff/{riley_id}", headers=api_headers, json={"name": "Dr S Riley"}),
        client.post(
            "/api/v1/staff", headers=api_headers, json=changed(NEW_STAFF, {"password": "x"})
        ),
        client.delete(url, headers=api_headers),
        client.get("/api/v1/staff", headers=api_headers),
    ]
    hashes = [r["password_hash"] for r in staff_rows(runtime)]
    assert len(hashes) == 2
    for response in responses:
        no_password_in(response, hashes)
        body = response.json
        for item in body if isinstance(body, list) else [body] if body else []:
            assert not any("password" in key for key in item)


# -- removing staff ----------------------------------------------------------------------


def test_someone_never_sent_an_alert_is_deleted(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    made = add(client, api_headers)
    url = f"/api/v1/staff/{made['id']}"
    response = client.delete(url, headers=api_headers)
    assert (response.status_code, response.data) == (204, b"")
    assert row(runtime, made["id"]) is None
    assert made["id"] not in {
        s["id"] for s in client.get("/api/v1/staff", headers=api_headers).json
    }
    again = client.delete(url, headers=api_headers)
    assert (again.status_code, again.json) == (404, {"error": "not found"})
    assert [a for a, _t, s, _a in audited(runtime) if s == made["id"]] == [
        "staff.created",
        "staff.deleted",
    ]
    add(client, api_headers)  # the address may be used again


def test_someone_sent_alerts_is_deactivated_and_the_record_of_who_was_told_stays(
    app: Flask,
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    riley_id: str,
) -> None:
    raise_urgent(runtime, demo.patients[0], clock.now)
    assert notify_due(runtime, clock.now)["sent"] == 1  # a text to Dr Riley (no SMTP here)
    told = count(runtime, AlertNotification, AlertNotification.recipient_id == riley_id)
    assert told == 1

    response = client.delete(f"/api/v1/staff/{riley_id}", headers=api_headers)
    assert (response.status_code, response.data) == (204, b"")

    gone = row(runtime, riley_id)
    assert gone is not None  # kept: the alert notice refers to it
    assert gone.name == "Dr Sam Riley"  # so the history still shows who was told
    assert (gone.on_duty, gone.escalation_contact, gone.mobile) == (False, False, None)
    assert gone.email.endswith(".invalid") and RILEY not in gone.email
    assert not check_password_hash(gone.password_hash, DEMO_PASSWORD)
    assert count(runtime, AlertNotification, AlertNotification.recipient_id == riley_id) == 1
    assert [s["email"] for s in client.get("/api/v1/staff", headers=api_headers).json] == [
        "admin@demo.prombot.test"
    ]
    for method, body in [("PATCH", {"on_duty": True}), ("DELETE", None)]:
        again = client.open(
            f"/api/v1/staff/{riley_id}", method=method, headers=api_headers, json=body
        )
        assert (again.status_code, again.json) == (404, {"error": "not found"})
    assert sign_in(app.test_client(), email=RILEY).status_code == 401
    assert [a for a, _t, s, _a in audited(runtime) if s == riley_id] == ["staff.deactivated"]

    # nobody is on duty now: the next urgent alert goes to the escalation contact only
    raise_urgent(runtime, demo.patients[1], clock.advance(minutes=5))
    notify_due(runtime, clock.now)
    assert staff_texts(runtime) == [RILEY_MOBILE, "+447700900051"]
    # and the address is free for a new account
    assert (
        client.post(
            "/api/v1/staff", headers=api_headers, json={"email": RILEY, "name": "Dr Sam Riley"}
        ).status_code
        == 201
    )


# -- whoever is on duty gets the next urgent alert ---------------------------------------


def test_someone_put_on_duty_through_the_api_is_texted_the_next_urgent_alert(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    riley_id: str,
) -> None:
    made = add(client, api_headers, on_duty=False, escalation_contact=False, mobile="07700 900064")
    for staff_id, on_duty in [(made["id"], True), (riley_id, False)]:
        response = client.patch(
            f"/api/v1/staff/{staff_id}", headers=api_headers, json={"on_duty": on_duty}
        )
        assert response.status_code == 200, response.json
    clock.advance(minutes=1)

    alert_id = raise_urgent(runtime, demo.patients[0], clock.now)
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 1, "failed": 0}

    assert staff_texts(runtime) == ["+447700900064"]  # the new duty clinician, not Dr Riley
    with transaction(runtime.engine, read_only=True) as session:
        notices = session.exec(
            select(AlertNotification).where(AlertNotification.alert_id == alert_id)
        ).all()
        assert [(n.recipient_id, n.channel, n.status) for n in notices] == [
            (made["id"], "sms", "sent")
        ]


# -- the practice's last admin -------------------------------------------------------------


def test_the_practices_last_admin_cannot_be_demoted_or_removed(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    """Or nobody could change the practice's settings and staff in the browser again."""
    jo = by_email(runtime, "admin@demo.prombot.test")  # the demo's only admin
    url = f"/api/v1/staff/{jo.id}"
    demoted = client.patch(url, headers=api_headers, json={"role": "clinician"})
    assert (demoted.status_code, demoted.json) == (
        422,
        {"error": staff_admin.LAST_ADMIN, "field": "role"},
    )
    removed = client.delete(url, headers=api_headers)
    assert (removed.status_code, removed.json) == (
        422,
        {"error": staff_admin.LAST_ADMIN, "field": "staff_id"},
    )
    assert (row(runtime, jo.id).role, row(runtime, jo.id).email) == ("admin", jo.email)
    assert [a for a, _t, s, _a in audited(runtime) if s == jo.id] == []
    # other changes to the last admin, and a non-admin role for anyone else, still work
    assert client.patch(url, headers=api_headers, json={"on_duty": True}).status_code == 200
    # with a second admin, either may go
    second = add(client, api_headers, role="admin")
    assert client.patch(url, headers=api_headers, json={"role": "clinician"}).status_code == 200
    last = client.delete(f"/api/v1/staff/{second['id']}", headers=api_headers)
    assert (last.status_code, last.json["field"]) == (422, "staff_id")


# -- passwords set through the API are one-time ----------------------------------------------


@pytest.mark.parametrize("how", ["added with a password", "given a new password"])
def test_a_password_set_through_the_api_must_be_changed_at_first_sign_in(
    app: Flask, client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], how: str
) -> None:
    """Whoever set it (an integrator, a script) knows it: like an admin's reset on the
    settings pages, it opens only the page where the member chooses their own."""
    if how == "added with a password":
        made = add(client, api_headers)
        password = NEW_STAFF["password"]
    else:
        made = add(client, api_headers, password=None)
        password = "another-long-password"
        answer = client.patch(
            f"/api/v1/staff/{made['id']}", headers=api_headers, json={"password": password}
        )
        assert answer.status_code == 200
    assert row(runtime, made["id"]).must_change_password is True
    browser = app.test_client()
    assert sign_in(browser, NEW_STAFF["email"].lower(), password).status_code == 302
    for path in ("/staff/patients", "/staff/alerts"):
        response = browser.get(path)
        assert (response.status_code, response.headers["Location"]) == (302, "/staff/password")
    assert 'id="must-change"' in browser.get("/staff/password").text
