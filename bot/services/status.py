"""Delivery status callbacks: a message's status only ever moves forwards."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import select

from bot.services.carry_out import opt_out
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Message, Patient

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
            select(Message).where(Message.provider_sid == sid).with_for_update()
        ).first()
        if message is None:
            log.info("status.unknown_message", message_sid=sid)
            return False
        if RANK[status] > RANK.get(message.status, -1):
            message.status = status
            message.updated_at = now
        if error_code is not None:
            message.error_code = error_code
        if error_code == OPTED_OUT_ERROR and message.patient_id:
            patient = session.get(Patient, message.patient_id)
            if patient is not None:
                opt_out(session, patient, now=now)
        log.info(
            "status.recorded", message_id=message.id, status=message.status, error_code=error_code
        )
        return True
