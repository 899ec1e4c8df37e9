"""Scheduling: consultations and their invitations, protocols, and the instruments."""

from __future__ import annotations

import json

from pydantic import Field, field_validator, model_validator

from bot.instruments import Instrument
from bot.schemas.common import Answer, Request, request_config
from bot.schemas.fields import (
    PROBE,
    Duration,
    Instant,
    InstrumentId,
    LocalDateTime,
    ProtocolName,
    Shift,
    StrictBool,
    duration_of,
    field_problem,
    text,
)
from bot.store.models import Consultation, Invitation, Protocol

MAX_STEPS = 52  # a questionnaire a week for a year
LONGEST_AFTER = "P5Y"
TITLE_LIMIT = 120


class ScheduleStep(Request):
    instrument: InstrumentId
    after: Duration


Schedule = list[ScheduleStep]


def _exactly_one(model: Request, first: str, second: str, message: str) -> None:
    given = [name for name in (first, second) if name in model.model_fields_set]
    if len(given) != 1:
        raise field_problem(first, message if not given else f"give {first} or {second}, not both")


class ConsultationCreate(Request):
    """A consultation, and what to send after it: a protocol's schedule or one of its own."""

    model_config = request_config(oneOf=[{"required": ["protocol"]}, {"required": ["schedule"]}])

    patient_id: text(64)  # type: ignore[valid-type]
    occurred_at: LocalDateTime
    protocol: ProtocolName = None  # type: ignore[assignment]
    schedule: Schedule = Field(None, min_length=1)  # type: ignore[assignment]
    continue_if_positive: StrictBool = Field(
        False, description="a positive PHQ-2 or GAD-2 screen goes straight on to the full form"
    )

    @model_validator(mode="after")
    def _protocol_or_schedule(self) -> ConsultationCreate:
        _exactly_one(self, "protocol", "schedule", "give a protocol or a schedule")
        return self


class InvitationOut(Answer):
    id: str
    patient_id: str
    consultation_id: str | None
    instrument: str
    due_at: Instant
    status: str
    started_at: Instant | None
    finished_at: Instant | None

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationOut:
        return cls(
            id=invitation.id,
            patient_id=invitation.patient_id,
            consultation_id=invitation.consultation_id,
            instrument=invitation.instrument,
            due_at=invitation.due_at,
            status=invitation.status,
            started_at=invitation.started_at,
            finished_at=invitation.finished_at,
        )


class ConsultationOut(Answer):
    id: str
    patient_id: str
    occurred_at: Instant
    protocol: str | None
    invitations: list[InvitationOut]

    @classmethod
    def of(cls, consultation: Consultation, invitations: list[Invitation]) -> ConsultationOut:
        return cls(
            id=consultation.id,
            patient_id=consultation.patient_id,
            occurred_at=consultation.occurred_at,
            protocol=consultation.protocol,
            invitations=[InvitationOut.of(i) for i in invitations],
        )


class OutcomeOut(Answer):
    """What a cancel or reschedule did, and what it left alone (and why, in ``message``)."""

    cancelled: int
    moved: int
    left: int
    left_by_status: dict[str, int]
    message: str


class ConsultationChanged(ConsultationOut):
    outcome: OutcomeOut


class Reschedule(Request):
    """Move a consultation's pending invitations by ``shift``, or to a new ``occurred_at``."""

    model_config = request_config(oneOf=[{"required": ["shift"]}, {"required": ["occurred_at"]}])

    shift: Shift = None  # type: ignore[assignment]
    occurred_at: LocalDateTime = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _shift_or_time(self) -> Reschedule:
        _exactly_one(
            self,
            "shift",
            "occurred_at",
            "give shift (an ISO-8601 duration such as P1W) or occurred_at",
        )
        return self


class InvitationMove(Request):
    """A pending invitation's new due time: from now on (now means the next opening)."""

    due_at: LocalDateTime


def _protocol_schedule(steps: list[ScheduleStep]) -> list[ScheduleStep]:
    longest = PROBE + duration_of(LONGEST_AFTER)
    for index, step in enumerate(steps):
        try:
            too_far = PROBE + duration_of(step.after) > longest
        except (OverflowError, ValueError):
            too_far = True
        if too_far:
            where = f"schedule[{index}].after"
            raise field_problem(where, f"{where} must be at most {LONGEST_AFTER} (five years)")
    return steps


class ProtocolCreate(Request):
    """A named schedule of questionnaires, used when consultations are registered."""

    name: ProtocolName
    title: text(TITLE_LIMIT)  # type: ignore[valid-type]
    schedule: Schedule = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("schedule")
    @classmethod
    def _not_too_far(cls, steps: list[ScheduleStep]) -> list[ScheduleStep]:
        return _protocol_schedule(steps)


class ProtocolUpdate(Request):
    """A new title or schedule (or both); ``name`` may be given only as the one it has."""

    model_config = request_config(anyOf=[{"required": ["title"]}, {"required": ["schedule"]}])

    name: ProtocolName = None  # type: ignore[assignment]
    title: text(TITLE_LIMIT) = None  # type: ignore[valid-type,assignment]
    schedule: Schedule = Field(None, min_length=1, max_length=MAX_STEPS)  # type: ignore[assignment]

    @field_validator("schedule")
    @classmethod
    def _not_too_far(cls, steps: list[ScheduleStep]) -> list[ScheduleStep]:
        return _protocol_schedule(steps)

    @model_validator(mode="after")
    def _something(self) -> ProtocolUpdate:
        # (a name alone is answered by the service: naming another protocol is the mistake)
        if not {"title", "schedule", "name"} & self.model_fields_set:
            raise field_problem("body", "the body must give title, schedule or both")
        return self


class StepOut(Answer):
    instrument: str
    after: str


class ProtocolOut(Answer):
    name: str
    title: str
    schedule: list[StepOut]
    created_at: Instant

    @classmethod
    def of(cls, protocol: Protocol) -> ProtocolOut:
        return cls(
            name=protocol.name,
            title=protocol.title,
            schedule=json.loads(protocol.schedule_json),
            created_at=protocol.created_at,
        )


class InstrumentOut(Answer):
    id: str
    title: str
    short_title: str
    version: str
    items: int
    scored_items: int
    languages: list[str]
    licence: str

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentOut:
        return cls(
            id=instrument.id,
            title=instrument.title,
            short_title=instrument.short_title,
            version=instrument.version,
            items=len(instrument.items),
            scored_items=len(instrument.scored_item_ids),
            languages=list(instrument.languages),
            licence=instrument.licence,
        )
