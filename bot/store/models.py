"""The tables. One class per table; API shapes live in bot/web/api.py, not here.

Ids are 32 hex digits: the creation time in milliseconds, then 80 random bits,
so a practice cannot learn another practice's ids by counting, and new rows go
to the end of each table's primary-key index instead of a random page of it
(random ids made every batch of inserts dirty a page per row, which grew with
the table: issue 12's dispatch scaling). Times are stored in UTC. Personal data
(names, phone numbers, NHS numbers, message bodies) lives only in the columns
that need it, never in the audit log.
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from datetime import date, datetime

from sqlalchemy import Column, Index, String, Text, UniqueConstraint, event, text
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime


def new_id() -> str:
    """A UUIDv7-like id (RFC 9562's layout without the version bits): time-ordered,
    unguessable."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def _id() -> str:
    return Field(default_factory=new_id, primary_key=True, max_length=32)


def _when(nullable: bool = False, index: bool = False) -> datetime:
    """A UTC time column; the service layer always passes the time in (no hidden clock)."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Practice(SQLModel, table=True):
    id: str = _id()
    name: str = Field(max_length=60)
    sms_number: str = Field(
        max_length=16, unique=True, description="E.164, the number patients text"
    )
    timezone: str = Field(default="Europe/London", max_length=64)
    nation: str = Field(
        default="ENG", max_length=4, description="bank holidays: ENG, WLS, SCT, NIR or NONE"
    )
    contact_phone: str | None = Field(default=None, max_length=20)
    contact_email: str | None = Field(default=None, max_length=254)
    # When texts may go out: local wall-clock times on working days that are not
    # bank holidays in the practice's nation. Risky answers then arrive while a
    # clinician can act on them.
    send_window_start: str = Field(default="09:00", max_length=5)
    send_window_end: str = Field(default="17:00", max_length=5)
    working_days: str = Field(default="mon tue wed thu fri", max_length=40)
    reminder_after_hours: int = Field(default=24)
    max_reminders: int = Field(default=1)
    expire_after_days: int = Field(default=7)
    invitation_valid_days: int = Field(
        default=14, description="a missed invitation is still sent within this many days"
    )
    escalate_after_minutes: int = Field(default=30)
    escalate_every_minutes: int = Field(default=30)
    created_at: datetime = _when()


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=120)
    password_hash: str = Field(max_length=256)
    role: str = Field(default="clinician", max_length=20, description="clinician or admin")
    on_duty: bool = Field(default=False, description="gets urgent alerts at once")
    escalation_contact: bool = Field(default=False, description="gets unacknowledged alerts")
    mobile: str | None = Field(default=None, max_length=16)
    must_change_password: bool = Field(
        default=False, description="a one-time password: every staff page asks for a new one"
    )
    created_at: datetime = _when()


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, description="sha256 of the token")
    label: str = Field(default="default", max_length=60)
    created_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


def _search_key(length: int) -> String:
    """Text compared byte by byte: an index range finds exactly the keys with a prefix."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def _name_key(text_: str) -> str:
    """A name as search compares it: no case, no accents, punctuation as spaces."""
    text_ = unicodedata.normalize("NFKD", text_.casefold())
    text_ = "".join(ch for ch in text_ if not unicodedata.combining(ch))
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text_).split())


def patient_search_keys(name: str, phone: str) -> dict[str, str]:
    """The patient's search keys (see ``Patient``), for rows written without the ORM."""
    words = _name_key(name).split()
    family = " ".join(words[-1:] + words[:-1])  # "bo sample" -> "sample bo"
    digits = "".join(ch for ch in phone if ch.isdigit())
    return {
        "name_key": " ".join(words)[:120],
        "family_key": family[:120],
        "phone_key": digits[::-1][:16],
    }


class Patient(SQLModel, table=True):
    """A patient of one practice.

    The three keys make finding one an index range, never a scan: ``name_key``
    (the name without case or accents: the list's order, and a search by the
    start of the name), ``family_key`` (the last word first: a search by the
    start of the surname) and ``phone_key`` (the mobile's digits reversed: a
    search by its last digits is a prefix). They follow the name and phone on
    every write through the ORM; bulk writes use ``patient_search_keys``.
    """

    __table_args__ = (
        UniqueConstraint("practice_id", "phone", name="uq_patient_practice_phone"),
        Index("ix_patient_practice_name_key", "practice_id", "name_key", "id"),
        Index("ix_patient_practice_family_key", "practice_id", "family_key", "id"),
        Index("ix_patient_practice_phone_key", "practice_id", "phone_key", "id"),
        Index("ix_patient_practice_nhs_number", "practice_id", "nhs_number", "id"),
    )
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    name: str = Field(max_length=120)
    phone: str = Field(max_length=16, index=True, description="E.164 UK mobile")
    nhs_number: str | None = Field(default=None, max_length=10)
    date_of_birth: date | None = None
    language: str = Field(default="en", max_length=8)
    opted_out: bool = Field(default=False)
    opted_out_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    name_key: str = Field(
        default="", sa_type=_search_key(120), sa_column_kwargs={"server_default": ""}
    )
    family_key: str = Field(
        default="", sa_type=_search_key(120), sa_column_kwargs={"server_default": ""}
    )
    phone_key: str = Field(
        default="", sa_type=_search_key(16), sa_column_kwargs={"server_default": ""}
    )


@event.listens_for(Patient, "before_insert")
@event.listens_for(Patient, "before_update")
def _keep_search_keys(_mapper: object, _connection: object, patient: Patient) -> None:
    for key, value in patient_search_keys(patient.name or "", patient.phone or "").items():
        if getattr(patient, key) != value:
            setattr(patient, key, value)


class Consultation(SQLModel, table=True):
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    patient_id: str = Field(foreign_key="patient.id", index=True)
    occurred_at: datetime = _when()
    protocol: str | None = Field(default=None, max_length=60)
    created_at: datetime = _when()


class Invitation(SQLModel, table=True):
    """One questionnaire to send to one patient at one time; its status is its life story."""

    # The dispatcher walks due invitations in (due_at, id) order, a page at a time.
    __table_args__ = (Index("ix_invitation_due_walk", "status", "due_at", "id"),)
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    patient_id: str = Field(foreign_key="patient.id", index=True)
    consultation_id: str | None = Field(default=None, foreign_key="consultation.id", index=True)
    instrument: str = Field(max_length=40)
    continue_if_positive: bool = Field(default=False)
    due_at: datetime = _when()
    status: str = Field(
        default="pending",
        max_length=20,
        description="pending, active, completed, incomplete, opted_out, expired, cancelled",
    )
    started_at: datetime | None = _when(nullable=True)
    finished_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()


class Conversation(SQLModel, table=True):
    """The engine's state for one invitation. At most one active conversation per phone."""

    __table_args__ = (
        Index(
            "uq_conversation_active_phone",
            "phone",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        # "Has this number a questionnaire open?": SQLite cannot use the partial index above.
        Index("ix_conversation_phone_active", "phone", "active"),
    )
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    patient_id: str = Field(foreign_key="patient.id", index=True)
    invitation_id: str = Field(foreign_key="invitation.id", unique=True)
    phone: str = Field(max_length=16)
    active: bool = Field(default=True)
    status: str = Field(default="active", max_length=20)
    state_json: str = Field(sa_column=Column(Text, nullable=False))
    version: int = Field(default=1, description="bumped on every save, for optimistic checks")
    last_inbound_at: datetime | None = _when(nullable=True)
    reminder_due_at: datetime | None = _when(nullable=True, index=True)
    expires_at: datetime | None = _when(nullable=True, index=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class Message(SQLModel, table=True):
    """The message log: every text in or out. Bodies are personal data: never log them."""

    __table_args__ = (
        Index("ix_message_patient_created", "patient_id", "created_at"),
        # The outbox walks queued (or in-flight) texts in the order written, one batch at a time.
        Index("ix_message_outbox", "status", "direction", "created_at", "position", "id"),
        # The outbox's "an earlier text to this phone still waits" test and its lookups.
        Index("ix_message_phone_created", "phone", "created_at"),
    )
    id: str = _id()
    practice_id: str | None = Field(default=None, foreign_key="practice.id", index=True)
    patient_id: str | None = Field(default=None, foreign_key="patient.id")
    conversation_id: str | None = Field(default=None, foreign_key="conversation.id", index=True)
    direction: str = Field(max_length=8, description="inbound or outbound")
    phone: str = Field(max_length=16, description="the patient's side of the exchange")
    body: str = Field(sa_column=Column(Text, nullable=False))
    provider_sid: str | None = Field(default=None, max_length=64, unique=True)
    in_reply_to: str | None = Field(default=None, foreign_key="message.id", index=True)
    position: int = Field(default=0, description="order within one batch of replies")
    status: str = Field(default="received", max_length=20)
    error_code: int | None = None
    attempts: int = Field(default=0, description="hand-overs that may have reached the provider")
    next_attempt_at: datetime | None = _when(nullable=True)
    # The outbox's claim (bot/services/outbox.py): who may act on an unsent text, until when,
    # and when it was last handed to the provider without an answer yet.
    claim_token: str | None = Field(default=None, max_length=32, index=True)
    claimed_until: datetime | None = _when(nullable=True)
    handed_over_at: datetime | None = _when(nullable=True)
    sent_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class Answer(SQLModel, table=True):
    id: str = _id()
    conversation_id: str = Field(foreign_key="conversation.id", index=True)
    invitation_id: str = Field(foreign_key="invitation.id", index=True)
    instrument: str = Field(max_length=40)
    item: str = Field(max_length=40)
    value: int
    raw_text: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str | None = Field(default=None, foreign_key="message.id")
    superseded: bool = Field(default=False, description="replaced by a later answer (BACK)")
    answered_at: datetime = _when()


class ResultRecord(SQLModel, table=True):
    """A scored questionnaire (one per stage: a screen that continued has two)."""

    __tablename__ = "result"
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    patient_id: str = Field(foreign_key="patient.id", index=True)
    invitation_id: str = Field(foreign_key="invitation.id", index=True)
    instrument: str = Field(max_length=40)
    instrument_version: str = Field(max_length=20)
    status: str = Field(max_length=20)
    total: int | None = None
    band: str | None = Field(default=None, max_length=40)
    percentage: int | None = None
    prorated: bool = Field(default=False)
    answers_json: str = Field(sa_column=Column(Text, nullable=False))
    flags_json: str = Field(sa_column=Column(Text, nullable=False))
    finished_at: datetime = _when()


class Alert(SQLModel, table=True):
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    patient_id: str = Field(foreign_key="patient.id", index=True)
    invitation_id: str | None = Field(default=None, foreign_key="invitation.id")
    flag: str = Field(max_length=40)
    severity: str = Field(max_length=20, description="urgent, routine or information")
    reason: str = Field(max_length=20)
    # The question it came from, and the patient's own words that raised it
    # (e.g. "yes" at PHQ-9 item 9), for the clinician's alert page and the API;
    # never put in a notification (bot/alerts/texts.py).
    item: str | None = Field(default=None, max_length=40)
    patient_words: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default="open", max_length=20, index=True)
    created_at: datetime = _when()
    acknowledged_at: datetime | None = _when(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=80)
    notified_at: datetime | None = _when(nullable=True)
    next_escalation_at: datetime | None = _when(nullable=True, index=True)
    escalations: int = Field(default=0)
    fallback_at: datetime | None = _when(nullable=True)
    """When the practice's contact e-mail and escalation contacts were told because no
    on-duty clinician could be (at most once per alert; the audit log says why)."""
    outcome: str | None = Field(default=None, max_length=30)
    """What the clinician who acknowledged did (``bot.services.alert_acknowledgement.OUTCOMES``)."""
    outcome_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AlertAction(SQLModel, table=True):
    """One outcome a clinician recorded about an alert: the one that closed it, and every
    attempt before it that did not ("could not reach" keeps the alert open). Shown in the
    alert's history; the audit log has the same event, by id only."""

    __tablename__ = "alert_action"
    id: str = _id()
    alert_id: str = Field(foreign_key="alert.id", index=True)
    practice_id: str = Field(foreign_key="practice.id", index=True)
    outcome: str = Field(max_length=30)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    actor: str = Field(max_length=80)
    at: datetime = _when()


class AlertNotification(SQLModel, table=True):
    """One notice to one recipient about one alert. Carries no patient details.

    The recipient is a member of staff (``recipient_type`` ``staff``,
    ``recipient_id`` set) or the practice's own contact e-mail address
    (``practice_contact``, no ``recipient_id``: the address is read from the
    practice when the notice is sent). A text's delivery reports land on its
    ``message`` row; ``bot.services.alert_reach`` reads both.
    """

    __tablename__ = "alert_notification"
    id: str = _id()
    alert_id: str = Field(foreign_key="alert.id", index=True)
    practice_id: str = Field(foreign_key="practice.id", index=True)
    recipient_type: str = Field(
        default="staff", max_length=20, description="staff or practice_contact"
    )
    recipient_id: str | None = Field(default=None, foreign_key="staff_user.id")
    channel: str = Field(max_length=10, description="email or sms")
    kind: str = Field(max_length=12, description="notify, fallback or escalate")
    status: str = Field(
        default="queued",
        max_length=12,
        index=True,
        description="queued, retry, sending, sent, failed or cancelled",
    )
    error: str | None = Field(default=None, max_length=200)
    message_id: str | None = Field(
        default=None, foreign_key="message.id", description="a text's row in the message log"
    )
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)


class AuditEvent(SQLModel, table=True):
    """Who did what, by id only: no names, numbers or message text."""

    __tablename__ = "audit_event"
    id: str = _id()
    practice_id: str | None = Field(default=None, foreign_key="practice.id", index=True)
    actor: str = Field(max_length=80, description="user:<id>, token:<id>, patient:<id> or system")
    action: str = Field(max_length=60)
    subject_type: str = Field(max_length=40)
    subject_id: str | None = Field(default=None, max_length=32)
    at: datetime = _when()


class Protocol(SQLModel, table=True):
    """A practice's named follow-up schedule, e.g. PHQ-9 at 2, 6 and 12 weeks."""

    __table_args__ = (UniqueConstraint("practice_id", "name", name="uq_protocol_practice_name"),)
    id: str = _id()
    practice_id: str = Field(foreign_key="practice.id", index=True)
    name: str = Field(max_length=60, description="the id used in the API, e.g. depression_review")
    title: str = Field(max_length=120)
    schedule_json: str = Field(
        sa_column=Column(Text, nullable=False),
        description='[{"instrument": "phq9", "after": "P14D"}, ...]',
    )
    created_at: datetime = _when()
