"""Starting due questionnaires and sending the outbox.

``dispatch_due`` claims pending invitations whose time has come, a page
at a time, starts their conversations and writes the opening texts to the
outbox, one transaction per page; ``send_outbox`` then hands queued texts to the gateway. Claims use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers never take the
same invitation; on SQLite the write lock taken at BEGIN does the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import literal, tuple_
from sqlmodel import Session, col, select

from bot.flows import start
from bot.flows.events import Event
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
_DUE_AT_TYPE = Invitation.__table__.c.due_at.type


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

    Each page is one transaction and a fixed number of statements whatever its
    size (``_start_batch``): the page's patients are locked in one statement,
    its practices and the numbers already busy read in one each, and the new
    conversations, texts and audit rows written together at commit. A page
    that fails rolls back whole: nothing of it was started, all of it is due
    again on the next run.
    """
    counts = {"started": 0, "deferred": 0, "waiting": 0, "expired": 0, "cancelled": 0}
    after: tuple[datetime, str] | None = None
    while True:
        with transaction(rt.engine) as session:
            page = session.exec(due_page_query(now, after, limit)).all()
            for outcome in _start_batch(session, rt, page, now):
                counts[outcome] += 1
        if len(page) < limit:
            break
        after = (page[-1].due_at, page[-1].id)
    if send:
        counts.update(send_outbox(rt, now))
    return counts


def due_page_query(now: datetime, after: tuple[datetime, str] | None, limit: int) -> Any:
    """The next page of due invitations after ``after`` (due_at, id), locked, in that order.

    A row-value comparison: both databases read it as one range of
    ix_invitation_due_walk (an OR of the two halves made SQLite sort every due row
    by id, for each page).
    """
    query = select(Invitation).where(Invitation.status == "pending").where(Invitation.due_at <= now)
    if after is not None:
        query = query.where(
            tuple_(col(Invitation.due_at), col(Invitation.id))
            > tuple_(literal(after[0], _DUE_AT_TYPE), literal(after[1]))
        )
    return (
        query.order_by(col(Invitation.due_at), col(Invitation.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


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
    """One claimed invitation: a batch of one (tests start one without sending)."""
    [outcome] = _start_batch(session, rt, [invitation], now, ignore_window=ignore_window)
    return outcome


def _start_batch(
    session: Session,
    rt: Runtime,
    invitations: Sequence[Invitation],
    now: datetime,
    *,
    ignore_window: bool = False,
) -> list[str]:
    """Start a page of claimed invitations in the caller's transaction; one outcome each.

    Set-based: one statement locks the page's patients, one reads their
    practices, one asks which of their numbers already have a questionnaire
    open; the rows written are inserted together when the transaction commits.
    """
    if not invitations:
        return []
    # Lock the patients, skipping any another process holds: two invitations for one
    # number must not both start (one whose patient is skipped waits for the next run).
    patient_ids = sorted({i.patient_id for i in invitations})
    patients = {
        p.id: p
        for p in session.exec(
            select(Patient)
            .where(col(Patient.id).in_(patient_ids))
            .order_by(col(Patient.id))
            .with_for_update(skip_locked=True)
        ).all()
    }
    practice_ids = sorted({i.practice_id for i in invitations})
    practices = {
        p.id: p
        for p in session.exec(select(Practice).where(col(Practice.id).in_(practice_ids))).all()
    }
    windows: dict[str, bool] = {}
    outcomes: list[str | None] = []
    ready: list[tuple[Invitation, Patient, Practice]] = []
    for invitation in invitations:
        patient = patients.get(invitation.patient_id)
        practice = practices[invitation.practice_id]
        if patient is None:
            outcomes.append("waiting")
        elif patient.opted_out:
            invitation.status = "cancelled"
            invitation.finished_at = now
            outcomes.append("cancelled")
        elif now - invitation.due_at > timedelta(days=practice.invitation_valid_days):
            _expire(session, invitation, practice, now)
            outcomes.append("expired")
        elif not ignore_window and not windows.setdefault(
            practice.id, SendWindow.of(practice).is_open(now)
        ):
            outcomes.append("deferred")
        else:
            outcomes.append(None)
            ready.append((invitation, patient, practice))
    # One conversation per phone: numbers with one open, and numbers started in this batch.
    phones = sorted({patient.phone for _, patient, _ in ready})
    busy = (
        set(
            session.exec(
                select(Conversation.phone)
                .where(col(Conversation.phone).in_(phones))
                .where(Conversation.active == True)  # noqa: E712
            ).all()
        )
        if phones
        else set()
    )
    started: dict[str, str] = {}
    starting: list[tuple[Invitation, Patient, Practice, Conversation, list[Event]]] = []
    for invitation, patient, practice in ready:
        if patient.phone in busy:
            started[invitation.id] = "waiting"  # this one waits its turn
            continue
        busy.add(patient.phone)
        conversation, events = _conversation(rt, invitation, patient, practice, now)
        session.add(conversation)
        starting.append((invitation, patient, practice, conversation, events))
        started[invitation.id] = "started"
    # The conversations first, in one statement: their texts name them.
    session.flush()
    for invitation, patient, practice, conversation, events in starting:
        _queue_opening(session, invitation, patient, practice, conversation, events, now)
    return [
        outcome if outcome is not None else started[invitation.id]
        for invitation, outcome in zip(invitations, outcomes, strict=True)
    ]


def _expire(session: Session, invitation: Invitation, practice: Practice, now: datetime) -> None:
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


def _conversation(
    rt: Runtime, invitation: Invitation, patient: Patient, practice: Practice, now: datetime
) -> tuple[Conversation, list[Event]]:
    """A new conversation (its id set already) and the engine's opening events."""
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
    return conversation, list(events)


def _queue_opening(
    session: Session,
    invitation: Invitation,
    patient: Patient,
    practice: Practice,
    conversation: Conversation,
    events: list[Event],
    now: datetime,
) -> None:
    """The opening texts into the outbox, the invitation marked active, and the audit row."""
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
