"""Delivery reports: matched to their text even before its SID is recorded; status only moves on.

Twilio posts a report to the text's ``StatusCallback`` URL, which names the
text's own id (``/sms/status?message_id=...``, covered by Twilio's signature).
A report is matched by that id, else by its ``MessageSid``:

* the text has no SID yet (the report beat the sender's own record, or the
  sender died after Twilio took the text): the report's SID *is* the text's:
  it is recorded, any claim on the text is revoked (so it is never handed
  over again) and the reported status applies as it is;
* the text has this SID: the status moves forwards only (``RANK``);
* the text has another SID: Twilio holds a second copy of it. Nothing changes
  and the error is logged with both SIDs, so that a double is never silent.

Status rules (Twilio's outbound statuses): ``queued`` < ``accepted``,
``scheduled``, ``sending`` < ``sent`` < the final ones: ``delivered``,
``undelivered``, ``failed``, ``canceled``, ``partially_delivered``. A final
status is never replaced by another (a late ``sent`` or ``failed`` after
``delivered`` changes nothing), except that ``read`` may follow ``delivered``.
An error code is stored with the status it came with (a late report's code
does not land on a text in another state).

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
# Only a delivered text can later be read; a failed one stays failed.
READ_FOLLOWS = {"delivered", "partially_delivered"}
OPTED_OUT_ERROR = 21610  # the recipient has replied STOP to this sender


def record_status(
    rt: Runtime,
    *,
    sid: str,
    status: str,
    error_code: int | None,
    now: datetime,
    message_id: str | None = None,
) -> bool:
    """Apply a delivery report; returns False when it names no outbound text of ours."""
    if status not in RANK:
        log.warning("status.unknown_value", message_sid=sid)
        return False
    with transaction(rt.engine) as session:
        message = _reported(session, sid=sid, message_id=message_id)
        if message is None:
            log.info("status.unknown_message", message_sid=sid)
            return False
        if message.provider_sid is None:
            record_acceptance(message, sid=sid, status=status, error_code=error_code, now=now)
            log.info("status.sid_from_report", message_id=message.id, message_sid=sid)
        elif message.provider_sid != sid:
            log.error(
                "status.second_copy",
                message_id=message.id,
                message_sid=sid,
                recorded_sid=message.provider_sid,
            )
            return True
        elif moves_on(message.status, status):
            message.status = status
            message.error_code = error_code
            message.updated_at = now
        elif status == message.status and error_code is not None:
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


def _reported(session: Session, *, sid: str, message_id: str | None) -> Message | None:
    """The outbound text a report is about, locked: by our own id when given, else by SID."""
    if message_id:
        message = session.exec(
            select(Message)
            .where(Message.id == message_id)
            .where(Message.direction == "outbound")
            .with_for_update()
        ).first()
        if message is not None:
            return message
    return session.exec(
        select(Message)
        .where(Message.provider_sid == sid)
        .where(Message.direction == "outbound")
        .with_for_update()
    ).first()


def moves_on(current: str, reported: str) -> bool:
    """Whether a reported status replaces the current one (see the module's rules)."""
    if reported == "read":
        return current in READ_FOLLOWS or RANK.get(current, -1) < RANK["delivered"]
    return RANK[reported] > RANK.get(current, -1)


def record_acceptance(
    message: Message, *, sid: str, status: str, error_code: int | None, now: datetime
) -> None:
    """The provider has this text as ``sid``: record it, and end any claim on it for good.

    Whoever learns a SID first (the sender, a lookup, a delivery report) records
    it; once a text has a SID the outbox never hands it over again.
    """
    message.provider_sid = sid
    message.status = status
    message.error_code = error_code
    message.sent_at = message.sent_at or now
    message.next_attempt_at = None
    message.claim_token = None
    message.claimed_until = None
    message.handed_over_at = None
    message.updated_at = now


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
