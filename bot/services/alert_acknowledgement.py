"""Clinicians acknowledging alerts (notification and escalation come with the scheduler)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.errors import NotFound
from bot.services import audit
from bot.services.queries import get_alert
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, Practice


def acknowledge_alert(
    rt: Runtime, practice_id: str, alert_id: str, *, actor: str, now: datetime
) -> Alert:
    """``acknowledge`` as its own unit of work (the API's and the staff pages' entry)."""
    with transaction(rt.engine) as session:
        practice = session.get(Practice, practice_id)
        if practice is None:
            raise NotFound(alert_id)
        return acknowledge(session, practice, alert_id, actor=actor, now=now)


def acknowledge(
    session: Session, practice: Practice, alert_id: str, *, actor: str, now: datetime
) -> Alert:
    """Mark an alert seen by someone; repeating it changes nothing."""
    alert = get_alert(session, practice, alert_id)
    if alert.status != "acknowledged":
        alert.status = "acknowledged"
        alert.acknowledged_at = now
        alert.acknowledged_by = actor
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action="alert.acknowledged",
            subject_type="alert",
            subject_id=alert.id,
            now=now,
        )
    return alert
