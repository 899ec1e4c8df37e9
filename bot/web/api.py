"""The JSON API under /api/v1, one practice per bearer token.

Each view is one ``operation``: its models (``bot/schemas``) validate the
request and shape the answer, and write the OpenAPI document; the view calls
one service function (which owns its unit of work) and returns the answer.
Errors are translated here, in the API's words, always as JSON
``{"error", "field"?}``: bad input 422 naming the field, another practice's
or an unknown id 404, a change the record's state does not allow 409, no
token 401, a body that is not JSON 400/415, too large 413, and anything
unexpected 500.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from pydantic import RootModel
from werkzeug.exceptions import HTTPException, InternalServerError

from bot.errors import Conflict, InputError, InvitationNotPending, NotFound
from bot.schemas.patients import PatientCreate, PatientOut
from bot.schemas.practice import PracticeOut, PracticeSettingsUpdate
from bot.schemas.records import (
    AcknowledgeBody,
    AlertOut,
    AlertsQuery,
    MessageOut,
    MessagesQuery,
    ResultOut,
)
from bot.schemas.scheduling import (
    ConsultationChanged,
    ConsultationCreate,
    ConsultationOut,
    InstrumentOut,
    InvitationMove,
    InvitationOut,
    OutcomeOut,
    ProtocolCreate,
    ProtocolOut,
    ProtocolUpdate,
    Reschedule,
)
from bot.schemas.staff import StaffChanged, StaffCreate, StaffOut, StaffUpdate
from bot.services import consultations, practice_settings, protocols, queries, staff_admin
from bot.services.alert_acknowledgement import acknowledge_alert
from bot.services.consultations import Outcome
from bot.services.enrolment import register_consultation, register_patient
from bot.web import context
from bot.web.auth import Unauthorised
from bot.web.json_body import BodyError
from bot.web.openapi import OpenApiDocument, document, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1"


class Invitations(RootModel[list[InvitationOut]]):
    pass


class Results(RootModel[list[ResultOut]]):
    pass


class Alerts(RootModel[list[AlertOut]]):
    pass


class Messages(RootModel[list[MessageOut]]):
    pass


class Protocols(RootModel[list[ProtocolOut]]):
    pass


class Instruments(RootModel[list[InstrumentOut]]):
    pass


class StaffList(RootModel[list[StaffOut]]):
    pass


# -- errors: always JSON under /api/v1 ---------------------------------------------------


def error(status: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def in_api() -> bool:
    return request.path == PREFIX or request.path.startswith(f"{PREFIX}/")


def init_app(app: Flask) -> None:
    """Error answers for every blueprint under /api/v1 (FHIR's too), and routing errors,
    which happen before any blueprint is chosen. Other paths keep their own errors."""

    @app.errorhandler(InputError)
    def _input(exc: InputError):
        return error(422, exc.message, exc.field)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        if exc.field:
            return error(404, f"{exc.field} is not a record of this practice", exc.field)
        return error(404, "not found")

    @app.errorhandler(InvitationNotPending)
    def _not_pending(exc: InvitationNotPending):
        message = (
            f"this invitation is {exc.status}, not pending: only an invitation that has not "
            f"been sent can be {exc.doing}"
        )
        if exc.status == "active":
            message += (
                "; it has been sent and the patient may be answering: it finishes or "
                "expires on its own"
            )
        return error(409, message)

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict):
        return error(409, str(exc) or "the record's state does not allow this change")

    @app.errorhandler(Unauthorised)
    def _unauthorised(_exc: Unauthorised):
        response = error(401, "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="prombot"'
        return response

    @app.errorhandler(BodyError)
    def _body(exc: BodyError):
        return error(exc.status, exc.message, "body")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if not in_api():
            return exc
        messages = {
            404: "not found",
            405: "method not allowed",
            413: f"the request is larger than {app.config['MAX_CONTENT_LENGTH']} bytes",
        }
        status = exc.code or 500
        response = error(status, messages.get(status, exc.name.lower()))
        allowed = exc.get_response().headers.get("Allow")
        if allowed:
            response.headers["Allow"] = allowed
        return response

    @app.errorhandler(InternalServerError)
    def _internal(exc: InternalServerError):
        if not in_api():
            return exc
        return error(500, "something went wrong on our side; nothing was changed")


def _actor() -> dict[str, Any]:
    return {"now": context.now(), "actor": g.actor}


def _rt():
    return context.runtime()


# -- the document ------------------------------------------------------------------------


@bp.get("/openapi.json")
@operation(answers={200: OpenApiDocument}, public=True)
def openapi():
    """This document (OpenAPI 3.1)"""
    return OpenApiDocument(document())


# -- patients ----------------------------------------------------------------------------


@bp.post("/patients")
@operation(body=PatientCreate, answers={201: PatientOut})
def post_patient(json: PatientCreate):
    """Register a patient

    The phone must be a UK mobile (texts to landlines are read aloud); one patient per
    mobile per practice. The NHS number, when given, must pass its check digit.
    """
    return PatientOut.of(register_patient(_rt(), g.practice, json, **_actor())), 201


@bp.get("/patients/<patient_id>")
@operation(answers={200: PatientOut}, errors=(404,))
def get_patient(patient_id: str):
    """A patient"""
    return PatientOut.of(queries.patient(_rt(), g.practice, patient_id))


@bp.get("/patients/<patient_id>/invitations")
@operation(answers={200: Invitations}, errors=(404,))
def get_invitations(patient_id: str):
    """A patient's invitations, in due order"""
    rows = queries.invitations_of(_rt(), g.practice, patient_id)
    return Invitations([InvitationOut.of(i) for i in rows])


@bp.get("/patients/<patient_id>/results")
@operation(answers={200: Results}, errors=(404,))
def get_results(patient_id: str):
    """A patient's finished questionnaires: scores, bands, answers and flags

    `total` and `band` are null when a questionnaire cannot be scored (missing answers never
    count as zero).
    """
    return Results([ResultOut.of(r) for r in queries.results_of(_rt(), g.practice, patient_id)])


# -- consultations and invitations -----------------------------------------------------


@bp.post("/consultations")
@operation(body=ConsultationCreate, answers={201: ConsultationOut}, errors=(404,))
def post_consultation(json: ConsultationCreate):
    """Register a consultation and schedule its questionnaires

    Give a `protocol` or a `schedule`. Due times keep the practice's local wall-clock time:
    a consultation at 10:00 with `after: P2W` is due at 10:00 local two weeks later, across
    a change to or from summer time. An unknown `patient_id` is a 404 naming the field.
    """
    consultation, invitations = register_consultation(_rt(), g.practice, json, **_actor())
    return ConsultationOut.of(consultation, invitations), 201


@bp.get("/consultations/<consultation_id>")
@operation(answers={200: ConsultationOut}, errors=(404,))
def get_consultation(consultation_id: str):
    """A consultation with its invitations"""
    consultation, invitations = consultations.read_consultation(_rt(), g.practice, consultation_id)
    return ConsultationOut.of(consultation, invitations)


@bp.post("/consultations/<consultation_id>/cancel")
@operation(answers={200: ConsultationChanged}, errors=(404,))
def cancel_consultation(consultation_id: str):
    """Cancel a consultation's pending invitations

    Only pending invitations (not yet sent) are changed. An active questionnaire has reached
    the patient, who may be answering: it is left to finish or expire on its own, and
    `outcome` counts what was left alone.
    """
    changed = consultations.cancel_consultation(_rt(), g.practice, consultation_id, **_actor())
    return _changed(*changed)


@bp.post("/consultations/<consultation_id>/reschedule")
@operation(body=Reschedule, answers={200: ConsultationChanged}, errors=(404,))
def reschedule_consultation(consultation_id: str, json: Reschedule):
    """Move a consultation's pending invitations

    By `shift` (an ISO-8601 duration; negative moves earlier), or to a new `occurred_at`
    (each keeps its offset from the consultation). A due time that would fall in the past
    goes at the next opening of the send window.
    """
    changed = consultations.reschedule_consultation(
        _rt(), g.practice, consultation_id, json, **_actor()
    )
    return _changed(*changed)


def _changed(consultation, invitations, outcome: Outcome) -> ConsultationChanged:
    return ConsultationChanged(
        **ConsultationOut.of(consultation, invitations).model_dump(),
        outcome=OutcomeOut(
            cancelled=outcome.cancelled,
            moved=outcome.moved,
            left=outcome.left_total,
            left_by_status=dict(sorted(outcome.left.items())),
            message=outcome_message(outcome),
        ),
    )


def outcome_message(outcome: Outcome) -> str:
    """What a cancel or reschedule did, and what it left alone, in a few sentences."""
    if outcome.action == "cancel":
        parts = [f"Cancelled {_count(outcome.cancelled, 'pending questionnaire')}."]
    else:
        parts = [f"Moved {_count(outcome.moved, 'pending questionnaire')}."]
    if outcome.due_now:
        goes = "it goes" if outcome.due_now == 1 else "they go"
        parts.append(
            f"{outcome.due_now} of them would have fallen in the past, so {goes} at the next "
            "opening of the send window."
        )
    active = outcome.left.get("active", 0)
    if active == 1:
        parts.append(
            "1 questionnaire already sent is still open and was left alone: the patient "
            "may be answering; it finishes or expires on its own."
        )
    elif active:
        parts.append(
            f"{active} questionnaires already sent are still open and were left alone: "
            "the patient may be answering; they finish or expire on their own."
        )
    finished = outcome.left_total - active
    if finished == 1:
        parts.append("1 finished invitation was left as it was.")
    elif finished:
        parts.append(f"{finished} finished invitations were left as they were.")
    return " ".join(parts)


def _count(n: int, singular: str) -> str:
    return f"{n} {singular if n == 1 else singular + 's'}"


@bp.post("/invitations/<invitation_id>/cancel")
@operation(answers={200: InvitationOut}, errors=(404, 409))
def cancel_invitation(invitation_id: str):
    """Cancel one pending invitation (409 once it has been sent)"""
    return InvitationOut.of(
        consultations.cancel_invitation(_rt(), g.practice, invitation_id, **_actor())
    )


@bp.patch("/invitations/<invitation_id>")
@operation(body=InvitationMove, answers={200: InvitationOut}, errors=(404, 409))
def patch_invitation(invitation_id: str, json: InvitationMove):
    """Move one pending invitation (409 once it has been sent)

    Only `due_at` can change: from now on (now means the next opening of the send window).
    To cancel, POST /api/v1/invitations/{invitation_id}/cancel.
    """
    return InvitationOut.of(
        consultations.move_invitation(
            _rt(), g.practice, invitation_id, due_at=json.due_at, **_actor()
        )
    )


# -- alerts and the message log ---------------------------------------------------------


@bp.get("/alerts")
@operation(query=AlertsQuery, answers={200: Alerts})
def get_alerts(query: AlertsQuery):
    """The practice's alerts, newest first, optionally by status"""
    rows = queries.alerts_of(_rt(), g.practice, query.status)
    return Alerts([AlertOut.of(a) for a in rows])


@bp.post("/alerts/<alert_id>/acknowledge")
@operation(body=AcknowledgeBody, answers={200: AlertOut}, errors=(404,))
def post_acknowledge(alert_id: str, json: AcknowledgeBody):
    """Record what was done about an alert: every outcome but could_not_reach acknowledges it

    The outcome is required and the note optional, with the staff page's rules. Every
    outcome but `could_not_reach` acknowledges the alert and stops its escalation;
    `could_not_reach` records the attempt (status stays `open`, escalation continues).
    Once acknowledged, repeating it changes nothing: the first outcome stands.
    """
    alert = acknowledge_alert(
        _rt(), g.practice.id, alert_id, outcome=json.outcome, note=json.note, **_actor()
    )
    return AlertOut.of(alert)


@bp.get("/messages")
@operation(query=MessagesQuery, answers={200: Messages}, errors=(404,))
def get_messages(query: MessagesQuery):
    """The message log: the latest 500 texts, oldest first, of one patient or all"""
    rows = queries.messages_of(_rt(), g.practice, query.patient_id)
    return Messages([MessageOut.of(m) for m in rows])


# -- protocols: a practice's named schedules --------------------------------------------
# A consultation's invitations are made from its protocol when it is registered:
# editing or deleting a protocol changes future consultations only.


@bp.get("/protocols")
@operation(answers={200: Protocols})
def get_protocols():
    """The practice's protocols, by name"""
    return Protocols([ProtocolOut.of(p) for p in protocols.list_protocols(_rt(), g.practice)])


@bp.post("/protocols")
@operation(body=ProtocolCreate, answers={201: ProtocolOut})
def post_protocol(json: ProtocolCreate):
    """Add a protocol: a named schedule of questionnaires

    A protocol is a template. A consultation's invitations are made from it when the
    consultation is registered, so later edits change future consultations only.
    """
    return ProtocolOut.of(protocols.add_protocol(_rt(), g.practice, json, **_actor())), 201


@bp.put("/protocols/<name>")
@operation(body=ProtocolUpdate, answers={200: ProtocolOut}, errors=(404,))
def put_protocol(name: str, json: ProtocolUpdate):
    """Change a protocol's title or schedule (future consultations only)"""
    return ProtocolOut.of(protocols.change_protocol(_rt(), g.practice, name, json, **_actor()))


@bp.delete("/protocols/<name>")
@operation(answers={204: None}, errors=(404,))
def delete_protocol(name: str):
    """Remove a protocol; consultations registered with it keep their invitations"""
    protocols.remove_protocol(_rt(), g.practice, name, **_actor())
    return Response(status=204)


# -- the practice's own settings, and the questionnaires available ---------------------


@bp.get("/practice")
@operation(answers={200: PracticeOut})
def get_practice():
    """The practice and its settings"""
    practice = practice_settings.read_practice(_rt(), g.practice)
    return PracticeOut.of(practice, practice_settings.alert_warnings(_rt(), practice))


@bp.patch("/practice")
@operation(body=PracticeSettingsUpdate, answers={200: PracticeOut})
def patch_practice(json: PracticeSettingsUpdate):
    """Change some of the practice's settings

    Every value is checked before any is stored. Timers already set keep their times; the
    send window, working days, nation and zone apply to whatever is sent from now on.
    """
    practice = practice_settings.update_settings(_rt(), g.practice, json, **_actor())
    return PracticeOut.of(practice, practice_settings.alert_warnings(_rt(), practice))


@bp.get("/instruments")
@operation(answers={200: Instruments})
def get_instruments():
    """The questionnaires available (shipped, and any the practice's folders add)"""
    return Instruments([InstrumentOut.of(i) for i in _rt().catalogue.values()])


# -- the practice's staff: duty clinicians and escalation contacts ----------------------


@bp.get("/staff")
@operation(answers={200: StaffList})
def get_staff():
    """The practice's staff"""
    return StaffList([StaffOut.of(u) for u in staff_admin.list_staff(_rt(), g.practice)])


@bp.post("/staff")
@operation(body=StaffCreate, answers={201: StaffChanged})
def post_staff(json: StaffCreate):
    """Add a member of staff

    On-duty clinicians are told of urgent alerts at once; escalation contacts of those
    nobody acknowledges. Without a password they cannot sign in until one is set. An
    e-mail address is used once across every practice.
    """
    user = staff_admin.add_staff(_rt(), g.practice, json, **_actor())
    return StaffChanged.after(user, practice_settings.alert_warnings(_rt(), g.practice)), 201


@bp.patch("/staff/<staff_id>")
@operation(body=StaffUpdate, answers={200: StaffChanged}, errors=(404,))
def patch_staff(staff_id: str, json: StaffUpdate):
    """Change a member of staff (a new password signs them out everywhere)"""
    user = staff_admin.change_staff(_rt(), g.practice, staff_id, json, **_actor())
    return StaffChanged.after(user, practice_settings.alert_warnings(_rt(), g.practice))


@bp.delete("/staff/<staff_id>")
@operation(answers={204: None}, errors=(404,))
def delete_staff(staff_id: str):
    """Remove a member of staff

    Someone who has been sent alert notices is deactivated instead, so the record of who
    was told stays.
    """
    staff_admin.remove_staff(_rt(), g.practice, staff_id, **_actor())
    return Response(status=204)
