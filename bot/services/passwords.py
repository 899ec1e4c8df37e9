"""Staff passwords: the rules a new one must meet, changing one's own, an admin's reset.

The rules follow the NCSC's password guidance: long enough (at least
``PASSWORD_MIN`` characters, and up to ``PASSWORD_MAX``, far above 128, so a
pass phrase always fits), not one of a short list of the passwords people pick
most, not the member's e-mail address, not the password it replaces, and no
composition rules (no "one upper case letter and one symbol"). The length and
character checks are the API's own (``bot.schemas.staff.Password``).

A password someone else chose for a member (the first admin's at onboarding, an
admin's reset) is a one-time password: generated here with ``secrets``, shown
once to whoever asked for it, stored only as a hash, and flagged
``must_change_password`` so the member must choose their own at first sign-in.

Hashing is slow on purpose, so it happens outside any transaction. Every change
writes an audit row naming who made it, by id; a password is never logged,
audited or returned except the one-time password, to the one caller who shows it.
A new password changes the hash, and every session carries a tag of the hash
(``staff_sign_in.password_tag``), so a change ends the member's other sessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session, col, func, select
from werkzeug.security import check_password_hash

from bot.errors import InputError, NotFound
from bot.schemas.staff import PASSWORD_MAX, PASSWORD_MIN, Password, StaffCreate
from bot.services import audit, staff_admin
from bot.services.enrolment import looks_like_id
from bot.services.runtime import Runtime
from bot.services.staff_admin import REMOVED_DOMAIN, hash_password
from bot.store.db import transaction
from bot.store.models import Practice, StaffUser

__all__ = ["PASSWORD_MAX", "PASSWORD_MIN"]

# The most common passwords of 12 characters or more in breach corpora (shorter ones
# fail the length rule anyway). Compared without regard to case or spaces at the ends.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789101112",
        "111111111111",
        "000000000000",
        "123123123123",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwertyuiopasdfghjkl",
        "qwertyuiopasdfghjklzxcvbnm",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "password1234567",
        "iloveyou1234",
        "letmein12345",
        "welcome12345",
        "welcome123456",
        "changeme1234",
        "changemenow1",
        "abcdefghijkl",
        "abcdefghijklmnop",
        "abc123abc123",
        "administrator",
        "administrator1",
        "trustno1trustno1",
        "football1234",
        "monkey123456",
        "sunshine1234",
        "princess1234",
        "baseball1234",
        "superman1234",
        "starwars1234",
        "correcthorsebatterystaple",
        "nhspassword1",
        "nhspassword123",
        "practice1234",
        "surgery12345",
        "doctor123456",
    }
)
# No 0/O, 1/l/I: a one-time password is read off a screen and typed.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_GROUPS, _GROUP_LENGTH = 4, 5  # 20 characters from 31: about 99 bits
_PASSWORD = TypeAdapter(Password)


def one_time_password() -> str:
    """A random password for someone else to type once: ``xxxxx-xxxxx-xxxxx-xxxxx``."""
    return "-".join(
        "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LENGTH)) for _ in range(_GROUPS)
    )


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why ``password`` cannot be a new password, or None when it can (the stateless rules)."""
    try:
        _PASSWORD.validate_python(password)
    except ValidationError:
        if len(password) < PASSWORD_MIN:
            return f"Your new password must be at least {PASSWORD_MIN} characters long"
        if len(password) > PASSWORD_MAX:
            return f"Your new password must be at most {PASSWORD_MAX} characters long"
        return "Your new password must not contain control characters"
    folded = password.strip().casefold()
    if folded in COMMON_PASSWORDS:
        return "Your new password is one of the most common passwords: choose another"
    if email and folded == email.strip().casefold():
        return "Your new password must not be your e-mail address"
    return None


@dataclass(frozen=True)
class Changed:
    """A member of staff after a password change, and their practice (to sign in again)."""

    user: StaffUser
    practice: Practice


def change_own_password(
    rt: Runtime, user_id: str, current: str, new: str, *, now: datetime
) -> Changed:
    """Replace a member's password with one they chose, after checking their current one.

    ``InputError`` names the field to fix: ``current_password`` when it does not match,
    ``new_password`` when the new one breaks a rule. Clears ``must_change_password``.
    """
    with transaction(rt.engine, read_only=True) as session:
        user = session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(user_id)
        stored, email = user.password_hash, user.email
    if not check_password_hash(stored, current):
        raise InputError("current_password", "Your current password is not right")
    problem = password_problem(new, email=email)
    if problem is None and check_password_hash(stored, new):
        problem = "Your new password must be different from your current one"
    if problem is not None:
        raise InputError("new_password", problem)
    password_hash = hash_password(new, rt.settings.staff_password_hash)
    with transaction(rt.engine) as session:
        user = session.exec(
            select(StaffUser).where(StaffUser.id == user_id).with_for_update()
        ).first()
        if user is None:
            raise NotFound(user_id)
        if user.password_hash != stored:  # changed meanwhile, elsewhere: check again
            raise InputError("current_password", "Your current password is not right")
        user.password_hash = password_hash
        user.must_change_password = False
        _audit(session, user, f"user:{user.id}", "staff.password_changed", now)
        practice = session.get(Practice, user.practice_id)
        if practice is None:
            raise NotFound(user_id)
        return Changed(user=user, practice=practice)


def member(rt: Runtime, practice_id: str, staff_id: str) -> StaffUser:
    """A current member of this practice's staff, or ``NotFound`` (another practice's too)."""
    with transaction(rt.engine, read_only=True) as session:
        return _member(session, practice_id, staff_id)


def reset_password(
    rt: Runtime, practice_id: str, staff_id: str, *, actor: str, now: datetime
) -> tuple[StaffUser, str]:
    """Give a member of this practice a new one-time password; answers it, to be shown once.

    The member must change it at their next sign-in; every session they had ends.
    """
    password = one_time_password()
    password_hash = hash_password(password, rt.settings.staff_password_hash)
    with transaction(rt.engine) as session:
        user = _member(session, practice_id, staff_id, lock=True)
        user.password_hash = password_hash
        user.must_change_password = True
        _audit(session, user, actor, "staff.password_reset", now)
        return user, password


def add_member(
    rt: Runtime, practice: Practice, new: StaffCreate, *, actor: str, now: datetime
) -> tuple[StaffUser, str]:
    """Add a member of staff with a one-time password; answers it, to be shown once.

    ``new`` is checked by the API's own model; any password in it is replaced. The
    member must choose their own password at first sign-in.
    """
    password = one_time_password()
    user = staff_admin.add_staff(
        rt,
        practice,
        new.model_copy(update={"password": password}),
        now=now,
        actor=actor,
        must_change_password=True,
    )
    return user, password


def add_first_admin(
    session: Session,
    practice: Practice,
    *,
    name: str,
    email: str,
    password_hash: str,
    now: datetime,
    actor: str = "system",
) -> StaffUser:
    """The practice's first admin, inside the onboarding's unit of work, who must change
    the one-time password whose hash is given at first sign-in."""
    in_use = session.exec(
        select(StaffUser.id).where(func.lower(StaffUser.email) == email.lower())
    ).first()
    if in_use is not None:
        raise InputError("admin_email", "this e-mail address is already in use")
    user = StaffUser(
        practice_id=practice.id,
        email=email,
        name=name,
        role="admin",
        password_hash=password_hash,
        must_change_password=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    _audit(session, user, actor, "staff.created", now)
    return user


def _member(session: Session, practice_id: str, staff_id: str, lock: bool = False) -> StaffUser:
    user = None
    if looks_like_id(staff_id):
        query = (
            select(StaffUser)
            .where(StaffUser.id == staff_id)
            .where(StaffUser.practice_id == practice_id)
            .where(~col(StaffUser.email).endswith(f"@{REMOVED_DOMAIN}"))
        )
        user = session.exec(query.with_for_update() if lock else query).first()
    if user is None:
        raise NotFound(staff_id)
    return user


def _audit(session: Session, user: StaffUser, actor: str, action: str, now: datetime) -> None:
    audit.record(
        session,
        practice_id=user.practice_id,
        actor=actor,
        action=action,
        subject_type="staff_user",
        subject_id=user.id,
        now=now,
    )
