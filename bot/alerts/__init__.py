"""Telling clinicians about urgent alerts, and escalating the ones nobody acknowledges.

Two service functions, called by the scheduler every few seconds and by
``prombot tick``:

- ``notify_due(rt, now)``: every urgent alert not yet notified is claimed and
  its practice's duty clinician(s) are told at once, by e-mail (``SMTP_URL``)
  and, when they have a mobile, by SMS through the configured gateway.
- ``escalate_due(rt, now)``: an urgent alert still open ``escalate_after_minutes``
  after it was raised goes to the escalation contacts (and the duty clinicians
  again), then again every ``escalate_every_minutes`` until acknowledged.

Notices carry no patient details: only the practice's name, that an urgent
alert needs attention, and a link to it in the staff pages (sign-in required).
Routine and information alerts are never pushed; they wait in the staff pages
and the API.
"""

from bot.alerts.email import SmtpSettings, smtp_settings
from bot.alerts.notify import MAX_ATTEMPTS, RETRY_AFTER, STALE_AFTER, escalate_due, notify_due

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_AFTER",
    "STALE_AFTER",
    "SmtpSettings",
    "escalate_due",
    "notify_due",
    "smtp_settings",
]
