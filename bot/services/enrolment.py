"""Onboarding practices, registering patients, and turning a consultation into invitations."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.errors import InputError, NotFound
from bot.identifiers import normalise_e164
from bot.instruments import Catalogue
from bot.schemas.errors import checked, input_error
from bot.schemas.fields import duration_of
from bot.schemas.patients import PatientCreate
from bot.schemas.scheduling import ConsultationCreate, ScheduleStep
from bot.services import audit
from bot.services.protocols import add_default_protocols, in_catalogue, protocol_steps
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import ApiToken, Consultation, Invitation, Patient, Practice

__all__ = ["InputError", "NotFound"]  # re-exported: callers of the session-level functions

# instruments that can go straight on to their full form when the screen is positive
SCREENS = {"phq2", "gad2"}
# what a record id can look like (ours are 32 hex digits): anything else is not
# looked up at all, so odd text (a NUL byte, 10 kB of it) never reaches the database
ID_SHAPE = re.compile(r"[0-9A-Za-z_-]{1,64}")
DRAMA_SMS_NUMBERS = [f"+4477009009{n:02d}" for n in range(1, 100)]
_STEPS = TypeAdapter(list[ScheduleStep])


def looks_like_id(value: object) -> bool:
    return isinstance(value, str) and ID_SHAPE.fullmatch(value) is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token(
    session: Session,
    practice: Practice,
    *,
    now: datetime,
    label: str = "default",
    token: str | None = None,
) -> str:
    """Create a token for a practice; only its hash is stored, so it is shown once."""
    token = token or f"pb_{secrets.token_urlsafe(32)}"
    session.add(
        ApiToken(practice_id=practice.id, token_hash=hash_token(token), label=label, created_at=now)
    )
    return token


def authenticate(rt: Runtime, token: str) -> tuple[Practice, ApiToken] | None:
    """The practice an API token belongs to, unless it is unknown or revoked."""
    with transaction(rt.engine, read_only=True) as session:
        return practice_for_token(session, token)


def practice_for_token(session: Session, token: str) -> tuple[Practice, ApiToken] | None:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    practice = session.get(Practice, row.practice_id)
    return (practice, row) if practice else None


def create_practice(
    session: Session,
    *,
    name: str,
    sms_number: str,
    now: datetime,
    contact_phone: str | None = None,
    contact_email: str | None = None,
    timezone: str = "Europe/London",
    nation: str = "ENG",
) -> Practice:
    """A new practice with the default protocols (its API token is made separately)."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise InputError("name", "name is required, at most 60 characters")
    number = practice_number(sms_number)
    if number is None:
        raise InputError("sms_number", "sms_number must be a phone number in E.164 form")
    if session.exec(select(Practice).where(Practice.sms_number == number)).first():
        raise InputError("sms_number", "another practice already uses this sms_number")
    practice = Practice(
        name=name,
        sms_number=number,
        contact_phone=contact_phone,
        contact_email=contact_email,
        timezone=timezone,
        nation=nation,
        created_at=now,
    )
    session.add(practice)
    session.flush()
    add_default_protocols(session, practice, now)
    audit.record(
        session,
        practice_id=practice.id,
        actor="system",
        action="practice.created",
        subject_type="practice",
        subject_id=practice.id,
        now=now,
    )
    return practice


def create_patient(
    session: Session,
    practice: Practice,
    *,
    name: str,
    phone: str,
    now: datetime,
    actor: str,
    nhs_number: str | None = None,
    date_of_birth: date | None = None,
    language: str = "en",
) -> Patient:
    """Register a patient inside the caller's unit of work (the demo, tests)."""
    fields = {"name": name, "phone": phone, "nhs_number": nhs_number, "language": language}
    new = checked(PatientCreate, fields).model_copy(update={"date_of_birth": date_of_birth})
    return add_patient(session, practice, new, now=now, actor=actor)


def register_patient(
    rt: Runtime, practice: Practice, new: PatientCreate, *, now: datetime, actor: str
) -> Patient:
    with transaction(rt.engine) as session:
        return add_patient(session, practice, new, now=now, actor=actor)


def check_new_patient(new: PatientCreate, *, today: date) -> None:
    """The rules a new patient must pass beyond its fields' own (API, pages and CSV import)."""
    if new.date_of_birth is not None and new.date_of_birth > today:
        raise InputError("date_of_birth", "date_of_birth cannot be in the future")


def add_patient(
    session: Session, practice: Practice, new: PatientCreate, *, now: datetime, actor: str
) -> Patient:
    check_new_patient(new, today=now.date())
    patient = Patient(
        practice_id=practice.id,
        name=new.name,
        phone=new.phone,
        nhs_number=new.nhs_number,
        date_of_birth=new.date_of_birth,
        language=new.language,
        created_at=now,
    )
    try:
        # the unique constraint decides, not a check-then-insert: two requests
        # registering one number at once get one patient and one 422, never a 500
        with session.begin_nested():
            session.add(patient)
    except IntegrityError:
        existing = session.exec(
            select(Patient.id)
            .where(Patient.practice_id == practice.id)
            .where(Patient.phone == new.phone)
        ).first()
        if existing is None:
            raise
        raise InputError("phone", f"a patient with this phone already exists: {existing}") from None
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="patient.created",
        subject_type="patient",
        subject_id=patient.id,
        now=now,
    )
    return patient


def get_patient(session: Session, practice: Practice, patient_id: str) -> Patient:
    patient = session.get(Patient, patient_id) if looks_like_id(patient_id) else None
    if patient is None or patient.practice_id != practice.id:
        raise NotFound(patient_id)
    return patient


def in_practice_zone(moment: datetime, practice: Practice) -> datetime:
    """A time as an instant: one given without an offset is the practice's local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(practice.timezone))
    return moment.astimezone(UTC)


def _steps(raw: Any) -> list[ScheduleStep]:
    """Plain ``{instrument, after}`` entries (a stored protocol, a test) checked as steps."""
    if _all_steps(raw):
        return raw
    if not isinstance(raw, list) or not raw:
        raise InputError("schedule", "schedule must be a non-empty list of {instrument, after}")
    try:
        return _STEPS.validate_python(raw)
    except ValidationError as exc:
        problem = input_error(exc)  # about "[0].after"
        where = f"schedule{problem.field}"
        raise InputError(where, where + problem.message.removeprefix(problem.field)) from None


def register_consultation(
    rt: Runtime, practice: Practice, new: ConsultationCreate, *, now: datetime, actor: str
) -> tuple[Consultation, list[Invitation]]:
    """Register a consultation and create its invitations in one unit of work."""
    with transaction(rt.engine) as session:
        return create_consultation(
            session,
            practice,
            rt.catalogue,
            patient_id=new.patient_id,
            occurred_at=new.occurred_at,
            protocol=new.protocol,
            schedule=new.schedule,
            continue_if_positive=new.continue_if_positive,
            now=now,
            actor=actor,
        )


def create_consultation(
    session: Session,
    practice: Practice,
    catalogue: Catalogue,
    *,
    patient_id: str,
    occurred_at: datetime,
    now: datetime,
    actor: str,
    protocol: str | None = None,
    schedule: Any = None,
    continue_if_positive: bool = False,
    flush: bool = True,
) -> tuple[Consultation, list[Invitation]]:
    """Register a consultation and create its invitations inside the caller's unit of work.

    ``schedule`` is a list of ``ScheduleStep`` (or of plain ``{instrument, after}``);
    ``occurred_at`` without an offset is the practice's local time. ``flush=False``
    leaves the rows for the caller to write at once with others (the CSV import).
    """
    try:
        patient = get_patient(session, practice, patient_id)
    except NotFound:
        # 404 like any other practice's id: not a 422 that would tell "exists elsewhere"
        # from "never existed"
        raise NotFound(patient_id, field="patient_id") from None
    if patient.opted_out:
        raise InputError("patient_id", "this patient has opted out of texts")
    if protocol is not None and schedule is not None:
        raise InputError("protocol", "give protocol or schedule, not both")
    if protocol is None and schedule is None:
        raise InputError("protocol", "give a protocol or a schedule")
    steps = _steps(protocol_steps(session, practice, protocol) if protocol else schedule)
    in_catalogue(steps, catalogue)
    occurred_at = in_practice_zone(occurred_at, practice)
    consultation = Consultation(
        practice_id=practice.id,
        patient_id=patient.id,
        occurred_at=occurred_at,
        protocol=protocol,
        created_at=now,
    )
    session.add(consultation)
    if flush:
        session.flush()
    invitations = []
    for step, due_at in due_times(practice, occurred_at, steps, protocol=protocol):
        invitation = Invitation(
            practice_id=practice.id,
            patient_id=patient.id,
            consultation_id=consultation.id,
            instrument=step.instrument,
            continue_if_positive=continue_if_positive and step.instrument in SCREENS,
            due_at=due_at,
            created_at=now,
        )
        session.add(invitation)
        invitations.append(invitation)
    if flush:
        session.flush()
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action="consultation.created",
        subject_type="consultation",
        subject_id=consultation.id,
        now=now,
    )
    return consultation, invitations


def due_times(
    practice: Practice, occurred_at: datetime, steps: list[ScheduleStep], *, protocol: str | None
) -> list[tuple[ScheduleStep, datetime]]:
    """Each step with when it is due (UTC), from a consultation at ``occurred_at`` (UTC).

    Wall-clock arithmetic in the practice's zone: "2 weeks later" keeps the hour
    across the clock change. Shared by one consultation and the CSV import's bulk.
    """
    local_time = occurred_at.astimezone(ZoneInfo(practice.timezone))
    due = []
    for index, step in enumerate(steps):
        try:
            due.append((step, (local_time + _duration(step.after)).astimezone(UTC)))
        except (OverflowError, ValueError):
            field = "protocol" if protocol else f"schedule[{index}].after"
            raise InputError(field, f"{field} puts a questionnaire past the year 9999") from None
    return due


@lru_cache(maxsize=256)
def _duration(text_value: str) -> Any:
    """``duration_of``, parsed once per distinct text (an import repeats a few thousand times)."""
    return duration_of(text_value)


def _all_steps(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, ScheduleStep) for v in value)


def practice_number(raw: str) -> str | None:
    """An SMS number in E.164, when it is a possible phone number."""
    number = normalise_e164(raw or "")
    if number is None or not phonenumbers.is_possible_number(phonenumbers.parse(number)):
        return None
    return number
