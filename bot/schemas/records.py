"""What the practice reads back: results, alerts and the message log."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import PlainValidator, WithJsonSchema

from bot.schemas.common import Answer, Request
from bot.schemas.fields import FORBIDDEN, Instant, LookupId, problem
from bot.store.models import Alert, Message, ResultRecord

ALERT_STATUSES = ("open", "acknowledged")

# What a clinician did about an alert, as the staff page offers it and the API accepts it,
# in that order (``bot.services.alert_acknowledgement`` applies them).
ALERT_OUTCOMES = {
    "contacted": "Contacted the patient",
    "safety_plan": "Safety plan in place",
    "referred": "Referred",
    "no_action": "No action needed",
    "could_not_reach": "Could not reach the patient",
}
KEEPS_OPEN = frozenset({"could_not_reach"})
"""Outcomes that record an attempt but leave the alert open and escalating."""
NOTE_LIMIT = 1000
_NOTE_FORBIDDEN = FORBIDDEN.replace(r"\u0000-\u001f", r"\u0000-\u0009\u000b-\u001f")
_HOSTILE_IN_NOTE = re.compile(f"[{_NOTE_FORBIDDEN}]")
_NOTE_SCHEMA_FORBIDDEN = FORBIDDEN.replace(
    r"\u0000-\u001f", r"\u0000-\u0009\u000b\u000c\u000e-\u001f"
)


def note_problem(note: str) -> str | None:
    """What is wrong with an acknowledgement's note, in words for whoever typed it; None if
    nothing. The one rule for the staff page and the API: at most ``NOTE_LIMIT`` characters
    as sent, line breaks allowed (a browser's CRLF too), other control characters and
    bidirectional controls not (what the API's text fields refuse)."""
    if len(note) > NOTE_LIMIT:
        return f"Keep the note to {NOTE_LIMIT} characters or fewer"
    if _HOSTILE_IN_NOTE.search(note.replace("\r\n", "\n")):
        return "Remove the control characters or direction marks from the note"
    return None


class ResultOut(Answer):
    id: str
    """The result's own id: a screen that went on to the full questionnaire has one of its
    own beside the invitation's (its FHIR QuestionnaireResponse and Observation id)."""
    invitation_id: str
    instrument: str
    instrument_version: str
    status: str
    completed_at: Instant | None
    finished_at: Instant
    total: int | None
    band: str | None
    percentage: int | None
    prorated: bool
    answers: dict[str, int | None]
    flags: list[str]

    @classmethod
    def of(cls, result: ResultRecord) -> ResultOut:
        return cls(
            id=result.id,
            invitation_id=result.invitation_id,
            instrument=result.instrument,
            instrument_version=result.instrument_version,
            status=result.status,
            completed_at=result.finished_at if result.status == "completed" else None,
            finished_at=result.finished_at,
            total=result.total,
            band=result.band,
            percentage=result.percentage,
            prorated=result.prorated,
            answers=json.loads(result.answers_json),
            flags=json.loads(result.flags_json),
        )


class AlertOut(Answer):
    id: str
    patient_id: str
    invitation_id: str | None
    flag: str
    severity: str
    reason: str
    item: str | None
    """The question the alert came from, when it came from an answer."""
    patient_words: str | None
    """The patient's own replies that raised it, one a line, for the clinician (never in a
    notification)."""
    status: str
    created_at: Instant
    acknowledged_at: Instant | None
    acknowledged_by: str | None
    outcome: str | None
    """What was done, from ``AcknowledgeBody.outcome``, once acknowledged (null before, and
    for an alert acknowledged before outcomes were recorded)."""
    outcome_note: str | None

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(
            id=alert.id,
            patient_id=alert.patient_id,
            invitation_id=alert.invitation_id,
            flag=alert.flag,
            severity=alert.severity,
            reason=alert.reason,
            item=alert.item,
            patient_words=alert.patient_words,
            status=alert.status,
            created_at=alert.created_at,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by=alert.acknowledged_by,
            outcome=alert.outcome,
            outcome_note=alert.outcome_note,
        )


class MessageOut(Answer):
    id: str
    patient_id: str | None
    direction: Literal["inbound", "outbound"]
    body: str
    status: str
    error_code: int | None
    created_at: Instant

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            patient_id=message.patient_id,
            direction=message.direction,  # type: ignore[arg-type]
            body=message.body,
            status=message.status,
            error_code=message.error_code,
            created_at=message.created_at,
        )


def _alert_status(value: Any) -> str:
    if value not in ALERT_STATUSES:
        raise problem(f"must be {' or '.join(ALERT_STATUSES)}")
    return value


class AlertsQuery(Request):
    status: Annotated[
        str, PlainValidator(_alert_status), WithJsonSchema({"enum": list(ALERT_STATUSES)})
    ] = None  # type: ignore[assignment]


class MessagesQuery(Request):
    patient_id: LookupId = None  # type: ignore[assignment]


def _outcome(value: Any) -> str:
    if not isinstance(value, str) or value not in ALERT_OUTCOMES:
        raise problem(f"must be one of {', '.join(ALERT_OUTCOMES)}")
    return value


def _note(value: Any) -> str:
    if not isinstance(value, str):
        raise problem("must be text")
    return value  # its content is checked by the service, with the staff page's rule


class AcknowledgeBody(Request):
    """What was done about the alert, as on the staff page."""

    outcome: Annotated[
        str,
        PlainValidator(_outcome),
        WithJsonSchema(
            {
                "enum": list(ALERT_OUTCOMES),
                "description": "what was done: "
                + "; ".join(f"`{k}` {v.lower()}" for k, v in ALERT_OUTCOMES.items())
                + ". Every outcome but `could_not_reach` acknowledges the alert and stops its "
                "escalation; `could_not_reach` records the attempt, and the alert stays open "
                "and keeps escalating.",
            }
        ),
    ]
    note: Annotated[
        str,
        PlainValidator(_note),
        WithJsonSchema(
            {
                "type": "string",
                "maxLength": NOTE_LIMIT,
                # a lone CR is refused too, which a pattern cannot say
                "pattern": f"^[^{_NOTE_SCHEMA_FORBIDDEN}]*$",
                "description": "optional: what was said or arranged, for the next clinician; "
                "line breaks allowed, no other control characters",
            }
        ),
    ] = None  # type: ignore[assignment]
