"""All timed work, in one pass: what ``prombot tick`` runs and the scheduler's jobs call.

Order matters a little: expiries first (an expired conversation frees the
patient's number for the next invitation), then reminders, then new
questionnaires, then the outbox, then clinician alerts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.services.alert_notices import escalate_due, notify_due
from bot.services.dispatch import dispatch_due
from bot.services.outbox import send_outbox
from bot.services.runtime import Runtime
from bot.services.timers import expire_due, remind_due


def run_due_work(rt: Runtime, now: datetime) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    summary["expiry"] = expire_due(rt, now)
    summary["reminders"] = remind_due(rt, now)
    summary["dispatch"] = dispatch_due(rt, now, send=False)
    summary["outbox"] = send_outbox(rt, now)
    summary["alerts"] = _alerts(rt, now)
    return summary


def _alerts(rt: Runtime, now: datetime) -> dict[str, Any]:
    return {"notify": notify_due(rt, now), "escalate": escalate_due(rt, now)}
