"""A practice's staff: who is on duty for urgent alerts, who is told when nobody acknowledges.

Everything here is scoped to one practice (another practice's staff are
``NotFound``), checks its input field by field (``InputError``) and writes an
audit row for every change, by id only.

- E-mail addresses sign staff in, so each is used once across every practice;
  a clash says "already in use" and never which practice has it. They are
  stored in lower case, as the sign-in page looks them up.
- Passwords are hashed with werkzeug, outside any transaction (hashing is slow
  on purpose). A member of staff added without one cannot sign in until a
  password is set: their hash is one no password matches. A hash is never
  part of an answer.
- Removing someone who has been sent alert notices cannot delete the row (the
  notices refer to it, and they are the record of who was told). Such an
  account is deactivated instead, without a schema change: no longer on duty or
  an escalation contact, mobile cleared, password unusable, and its e-mail
  address replaced by one in the reserved ``.invalid`` domain, which frees the
  address and marks the row as removed. Their name stays, so the alert history
  still shows who was told. Removed staff are in no list and answer 404.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from werkzeug.security import generate_password_hash

from bot.identifiers import InvalidIdentifier, normalise_uk_mobile
from bot.services import audit
from bot.services.enrolment import InputError, NotFound, looks_like_id
from bot.services.queries import iso
from bot.services.schedule_admin import EMAIL
from bot.store.models import AlertNotification, Practice, StaffUser

ROLES = ("clinician", "admin")
NAME_LIMIT = 120
EMAIL_LIMIT = 254
PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # a bound on the work one request can ask the hash for
# RFC 2606 reserves .invalid: no real address is there, so a removed account's is.
REMOVED_DOMAIN = "removed.prombot.invalid"
PROFILE_FIELDS = ("name", "role", "on_duty", "escalation_contact", "mobile")
CREATE_FIELDS = ("email", *PROFILE_FIELDS, "password")
UPDATE_FIELDS = (*PROFILE_FIELDS, "password")


@dataclass(frozen=True)
class StaffInput:
    """Checked values for the columns, and a checked password still to be hashed (or None)."""

    values: dict[str, Any]
    password: str | None


# -- checking input (no database; before any transaction) ------------------------------


def check_new(data: dict[str, Any]) -> StaffInput:
    for key in data:
        if key not in CREATE_FIELDS:
            raise InputError(key, f"{key} is not a field of a member of staff")
    values = {
        "email": _email(data.get("email")),
        "name": _name(data.get("name")),
        "role": _role(data.get("role", "clinician")),
        "on_duty": _flag(data.get("on_duty", False), "on_duty"),
        "escalation_contact": _flag(data.get("escalation_contact", False), "escalation_contact"),
        "mobile": _mobile(data.get("mobile")),
    }
    password = data.get("password")
    return StaffInput(values, _password(password) if password is not None else None)


def check_changes(data: dict[str, Any]) -> StaffInput:
    for key in data:
        if key not in UPDATE_FIELDS:
            hint = (
                ": an address is used once; add the new one as a new member of staff"
                if key == "email"
                else ""
            )
            raise InputError(key, f"{key} cannot be changed here{hint}")
    if not data:
        raise InputError("body", f"the body must give one or more of {', '.join(UPDATE_FIELDS)}")
    checks = {
        "name": _name,
        "role": _role,
        "on_duty": lambda v: _flag(v, "on_duty"),
        "escalation_contact": lambda v: _flag(v, "escalation_contact"),
        "mobile": _mobile,
    }
    values = {key: checks[key](data[key]) for key in PROFILE_FIELDS if key in data}
    password = _password(data["password"]) if "password" in data else None
    return StaffInput(values, password)


def hash_password(password: str | None) -> str:
    """The stored form of a checked password; without one, a hash no password matches."""
    if password is None:
        return "!" + secrets.token_hex(32)  # not werkzeug's method$salt$hash: never matches
    return generate_password_hash(password)


def _email(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError("email", "email is required")
    if (
        not isinstance(value, str)
        or len(value.strip()) > EMAIL_LIMIT
        or not EMAIL.fullmatch(value.strip())
        or any(unicodedata.category(ch) == "Cc" for ch in value)
    ):
        raise InputError("email", "email must be an e-mail address, such as dr.jones@example.test")
    email = value.strip().lower()
    if email.endswith(".invalid"):
        raise InputError("email", "email must be an address that can receive mail")
    return email


def _name(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError("name", "name is required")
    if not isinstance(value, str) or len(value.strip()) > NAME_LIMIT:
        raise InputError("name", f"name must be text of at most {NAME_LIMIT} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InputError("name", "name must not contain control characters or line breaks")
    return value.strip()


def _role(value: Any) -> str:
    if value not in ROLES:
        raise InputError("role", "role must be clinician or admin")
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(key, f"{key} must be true or false")
    return value


def _mobile(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 30:
        raise InputError("mobile", "mobile must be a UK mobile number, such as 07700 900123")
    try:
        return normalise_uk_mobile(value)
    except InvalidIdentifier as exc:
        raise InputError("mobile", str(exc).replace("phone", "mobile", 1)) from None


def _password(value: Any) -> str:
    if not isinstance(value, str) or not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InputError(
            "password",
            f"password must be text of at least {PASSWORD_MIN} characters (at most {PASSWORD_MAX})",
        )
    return value


# -- reading and changing ----------------------------------------------------------------


def staff_json(user: StaffUser) -> dict[str, Any]:
    """A member of staff as the API shows them: never the password hash."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "on_duty": user.on_duty,
        "escalation_contact": user.escalation_contact,
        "mobile": user.mobile,
        "created_at": iso(user.created_at),
    }


def _current():
    return ~col(StaffUser.email).endswith(f"@{REMOVED_DOMAIN}")


def list_staff(session: Session, practice: Practice) -> list[dict[str, Any]]:
    rows = session.exec(
        select(StaffUser)
        .where(StaffUser.practice_id == practice.id)
        .where(_current())
        .order_by(col(StaffUser.email), col(StaffUser.id))
    ).all()
    return [staff_json(user) for user in rows]


def get_staff(session: Session, practice: Practice, staff_id: str) -> StaffUser:
    user = None
    if looks_like_id(staff_id):
        user = session.exec(
            select(StaffUser)
            .where(StaffUser.id == staff_id)
            .where(StaffUser.practice_id == practice.id)
            .where(_current())
            .with_for_update()
        ).first()
    if user is None:
        raise NotFound(staff_id)
    return user


def create_staff(
    session: Session,
    practice: Practice,
    new: StaffInput,
    password_hash: str,
    *,
    now: datetime,
    actor: str,
) -> StaffUser:
    email = new.values["email"]
    in_use = session.exec(select(StaffUser.id).where(func.lower(StaffUser.email) == email)).first()
    if in_use is not None:
        raise _in_use()
    user = StaffUser(
        practice_id=practice.id, password_hash=password_hash, created_at=now, **new.values
    )
    try:
        # the unique constraint decides, so two requests for one address get one 422
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise _in_use() from None
    _audit(session, practice, actor, "staff.created", user.id, now)
    return user


def update_staff(
    session: Session,
    practice: Practice,
    staff_id: str,
    changes: StaffInput,
    password_hash: str | None,
    *,
    now: datetime,
    actor: str,
) -> StaffUser:
    """Apply the checked changes; an audit row only for what actually changed."""
    user = get_staff(session, practice, staff_id)
    changed = False
    for key, value in changes.values.items():
        if getattr(user, key) != value:
            setattr(user, key, value)
            changed = True
    if changed:
        _audit(session, practice, actor, "staff.updated", user.id, now)
    if password_hash is not None:
        user.password_hash = password_hash  # signs them out everywhere: sessions carry its tag
        _audit(session, practice, actor, "staff.password_set", user.id, now)
    return user


def remove_staff(
    session: Session, practice: Practice, staff_id: str, *, now: datetime, actor: str
) -> str:
    """Delete a member of staff, or deactivate one who has been sent alert notices.

    Answers ``"deleted"`` or ``"deactivated"``. The row is locked first, so no
    notice to them can be queued between the check and the change.
    """
    user = get_staff(session, practice, staff_id)
    told = session.exec(
        select(AlertNotification.id).where(AlertNotification.recipient_id == user.id).limit(1)
    ).first()
    if told is None:
        _audit(session, practice, actor, "staff.deleted", user.id, now)
        session.delete(user)
        return "deleted"
    user.email = f"removed-{user.id}@{REMOVED_DOMAIN}"
    user.on_duty = False
    user.escalation_contact = False
    user.mobile = None
    user.password_hash = hash_password(None)
    _audit(session, practice, actor, "staff.deactivated", user.id, now)
    return "deactivated"


def _in_use() -> InputError:
    return InputError("email", "this e-mail address is already in use")


def _audit(
    session: Session, practice: Practice, actor: str, action: str, subject_id: str, now: datetime
) -> None:
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=action,
        subject_type="staff_user",
        subject_id=subject_id,
        now=now,
    )
