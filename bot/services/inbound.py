"""An SMS from a patient: find them, move their conversation on, store it all, return the replies.

Guarantees, each with a test:
- idempotent: a replayed MessageSid changes nothing and gets the first reply
  again (the unique provider_sid column decides, not a check-then-insert);
- serial per patient: the conversation row is locked (FOR UPDATE on
  PostgreSQL; SQLite's write lock is taken at BEGIN), so two texts arriving
  together are applied one after the other;
- quiet to strangers: an unknown number learns nothing about who we serve;
- safe: a risk phrase reaches a clinician whatever state the patient is in.

Every reply comes from the engine (``bot/flows``): a conversation's from
``resume``, a known patient's with nothing open from
``respond_without_conversation``, a stranger's from ``respond_to_stranger``.
This module only finds, locks, stores and hands on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.flows import (
    ConversationState,
    PatientText,
    respond_to_stranger,
    respond_without_conversation,
    resume,
)
from bot.flows.events import Reply
from bot.identifiers import normalise_e164
from bot.services.carry_out import Effects, carry_out
from bot.services.practice_context import practice_context, with_current_nation
from bot.services.runtime import Runtime
from bot.services.timers import StaleConversation, after_patient_text, save_state
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Message, Patient, Practice

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class InboundSms:
    sid: str
    from_: str
    to: str
    body: str
    num_media: int = 0


@dataclass(frozen=True)
class InboundOutcome:
    replies: list[str]
    replayed: bool = False
    alert_ids: tuple[str, ...] = ()


def handle_inbound(rt: Runtime, sms: InboundSms, now: datetime) -> InboundOutcome:
    # PostgreSQL cannot store NUL in text; no phone sends one on purpose.
    sms = replace(
        sms,
        body=sms.body.replace("\x00", ""),
        from_=sms.from_.replace("\x00", ""),
        to=sms.to.replace("\x00", ""),
    )
    for _attempt in range(5):
        try:
            with transaction(rt.engine) as session:
                return _handle(session, rt, sms, now)
        except IntegrityError:
            earlier = replies_to(rt, sms.sid)
            if earlier is not None:
                log.info("inbound.replayed", message_sid=sms.sid)
                return InboundOutcome(replies=earlier, replayed=True)
            raise
        except StaleConversation:
            log.warning("inbound.stale_conversation_retry", message_sid=sms.sid)
    raise RuntimeError("conversation kept changing; giving up after 5 attempts")


def replies_to(rt: Runtime, sid: str) -> list[str] | None:
    """The replies stored for an inbound MessageSid, or None if we never saw it."""
    with transaction(rt.engine, read_only=True) as session:
        inbound = session.exec(select(Message).where(Message.provider_sid == sid)).first()
        if inbound is None:
            return None
        replies = session.exec(
            select(Message)
            .where(Message.in_reply_to == inbound.id)
            .order_by(col(Message.created_at), col(Message.position))
        ).all()
        return [m.body for m in replies]


MAX_PHONE = 16  # E.164: a plus and at most 15 digits (the column's width)


def sender_number(raw: str) -> str:
    """The sender as E.164 when it is a phone number; otherwise a stub no patient can have.

    Twilio's ``From`` can be an alphanumeric sender id, a short code or something
    over-long: those are strangers, stored cut to the column's width, and never
    cut in a way that could make them match a patient's number.
    """
    e164 = normalise_e164(raw)
    if e164 is not None and len(e164) <= MAX_PHONE:
        return e164
    return ("?" + raw)[:MAX_PHONE]


def _handle(session: Session, rt: Runtime, sms: InboundSms, now: datetime) -> InboundOutcome:
    phone = sender_number(sms.from_)
    to = normalise_e164(sms.to) or sms.to
    practice = session.exec(select(Practice).where(Practice.sms_number == to)).first()
    patient = (
        session.exec(
            select(Patient)
            .where(Patient.practice_id == practice.id)
            .where(Patient.phone == phone)
            .with_for_update()
        ).first()
        if practice
        else None
    )
    inbound = Message(
        practice_id=practice.id if practice else None,
        patient_id=patient.id if patient else None,
        direction="inbound",
        phone=phone,
        body=sms.body,
        provider_sid=sms.sid,
        status="received",
        created_at=now,
        updated_at=now,
    )
    session.add(inbound)
    session.flush()  # a replayed MessageSid fails here, on the unique index

    if practice is None or patient is None:
        log.info("inbound.unknown_sender", message_sid=sms.sid, known_practice=bool(practice))
        events = respond_to_stranger()
        replies = [e.text for e in events if isinstance(e, Reply)]
        for position, text in enumerate(replies, start=1):
            session.add(
                Message(
                    practice_id=practice.id if practice else None,
                    direction="outbound",
                    phone=phone,
                    body=text,
                    in_reply_to=inbound.id,
                    position=position,
                    status="sent",
                    created_at=now,
                    updated_at=now,
                )
            )
        return InboundOutcome(replies=replies)

    conversation = session.exec(
        select(Conversation)
        .where(Conversation.phone == phone)
        .where(Conversation.active == True)  # noqa: E712
        .with_for_update()
    ).first()
    if conversation is not None and conversation.practice_id != practice.id:
        conversation = None  # texting another practice's number: not that conversation
    if conversation is not None:
        inbound.conversation_id = conversation.id
    text = PatientText(text=sms.body, media=max(sms.num_media, 0))

    if patient.opted_out or conversation is None:
        events = respond_without_conversation(
            practice_context(practice), text, opted_out=patient.opted_out
        )
        effects = carry_out(
            session, events, patient=patient, inbound=inbound, now=now, reply_status="sent"
        )
        log.info(
            "inbound.handled",
            message_sid=sms.sid,
            conversation_id=None,
            patient_id=patient.id,
            opted_out=patient.opted_out,
            events=[e.type for e in events],
        )
        return _outcome(effects)

    invitation = session.get(Invitation, conversation.invitation_id)
    state = with_current_nation(ConversationState.from_json(conversation.state_json), practice)
    state, events = resume(state, rt.catalogue, text, now)
    # the patient has answered: both the reminder and the expiry clocks start again
    save_state(
        session,
        conversation,
        state,
        now,
        last_inbound_at=now,
        **after_patient_text(practice, state, now),
    )
    effects = carry_out(
        session,
        events,
        patient=patient,
        conversation=conversation,
        invitation=invitation,
        inbound=inbound,
        now=now,
        reply_status="sent",
    )
    log.info(
        "inbound.handled",
        message_sid=sms.sid,
        conversation_id=conversation.id,
        events=[e.type for e in events],
    )
    return _outcome(effects)


def _outcome(effects: Effects) -> InboundOutcome:
    return InboundOutcome(
        replies=[m.body for m in effects.replies],
        alert_ids=tuple(a.id for a in effects.alerts),
    )
