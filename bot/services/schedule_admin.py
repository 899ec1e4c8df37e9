"""Changing what is scheduled: protocols, pending invitations and the practice's settings.

Everything here is scoped to one practice (another practice's records are
``NotFound``), checks its input field by field (``InputError``), refuses a
change that the record's state does not allow (``Conflict``), and writes an
audit row for every change, by id only.

- Protocols are templates: a consultation's invitations are made from its
  protocol when the consultation is registered, so editing or deleting a
  protocol changes future consultations only.
- Only *pending* invitations (not yet sent) are cancelled or moved. An active
  questionnaire has already reached the patient, who may be answering it: it
  is left to finish or expire on its own, and the answer says so.
- Rows are locked before they are changed (``FOR UPDATE`` on PostgreSQL; the
  write lock taken at BEGIN on SQLite), so a scheduler starting an invitation
  at the same moment either starts it first (and it is left alone, as active)
  or finds it already cancelled or moved.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import isodate
import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.instruments import Catalogue
from bot.services import audit
from bot.services.enrolment import InputError, NotFound, looks_like_id, parse_schedule
from bot.services.send_window import DAY_NAMES, NATIONS, parse_clock
from bot.store.models import Consultation, Invitation, Practice, Protocol

# -- errors --------------------------------------------------------------------------


class Conflict(Exception):
    """The record's state does not allow the change (e.g. it was already sent): a 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- protocols -----------------------------------------------------------------------

PROTOCOL_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")
TITLE_LIMIT = 120
MAX_STEPS = 52  # a questionnaire a week for a year
LONGEST_AFTER = "P5Y"
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def get_protocol(session: Session, practice: Practice, name: str) -> Protocol:
    protocol = None
    if isinstance(name, str) and PROTOCOL_NAME.fullmatch(name):
        protocol = session.exec(
            select(Protocol)
            .where(Protocol.practice_id == practice.id)
            .where(Protocol.name == name)
            .with_for_update()
        ).first()
    if protocol is None:
        raise NotFound(name)
    return protocol


def create_protocol(
    session: Session,
    practice: Practice,
    catalogue: Catalogue,
    *,
    name: Any,
    title: Any,
    schedule: Any,
    now: datetime,
    actor: str,
) -> Protocol:
    if not isinstance(name, str) or not PROTOCOL_NAME.fullmatch(name):
        raise InputError(
            "name",
            "name must be lower_snake_case: a-z, digits and _, starting with a letter, "
            "at most 60 characters (e.g. low_mood_review)",
        )
    protocol = Protocol(
        practice_id=practice.id,
        name=name,
        title=_title(title),
        schedule_json=json.dumps(_schedule(schedule, catalogue)),
        created_at=now,
    )
    try:
        # the unique constraint decides, so two requests for one name get one 422
        with session.begin_nested():
            session.add(protocol)
    except IntegrityError:
        raise InputError("name", f"this practice already has a protocol named {name}") from None
    _audit(session, practice, actor, "protocol.created", "protocol", protocol.id, now)
    return protocol


def update_protocol(
    session: Session,
    practice: Practice,
    catalogue: Catalogue,
    name: str,
    *,
    changes: dict[str, Any],
    now: datetime,
    actor: str,
) -> Protocol:
    """Change a protocol's title or schedule. Consultations already registered keep theirs."""
    protocol = get_protocol(session, practice, name)
    for key in changes:
        if key == "name" and changes[key] == protocol.name:
            continue  # the name it already has, as a full representation would carry it
        if key not in ("title", "schedule"):
            hint = "; a protocol keeps its name: create a new one instead" if key == "name" else ""
            raise InputError(key, f"{key} cannot be changed: give title, schedule or both{hint}")
    if "title" not in changes and "schedule" not in changes:
        raise InputError("body", "the body must give title, schedule or both")
    if "title" in changes:
        protocol.title = _title(changes["title"])
    if "schedule" in changes:
        protocol.schedule_json = json.dumps(_schedule(changes["schedule"], catalogue))
    _audit(session, practice, actor, "protocol.updated", "protocol", protocol.id, now)
    return protocol


def delete_protocol(
    session: Session, practice: Practice, name: str, *, now: datetime, actor: str
) -> None:
    """Remove a protocol; consultations registered with it keep their invitations."""
    protocol = get_protocol(session, practice, name)
    _audit(session, practice, actor, "protocol.deleted", "protocol", protocol.id, now)
    session.delete(protocol)


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > TITLE_LIMIT:
        raise InputError("title", f"title is required: text of at most {TITLE_LIMIT} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InputError("title", "title must not contain control characters or line breaks")
    return value.strip()


def _schedule(raw: Any, catalogue: Catalogue) -> list[dict[str, str]]:
    steps = parse_schedule(raw, catalogue)
    if len(steps) > MAX_STEPS:
        raise InputError("schedule", f"schedule may have at most {MAX_STEPS} questionnaires")
    longest = _PROBE + isodate.parse_duration(LONGEST_AFTER)
    for index, step in enumerate(steps):
        try:
            too_far = _PROBE + step.after > longest
        except (OverflowError, ValueError):
            too_far = True
        if too_far:
            where = f"schedule[{index}].after"
            raise InputError(where, f"{where} must be at most {LONGEST_AFTER} (five years)")
    return [{"instrument": s.instrument, "after": s.after_text.strip()} for s in steps]


# -- consultations and their invitations ----------------------------------------------

PAST_TOLERANCE = timedelta(minutes=5)  # clocks differ: "now" from a caller may be a little behind


@dataclass
class Outcome:
    """What a cancel or reschedule did, for the caller to see what was left alone."""

    action: str
    cancelled: int = 0
    moved: int = 0
    due_now: int = 0
    left: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "cancelled": self.cancelled,
            "moved": self.moved,
            "left": sum(self.left.values()),
            "left_by_status": dict(sorted(self.left.items())),
            "message": self.message,
        }

    @property
    def message(self) -> str:
        if self.action == "cancel":
            parts = [f"Cancelled {_count(self.cancelled, 'pending questionnaire')}."]
        else:
            parts = [f"Moved {_count(self.moved, 'pending questionnaire')}."]
        if self.due_now:
            parts.append(
                f"{self.due_now} of them would have fallen in the past, so "
                f"{'it goes' if self.due_now == 1 else 'they go'} at the next opening of the "
                "send window."
            )
        active = self.left.get("active", 0)
        if active == 1:
            parts.append(
                "1 questionnaire already sent is still open and was left alone: the patient "
                "may be answering; it finishes or expires on its own."
            )
        elif active:
            parts.append(
                f"{active} questionnaires already sent are still open and were left alone: "
                "the patient may be answering; they finish or expire on their own."
            )
        finished = sum(self.left.values()) - active
        if finished == 1:
            parts.append("1 finished invitation was left as it was.")
        elif finished:
            parts.append(f"{finished} finished invitations were left as they were.")
        return " ".join(parts)


def _count(n: int, singular: str) -> str:
    return f"{n} {singular if n == 1 else singular + 's'}"


def get_consultation(
    session: Session, practice: Practice, consultation_id: str, *, lock: bool = False
) -> Consultation:
    consultation = None
    if looks_like_id(consultation_id):
        query = select(Consultation).where(Consultation.id == consultation_id)
        consultation = session.exec(query.with_for_update() if lock else query).first()
    if consultation is None or consultation.practice_id != practice.id:
        raise NotFound(consultation_id)
    return consultation


def _pending_of(session: Session, consultation: Consultation) -> list[Invitation]:
    # FOR UPDATE (waiting, not skipping): a scheduler starting one of these right now
    # finishes first, and the status check is then made again on the row it left
    return list(
        session.exec(
            select(Invitation)
            .where(Invitation.consultation_id == consultation.id)
            .where(Invitation.status == "pending")
            .order_by(col(Invitation.due_at), col(Invitation.id))
            .with_for_update()
        ).all()
    )


def _left_alone(
    session: Session, consultation: Consultation, changed: list[Invitation]
) -> dict[str, int]:
    ids = {i.id for i in changed}
    rows = session.exec(
        select(Invitation.id, Invitation.status).where(
            Invitation.consultation_id == consultation.id
        )
    ).all()
    return dict(Counter(status for invitation_id, status in rows if invitation_id not in ids))


def cancel_consultation(
    session: Session, practice: Practice, consultation_id: str, *, now: datetime, actor: str
) -> tuple[Consultation, Outcome]:
    """Cancel every pending invitation of a consultation; sent ones are left as they are."""
    consultation = get_consultation(session, practice, consultation_id, lock=True)
    pending = _pending_of(session, consultation)
    for invitation in pending:
        _cancel(session, practice, invitation, now=now, actor=actor)
    outcome = Outcome(
        "cancel", cancelled=len(pending), left=_left_alone(session, consultation, pending)
    )
    _audit(session, practice, actor, "consultation.cancelled", "consultation", consultation.id, now)
    session.flush()
    return consultation, outcome


def reschedule_consultation(
    session: Session,
    practice: Practice,
    consultation_id: str,
    *,
    now: datetime,
    actor: str,
    shift: Any = None,
    occurred_at: datetime | None = None,
) -> tuple[Consultation, Outcome]:
    """Move a consultation's pending invitations, by ``shift`` or to a new ``occurred_at``.

    Arithmetic is on the practice's wall clock, as when the invitations were
    made: a questionnaire due at 10:00 local is still due at 10:00 local after
    a move across the clock change. With ``occurred_at`` each pending invitation
    keeps its (wall-clock) offset from the old time, and the consultation's
    time is corrected; with ``shift`` (an ISO-8601 duration, which may be
    negative, e.g. ``-P2D``) only the invitations move. A due time that would
    fall in the past becomes now: it goes at the next opening of the send window.
    """
    if (shift is None) == (occurred_at is None):
        raise InputError("shift", "give shift (an ISO-8601 duration such as P1W) or occurred_at")
    duration = _shift(shift) if shift is not None else None
    consultation = get_consultation(session, practice, consultation_id, lock=True)
    zone = ZoneInfo(practice.timezone)
    old_local = consultation.occurred_at.astimezone(zone)
    pending = _pending_of(session, consultation)
    outcome = Outcome("reschedule", moved=len(pending))
    field_name = "shift" if duration is not None else "occurred_at"
    for invitation in pending:
        due_local = invitation.due_at.astimezone(zone)
        try:
            if duration is not None:
                moved = (due_local + duration).astimezone(UTC)
            else:
                assert occurred_at is not None
                offset = due_local.replace(tzinfo=None) - old_local.replace(tzinfo=None)
                moved = (occurred_at.astimezone(zone) + offset).astimezone(UTC)
        except (OverflowError, ValueError):
            raise InputError(
                field_name, f"{field_name} moves a questionnaire outside the calendar"
            ) from None
        if moved < now:
            moved = now
            outcome.due_now += 1
        invitation.due_at = moved
        _audit(session, practice, actor, "invitation.rescheduled", "invitation", invitation.id, now)
    if occurred_at is not None:
        consultation.occurred_at = occurred_at.astimezone(UTC)
    outcome.left = _left_alone(session, consultation, pending)
    _audit(
        session, practice, actor, "consultation.rescheduled", "consultation", consultation.id, now
    )
    session.flush()
    return consultation, outcome


def _shift(value: Any) -> timedelta | isodate.Duration:
    message = "shift must be an ISO-8601 duration, e.g. P1W, PT2H or -P2D (earlier)"
    if not isinstance(value, str) or not value.strip():
        raise InputError("shift", message)
    try:
        duration = isodate.parse_duration(value.strip())
        # a duration with months or years is only checked once it is applied to a time
        _PROBE + duration
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError):
        raise InputError("shift", message) from None
    return duration


def get_invitation_for_update(
    session: Session, practice: Practice, invitation_id: str
) -> Invitation:
    invitation = None
    if looks_like_id(invitation_id):
        invitation = session.exec(
            select(Invitation).where(Invitation.id == invitation_id).with_for_update()
        ).first()
    if invitation is None or invitation.practice_id != practice.id:
        raise NotFound(invitation_id)
    return invitation


def _require_pending(invitation: Invitation, doing: str) -> None:
    if invitation.status == "pending":
        return
    message = (
        f"this invitation is {invitation.status}, not pending: only an invitation that has "
        f"not been sent can be {doing}"
    )
    if invitation.status == "active":
        message += (
            "; it has been sent and the patient may be answering: it finishes or expires on its own"
        )
    raise Conflict(message)


def cancel_invitation(
    session: Session, practice: Practice, invitation_id: str, *, now: datetime, actor: str
) -> Invitation:
    invitation = get_invitation_for_update(session, practice, invitation_id)
    _require_pending(invitation, "cancelled")
    _cancel(session, practice, invitation, now=now, actor=actor)
    return invitation


def move_invitation(
    session: Session,
    practice: Practice,
    invitation_id: str,
    *,
    due_at: datetime,
    now: datetime,
    actor: str,
) -> Invitation:
    """Set one pending invitation's due time (now, or later: not in the past)."""
    invitation = get_invitation_for_update(session, practice, invitation_id)
    _require_pending(invitation, "moved")
    if due_at < now - PAST_TOLERANCE:
        raise InputError(
            "due_at",
            "due_at is in the past: give a time from now on (now itself means at the next "
            "opening of the send window)",
        )
    invitation.due_at = max(due_at, now)
    _audit(session, practice, actor, "invitation.rescheduled", "invitation", invitation.id, now)
    return invitation


def _cancel(
    session: Session, practice: Practice, invitation: Invitation, *, now: datetime, actor: str
) -> None:
    invitation.status = "cancelled"
    invitation.finished_at = now
    _audit(session, practice, actor, "invitation.cancelled", "invitation", invitation.id, now)


# -- practice settings ----------------------------------------------------------------

INTEGER_SETTINGS: dict[str, tuple[int, int]] = {
    "reminder_after_hours": (1, 168),
    "max_reminders": (0, 5),
    "expire_after_days": (1, 60),
    "invitation_valid_days": (1, 90),
    "escalate_after_minutes": (5, 1440),
    "escalate_every_minutes": (5, 1440),
}
SETTINGS = (
    "timezone",
    "nation",
    "send_window_start",
    "send_window_end",
    "working_days",
    *INTEGER_SETTINGS,
    "contact_phone",
    "contact_email",
)
NOT_EDITABLE = ("id", "name", "sms_number", "created_at")
CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Ofcom's drama ranges (never allocated) that the phonenumbers metadata calls invalid
DRAMA_PHONE_PREFIXES = ("+441632960", "+447700900")


def update_settings(
    session: Session, practice: Practice, changes: Any, *, now: datetime, actor: str
) -> Practice:
    """Change some of a practice's settings; every value is checked before any is stored.

    Timers already set (a pending invitation's due time, a reminder already
    scheduled) keep their times; the send window, working days, nation and
    zone apply to whatever is sent from now on.
    """
    if not isinstance(changes, dict) or not changes:
        raise InputError(
            "body", f"the body must give one or more settings to change: {', '.join(SETTINGS)}"
        )
    for key in changes:
        if key in NOT_EDITABLE:
            raise InputError(key, f"{key} cannot be changed through the API")
        if key not in SETTINGS:
            raise InputError(key, f"{key} is not a setting; the settings are {', '.join(SETTINGS)}")
    practice = session.exec(
        select(Practice).where(Practice.id == practice.id).with_for_update()
    ).one()
    values = {key: _SETTING_CHECKS[key](changes[key], key) for key in SETTINGS if key in changes}

    start = values.get("send_window_start", practice.send_window_start)
    end = values.get("send_window_end", practice.send_window_end)
    if parse_clock(start) >= parse_clock(end):
        where = "send_window_end" if "send_window_end" in values else "send_window_start"
        raise InputError(
            where, f"send_window_start ({start}) must be before send_window_end ({end})"
        )
    reminders = values.get("max_reminders", practice.max_reminders)
    hours = values.get("reminder_after_hours", practice.reminder_after_hours)
    days = values.get("expire_after_days", practice.expire_after_days)
    if reminders > 0 and hours >= days * 24:
        where = next(
            k for k in ("reminder_after_hours", "expire_after_days", "max_reminders") if k in values
        )
        raise InputError(
            where,
            f"reminder_after_hours ({hours}) must be less than expire_after_days ({days}) in "
            "hours, or the conversation expires before its reminder; or set max_reminders to 0",
        )

    changed = {k: v for k, v in values.items() if getattr(practice, k) != v}
    for key, value in changed.items():
        setattr(practice, key, value)
    if changed:
        _audit(session, practice, actor, "practice.settings_changed", "practice", practice.id, now)
    session.flush()
    return practice


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(value: Any, key: str) -> str:
    if not isinstance(value, str) or value not in _zones():
        raise InputError(key, f"{key} must be an IANA time zone, such as Europe/London")
    return value


def _nation(value: Any, key: str) -> str:
    if not isinstance(value, str) or value.strip().upper() not in NATIONS:
        raise InputError(key, f"{key} must be one of {', '.join(NATIONS)} (for bank holidays)")
    return value.strip().upper()


def _clock(value: Any, key: str) -> str:
    match = CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    end_of_day = key == "send_window_end" and (hour, minute) == (24, 0)
    if not end_of_day and not (0 <= hour <= 23 and 0 <= minute <= 59):
        until = ", or 24:00 for midnight" if key == "send_window_end" else ""
        raise InputError(key, f"{key} must be a time HH:MM from 00:00 to 23:59{until}")
    return f"{hour:02d}:{minute:02d}"


def _days(value: Any, key: str) -> str:
    names = value.replace(",", " ").split() if isinstance(value, str) else value
    message = f"{key} must be a list of one or more of {', '.join(DAY_NAMES)}"
    if not isinstance(names, list) or not names:
        raise InputError(key, message)
    days = set()
    for name in names:
        if not isinstance(name, str) or name.strip().lower() not in DAY_NAMES:
            raise InputError(key, message)
        days.add(name.strip().lower())
    return " ".join(d for d in DAY_NAMES if d in days)


def _integer(value: Any, key: str) -> int:
    low, high = INTEGER_SETTINGS[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(key, f"{key} must be a whole number from {low} to {high}")
    return value


def _phone(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    message = f"{key} must be a UK phone number patients can call, such as 020 7946 0000"
    if not isinstance(value, str) or len(value) > 30:
        raise InputError(key, message)
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        raise InputError(key, message) from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    drama = e164.startswith(DRAMA_PHONE_PREFIXES) and len(e164) == 13
    if number.country_code != 44 or not (drama or phonenumbers.is_valid_number(number)):
        raise InputError(key, message)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def _email(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if (
        not isinstance(value, str)
        or len(value.strip()) > 254
        or not EMAIL.fullmatch(value.strip())
        or any(unicodedata.category(ch) == "Cc" for ch in value)
    ):
        raise InputError(key, f"{key} must be an e-mail address, such as reception@example.nhs.uk")
    return value.strip()


_SETTING_CHECKS = {
    "timezone": _timezone,
    "nation": _nation,
    "send_window_start": _clock,
    "send_window_end": _clock,
    "working_days": _days,
    **dict.fromkeys(INTEGER_SETTINGS, _integer),
    "contact_phone": _phone,
    "contact_email": _email,
}


def _audit(
    session: Session,
    practice: Practice,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | None,
    now: datetime,
) -> None:
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        now=now,
    )
