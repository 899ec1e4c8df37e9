"""An SMS from a patient: find them, move their conversation on, store it all, return the replies.

Guarantees, each with a test:
- idempotent: a replayed MessageSid changes nothing and gets the first reply
  again (the unique provider_sid column decides, not a check-then-insert);
- serial per patient: the conversation row is locked (FOR UPDATE on
  PostgreSQL; SQLite's write lock is taken at BEGIN), so two texts arriving
  together are applied one after the other;
- quiet to strangers: an unknown number learns nothing about who we serve;
- safe: a risk phrase reaches a clinician whatever state the patient is in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.flows import Context, ConversationState, PatientText, resume
from bot.flows import messages as texts
from bot.flows.commands import Command, command_in
from bot.flows.engine import SELF_HARM_RISK
from bot.flows.events import Event, FlagRaised, OptedIn, OptedOut, Reply
from bot.flows.risk import mentions_risk
from bot.identifiers import normalise_e164
from bot.services.carry_out import Effects, carry_out
from bot.services.runtime import Runtime
from bot.services.timers import StaleConversation, after_patient_text, save_state
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Message, Patient, Practice

log = structlog.get_logger(__name__)

UNKNOWN_SENDER_REPLY = (
    "Sorry, this number cannot reply to messages. If you need medical help, contact your "
    "GP practice or call NHS 111. In an emergency call 999."
)
MEDIA_REPLY = (
    "Sorry, we can only read text, not pictures or other attachments. Please reply in words."
)


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


def practice_context(practice: Practice, *, continue_if_positive: bool = False) -> Context:
    return Context(
        practice_name=practice.name,
        practice_phone=practice.contact_phone,
        continue_if_positive=continue_if_positive,
    )


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
        reply = Message(
            practice_id=practice.id if practice else None,
            direction="outbound",
            phone=phone,
            body=UNKNOWN_SENDER_REPLY,
            in_reply_to=inbound.id,
            status="sent",
            created_at=now,
            updated_at=now,
        )
        session.add(reply)
        return InboundOutcome(replies=[UNKNOWN_SENDER_REPLY])

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
    media_notice = [Reply(kind="reprompt", text=MEDIA_REPLY)] if sms.num_media > 0 else []

    if patient.opted_out:
        media_notice = []  # an opted-out patient hears nothing but START's answer
    if patient.opted_out or conversation is None:
        events = media_notice + _without_conversation(patient, practice, sms.body)
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
    state = ConversationState.from_json(conversation.state_json)
    if sms.num_media > 0 and not sms.body.strip():
        events: list[Event] = media_notice
    else:
        state, events = resume(state, rt.catalogue, PatientText(text=sms.body), now)
        events = media_notice + events
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


def _without_conversation(patient: Patient, practice: Practice, body: str) -> list[Event]:
    """Texts from a known patient with no questionnaire open, or who opted out."""
    context = practice_context(practice)
    command = command_in(body)
    events: list[Event] = []
    if command is None and mentions_risk(body):
        events.append(FlagRaised(flag=SELF_HARM_RISK, severity="urgent", reason="risk_phrase"))
        if not patient.opted_out:
            events.append(Reply(kind="safety", text=texts.safety(context)))
    if patient.opted_out:
        if command == Command.START:
            events += [OptedIn(), Reply(kind="confirmation", text=texts.opted_in(context))]
        return events  # an opted-out patient hears nothing but START's answer
    if command == Command.STOP:
        return [*events, OptedOut(), Reply(kind="confirmation", text=texts.opted_out(context))]
    if command == Command.START:
        return [*events, Reply(kind="confirmation", text=texts.already_opted_in())]
    if command == Command.HELP:
        return [*events, Reply(kind="help", text=texts.help_text(context))]
    if events:
        return events
    return [Reply(kind="closed", text=texts.nothing_open(context))]


def _outcome(effects: Effects) -> InboundOutcome:
    return InboundOutcome(
        replies=[m.body for m in effects.replies],
        alert_ids=tuple(a.id for a in effects.alerts),
    )
