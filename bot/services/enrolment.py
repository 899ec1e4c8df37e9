"""Onboarding practices, registering patients, and turning a consultation into invitations."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import isodate
import phonenumbers
import yaml
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.identifiers import InvalidIdentifier, normalise_e164
from bot.instruments import Catalogue
from bot.services import audit
from bot.store.models import ApiToken, Consultation, Invitation, Patient, Practice, Protocol

DEFAULT_PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols.yaml"
# instruments that can go straight on to their full form when the screen is positive
SCREENS = {"phq2", "gad2"}
# what a record id can look like (ours are 32 hex digits): anything else is not
# looked up at all, so odd text (a NUL byte, 10 kB of it) never reaches the database
ID_SHAPE = re.compile(r"[0-9A-Za-z_-]{1,64}")
# a point in time that durations are tried against before they are accepted
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


class InputError(ValueError):
    """Bad input from a caller, naming the field: the API answers it with 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotFound(LookupError):
    """No such record in this practice (another practice's ids are not found either).

    ``field`` names the body field that held the id, when it was not in the path.
    """

    def __init__(self, record_id: object, field: str | None = None) -> None:
        super().__init__(record_id)
        self.field = field


def looks_like_id(value: object) -> bool:
    return isinstance(value, str) and ID_SHAPE.fullmatch(value) is not None


@dataclass(frozen=True)
class ScheduleStep:
    instrument: str
    after: timedelta | isodate.Duration
    after_text: str


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


def practice_for_token(session: Session, token: str) -> tuple[Practice, ApiToken] | None:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    practice = session.get(Practice, row.practice_id)
    return (practice, row) if practice else None


def default_protocols() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PROTOCOLS.read_text(encoding="utf-8"))


def create_practice(
    session: Session,
    *,
    name: str,
    sms_number: str,
    now: datetime,
    contact_phone: str | None = None,
    contact_email: str | None = None,
    timezone: str = "Europe/London",
) -> Practice:
    """A new practice with the default protocols (its API token is made separately)."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise InputError("name", "name is required, at most 60 characters")
    number = normalise_e164(sms_number or "")
    if number is None or not phonenumbers.is_possible_number(phonenumbers.parse(number)):
        raise InputError("sms_number", "sms_number must be a phone number in E.164 form")
    if session.exec(select(Practice).where(Practice.sms_number == number)).first():
        raise InputError("sms_number", "another practice already uses this sms_number")
    practice = Practice(
        name=name,
        sms_number=number,
        contact_phone=contact_phone,
        contact_email=contact_email,
        timezone=timezone,
        created_at=now,
    )
    session.add(practice)
    session.flush()
    for key, protocol in default_protocols().items():
        session.add(
            Protocol(
                practice_id=practice.id,
                name=key,
                title=protocol["title"],
                schedule_json=json.dumps(protocol["schedule"]),
                created_at=now,
            )
        )
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
    from bot.identifiers import normalise_nhs_number, normalise_uk_mobile

    try:
        e164 = normalise_uk_mobile(phone)
    except InvalidIdentifier as exc:
        raise InputError("phone", str(exc)) from None
    nhs = None
    if nhs_number not in (None, ""):
        try:
            nhs = normalise_nhs_number(str(nhs_number))
        except InvalidIdentifier as exc:
            raise InputError("nhs_number", str(exc)) from None
    if language != "en":
        raise InputError(
            "language", "language must be 'en': no validated translations are installed"
        )
    patient = Patient(
        practice_id=practice.id,
        name=name,
        phone=e164,
        nhs_number=nhs,
        date_of_birth=date_of_birth,
        language=language,
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
            .where(Patient.phone == e164)
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


def parse_schedule(raw: Any, catalogue: Catalogue) -> list[ScheduleStep]:
    if not isinstance(raw, list) or not raw:
        raise InputError("schedule", "schedule must be a non-empty list of {instrument, after}")
    steps = []
    for index, entry in enumerate(raw):
        where = f"schedule[{index}]"
        if not isinstance(entry, dict):
            raise InputError(where, f"{where} must be an object with instrument and after")
        instrument = entry.get("instrument")
        if not isinstance(instrument, str) or instrument not in catalogue:
            raise InputError(
                f"{where}.instrument",
                f"{where}.instrument must be one of {', '.join(catalogue)}",
            )
        after = entry.get("after")
        duration = _duration(after)
        if duration is None:
            raise InputError(
                f"{where}.after",
                f"{where}.after must be an ISO-8601 duration of zero or more, such as P14D",
            )
        steps.append(ScheduleStep(instrument=instrument, after=duration, after_text=str(after)))
    return steps


def _duration(text: Any) -> timedelta | isodate.Duration | None:
    """A duration that does not go backwards (P1M and P14D, not -P1D or -P1M), or None."""
    if not isinstance(text, str):
        return None
    try:
        duration = isodate.parse_duration(text.strip())
        forwards = _PROBE + duration >= _PROBE  # months and years only compare once applied
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError):
        return None
    return duration if forwards else None


def protocol_schedule(session: Session, practice: Practice, name: str) -> list[dict[str, str]]:
    protocol = session.exec(
        select(Protocol).where(Protocol.practice_id == practice.id).where(Protocol.name == name)
    ).first()
    if protocol is None:
        names = session.exec(select(Protocol.name).where(Protocol.practice_id == practice.id)).all()
        raise InputError("protocol", f"protocol must be one of {', '.join(sorted(names))}")
    return json.loads(protocol.schedule_json)


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
) -> tuple[Consultation, list[Invitation]]:
    """Register a consultation and create its invitations in one step."""
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
    raw = protocol_schedule(session, practice, protocol) if protocol else schedule
    steps = parse_schedule(raw, catalogue)
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    consultation = Consultation(
        practice_id=practice.id,
        patient_id=patient.id,
        occurred_at=occurred_at,
        protocol=protocol,
        created_at=now,
    )
    session.add(consultation)
    session.flush()
    local_time = occurred_at.astimezone(ZoneInfo(practice.timezone))
    invitations = []
    for index, step in enumerate(steps):
        try:
            # wall-clock arithmetic in the practice's zone: "2 weeks later" keeps the
            # hour across the clock change
            due_at = (local_time + step.after).astimezone(UTC)
        except (OverflowError, ValueError):
            field = "protocol" if protocol else f"schedule[{index}].after"
            raise InputError(field, f"{field} puts a questionnaire past the year 9999") from None
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
