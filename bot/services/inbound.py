"""An SMS from a patient: find them, move their conversation on, store it all, return the replies.

Guarantees, each with a test:
- idempotent: a replayed MessageSid changes nothing and gets the first reply
  again (the unique provider_sid column decides, not a check-then-insert);
- serial per patient: the patient's row is locked (FOR UPDATE on
  PostgreSQL; SQLite's write lock is taken at BEGIN), so two texts arriving
  together are applied one after the other, and the conversation's state is
  saved only if its version is still the one read (else the text is applied
  again from the start);
- few round trips: practice, patient, conversation and invitation are read in
  one statement, and the inbound text, the replies and the answers are
  inserted together at commit (``_handle``).
- quiet to strangers: an unknown number learns nothing about who we serve;
- safe: a risk phrase reaches a clinician whatever state the patient is in.

Every reply comes from the engine (``bot/flows``): a conversation's from
``resume``, a known patient's with nothing open from
``respond_without_conversation``, a stranger's from ``respond_to_stranger``.
This module only finds, locks, stores and hands on.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.flows import (
    ConversationState,
    PatientText,
    respond_to_stranger,
    respond_without_conversation,
    resume,
)
from bot.flows.events import (
    AnswerRecorded,
    ConversationEnded,
    Paused,
    Reply,
    ResultRecorded,
    Resumed,
)
from bot.identifiers import normalise_e164
from bot.services.carry_out import Effects, carry_out
from bot.services.practice_context import practice_context, with_current_nation
from bot.services.runtime import Runtime
from bot.services.timers import StaleConversation, after_patient_text
from bot.store.db import transaction
from bot.store.models import Answer, Conversation, Invitation, Message, Patient, Practice

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
    found = _find(session, to, phone)
    if found is None:
        practice = session.exec(select(Practice).where(Practice.sms_number == to)).first()
        patient = conversation = invitation = None
    else:
        practice, patient, conversation, invitation = found
    inbound = Message(
        practice_id=practice.id if practice else None,
        patient_id=patient.id if patient else None,
        conversation_id=conversation.id if conversation else None,
        direction="inbound",
        phone=phone,
        body=sms.body,
        provider_sid=sms.sid,  # a replayed MessageSid fails on the unique index at commit
        status="received",
        created_at=now,
        updated_at=now,
    )
    session.add(inbound)

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

    text = PatientText(text=sms.body, media=max(sms.num_media, 0))

    if patient.opted_out or conversation is None or invitation is None:
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

    state = with_current_nation(ConversationState.from_json(conversation.state_json), practice)
    state, events = resume(state, rt.catalogue, text, now)
    # The inbound text, its replies and answers are inserted together at commit, not one
    # by one as each statement below would flush them; unless one text answers an item
    # twice, whose first answer must be in the table for the second to supersede it.
    answered = [(e.instrument, e.item) for e in events if isinstance(e, AnswerRecorded)]
    together = len(answered) == len(set(answered)) and all(
        isinstance(e, BATCHED_EVENTS) for e in events
    )
    with session.no_autoflush if together else nullcontext():
        # the patient has answered: both the reminder and the expiry clocks start again
        _save_state(
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
        if together:
            _insert_texts_first(session)
    log.info(
        "inbound.handled",
        message_sid=sms.sid,
        conversation_id=conversation.id,
        events=[e.type for e in events],
    )
    return _outcome(effects)


# Events whose carrying out neither reads the tables nor flushes: their rows can wait for commit.
BATCHED_EVENTS = (Reply, AnswerRecorded, ResultRecorded, ConversationEnded, Paused, Resumed)


def _insert_texts_first(session: Session) -> None:
    """Flush the texts (the inbound one and its replies, one statement) before the answers.

    An answer names its inbound text (a foreign key), and without a relationship
    between them the unit of work would insert answers first. The answers are set
    aside for this flush and inserted at commit.
    """
    answers = [row for row in session.new if isinstance(row, Answer)]
    for answer in answers:
        session.expunge(answer)
    session.flush()
    session.add_all(answers)


# Built once: the webhook's hottest statement, with its values bound per call.
_FIND = (
    select(Practice, Patient, Conversation, Invitation)
    .join(Patient, col(Patient.practice_id) == col(Practice.id))
    .outerjoin(
        Conversation,
        and_(
            col(Conversation.phone) == bindparam("phone"),
            col(Conversation.active) == True,  # noqa: E712
            col(Conversation.practice_id) == col(Practice.id),
        ),
    )
    .outerjoin(Invitation, col(Invitation.id) == col(Conversation.invitation_id))
    .where(col(Practice.sms_number) == bindparam("to"))
    .where(col(Patient.phone) == bindparam("phone"))
    .with_for_update(of=Patient)
)


def _find(
    session: Session, to: str, phone: str
) -> tuple[Practice, Patient, Conversation | None, Invitation | None] | None:
    """The practice texted, the patient texting it (locked), their open conversation at
    that practice and its invitation, in one round trip; None if no such patient.

    The patient's row lock (SQLite: the write lock taken at BEGIN) makes texts from
    one patient apply one after the other. PostgreSQL cannot lock the optional side
    of an outer join, so the conversation is guarded by its version instead: the
    state is saved only if nobody saved one since it was read (``_save_state``), and
    a text that loses that race is applied again from the start. With no
    conversation found, PostgreSQL looks once more after taking the lock.
    """
    row = session.exec(_FIND, params={"phone": phone, "to": to}).first()
    if row is None:
        return None
    practice, patient, conversation, invitation = row
    if conversation is None and session.get_bind().dialect.name != "sqlite":
        # Read again now the patient is ours: on PostgreSQL the row above was read
        # before waiting for the lock, so a questionnaire started meanwhile (by the
        # dispatcher, which holds the same lock) would not be in it.
        found = session.exec(
            select(Conversation, Invitation)
            .join(Invitation, col(Invitation.id) == col(Conversation.invitation_id))
            .where(Conversation.phone == phone)
            .where(Conversation.active == True)  # noqa: E712
            .where(Conversation.practice_id == practice.id)
        ).first()
        if found is not None:
            conversation, invitation = found
    return practice, patient, conversation, invitation


def _save_state(
    session: Session,
    conversation: Conversation,
    state: ConversationState,
    now: datetime,
    **columns: object,
) -> None:
    """Store the new state if nobody stored one since it was read; no read-back.

    The same compare-and-set as ``timers.save_state``; the values written are set
    on the loaded row as its committed state, so the session neither reads them
    back nor writes them again.
    """
    values: dict[str, object] = {
        "state_json": state.to_json(),
        "version": conversation.version + 1,
        "updated_at": now,
        **columns,
    }
    result = session.exec(
        _save_state_statement(tuple(values)),
        params={**values, "_id": conversation.id, "_version": conversation.version},
    )
    if result.rowcount != 1:
        raise StaleConversation(conversation.id)
    for key, value in values.items():
        set_committed_value(conversation, key, value)


@cache
def _save_state_statement(columns: tuple[str, ...]) -> Any:
    """The compare-and-set for these columns, built once (values bound per call)."""
    return (
        update(Conversation)
        .where(col(Conversation.id) == bindparam("_id"))
        .where(col(Conversation.version) == bindparam("_version"))
        .values({name: bindparam(name) for name in columns})
        .execution_options(synchronize_session=False)
    )


def _outcome(effects: Effects) -> InboundOutcome:
    return InboundOutcome(
        replies=[m.body for m in effects.replies],
        alert_ids=tuple(a.id for a in effects.alerts),
    )
