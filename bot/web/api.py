"""The JSON API under /api/v1, one practice per bearer token.

Every query is scoped to the token's practice: another practice's ids answer
404 exactly as ids that do not exist, so nothing leaks. Bad input is a 422
whose ``field`` names what to fix; a change the record's state does not allow
(moving an invitation that has already been sent) is a 409.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.services import alert_routing, queries, schedule_admin, staff_admin
from bot.services.alert_acknowledgement import acknowledge
from bot.services.enrolment import (
    InputError,
    NotFound,
    create_consultation,
    create_patient,
    get_patient,
    practice_for_token,
)
from bot.services.schedule_admin import Conflict
from bot.store.db import transaction
from bot.store.models import Practice
from bot.web import context
from bot.web.openapi import OPENAPI

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _error(status: int, message: str, field: str | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return jsonify(body), status


@bp.errorhandler(InputError)
def _input_error(exc: InputError):
    return _error(422, exc.message, exc.field)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    if exc.field:
        return _error(404, f"{exc.field} is not a record of this practice", exc.field)
    return _error(404, "not found")


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict):
    return _error(409, exc.message)


def _in_api() -> bool:
    return request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")


# Routing errors happen before a blueprint is chosen, so only app-wide handlers see
# them: these answer JSON under /api/v1 and leave every other path's error as it was.
@bp.app_errorhandler(404)
def _route_not_found(exc: HTTPException):
    return _error(404, "not found") if _in_api() else exc


@bp.app_errorhandler(405)
def _method_not_allowed(exc: HTTPException):
    if not _in_api():
        return exc
    response, status = _error(405, "method not allowed")
    allowed = exc.get_response().headers.get("Allow")
    if allowed:
        response.headers["Allow"] = allowed
    return response, status


def authenticated(view):
    """Resolve ``Authorization: Bearer <token>`` to a practice, or answer 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorised()
        with transaction(context.runtime().engine, read_only=True) as session:
            found = practice_for_token(session, token.strip())
        if found is None:
            return _unauthorised()
        g.practice, api_token = found
        g.actor = f"token:{api_token.id}"
        return view(*args, **kwargs)

    return wrapper


def _unauthorised() -> tuple[Response, int]:
    response, status = _error(401, "a valid bearer token is required")
    response.headers["WWW-Authenticate"] = 'Bearer realm="prombot"'
    return response, status


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InputError("body", "the request body must be a JSON object")
    return data


def _text(
    data: dict[str, Any], field: str, *, required: bool = True, limit: int = 120
) -> str | None:
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(field, f"{field} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InputError(field, f"{field} must be text of at most {limit} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InputError(field, f"{field} must not contain control characters or line breaks")
    return value.strip()


def _date(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        parsed = date.fromisoformat(str(value))
    except ValueError:
        raise InputError(field, f"{field} must be a date such as 1980-04-21") from None
    if parsed > context.now().date():
        raise InputError(field, f"{field} cannot be in the future")
    return parsed


def _datetime(value: Any, field: str, zone: str) -> datetime:
    if value in (None, ""):
        raise InputError(field, f"{field} is required, as an ISO-8601 date and time")
    message = f"{field} must be an ISO-8601 date and time, such as 2026-03-16T10:00:00Z"
    if not isinstance(value, str):
        raise InputError(field, message)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:  # a time without a zone is the practice's local time
            parsed = parsed.replace(tzinfo=ZoneInfo(zone))
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or at the very ends of the calendar
        raise InputError(field, message) from None


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(OPENAPI)


@bp.post("/patients")
@authenticated
def post_patient():
    data = _body()
    name = _text(data, "name")
    phone = _text(data, "phone", limit=30)
    nhs_number = data.get("nhs_number")
    if nhs_number is not None and not isinstance(nhs_number, str | int):
        raise InputError("nhs_number", "nhs_number must be text")
    language = _text(data, "language", required=False, limit=8) or "en"
    with transaction(context.runtime().engine) as session:
        patient = create_patient(
            session,
            g.practice,
            name=name,
            phone=phone,
            nhs_number=str(nhs_number) if nhs_number is not None else None,
            date_of_birth=_date(data.get("date_of_birth"), "date_of_birth"),
            language=language,
            now=context.now(),
            actor=g.actor,
        )
        body = queries.patient_json(patient)
    return jsonify(body), 201


@bp.get("/patients/<patient_id>")
@authenticated
def get_patient_view(patient_id: str):
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(queries.patient_json(get_patient(session, g.practice, patient_id)))


@bp.post("/consultations")
@authenticated
def post_consultation():
    data = _body()
    patient_id = _text(data, "patient_id", limit=64)
    occurred_at = _datetime(data.get("occurred_at"), "occurred_at", g.practice.timezone)
    continue_if_positive = data.get("continue_if_positive", False)
    if not isinstance(continue_if_positive, bool):
        raise InputError("continue_if_positive", "continue_if_positive must be true or false")
    protocol = _text(data, "protocol", required=False, limit=60)
    with transaction(context.runtime().engine) as session:
        consultation, invitations = create_consultation(
            session,
            g.practice,
            context.runtime().catalogue,
            patient_id=patient_id,
            occurred_at=occurred_at,
            protocol=protocol,
            schedule=data.get("schedule"),
            continue_if_positive=continue_if_positive,
            now=context.now(),
            actor=g.actor,
        )
        body = {
            "id": consultation.id,
            "patient_id": consultation.patient_id,
            "occurred_at": queries.iso(consultation.occurred_at),
            "protocol": consultation.protocol,
            "invitations": [queries.invitation_json(i) for i in invitations],
        }
    return jsonify(body), 201


@bp.get("/patients/<patient_id>/invitations")
@authenticated
def get_invitations(patient_id: str):
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(queries.invitations_of(session, g.practice, patient_id))


@bp.get("/patients/<patient_id>/results")
@authenticated
def get_results(patient_id: str):
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(queries.results_of(session, g.practice, patient_id))


@bp.get("/alerts")
@authenticated
def get_alerts():
    status = request.args.get("status")
    if status not in (None, "open", "acknowledged"):
        raise InputError("status", "status must be open or acknowledged")
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(queries.alerts_of(session, g.practice, status))


@bp.post("/alerts/<alert_id>/acknowledge")
@authenticated
def post_acknowledge(alert_id: str):
    with transaction(context.runtime().engine) as session:
        alert = acknowledge(session, g.practice, alert_id, actor=g.actor, now=context.now())
        return jsonify(queries.alert_json(alert))


@bp.get("/messages")
@authenticated
def get_messages():
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(queries.messages_of(session, g.practice, request.args.get("patient_id")))


# FHIR (/api/v1/fhir/...) has its own blueprint: bot/web/fhir_api.py


# -- protocols: a practice's named schedules ------------------------------------------
# A consultation's invitations are made from its protocol when it is registered:
# editing or deleting a protocol changes future consultations only.


@bp.get("/protocols")
@authenticated
def get_protocols():
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(queries.protocols_of(session, g.practice))


@bp.post("/protocols")
@authenticated
def post_protocol():
    data = _body()
    with transaction(context.runtime().engine) as session:
        protocol = schedule_admin.create_protocol(
            session,
            g.practice,
            context.runtime().catalogue,
            name=data.get("name"),
            title=data.get("title"),
            schedule=data.get("schedule"),
            now=context.now(),
            actor=g.actor,
        )
        body = queries.protocol_json(protocol)
    return jsonify(body), 201


@bp.put("/protocols/<name>")
@authenticated
def put_protocol(name: str):
    data = _body()
    with transaction(context.runtime().engine) as session:
        protocol = schedule_admin.update_protocol(
            session,
            g.practice,
            context.runtime().catalogue,
            name,
            changes=data,
            now=context.now(),
            actor=g.actor,
        )
        return jsonify(queries.protocol_json(protocol))


@bp.delete("/protocols/<name>")
@authenticated
def delete_protocol(name: str):
    with transaction(context.runtime().engine) as session:
        schedule_admin.delete_protocol(session, g.practice, name, now=context.now(), actor=g.actor)
    return Response(status=204)


# -- a consultation's invitations: read, cancel, move ---------------------------------
# Only pending invitations (not yet sent) change; the answer counts what was left.


@bp.get("/consultations/<consultation_id>")
@authenticated
def get_consultation(consultation_id: str):
    with transaction(context.runtime().engine, read_only=True) as session:
        consultation = schedule_admin.get_consultation(session, g.practice, consultation_id)
        invitations = queries.invitations_of_consultation(session, consultation)
        return jsonify(queries.consultation_json(consultation, invitations))


@bp.post("/consultations/<consultation_id>/cancel")
@authenticated
def cancel_consultation(consultation_id: str):
    with transaction(context.runtime().engine) as session:
        consultation, outcome = schedule_admin.cancel_consultation(
            session, g.practice, consultation_id, now=context.now(), actor=g.actor
        )
        return jsonify(_changed_consultation(session, consultation, outcome))


@bp.post("/consultations/<consultation_id>/reschedule")
@authenticated
def reschedule_consultation(consultation_id: str):
    data = _body()
    occurred_at = data.get("occurred_at")
    with transaction(context.runtime().engine) as session:
        consultation, outcome = schedule_admin.reschedule_consultation(
            session,
            g.practice,
            consultation_id,
            shift=data.get("shift"),
            occurred_at=(
                _datetime(occurred_at, "occurred_at", g.practice.timezone)
                if occurred_at is not None
                else None
            ),
            now=context.now(),
            actor=g.actor,
        )
        return jsonify(_changed_consultation(session, consultation, outcome))


def _changed_consultation(session, consultation, outcome) -> dict[str, Any]:
    invitations = queries.invitations_of_consultation(session, consultation)
    return {**queries.consultation_json(consultation, invitations), "outcome": outcome.as_json()}


@bp.post("/invitations/<invitation_id>/cancel")
@authenticated
def cancel_invitation(invitation_id: str):
    with transaction(context.runtime().engine) as session:
        invitation = schedule_admin.cancel_invitation(
            session, g.practice, invitation_id, now=context.now(), actor=g.actor
        )
        return jsonify(queries.invitation_json(invitation))


@bp.patch("/invitations/<invitation_id>")
@authenticated
def patch_invitation(invitation_id: str):
    data = _body()
    for key in data:
        if key != "due_at":
            hint = ": to cancel, POST /api/v1/invitations/{id}/cancel" if key == "status" else ""
            raise InputError(key, f"{key} cannot be changed here; only due_at can{hint}")
    with transaction(context.runtime().engine) as session:
        invitation = schedule_admin.move_invitation(
            session,
            g.practice,
            invitation_id,
            due_at=_datetime(data.get("due_at"), "due_at", g.practice.timezone),
            now=context.now(),
            actor=g.actor,
        )
        return jsonify(queries.invitation_json(invitation))


# -- the practice's own settings, and the questionnaires available ---------------------


@bp.get("/practice")
@authenticated
def get_practice():
    with transaction(context.runtime().engine, read_only=True) as session:
        practice = session.get(Practice, g.practice.id)
        return jsonify(_with_warnings(session, queries.practice_settings_json(practice)))


@bp.patch("/practice")
@authenticated
def patch_practice():
    data = _body()
    with transaction(context.runtime().engine) as session:
        practice = schedule_admin.update_settings(
            session, g.practice, data, now=context.now(), actor=g.actor
        )
        return jsonify(_with_warnings(session, queries.practice_settings_json(practice)))


def _with_warnings(session, body: dict[str, Any]) -> dict[str, Any]:
    """The answer plus ``warnings``: whether the practice can be told of urgent alerts now."""
    practice = session.get(Practice, g.practice.id)
    config = context.runtime().config
    return {**body, "warnings": alert_routing.practice_warnings(session, practice, config)}


@bp.get("/instruments")
@authenticated
def get_instruments():
    return jsonify(queries.instruments_json(context.runtime().catalogue))


# -- the practice's staff: duty clinicians and escalation contacts ----------------------
# Passwords are checked and hashed before the transaction (hashing is slow on purpose);
# no answer ever carries a password hash.


@bp.get("/staff")
@authenticated
def get_staff():
    with transaction(context.runtime().engine, read_only=True) as session:
        return jsonify(staff_admin.list_staff(session, g.practice))


@bp.post("/staff")
@authenticated
def post_staff():
    new = staff_admin.check_new(_body())
    password_hash = staff_admin.hash_password(new.password)
    with transaction(context.runtime().engine) as session:
        user = staff_admin.create_staff(
            session, g.practice, new, password_hash, now=context.now(), actor=g.actor
        )
        body = _with_warnings(session, staff_admin.staff_json(user))
    return jsonify(body), 201


@bp.patch("/staff/<staff_id>")
@authenticated
def patch_staff(staff_id: str):
    changes = staff_admin.check_changes(_body())
    password_hash = (
        staff_admin.hash_password(changes.password) if changes.password is not None else None
    )
    with transaction(context.runtime().engine) as session:
        user = staff_admin.update_staff(
            session, g.practice, staff_id, changes, password_hash, now=context.now(), actor=g.actor
        )
        return jsonify(_with_warnings(session, staff_admin.staff_json(user)))


@bp.delete("/staff/<staff_id>")
@authenticated
def delete_staff(staff_id: str):
    with transaction(context.runtime().engine) as session:
        staff_admin.remove_staff(session, g.practice, staff_id, now=context.now(), actor=g.actor)
    return Response(status=204)
