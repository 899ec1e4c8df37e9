"""A practice's own settings: send window, working days, nation, reminders, escalation.

The values come checked (``PracticeSettingsUpdate``); what is checked here
needs the practice's stored values too (a window that must still open
before it closes, a reminder that must come before the expiry).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from bot.errors import InputError, NotFound
from bot.schemas.practice import PracticeSettingsUpdate
from bot.services import audit
from bot.services.alert_routing import practice_warnings
from bot.services.runtime import Runtime
from bot.services.send_window import parse_clock
from bot.store.db import transaction
from bot.store.models import Practice


def practice_of(rt: Runtime, practice_id: str) -> Practice:
    """A practice by id (the signed-in member's, for the staff pages)."""
    with transaction(rt.engine, read_only=True) as session:
        practice = session.get(Practice, practice_id)
    if practice is None:
        raise NotFound(practice_id)
    return practice


def read_practice(rt: Runtime, practice: Practice) -> Practice:
    with transaction(rt.engine, read_only=True) as session:
        current = session.get(Practice, practice.id)
        assert current is not None
        return current


def alert_warnings(rt: Runtime, practice: Practice) -> list[dict[str, str]]:
    """What stops the practice being told of an urgent alert now (empty when nothing does)."""
    with transaction(rt.engine, read_only=True) as session:
        current = session.get(Practice, practice.id)
        assert current is not None
        return practice_warnings(session, current, rt.settings)


def update_settings(
    rt: Runtime,
    practice: Practice,
    update: PracticeSettingsUpdate,
    *,
    now: datetime,
    actor: str,
) -> Practice:
    """Change some settings; nothing is stored unless all of them can be.

    Timers already set (a pending invitation's due time, a reminder already
    scheduled) keep their times; the send window, working days, nation and
    zone apply to whatever is sent from now on.
    """
    values = update.changes()
    with transaction(rt.engine) as session:
        current = session.exec(
            select(Practice).where(Practice.id == practice.id).with_for_update()
        ).one()
        _check_together(current, values)
        changed = {k: v for k, v in values.items() if getattr(current, k) != v}
        for key, value in changed.items():
            setattr(current, key, value)
        if changed:
            audit.record(
                session,
                practice_id=current.id,
                actor=actor,
                action="practice.settings_changed",
                subject_type="practice",
                subject_id=current.id,
                now=now,
            )
        session.flush()
        return current


def _check_together(practice: Practice, values: dict[str, object]) -> None:
    start = str(values.get("send_window_start", practice.send_window_start))
    end = str(values.get("send_window_end", practice.send_window_end))
    if parse_clock(start) >= parse_clock(end):
        where = "send_window_end" if "send_window_end" in values else "send_window_start"
        raise InputError(
            where, f"send_window_start ({start}) must be before send_window_end ({end})"
        )
    reminders = int(values.get("max_reminders", practice.max_reminders))  # type: ignore[arg-type]
    hours = int(values.get("reminder_after_hours", practice.reminder_after_hours))  # type: ignore[arg-type]
    days = int(values.get("expire_after_days", practice.expire_after_days))  # type: ignore[arg-type]
    if reminders > 0 and hours >= days * 24:
        together = ("reminder_after_hours", "expire_after_days", "max_reminders")
        where = next((k for k in together if k in values), "reminder_after_hours")
        raise InputError(
            where,
            f"reminder_after_hours ({hours}) must be less than expire_after_days ({days}) in "
            "hours, or the conversation expires before its reminder; or set max_reminders to 0",
        )
