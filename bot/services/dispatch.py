"""Starting due questionnaires and sending the outbox.

``dispatch_due`` claims pending invitations whose time has come, starts their
conversations and writes the opening texts to the outbox, all in one
transaction; ``send_outbox`` then hands queued texts to the gateway. Claims use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers never take the
same invitation; on SQLite the write lock taken at BEGIN does the same.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import Session, col, select

from bot.flows import start
from bot.services import audit
from bot.services.carry_out import carry_out
from bot.services.inbound import practice_context
from bot.services.outbox import send_outbox
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Patient, Practice

log = structlog.get_logger(__name__)

BATCH = 200


def dispatch_due(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Start every due invitation that can start now; returns counts by outcome."""
    counts = {"started": 0, "waiting": 0, "cancelled": 0}
    with transaction(rt.engine) as session:
        due = session.exec(
            select(Invitation)
            .where(Invitation.status == "pending")
            .where(Invitation.due_at <= now)
            .order_by(col(Invitation.due_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for invitation in due:
            counts[_start_one(session, rt, invitation, now)] += 1
    sent = send_outbox(rt, now)
    return {**counts, **sent}


def _start_one(session: Session, rt: Runtime, invitation: Invitation, now: datetime) -> str:
    patient = session.get(Patient, invitation.patient_id)
    practice = session.get(Practice, invitation.practice_id)
    assert patient is not None and practice is not None
    if patient.opted_out:
        invitation.status = "cancelled"
        invitation.finished_at = now
        return "cancelled"
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
