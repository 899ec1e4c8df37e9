"""A consultation's invitations after it is registered: read, cancel, move.

Everything here is scoped to one practice (another practice's records are
``NotFound``), refuses a change that an invitation's state does not allow
(``InvitationNotPending``), and writes an audit row for every change, by id
only. Each public function is one unit of work.

- Only *pending* invitations (not yet sent) are cancelled or moved. An active
  questionnaire has already reached the patient, who may be answering it: it
  is left to finish or expire on its own, and the outcome says so.
- Rows are locked before they are changed (``FOR UPDATE`` on PostgreSQL; the
  write lock taken at BEGIN on SQLite), so a scheduler starting an invitation
  at the same moment either starts it first (and it is left alone, as active)
  or finds it already cancelled or moved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.errors import InputError, InvitationNotPending, NotFound
from bot.schemas.fields import duration_of
from bot.schemas.scheduling import Reschedule
from bot.services import audit
from bot.services.enrolment import in_practice_zone, looks_like_id
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Consultation, Invitation, Practice

PAST_TOLERANCE = timedelta(minutes=5)  # clocks differ: "now" from a caller may be a little behind


@dataclass
class Outcome:
    """What a cancel or reschedule did, for the caller to see what was left alone."""

    action: str
    cancelled: int = 0
    moved: int = 0
    due_now: int = 0
    left: dict[str, int] = field(default_factory=dict)

    @property
    def left_total(self) -> int:
        return sum(self.left.values())


def get_consultation(
    session: Session, practice: Practice, consultation_id: str, *, lock: bool = False
) -> Consultation:
    consultation = None
    if looks_like_id(consultation_id):
        query = select(Consultation).where(Consultation.id == consultation_id)
        consultation = session.exec(query.with_for_update() if lock else query).first()
    if consultation is None or consultation.practice_id != practice.id:
        raise NotFound(consultation_id)
    return consultation


def _pending_of(session: Session, consultation: Consultation) -> list[Invitation]:
    # FOR UPDATE (waiting, not skipping): a scheduler starting one of these right now
    # finishes first, and the status check is then made again on the row it left
    return list(
        session.exec(
            select(Invitation)
            .where(Invitation.consultation_id == consultation.id)
            .where(Invitation.status == "pending")
            .order_by(col(Invitation.due_at), col(Invitation.id))
            .with_for_update()
        ).all()
    )


def _left_alone(
    session: Session, consultation: Consultation, changed: list[Invitation]
) -> dict[str, int]:
    ids = {i.id for i in changed}
    rows = session.exec(
        select(Invitation.id, Invitation.status).where(
            Invitation.consultation_id == consultation.id
        )
    ).all()
    return dict(Counter(status for invitation_id, status in rows if invitation_id not in ids))


def invitations_of_consultation(session: Session, consultation: Consultation) -> list[Invitation]:
    return list(
        session.exec(
            select(Invitation)
            .where(Invitation.consultation_id == consultation.id)
            .order_by(col(Invitation.due_at), col(Invitation.id))
        ).all()
    )


def read_consultation(
    rt: Runtime, practice: Practice, consultation_id: str
) -> tuple[Consultation, list[Invitation]]:
    with transaction(rt.engine, read_only=True) as session:
        consultation = get_consultation(session, practice, consultation_id)
        return consultation, invitations_of_consultation(session, consultation)


def cancel_consultation(
    rt: Runtime, practice: Practice, consultation_id: str, *, now: datetime, actor: str
) -> tuple[Consultation, list[Invitation], Outcome]:
    """Cancel every pending invitation of a consultation; sent ones are left as they are."""
    with transaction(rt.engine) as session:
        consultation = get_consultation(session, practice, consultation_id, lock=True)
        pending = _pending_of(session, consultation)
        for invitation in pending:
            _cancel(session, practice, invitation, now=now, actor=actor)
        outcome = Outcome(
            "cancel", cancelled=len(pending), left=_left_alone(session, consultation, pending)
        )
        _audit(
            session, practice, actor, "consultation.cancelled", "consultation", consultation.id, now
        )
        session.flush()
        return consultation, invitations_of_consultation(session, consultation), outcome


def reschedule_consultation(
    rt: Runtime,
    practice: Practice,
    consultation_id: str,
    move: Reschedule,
    *,
    now: datetime,
    actor: str,
) -> tuple[Consultation, list[Invitation], Outcome]:
    """Move a consultation's pending invitations, by ``shift`` or to a new ``occurred_at``.

    Arithmetic is on the practice's wall clock, as when the invitations were
    made: a questionnaire due at 10:00 local is still due at 10:00 local after
    a move across the clock change. With ``occurred_at`` each pending invitation
    keeps its (wall-clock) offset from the old time, and the consultation's
    time is corrected; with ``shift`` (an ISO-8601 duration, which may be
    negative, e.g. ``-P2D``) only the invitations move. A due time that would
    fall in the past becomes now: it goes at the next opening of the send window.
    """
    duration = duration_of(move.shift) if move.shift is not None else None
    occurred_at = (
        in_practice_zone(move.occurred_at, practice) if move.occurred_at is not None else None
    )
    field_name = "shift" if duration is not None else "occurred_at"
    with transaction(rt.engine) as session:
        consultation = get_consultation(session, practice, consultation_id, lock=True)
        zone = ZoneInfo(practice.timezone)
        old_local = consultation.occurred_at.astimezone(zone)
        pending = _pending_of(session, consultation)
        outcome = Outcome("reschedule", moved=len(pending))
        for invitation in pending:
            due_local = invitation.due_at.astimezone(zone)
            try:
                if duration is not None:
                    moved = (due_local + duration).astimezone(UTC)
                else:
                    assert occurred_at is not None
                    offset = due_local.replace(tzinfo=None) - old_local.replace(tzinfo=None)
                    moved = (occurred_at.astimezone(zone) + offset).astimezone(UTC)
            except (OverflowError, ValueError):
                raise InputError(
                    field_name, f"{field_name} moves a questionnaire outside the calendar"
                ) from None
            if moved < now:
                moved = now
                outcome.due_now += 1
            invitation.due_at = moved
            _audit(
                session, practice, actor, "invitation.rescheduled", "invitation", invitation.id, now
            )
        if occurred_at is not None:
            consultation.occurred_at = occurred_at
        outcome.left = _left_alone(session, consultation, pending)
        _audit(
            session,
            practice,
            actor,
            "consultation.rescheduled",
            "consultation",
            consultation.id,
            now,
        )
        session.flush()
        return consultation, invitations_of_consultation(session, consultation), outcome


def _locked_invitation(session: Session, practice: Practice, invitation_id: str) -> Invitation:
    invitation = None
    if looks_like_id(invitation_id):
        invitation = session.exec(
            select(Invitation).where(Invitation.id == invitation_id).with_for_update()
        ).first()
    if invitation is None or invitation.practice_id != practice.id:
        raise NotFound(invitation_id)
    return invitation


def _require_pending(invitation: Invitation, doing: str) -> None:
    if invitation.status != "pending":
        raise InvitationNotPending(invitation.status, doing)


def cancel_invitation(
    rt: Runtime, practice: Practice, invitation_id: str, *, now: datetime, actor: str
) -> Invitation:
    with transaction(rt.engine) as session:
        invitation = _locked_invitation(session, practice, invitation_id)
        _require_pending(invitation, "cancelled")
        _cancel(session, practice, invitation, now=now, actor=actor)
    return invitation


def move_invitation(
    rt: Runtime,
    practice: Practice,
    invitation_id: str,
    *,
    due_at: datetime,
    now: datetime,
    actor: str,
) -> Invitation:
    """Set one pending invitation's due time (now, or later: not in the past)."""
    due_at = in_practice_zone(due_at, practice)
    with transaction(rt.engine) as session:
        invitation = _locked_invitation(session, practice, invitation_id)
        _require_pending(invitation, "moved")
        if due_at < now - PAST_TOLERANCE:
            raise InputError(
                "due_at",
                "due_at is in the past: give a time from now on (now itself means at the next "
                "opening of the send window)",
            )
        invitation.due_at = max(due_at, now)
        _audit(session, practice, actor, "invitation.rescheduled", "invitation", invitation.id, now)
    return invitation


def _cancel(
    session: Session, practice: Practice, invitation: Invitation, *, now: datetime, actor: str
) -> None:
    invitation.status = "cancelled"
    invitation.finished_at = now
    _audit(session, practice, actor, "invitation.cancelled", "invitation", invitation.id, now)


def _audit(
    session: Session,
    practice: Practice,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | None,
    now: datetime,
) -> None:
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        now=now,
    )
