"""The outbox: outbound texts written with the state change that caused them, sent after.

A text is a ``message`` row with status ``queued`` written in the same
transaction as the conversation change, so a crash can never leave a state
change without its text or a text without its state change. ``send_outbox``
claims queued rows (``sending``), hands each to the gateway and records the
provider's id.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlmodel import col, select

from bot.services.runtime import Runtime
from bot.sms.gateway import SendError
from bot.store.db import transaction
from bot.store.models import Message, Practice

log = structlog.get_logger(__name__)

BATCH = 200


def send_outbox(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Send queued outbound texts, oldest first, recording the provider's id."""
    counts = {"sent": 0, "failed": 0}
    with transaction(rt.engine) as session:
        queued = session.exec(
            select(Message)
            .where(Message.direction == "outbound")
            .where(Message.status == "queued")
            .order_by(col(Message.created_at), col(Message.position))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for message in queued:
            message.status = "sending"
            message.updated_at = now
        claimed = [(m.id, m.phone, m.body, m.practice_id) for m in queued]
    for message_id, phone, body, practice_id in claimed:
        with transaction(rt.engine) as session:
            practice = session.get(Practice, practice_id) if practice_id else None
            message = session.get(Message, message_id)
            assert message is not None
            try:
                sent = rt.gateway.send(
                    to=phone,
                    from_=practice.sms_number if practice else "",
                    body=body,
                    message_id=message_id,
                )
            except SendError as exc:
                message.status = "failed"
                message.error_code = exc.code
                counts["failed"] += 1
                log.warning("outbox.failed", message_id=message_id, error_code=exc.code)
            else:
                message.provider_sid = sent.provider_sid
                message.status = sent.status
                counts["sent"] += 1
            message.updated_at = now
    return counts
