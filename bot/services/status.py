"""Delivery status callbacks: a message's status only ever moves forwards.

Error 21610 means the carrier has the patient opted out (they texted STOP to
it): the patient is opted out here too, pending invitations are cancelled, and
an open questionnaire ends as if they had texted STOP to us, without a reply.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import Session, select, update

from bot.flows import ConversationState, PatientText, resume
from bot.flows.events import Reply
from bot.services.carry_out import carry_out, opt_out
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Message, Patient

log = structlog.get_logger(__name__)

# Twilio's outbound statuses in the order they can happen; final ones share a rank.
RANK = {
    "queued": 0,
    "sending": 1,
    "accepted": 1,
    "scheduled": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "partially_delivered": 3,
    "read": 4,
}
OPTED_OUT_ERROR = 21610  # the recipient has replied STOP to this sender


def record_status(
    rt: Runtime, *, sid: str, status: str, error_code: int | None, now: datetime
) -> bool:
    """Apply a status callback; returns False when the message is unknown."""
    if status not in RANK:
        log.warning("status.unknown_value", message_sid=sid)
        return False
    with transaction(rt.engine) as session:
        message = session.exec(
            select(Message)
            .where(Message.provider_sid == sid)
            .where(Message.direction == "outbound")
            .with_for_update()
        ).first()
        if message is None:
            log.info("status.unknown_message", message_sid=sid)
            return False
        if RANK[status] > RANK.get(message.status, -1):
            message.status = status
            message.updated_at = now
        if error_code is not None and message.error_code != error_code:
            message.error_code = error_code
            message.updated_at = now
        if error_code == OPTED_OUT_ERROR and message.patient_id:
            patient = session.exec(
                select(Patient).where(Patient.id == message.patient_id).with_for_update()
            ).first()
            if patient is not None:
                carrier_opt_out(session, rt, patient, now)
        log.info(
            "status.recorded", message_id=message.id, status=message.status, error_code=error_code
        )
        return True


def carrier_opt_out(session: Session, rt: Runtime, patient: Patient, now: datetime) -> None:
    """The carrier says the patient texted STOP: act on it as on a STOP, but say nothing."""
    opt_out(session, patient, now=now)
    conversation = session.exec(
        select(Conversation)
        .where(Conversation.patient_id == patient.id)
        .where(Conversation.active == True)  # noqa: E712
        .with_for_update()
    ).first()
    if conversation is None:
        return
    state = ConversationState.from_json(conversation.state_json)
    state, events = resume(state, rt.catalogue, PatientText(text="STOP"), now)
    session.exec(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(
            state_json=state.to_json(),
            version=Conversation.version + 1,
            updated_at=now,
        )
    )
    session.refresh(conversation)
    carry_out(
        session,
        [e for e in events if not isinstance(e, Reply)],  # the carrier would block them anyway
        patient=patient,
        conversation=conversation,
        invitation=session.get(Invitation, conversation.invitation_id),
        now=now,
    )
    log.info("status.carrier_opt_out", conversation_id=conversation.id)
