"""Hostile input to the API: always a 4xx in JSON before any work, never a 500.

A deeply nested body, a lone UTF-16 surrogate or a bidirectional-text
control in any text field, a misspelt field, an oversized body: each is
refused, naming what to fix, and nothing is stored. Every error under
/api/v1 is JSON, whatever its status. The OpenAPI document and the code agree
both ways on the cases schemathesis once found them disagreeing on.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from sqlmodel import func, select

from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AuditEvent, Patient
from tests.service.test_schedule_api import NEW_PROTOCOL

NEW_PATIENT = {"name": "Robin Invented", "phone": "07700 900123"}
NEW_STAFF = {"email": "dr.patel@demo.prombot.test", "name": "Dr Ash Patel"}
DEEP = 100_000


def audit_rows(runtime: Runtime) -> int:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(func.count()).select_from(AuditEvent)).one()


def patients(runtime: Runtime) -> int:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(func.count()).select_from(Patient)).one()


@pytest.fixture
def ids(client: FlaskClient, api_headers: dict[str, str], demo: Demo) -> dict[str, str]:
    body = {
        "patient_id": demo.patients[0].id,
        "occurred_at": "2026-03-16T10:00:00Z",
        "protocol": "depression_review",
    }
    created = client.post("/api/v1/consultations", headers=api_headers, json=body).json
    staff = client.get("/api/v1/staff", headers=api_headers).json
    return {
        "consultation_id": created["id"],
        "invitation_id": created["invitations"][0]["id"],
        "staff_id": staff[0]["id"],
        "name": "depression_review",
    }


WRITE_ROUTES = [
    ("POST", "/api/v1/patients"),
    ("POST", "/api/v1/consultations"),
    ("POST", "/api/v1/consultations/{consultation_id}/reschedule"),
    ("PATCH", "/api/v1/invitations/{invitation_id}"),
    ("POST", "/api/v1/protocols"),
    ("PUT", "/api/v1/protocols/{name}"),
    ("PATCH", "/api/v1/practice"),
    ("POST", "/api/v1/staff"),
    ("PATCH", "/api/v1/staff/{staff_id}"),
]


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
@pytest.mark.parametrize(
    "body",
    ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP, "[" * DEEP],
    ids=["arrays", "objects", "unclosed"],
)
def test_deeply_nested_json_is_a_400_before_any_work(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ids: dict[str, str],
    method: str,
    path: str,
    body: str,
) -> None:
    before = audit_rows(runtime)
    response = client.open(
        path.format(**ids),
        method=method,
        headers=api_headers,
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json["field"] == "body"
    assert "deeper" in response.json["error"]
    assert audit_rows(runtime) == before


def test_nesting_is_measured_without_recursion() -> None:
    from bot.web.json_body import nesting_depth

    assert nesting_depth(b'{"a": [1, {"b": "[[[[[[[["}]}') == 3  # brackets in strings skipped
    assert nesting_depth(b'"\\"[[[" ') == 0
    assert nesting_depth(b"[" * 1_000_000) == 33  # stops counting past the limit


SURROGATE = "\ud800"
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: makes "Robin" display as something else
ISOLATE = "\u2066"

TEXT_FIELDS = [
    # method  path                             body (with {bad} for the character)   field
    ("POST", "/api/v1/patients", {**NEW_PATIENT, "name": "Robin{bad}Invented"}, "name"),
    ("POST", "/api/v1/consultations", {"patient_id": "{patient}", "occurred_at":
     "2026-03-16T10:00:00Z", "protocol": "depression{bad}review"}, "protocol"),
    ("POST", "/api/v1/protocols", {**NEW_PROTOCOL, "title": "Low{bad}mood"}, "title"),
    ("PUT", "/api/v1/protocols/{name}", {"title": "Low{bad}mood"}, "title"),
    ("PATCH", "/api/v1/practice", {"contact_email": "gp{bad}@example.nhs.uk"}, "contact_email"),
    ("POST", "/api/v1/staff", {**NEW_STAFF, "email": "dr{bad}@demo.prombot.test"}, "email"),
    ("POST", "/api/v1/staff", {**NEW_STAFF, "name": "Dr{bad}Patel"}, "name"),
    ("POST", "/api/v1/staff", {**NEW_STAFF, "password": "a-long-password{bad}"}, "password"),
    ("PATCH", "/api/v1/staff/{staff_id}", {"name": "Dr{bad}Riley"}, "name"),
    ("PATCH", "/api/v1/staff/{staff_id}", {"password": "a-long-password{bad}"}, "password"),
]  # fmt: skip


def _fill(value: Any, bad: str, patient: str) -> Any:
    if isinstance(value, str):
        return value.replace("{bad}", bad).replace("{patient}", patient)
    if isinstance(value, list):
        return [_fill(v, bad, patient) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, bad, patient) for k, v in value.items()}
    return value


@pytest.mark.parametrize("bad", [SURROGATE, BIDI, ISOLATE, "\x00"],
                         ids=["lone surrogate", "RLO", "LRI", "NUL"])  # fmt: skip
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    TEXT_FIELDS,
    ids=[f"{m} {p} {f}" for m, p, _b, f in TEXT_FIELDS],
)
def test_unencodable_and_bidirectional_characters_are_a_422_naming_the_field(
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    demo: Demo,
    ids: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    bad: str,
) -> None:
    before = audit_rows(runtime)
    response = client.open(
        path.format(**ids),
        method=method,
        headers=api_headers,
        json=_fill(body, bad, demo.patients[0].id),
    )
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert field in response.json["error"]
    assert audit_rows(runtime) == before


def test_a_misspelt_field_is_a_422_naming_it_and_stores_nothing(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str]
) -> None:
    body = {**NEW_PATIENT, "nhs": "943 476 5870"}  # nhs_number, misspelt
    response = client.post("/api/v1/patients", headers=api_headers, json=body)
    assert response.status_code == 422
    assert response.json == {"error": "nhs is not a field of this request", "field": "nhs"}
    assert patients(runtime) == 3


def test_an_unknown_query_parameter_is_a_422_naming_it(
    client: FlaskClient, api_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/alerts?state=open", headers=api_headers)
    assert (response.status_code, response.json["field"]) == (422, "state")


@pytest.mark.parametrize(
    ("method", "path", "reads_body"),
    [
        ("POST", "/api/v1/patients", True),
        ("POST", "/api/v1/invitations/{invitation_id}/cancel", False),
        ("GET", "/api/v1/alerts", False),
    ],
)
def test_a_body_over_the_limit_is_a_413_in_json(
    app: Flask,
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    ids: dict[str, str],
    method: str,
    path: str,
    reads_body: bool,
) -> None:
    limit = runtime.settings.prombot_max_request_bytes
    before = audit_rows(runtime)
    body = '{"name": "' + "x" * limit + '"}'
    response = client.open(
        path.format(**ids),
        method=method,
        headers=api_headers,
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json == {"error": f"the request is larger than {limit} bytes"}
    assert audit_rows(runtime) == before


def test_the_webhooks_answer_errors_in_short_plain_text(client: FlaskClient, runtime) -> None:
    forbidden = client.post("/sms/inbound", data={"From": "+447700900101", "Body": "hi"})
    assert forbidden.status_code == 403
    assert forbidden.mimetype == "text/plain"
    assert len(forbidden.data) < 100 and b"<" not in forbidden.data
    limit = runtime.settings.prombot_max_request_bytes
    large = client.post(
        "/sms/inbound",
        data="Body=" + "x" * limit,
        content_type="application/x-www-form-urlencoded",
    )
    assert (large.status_code, large.mimetype) == (413, "text/plain")


def test_an_unexpected_error_under_the_api_is_a_500_in_json(
    app: Flask, client: FlaskClient, api_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.services import queries

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(queries, "alerts_of", broken)
    app.testing = False  # as in production: the error is answered, not raised to the test
    response = client.get("/api/v1/alerts", headers=api_headers)
    assert response.status_code == 500
    assert response.json == {"error": "something went wrong on our side; nothing was changed"}


def test_every_error_status_under_the_api_is_json(
    client: FlaskClient, api_headers: dict[str, str]
) -> None:
    answers = [
        client.get("/api/v1/alerts"),  # 401
        client.get("/api/v1/nothing-here", headers=api_headers),  # 404
        client.delete("/api/v1/alerts", headers=api_headers),  # 405
        client.post("/api/v1/patients", headers=api_headers, data="{",
                    content_type="application/json"),  # 400
        client.post("/api/v1/patients", headers=api_headers, data="x",
                    content_type="text/plain"),  # 415
        client.post("/api/v1/patients", headers=api_headers, json={}),  # 422
        client.get(f"/api/v1/patients/{uuid.uuid4().hex}", headers=api_headers),  # 404
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [401, 404, 405, 400, 415, 422, 404]
    for answer in answers:
        assert answer.mimetype == "application/json"
        assert set(answer.json) <= {"error", "field"} and answer.json["error"]


# -- the document and the code agree, both ways ----------------------------------------


def _request_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation = document["paths"][path][method.lower()]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def _query_schema(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    operation = document["paths"][path]["get"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == name]
    return parameter["schema"]


def _allowed(document: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    root = {"$ref": "#/x-checked", "x-checked": schema, "components": document["components"]}
    return Draft202012Validator(root).is_valid(value)


AGREEMENT = [
    # what                            method  path                body or query
    ("a patient with an empty name", "POST", "/api/v1/patients", {**NEW_PATIENT, "name": ""}),
    ("a patient with a blank name", "POST", "/api/v1/patients", {**NEW_PATIENT, "name": "  "}),
    ("a patient", "POST", "/api/v1/patients", NEW_PATIENT),
    ("no settings at all", "PATCH", "/api/v1/practice", {}),
    ("one setting", "PATCH", "/api/v1/practice", {"max_reminders": 2}),
    ("staff with an empty mobile", "POST", "/api/v1/staff", {**NEW_STAFF, "mobile": ""}),
    ("staff with a null mobile", "POST", "/api/v1/staff", {**NEW_STAFF, "mobile": None}),
    ("staff with a null name", "POST", "/api/v1/staff", {**NEW_STAFF, "name": None}),
    ("a protocol edit naming nothing", "PUT", "/api/v1/protocols/{name}", {}),
    ("a reschedule with both", "POST", "/api/v1/consultations/{consultation_id}/reschedule",
     {"shift": "P1D", "occurred_at": "2026-03-17T10:00:00Z"}),
    ("a reschedule by a day", "POST", "/api/v1/consultations/{consultation_id}/reschedule",
     {"shift": "P1D"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), [a[1:] for a in AGREEMENT],
                         ids=[a[0] for a in AGREEMENT])  # fmt: skip
def test_a_body_is_refused_exactly_when_the_document_forbids_it(
    client: FlaskClient,
    api_headers: dict[str, str],
    ids: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    document = client.get("/api/v1/openapi.json").json
    allowed = _allowed(document, _request_schema(document, method, path), body)
    response = client.open(path.format(**ids), method=method, headers=api_headers, json=body)
    assert response.status_code < 400 if allowed else response.status_code == 422, (
        allowed,
        response.json,
    )


@pytest.mark.parametrize(
    ("query", "value"), [("patient_id", ""), ("status", ""), ("status", "open")]
)
def test_a_query_is_refused_exactly_when_the_document_forbids_it(
    client: FlaskClient, api_headers: dict[str, str], query: str, value: str
) -> None:
    document = client.get("/api/v1/openapi.json").json
    path = "/api/v1/messages" if query == "patient_id" else "/api/v1/alerts"
    allowed = _allowed(document, _query_schema(document, path, query), value)
    response = client.get(f"{path}?{query}={value}", headers=api_headers)
    assert response.status_code == (200 if allowed else 422)


def test_the_document_lists_the_instruments_of_the_running_app(
    client: FlaskClient, runtime: Runtime
) -> None:
    document = client.get("/api/v1/openapi.json").json
    step = document["components"]["schemas"]["ScheduleStep"]
    assert step["properties"]["instrument"]["enum"] == list(runtime.catalogue)
    assert "x-prombot-instrument-ids" not in str(document)
