"""A practice's staff: who is on duty for urgent alerts, who is told when nobody acknowledges.

Everything here is scoped to one practice (another practice's staff are
``NotFound``), takes input checked by ``bot.schemas.staff`` and writes an
audit row for every change, by id only. Each public function is one unit of
work.

- E-mail addresses sign staff in, so each is used once across every practice;
  a clash says "already in use" and never which practice has it. They are
  stored in lower case, as the sign-in page looks them up.
- Passwords are hashed with werkzeug, outside any transaction (hashing is slow
  on purpose). One set here (through the API) was chosen by someone else, so it
  is one-time: the member must choose their own at first sign-in. A member of
  staff added without one cannot sign in until a password is set: their hash
  is one no password matches. A hash is never part of an answer.
- Removing someone who has been sent alert notices cannot delete the row (the
  notices refer to it, and they are the record of who was told). Such an
  account is deactivated instead, without a schema change: no longer on duty or
  an escalation contact, mobile cleared, password unusable, and its e-mail
  address replaced by one in the reserved ``.invalid`` domain, which frees the
  address and marks the row as removed. Their name stays, so the alert history
  still shows who was told. Removed staff are in no list and answer 404.
- A practice always keeps an admin: demoting or removing its last one is
  refused (``LAST_ADMIN``), or nobody could change its settings or staff again
  without an integrator. One rule here, for the pages and the API alike.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from werkzeug.security import generate_password_hash

from bot.errors import InputError, NotFound
from bot.schemas.staff import StaffCreate, StaffUpdate
from bot.services import audit
from bot.services.enrolment import looks_like_id
from bot.services.runtime import Runtime
from bot.settings import STRONG_PASSWORD_HASH
from bot.store.db import transaction
from bot.store.models import AlertNotification, Practice, StaffUser

# RFC 2606 reserves .invalid: no real address is there, so a removed account's is.
REMOVED_DOMAIN = "removed.prombot.invalid"
ADMIN = "admin"
LAST_ADMIN = (
    "this is the practice's only admin: make another member of staff an admin first, "
    "so someone can still change the practice's settings and staff"
)


def hash_password(password: str | None, method: str = STRONG_PASSWORD_HASH) -> str:
    """The stored form of a checked password; without one, a hash no password matches.

    ``method`` is ``STAFF_PASSWORD_HASH`` (werkzeug's scrypt unless the tests say otherwise).
    """
    if password is None:
        return "!" + secrets.token_hex(32)  # not werkzeug's method$salt$hash: never matches
    return generate_password_hash(password, method)


def _current():
    return ~col(StaffUser.email).endswith(f"@{REMOVED_DOMAIN}")


def list_staff(rt: Runtime, practice: Practice) -> list[StaffUser]:
    with transaction(rt.engine, read_only=True) as session:
        return list(
            session.exec(
                select(StaffUser)
                .where(StaffUser.practice_id == practice.id)
                .where(_current())
                .order_by(col(StaffUser.email), col(StaffUser.id))
            ).all()
        )


def _locked(session: Session, practice: Practice, staff_id: str) -> StaffUser:
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


def add_staff(
    rt: Runtime,
    practice: Practice,
    new: StaffCreate,
    *,
    now: datetime,
    actor: str,
    must_change_password: bool = False,
) -> StaffUser:
    """Add a member. A password given here was chosen by someone else (an admin, an
    integrator through the API), so it is always one-time: the member must choose
    their own at first sign-in, as after an admin's reset."""
    must_change_password = must_change_password or new.password is not None
    # hashed before the transaction opens: hashing is slow on purpose
    password_hash = hash_password(new.password, rt.settings.staff_password_hash)
    with transaction(rt.engine) as session:
        in_use = session.exec(
            select(StaffUser.id).where(func.lower(StaffUser.email) == new.email)
        ).first()
        if in_use is not None:
            raise _in_use()
        user = StaffUser(
            practice_id=practice.id,
            password_hash=password_hash,
            must_change_password=must_change_password,
            created_at=now,
            **new.profile(),
        )
        try:
            # the unique constraint decides, so two requests for one address get one 422
            with session.begin_nested():
                session.add(user)
        except IntegrityError:
            raise _in_use() from None
        _audit(session, practice, actor, "staff.created", user.id, now)
    return user


def change_staff(
    rt: Runtime,
    practice: Practice,
    staff_id: str,
    changes: StaffUpdate,
    *,
    now: datetime,
    actor: str,
) -> StaffUser:
    """Apply the checked changes; an audit row only for what actually changed."""
    password_hash = (
        hash_password(changes.password, rt.settings.staff_password_hash)
        if changes.password is not None
        else None
    )
    with transaction(rt.engine) as session:
        user = _locked(session, practice, staff_id)
        if changes.profile().get("role", user.role) != ADMIN:
            _keep_an_admin(session, practice, user, field="role")
        changed = False
        for key, value in changes.profile().items():
            if getattr(user, key) != value:
                setattr(user, key, value)
                changed = True
        if changed:
            _audit(session, practice, actor, "staff.updated", user.id, now)
        if password_hash is not None:
            user.password_hash = password_hash  # signs them out everywhere: sessions carry its tag
            user.must_change_password = True  # someone else chose it: one-time, like a reset
            _audit(session, practice, actor, "staff.password_set", user.id, now)
    return user


def remove_staff(
    rt: Runtime, practice: Practice, staff_id: str, *, now: datetime, actor: str
) -> str:
    """Delete a member of staff, or deactivate one who has been sent alert notices.

    Answers ``"deleted"`` or ``"deactivated"``. The row is locked first, so no
    notice to them can be queued between the check and the change.
    """
    with transaction(rt.engine) as session:
        user = _locked(session, practice, staff_id)
        _keep_an_admin(session, practice, user, field="staff_id")
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


def _keep_an_admin(session: Session, practice: Practice, user: StaffUser, *, field: str) -> None:
    """Refuse a change that would leave the practice with no admin who can sign in.

    Changes to admins queue on the practice's row (``FOR NO KEY UPDATE``: inserts
    that refer to the practice go on), so two admins demoting each other at once
    cannot both succeed.
    """
    if user.role != ADMIN:
        return
    session.exec(
        select(Practice.id).where(Practice.id == practice.id).with_for_update(key_share=True)
    ).one()
    others = session.exec(
        select(StaffUser.id)
        .where(StaffUser.practice_id == practice.id)
        .where(StaffUser.role == ADMIN)
        .where(StaffUser.id != user.id)
        .where(_current())
        .limit(1)
    ).first()
    if others is None:
        raise InputError(field, LAST_ADMIN)


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
