"""Who is told about an urgent alert, and whether a practice can be told at all.

One set of rules, used when an alert is notified (``alert_notices``) and when
a practice's settings or staff change (the warnings), so the warning and the
notifier can never disagree about whether an alert would reach anyone.

- A member of staff can be told by e-mail when e-mail alerts are on
  (``SMTP_URL``), and by SMS when they have a mobile.
- A new urgent alert goes to the on-duty clinicians who can be told. When
  none can (nobody on duty, or nobody on duty with a mobile while e-mail is
  off), it falls back at once to the escalation contacts and the practice's
  contact e-mail; so does an alert whose notices to the on-duty clinicians all
  failed for good (``alert_reach``).
- An escalation goes to the escalation contacts and the on-duty clinicians,
  and to the practice's contact e-mail when the alert already needed the
  fallback or no member of staff can be told.
- A practice "cannot be told" of urgent alerts when a new one would reach
  no one by any of these routes: that is the warning.

Pure functions over rows already loaded, except ``practice_warnings``, which
loads the practice's staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.store.models import Practice, StaffUser

if TYPE_CHECKING:
    from bot.settings import Settings

EMAIL = "email"
SMS = "sms"
STAFF = "staff"
PRACTICE_CONTACT = "practice_contact"

# Why an alert fell back (the audit action is ``alert.fallback.<reason>``).
NOBODY_ON_DUTY = "nobody_on_duty"
ON_DUTY_UNREACHABLE = "on_duty_unreachable"
"""Clinicians are on duty but none has a mobile, and e-mail alerts are off."""
NOTICES_FAILED = "notices_failed"
"""Every notice to the on-duty clinicians failed for good."""

NO_ROUTE = "urgent_alerts_reach_nobody"
"""The warning's code: a new urgent alert would reach no one."""


@dataclass(frozen=True)
class Recipient:
    """One person (or the practice's mailbox) to tell, and the channels that can reach them."""

    type: str  # STAFF or PRACTICE_CONTACT
    staff_id: str | None
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """Who a new urgent alert goes to; ``fallback_reason`` is None when the duty clinicians are."""

    recipients: list[Recipient]
    fallback_reason: str | None


def email_alerts_on(settings: Settings) -> bool:
    """E-mail alerts are on when ``SMTP_URL`` names a server (a bad one stops start-up)."""
    return settings.smtp is not None


def channels(person: StaffUser, email_on: bool) -> tuple[str, ...]:
    return ((EMAIL,) if email_on and person.email else ()) + ((SMS,) if person.mobile else ())


def first_notice(practice: Practice, staff: Sequence[StaffUser], email_on: bool) -> Route:
    """The on-duty clinicians who can be told; else the fallback, and why."""
    on_duty = [s for s in staff if s.on_duty]
    told = _people(on_duty, email_on)
    if told:
        return Route(told, None)
    reason = ON_DUTY_UNREACHABLE if on_duty else NOBODY_ON_DUTY
    return Route(fallback(practice, staff, email_on), reason)


def fallback(practice: Practice, staff: Sequence[StaffUser], email_on: bool) -> list[Recipient]:
    """The escalation contacts who can be told, and the practice's contact e-mail."""
    contacts = [s for s in staff if s.escalation_contact]
    return _with_practice_contact(_people(contacts, email_on), practice, contacts, email_on)


def escalation(
    practice: Practice,
    staff: Sequence[StaffUser],
    email_on: bool,
    *,
    include_practice_contact: bool,
) -> list[Recipient]:
    """Escalation contacts first, then the on-duty clinicians; the mailbox when needed."""
    contacts = [s for s in staff if s.escalation_contact]
    people = contacts + [s for s in staff if s.on_duty and not s.escalation_contact]
    told = _people(people, email_on)
    if include_practice_contact or not told:
        return _with_practice_contact(told, practice, people, email_on)
    return told


def warnings_for(
    practice: Practice, staff: Sequence[StaffUser], email_on: bool
) -> list[dict[str, str]]:
    """``[{"code", "message"}]``: empty when a new urgent alert would reach someone."""
    if first_notice(practice, staff, email_on).recipients:
        return []
    people = [s for s in staff if s.on_duty or s.escalation_contact]
    if not people:
        staff_part = "nobody is on duty or an escalation contact"
    else:
        staff_part = (
            "no clinician on duty or escalation contact has a mobile, and e-mail alerts are "
            "off (SMTP_URL is not set)"
        )
    if not practice.contact_email:
        contact_part = "the practice has no contact e-mail"
    else:
        contact_part = "its contact e-mail cannot be used while e-mail alerts are off (SMTP_URL)"
    message = (
        f"An urgent alert would reach nobody: {staff_part}, and {contact_part}. Put a "
        "clinician with a mobile or e-mail address on duty (/api/v1/staff), or set the "
        "practice's contact_email with e-mail alerts on."
    )
    return [{"code": NO_ROUTE, "message": message}]


def practice_warnings(
    session: Session, practice: Practice, settings: Settings
) -> list[dict[str, str]]:
    """The warnings for a practice as it is now in this unit of work."""
    staff = session.exec(
        select(StaffUser)
        .where(StaffUser.practice_id == practice.id)
        .order_by(col(StaffUser.email), col(StaffUser.id))
    ).all()
    return warnings_for(practice, staff, email_alerts_on(settings))


def _people(staff: Iterable[StaffUser], email_on: bool) -> list[Recipient]:
    found = []
    for person in staff:
        reach = channels(person, email_on)
        if reach:
            found.append(Recipient(STAFF, person.id, reach))
    return found


def _with_practice_contact(
    told: list[Recipient], practice: Practice, people: Sequence[StaffUser], email_on: bool
) -> list[Recipient]:
    address = (practice.contact_email or "").strip().lower()
    if not email_on or not address:
        return told
    emailed = {p.email.lower() for p in people if p.id in _emailed(told)}
    if address in emailed:
        return told  # the practice's address is one of the people's: once is enough
    return [*told, Recipient(PRACTICE_CONTACT, None, (EMAIL,))]


def _emailed(told: Iterable[Recipient]) -> set[str | None]:
    return {r.staff_id for r in told if EMAIL in r.channels}
