"""A patient's consultations and follow-ups, and the practice's sends across patients.

Read for the staff pages (bot/web/patient_pages.py): no scores, answers or
alerts, only who is followed up with what, when, and in which state, so every
role may see it. Each function is one unit of work scoped to one practice
(another practice's ids are ``NotFound``). A pending follow-up's send time is
shown as it will really go: its due time moved to the next opening of the
practice's send window (``bot/services/send_window.py``).

``update_patient`` changes a patient's details with the API's rules
(``PatientCreate``) and the same one-patient-per-mobile constraint, audited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.errors import InputError
from bot.instruments import Catalogue
from bot.schemas.patients import PatientCreate
from bot.services import audit
from bot.services.enrolment import check_new_patient, get_patient
from bot.services.queries import _practice, get_invitation
from bot.services.runtime import Runtime
from bot.services.send_window import SendWindow
from bot.store.db import transaction
from bot.store.models import Consultation, Conversation, Invitation, Message, Patient, Practice

PAGE_SIZE = 50
STATES = ("pending", "active", "completed", "incomplete", "expired", "cancelled", "opted_out")
FAILED = "failed"
"""A filter of its own: follow-ups whose text could not be delivered."""


@dataclass(frozen=True)
class FollowUpRow:
    id: str
    instrument: str
    """The instrument's short title."""
    status: str
    due_at: datetime
    sends_at: datetime | None
    """When a pending one will go: ``due_at`` moved into the send window."""
    finished_at: datetime | None
    failed: bool = False
    patient_id: str = ""
    patient_name: str = ""

    @property
    def pending(self) -> bool:
        return self.status == "pending"


@dataclass(frozen=True)
class ConsultationRows:
    consultation: Consultation
    follow_ups: list[FollowUpRow]

    @property
    def any_pending(self) -> bool:
        return any(f.pending for f in self.follow_ups)


@dataclass(frozen=True)
class PatientOverview:
    practice: Practice
    patient: Patient
    consultations: list[ConsultationRows]
    """Newest first."""
    unattached: list[FollowUpRow]
    """Follow-ups with no consultation."""


def _title(catalogue: Catalogue, instrument: str) -> str:
    return catalogue[instrument].short_title if instrument in catalogue else instrument


def _sends_at(window: SendWindow | None, invitation: Invitation, now: datetime) -> datetime | None:
    if invitation.status != "pending":
        return None
    due = max(invitation.due_at, now)
    if window is None:
        return due
    try:
        return window.next_opening(due)
    except ValueError:  # a window that never opens: the due time is all there is to show
        return due


def _window(practice: Practice) -> SendWindow | None:
    try:
        return SendWindow.of(practice)
    except (ValueError, KeyError):
        return None


def _failed_ids(session: Session, invitation_ids: list[str]) -> set[str]:
    if not invitation_ids:
        return set()
    rows = session.exec(
        select(Conversation.invitation_id)
        .join(Message, col(Message.conversation_id) == col(Conversation.id))
        .where(col(Conversation.invitation_id).in_(invitation_ids))
        .where(Message.direction == "outbound")
        .where(Message.status == FAILED)
        .distinct()
    ).all()
    return set(rows)


def patient_overview(
    rt: Runtime, practice_id: str, patient_id: str, catalogue: Catalogue, *, now: datetime
) -> PatientOverview:
    """A patient's details with their consultations and follow-ups (no health data)."""
    with transaction(rt.engine, read_only=True) as session:
        practice = _practice(session, practice_id)
        person = get_patient(session, practice, patient_id)
        consultations = session.exec(
            select(Consultation)
            .where(Consultation.patient_id == person.id)
            .order_by(col(Consultation.occurred_at).desc(), col(Consultation.id))
        ).all()
        invitations = session.exec(
            select(Invitation)
            .where(Invitation.patient_id == person.id)
            .order_by(col(Invitation.due_at), col(Invitation.id))
        ).all()
        failed = _failed_ids(session, [i.id for i in invitations])
        window = _window(practice)
        by_consultation: dict[str | None, list[FollowUpRow]] = {}
        for i in invitations:
            row = FollowUpRow(
                i.id,
                _title(catalogue, i.instrument),
                i.status,
                i.due_at,
                _sends_at(window, i, now),
                i.finished_at,
                failed=i.id in failed,
            )
            by_consultation.setdefault(i.consultation_id, []).append(row)
        return PatientOverview(
            practice=practice,
            patient=person,
            consultations=[
                ConsultationRows(c, by_consultation.get(c.id, [])) for c in consultations
            ],
            unattached=by_consultation.get(None, []),
        )


def update_patient(
    rt: Runtime,
    practice_id: str,
    patient_id: str,
    changed: PatientCreate,
    *,
    now: datetime,
    actor: str,
) -> Patient:
    """New details for a patient, by the rules a new patient must pass; audited by id."""
    check_new_patient(changed, today=now.date())
    with transaction(rt.engine) as session:
        practice = _practice(session, practice_id)
        person = get_patient(session, practice, patient_id)
        clash = session.exec(
            select(Patient.id)
            .where(Patient.practice_id == practice.id)
            .where(Patient.phone == changed.phone)
            .where(Patient.id != person.id)
        ).first()
        if clash is not None:
            raise InputError("phone", f"a patient with this phone already exists: {clash}")
        person.name = changed.name
        person.phone = changed.phone
        person.nhs_number = changed.nhs_number
        person.date_of_birth = changed.date_of_birth
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # registered by someone else a moment ago
            raise InputError("phone", "a patient with this phone already exists") from None
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action="patient.updated",
            subject_type="patient",
            subject_id=person.id,
            now=now,
        )
        return person


@dataclass(frozen=True)
class FollowUpPage:
    practice: Practice
    rows: list[FollowUpRow]
    total: int
    page: int
    pages: int


def practice_follow_ups(
    rt: Runtime,
    practice_id: str,
    catalogue: Catalogue,
    *,
    now: datetime,
    state: str | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
) -> FollowUpPage:
    """The practice's follow-ups due between ``since`` and ``until`` (local days, inclusive),
    in one state (or ``failed``), soonest first, a page at a time."""
    with transaction(rt.engine, read_only=True) as session:
        practice = _practice(session, practice_id)
        zone = ZoneInfo(practice.timezone)
        query = (
            select(Invitation, Patient.name)
            .join(Patient, col(Patient.id) == col(Invitation.patient_id))
            .where(Invitation.practice_id == practice.id)
        )
        if since is not None:
            start = datetime.combine(since, time(), tzinfo=zone).astimezone(UTC)
            query = query.where(Invitation.due_at >= start)
        if until is not None:
            end = datetime.combine(until + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
            query = query.where(Invitation.due_at < end)
        if state == FAILED:
            failed_ids = (
                select(Conversation.invitation_id)
                .join(Message, col(Message.conversation_id) == col(Conversation.id))
                .where(Message.direction == "outbound")
                .where(Message.status == FAILED)
            )
            query = query.where(col(Invitation.id).in_(failed_ids))
        elif state in STATES:
            query = query.where(Invitation.status == state)
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(page, 1), pages)
        found = session.exec(
            query.order_by(col(Invitation.due_at), col(Invitation.id))
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        failed = _failed_ids(session, [i.id for i, _ in found])
        window = _window(practice)
        rows = [
            FollowUpRow(
                i.id,
                _title(catalogue, i.instrument),
                i.status,
                i.due_at,
                _sends_at(window, i, now),
                i.finished_at,
                failed=i.id in failed,
                patient_id=i.patient_id,
                patient_name=name,
            )
            for i, name in found
        ]
        return FollowUpPage(practice, rows, total, page, pages)


def practice(rt: Runtime, practice_id: str) -> Practice:
    """The practice row (detached), for the services that take one."""
    with transaction(rt.engine, read_only=True) as session:
        return _practice(session, practice_id)


def patient_name(rt: Runtime, practice_id: str, patient_id: str) -> str | None:
    """A patient's name in this practice, or None (to name a duplicate)."""
    with transaction(rt.engine, read_only=True) as session:
        person = session.get(Patient, patient_id)
        return person.name if person is not None and person.practice_id == practice_id else None


def title_of(catalogue: Catalogue, instrument: str) -> str:
    return _title(catalogue, instrument)


def invitation(rt: Runtime, practice_id: str, invitation_id: str) -> Invitation:
    """One follow-up of this practice (detached), or ``NotFound``."""
    with transaction(rt.engine, read_only=True) as session:
        return get_invitation(session, _practice(session, practice_id), invitation_id)
