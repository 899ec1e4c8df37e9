"""Carrying out the engine's events inside the caller's transaction.

The engine decides; this module stores: answers (superseding the old one on
BACK), results, alerts (one open alert per flag per invitation), opt-outs
(which cancel everything pending, texts still in the outbox included), and
outbound messages (the outbox).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select, update

from bot.flows import events as ev
from bot.services import audit
from bot.store.models import (
    Alert,
    Answer,
    Conversation,
    Invitation,
    Message,
    Patient,
    ResultRecord,
)

CALLBACK_FLAG = "callback_requested"

# An earlier answer to the item (BACK) is superseded by the new one; built once, as it
# runs for every answer a patient texts.
_SUPERSEDE = (
    update(Answer)
    .where(col(Answer.invitation_id) == bindparam("b_invitation_id"))
    .where(col(Answer.instrument) == bindparam("b_instrument"))
    .where(col(Answer.item) == bindparam("b_item"))
    .where(col(Answer.superseded) == False)  # noqa: E712
    .values(superseded=True)
)


@dataclass
class Effects:
    """What carrying out the events produced, for the caller to hand on."""

    replies: list[Message] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def carry_out(
    session: Session,
    events: list[ev.Event],
    *,
    patient: Patient,
    now: datetime,
    conversation: Conversation | None = None,
    invitation: Invitation | None = None,
    inbound: Message | None = None,
    reply_status: str = "queued",
) -> Effects:
    effects = Effects()
    last_result_status: str | None = None
    for event in events:
        match event:
            case ev.Reply(text=text):
                message = Message(
                    practice_id=patient.practice_id,
                    patient_id=patient.id,
                    conversation_id=conversation.id if conversation else None,
                    direction="outbound",
                    phone=patient.phone,
                    body=text,
                    in_reply_to=inbound.id if inbound else None,
                    position=len(effects.replies) + 1,
                    status=reply_status,
                    created_at=now,
                    updated_at=now,
                )
                session.add(message)
                effects.replies.append(message)
            case ev.AnswerRecorded() if conversation and invitation:
                session.exec(
                    _SUPERSEDE,
                    params={
                        "b_invitation_id": invitation.id,
                        "b_instrument": event.instrument,
                        "b_item": event.item,
                    },
                )
                session.add(
                    Answer(
                        conversation_id=conversation.id,
                        invitation_id=invitation.id,
                        instrument=event.instrument,
                        item=event.item,
                        value=event.value,
                        raw_text=event.raw_text,
                        message_id=inbound.id if inbound else None,
                        answered_at=now,
                    )
                )
            case ev.ResultRecorded(result=result) if invitation:
                last_result_status = result.status
                session.add(
                    ResultRecord(
                        practice_id=patient.practice_id,
                        patient_id=patient.id,
                        invitation_id=invitation.id,
                        instrument=result.instrument,
                        instrument_version=result.version,
                        status=result.status,
                        total=result.total,
                        band=result.band,
                        percentage=result.percentage,
                        prorated=result.prorated,
                        answers_json=json.dumps(result.answers),
                        flags_json=json.dumps(result.flags),
                        finished_at=now,
                    )
                )
            case ev.FlagRaised():
                alert = _raise_alert(
                    session,
                    patient=patient,
                    invitation=invitation,
                    flag=event.flag,
                    severity=event.severity,
                    reason=event.reason,
                    now=now,
                    item=event.item,
                    patient_words=event.patient_words,
                )
                if alert:
                    effects.alerts.append(alert)
            case ev.CallbackRequested():
                alert = _raise_alert(
                    session,
                    patient=patient,
                    invitation=invitation,
                    flag=CALLBACK_FLAG,
                    severity="routine",
                    reason="patient_request",
                    now=now,
                )
                if alert:
                    effects.alerts.append(alert)
            case ev.OptedOut():
                opt_out(session, patient, now=now)
            case ev.OptedIn():
                opt_in(session, patient, now=now)
            case ev.Paused() if conversation:
                conversation.status = "paused"
            case ev.Resumed() if conversation:
                conversation.status = "active"
            case ev.ConversationEnded(status=status) if conversation and invitation:
                conversation.active = False
                conversation.status = status
                invitation.status = last_result_status or (
                    "incomplete" if status == "expired" else status
                )
                invitation.finished_at = now
    return effects


MAX_PATIENT_WORDS = 4000  # characters kept on one alert; every text is in the message log too


def _raise_alert(
    session: Session,
    *,
    patient: Patient,
    invitation: Invitation | None,
    flag: str,
    severity: str,
    reason: str,
    now: datetime,
    item: str | None = None,
    patient_words: str | None = None,
) -> Alert | None:
    """One open alert per flag per invitation (per patient when there is no invitation).

    A later reply that raises the same flag while the alert is open adds its
    words to it ("yes", then "a bit"): the clinician sees every reply that
    raised it, in order, on one alert.
    """
    query = select(Alert).where(
        Alert.patient_id == patient.id, Alert.flag == flag, Alert.status == "open"
    )
    query = query.where(Alert.invitation_id == (invitation.id if invitation else None))
    existing = session.exec(query).first()
    if existing is not None:
        if patient_words is not None:
            existing.patient_words = _more_words(existing.patient_words, patient_words)
        existing.item = existing.item or item
        return None
    alert = Alert(
        practice_id=patient.practice_id,
        patient_id=patient.id,
        invitation_id=invitation.id if invitation else None,
        flag=flag,
        severity=severity,
        reason=reason,
        item=item,
        patient_words=_more_words(None, patient_words) if patient_words is not None else None,
        created_at=now,
    )
    session.add(alert)
    session.flush()
    audit.record(
        session,
        practice_id=patient.practice_id,
        actor=f"patient:{patient.id}",
        action="alert.raised",
        subject_type="alert",
        subject_id=alert.id,
        now=now,
    )
    return alert


def _more_words(words: str | None, more: str) -> str:
    """The words so far with one more reply, one reply a line, kept to a bounded length."""
    joined = more if not words else f"{words}\n{more}"
    if len(joined) <= MAX_PATIENT_WORDS:
        return joined
    return joined[: MAX_PATIENT_WORDS - 1] + "\u2026"


def opt_out(session: Session, patient: Patient, *, now: datetime) -> None:
    """The patient said STOP (or the carrier did): cancel everything pending for them."""
    if not patient.opted_out:
        patient.opted_out = True
        patient.opted_out_at = now
        audit.record(
            session,
            practice_id=patient.practice_id,
            actor=f"patient:{patient.id}",
            action="patient.opted_out",
            subject_type="patient",
            subject_id=patient.id,
            now=now,
        )
    session.exec(
        update(Invitation)
        .where(Invitation.patient_id == patient.id)
        .where(Invitation.status == "pending")
        .values(status="cancelled", finished_at=now)
    )
    # Texts still waiting in the outbox (not yet handed to a gateway) must not go either.
    session.exec(
        update(Message)
        .where(Message.patient_id == patient.id)
        .where(Message.direction == "outbound")
        .where(Message.status == "queued")
        .where(Message.provider_sid == None)  # noqa: E711
        .values(status="canceled", updated_at=now)
    )


def opt_in(session: Session, patient: Patient, *, now: datetime) -> None:
    if patient.opted_out:
        patient.opted_out = False
        patient.opted_out_at = None
        audit.record(
            session,
            practice_id=patient.practice_id,
            actor=f"patient:{patient.id}",
            action="patient.opted_in",
            subject_type="patient",
            subject_id=patient.id,
            now=now,
        )
