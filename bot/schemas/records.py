"""What the practice reads back: results, alerts and the message log."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import PlainValidator, WithJsonSchema

from bot.schemas.common import Answer, Request
from bot.schemas.fields import Instant, LookupId, problem
from bot.store.models import Alert, Message, ResultRecord

ALERT_STATUSES = ("open", "acknowledged")


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
