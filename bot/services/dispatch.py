"""Starting due questionnaires and sending the outbox.

``dispatch_due`` claims pending invitations whose time has come, starts their
conversations and writes the opening texts to the outbox, all in one
transaction; ``send_outbox`` then hands queued texts to the gateway. Claims use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers never take the
same invitation; on SQLite the write lock taken at BEGIN does the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bot.flows import start
from bot.services import audit
from bot.services.carry_out import carry_out
from bot.services.outbox import send_outbox
from bot.services.practice_context import practice_context
from bot.services.runtime import Runtime
from bot.services.send_window import SendWindow
from bot.services.timers import first_reminder_at
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Patient, Practice

log = structlog.get_logger(__name__)

BATCH = 200


def dispatch_due(
    rt: Runtime, now: datetime, *, limit: int = BATCH, send: bool = True
) -> dict[str, int]:
    """Start every due invitation whose practice is open now; returns counts by outcome.

    Outcomes: ``started``; ``deferred`` (the practice's send window is closed:
    it goes at the next opening, never dropped); ``waiting`` (the patient's
    number already has a questionnaire open); ``expired`` (missed for longer
    than the practice's ``invitation_valid_days``, marked so, visibly);
    ``cancelled`` (the patient opted out). Works through the due rows page by
    page, so rows that must wait never hold up the rest.
    """
    counts = {"started": 0, "deferred": 0, "waiting": 0, "expired": 0, "cancelled": 0}
    after: tuple[datetime, str] | None = None
    while True:
        with transaction(rt.engine) as session:
            query = (
                select(Invitation)
                .where(Invitation.status == "pending")
                .where(Invitation.due_at <= now)
            )
            if after is not None:
                query = query.where(
                    or_(
                        col(Invitation.due_at) > after[0],
                        and_(col(Invitation.due_at) == after[0], col(Invitation.id) > after[1]),
                    )
                )
            page = session.exec(
                query.order_by(col(Invitation.due_at), col(Invitation.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for invitation in page:
                counts[_start_one(session, rt, invitation, now)] += 1
        if len(page) < limit:
            break
        after = (page[-1].due_at, page[-1].id)
    if send:
        counts.update(send_outbox(rt, now))
    return counts


def start_now(rt: Runtime, invitation_id: str, now: datetime) -> str:
    """Start one invitation at once, whatever the send window (the simulator's demo path)."""
    with transaction(rt.engine) as session:
        invitation = session.exec(
            select(Invitation).where(Invitation.id == invitation_id).with_for_update()
        ).one()
        if invitation.status != "pending":
            return invitation.status
        outcome = _start_one(session, rt, invitation, now, ignore_window=True)
    send_outbox(rt, now)
    return outcome


def _start_one(
    session: Session,
    rt: Runtime,
    invitation: Invitation,
    now: datetime,
    *,
    ignore_window: bool = False,
) -> str:
    # Lock the patient, skipping one another process holds: two invitations for
    # one number must not both start (the other is retried on the next run).
    patient = session.exec(
        select(Patient).where(Patient.id == invitation.patient_id).with_for_update(skip_locked=True)
    ).first()
    if patient is None:
        return "waiting"
    practice = session.get(Practice, invitation.practice_id)
    assert practice is not None
    if patient.opted_out:
        invitation.status = "cancelled"
        invitation.finished_at = now
        return "cancelled"
    if now - invitation.due_at > timedelta(days=practice.invitation_valid_days):
        invitation.status = "expired"
        invitation.finished_at = now
        audit.record(
            session,
            practice_id=practice.id,
            actor="system",
            action="invitation.expired_unsent",
            subject_type="invitation",
            subject_id=invitation.id,
            now=now,
        )
        log.warning("invitation.expired_unsent", invitation_id=invitation.id)
        return "expired"
    if not ignore_window and not SendWindow.of(practice).is_open(now):
        return "deferred"
    busy = session.exec(
        select(Conversation.id)
        .where(Conversation.phone == patient.phone)
        .where(Conversation.active == True)  # noqa: E712
    ).first()
    if busy is not None:
        return "waiting"  # one conversation per phone: this one waits its turn
    context = practice_context(practice, continue_if_positive=invitation.continue_if_positive)
    state, events = start(invitation.instrument, rt.catalogue, context, now)
    conversation = Conversation(
        practice_id=practice.id,
        patient_id=patient.id,
        invitation_id=invitation.id,
        phone=patient.phone,
        state_json=state.to_json(),
        reminder_due_at=first_reminder_at(practice, now),
        expires_at=now + timedelta(days=practice.expire_after_days),
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    session.flush()
    carry_out(
        session,
        events,
        patient=patient,
        conversation=conversation,
        invitation=invitation,
        now=now,
        reply_status="queued",
    )
    invitation.status = "active"
    invitation.started_at = now
    audit.record(
        session,
        practice_id=practice.id,
        actor="system",
        action="invitation.started",
        subject_type="invitation",
        subject_id=invitation.id,
        now=now,
    )
    log.info("invitation.started", invitation_id=invitation.id, instrument=invitation.instrument)
    return "started"
