"""Clinicians acknowledging alerts, with what they did about them.

An outcome is one of ``OUTCOMES``. Every outcome recorded is kept (``AlertAction``)
and audited (``alert.outcome.<outcome>``, ids only). All of them close the alert
except ``could_not_reach``: an attempt that reached nobody leaves the alert open
and its escalation running (``bot.services.alert_notices`` keeps escalating open
alerts), so a failed call is never mistaken for care given.

The API's acknowledge without a body still works: it closes the alert with no
outcome recorded (the page says "not recorded").
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.errors import NotFound
from bot.services import audit
from bot.services.queries import get_alert
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, AlertAction, Practice

# Each outcome, as the staff page offers it and the API accepts it, in that order.
OUTCOMES = {
    "contacted": "Contacted the patient",
    "safety_plan": "Safety plan in place",
    "referred": "Referred",
    "no_action": "No action needed",
    "could_not_reach": "Could not reach the patient",
}
KEEPS_OPEN = frozenset({"could_not_reach"})
NOTE_LIMIT = 1000


def acknowledge_alert(
    rt: Runtime,
    practice_id: str,
    alert_id: str,
    *,
    actor: str,
    now: datetime,
    outcome: str | None = None,
    note: str | None = None,
) -> Alert:
    """``acknowledge`` as its own unit of work (the API's and the staff pages' entry)."""
    with transaction(rt.engine) as session:
        practice = session.get(Practice, practice_id)
        if practice is None:
            raise NotFound(alert_id)
        return acknowledge(
            session, practice, alert_id, actor=actor, now=now, outcome=outcome, note=note
        )


def acknowledge(
    session: Session,
    practice: Practice,
    alert_id: str,
    *,
    actor: str,
    now: datetime,
    outcome: str | None = None,
    note: str | None = None,
) -> Alert:
    """Record what was done and, unless the patient could not be reached, mark the alert
    seen. Acknowledging an acknowledged alert changes nothing (the first outcome stands)."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    alert = get_alert(session, practice, alert_id)
    if alert.status == "acknowledged":
        return alert
    if outcome is not None:
        session.add(
            AlertAction(
                alert_id=alert.id,
                practice_id=practice.id,
                outcome=outcome,
                note=note or None,
                actor=actor,
                at=now,
            )
        )
        audit.record(
            session,
            practice_id=practice.id,
            actor=actor,
            action=f"alert.outcome.{outcome}",
            subject_type="alert",
            subject_id=alert.id,
            now=now,
        )
        if outcome in KEEPS_OPEN:
            return alert
    alert.status = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = actor
    alert.outcome = outcome
    alert.outcome_note = note or None
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
