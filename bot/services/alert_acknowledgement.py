"""Clinicians acknowledging alerts, with what they did about them.

An outcome is one of ``OUTCOMES`` and is required, on the staff page and in the
API alike (both call ``acknowledge``, the one place the rules are applied); a
note is optional (``bot.schemas.records.note_problem``). Every outcome recorded
is kept (``AlertAction``) and audited (``alert.outcome.<outcome>``, ids only).
All of them close the alert except ``could_not_reach``: an attempt that reached
nobody leaves the alert open and its escalation running
(``bot.services.alert_notices`` keeps escalating open alerts), so a failed call
is never mistaken for care given.

Alerts acknowledged before outcomes were recorded have none (the page says
"not recorded").
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.errors import InputError, NotFound
from bot.schemas.records import ALERT_OUTCOMES, KEEPS_OPEN, NOTE_LIMIT, note_problem
from bot.services import audit
from bot.services.queries import get_alert
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, AlertAction, Practice

OUTCOMES = ALERT_OUTCOMES
"""Each outcome, as the staff page offers it and the API accepts it, in that order."""
__all__ = ["KEEPS_OPEN", "NOTE_LIMIT", "OUTCOMES", "acknowledge", "acknowledge_alert"]
CHOOSE_OUTCOME = "Choose what you did about this alert"


def clean_note(note: str | None) -> str | None:
    """The note as kept: line breaks as LF, surrounding spaces removed, blank as none.
    ``InputError`` (field ``note``) when it breaks ``note_problem``'s rule."""
    if note is None:
        return None
    problem = note_problem(note)
    if problem is not None:
        raise InputError("note", problem)
    return note.replace("\r\n", "\n").strip() or None


def acknowledge_alert(
    rt: Runtime,
    practice_id: str,
    alert_id: str,
    *,
    actor: str,
    now: datetime,
    outcome: str,
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
    outcome: str,
    note: str | None = None,
) -> Alert:
    """Record what was done and, unless the patient could not be reached, mark the alert
    seen. Acknowledging an acknowledged alert changes nothing (the first outcome stands).

    ``InputError`` naming ``outcome`` or ``note`` when either breaks the rules, before
    anything is read or written."""
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise InputError("outcome", CHOOSE_OUTCOME)
    note = clean_note(note)
    alert = get_alert(session, practice, alert_id)
    if alert.status == "acknowledged":
        return alert
    session.add(
        AlertAction(
            alert_id=alert.id,
            practice_id=practice.id,
            outcome=outcome,
            note=note,
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
    alert.outcome_note = note
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
