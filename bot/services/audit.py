"""The audit log: who did what to which record, by id only."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.store.models import AuditEvent


def record(
    session: Session,
    *,
    practice_id: str | None,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | None,
    now: datetime,
) -> None:
    session.add(
        AuditEvent(
            practice_id=practice_id,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            at=now,
        )
    )
