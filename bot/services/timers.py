"""Reminders and expiry: the engine's timeouts, driven from the database.

Each active conversation row carries ``reminder_due_at`` and ``expires_at``.
The scheduler claims the rows that are due and resumes their conversations
with ``ReminderDue`` or ``ExpiryDue``, exactly as a patient's text would
resume them: same engine, same carry-out, one transaction each.

- A reminder goes only inside the practice's send window (a due reminder
  waits for the next opening) and at most ``max_reminders`` times.
- Expiry is measured from the last activity (start or the patient's last
  text) and needs no window: nothing is sent; partial answers are kept and
  the result is ``incomplete`` with no total.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlmodel import Session, col, select, update

from bot.flows import ConversationState, ExpiryDue, ReminderDue, resume
from bot.flows.events import Event
from bot.services.carry_out import carry_out
from bot.services.practice_context import with_current_nation
from bot.services.runtime import Runtime
from bot.services.send_window import SendWindow
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Patient, Practice

log = structlog.get_logger(__name__)

BATCH = 200


class StaleConversation(Exception):
    """The conversation changed under us (optimistic check failed)."""


def first_reminder_at(practice: Practice, now: datetime) -> datetime | None:
    if practice.max_reminders <= 0:
        return None
    return now + timedelta(hours=practice.reminder_after_hours)


def after_patient_text(practice: Practice, state: ConversationState, now: datetime) -> dict:
    """The timer columns after the patient has texted: both clocks start again."""
    if not state.is_open:
        return {"reminder_due_at": None, "expires_at": None}
    reminder = (
        now + timedelta(hours=practice.reminder_after_hours)
        if state.reminders_sent < practice.max_reminders
        else None
    )
    return {
        "reminder_due_at": reminder,
        "expires_at": now + timedelta(days=practice.expire_after_days),
    }


def save_state(
    session: Session,
    conversation: Conversation,
    state: ConversationState,
    now: datetime,
    **columns: object,
) -> None:
    """Store the new state (and timer columns), failing if someone stored one since we read it."""
    result = session.exec(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .where(Conversation.version == conversation.version)
        .values(
            state_json=state.to_json(),
            version=conversation.version + 1,
            updated_at=now,
            **columns,
        )
    )
    if result.rowcount != 1:
        raise StaleConversation(conversation.id)
    session.refresh(conversation)


def remind_due(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Send the reminders that are due where the practice is open now."""
    counts = {"reminded": 0, "reminder_deferred": 0}
    while _remind_batch(rt, now, limit, counts) == limit:
        pass
    return counts


def _remind_batch(rt: Runtime, now: datetime, limit: int, counts: dict[str, int]) -> int:
    """One transaction's worth of reminders; returns how many rows it claimed."""
    with transaction(rt.engine) as session:
        due = _claim(session, col(Conversation.reminder_due_at) <= now, limit)
        for conversation in due:
            practice = session.get(Practice, conversation.practice_id)
            assert practice is not None
            window = SendWindow.of(practice)
            if not window.is_open(now):
                # due but the practice is closed: it goes at the next opening
                conversation.reminder_due_at = window.next_opening(now)
                counts["reminder_deferred"] += 1
                continue
            state = with_current_nation(
                ConversationState.from_json(conversation.state_json), practice
            )
            state, events = resume(state, rt.catalogue, ReminderDue(), now)
            next_at = (
                now + timedelta(hours=practice.reminder_after_hours)
                if events and state.reminders_sent < practice.max_reminders
                else None
            )
            save_state(session, conversation, state, now, reminder_due_at=next_at)
            _carry_out(session, conversation, events, now)
            if events:
                counts["reminded"] += 1
                log.info("conversation.reminded", conversation_id=conversation.id)
    return len(due)


def expire_due(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Close conversations that have had no reply for too long, keeping their answers."""
    counts = {"expired_conversations": 0}
    while _expire_batch(rt, now, limit, counts) == limit:
        pass
    return counts


def _expire_batch(rt: Runtime, now: datetime, limit: int, counts: dict[str, int]) -> int:
    with transaction(rt.engine) as session:
        due = _claim(session, col(Conversation.expires_at) <= now, limit)
        for conversation in due:
            practice = session.get(Practice, conversation.practice_id)
            assert practice is not None
            state = with_current_nation(
                ConversationState.from_json(conversation.state_json), practice
            )
            # expiry waiting at a safety-critical item raises its flag: carried out as an alert
            state, events = resume(state, rt.catalogue, ExpiryDue(), now)
            save_state(session, conversation, state, now, reminder_due_at=None, expires_at=None)
            _carry_out(session, conversation, events, now)
            counts["expired_conversations"] += 1
            log.info("conversation.expired", conversation_id=conversation.id)
    return len(due)


def _claim(session: Session, due: object, limit: int) -> list[Conversation]:
    return list(
        session.exec(
            select(Conversation)
            .where(Conversation.active == True)  # noqa: E712
            .where(due)
            .order_by(col(Conversation.updated_at), col(Conversation.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )


def _carry_out(
    session: Session, conversation: Conversation, events: list[Event], now: datetime
) -> None:
    patient = session.get(Patient, conversation.patient_id)
    invitation = session.get(Invitation, conversation.invitation_id)
    assert patient is not None and invitation is not None
    carry_out(
        session,
        events,
        patient=patient,
        conversation=conversation,
        invitation=invitation,
        now=now,
        reply_status="queued",
    )
