"""Staff signing in and out: the password check and its audit rows, one unit of work each.

Signing in fails the same way, taking about the same time, whether or not the
address belongs to anyone: without an account a dummy hash is checked.
Hashing happens outside any transaction (it is slow on purpose).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from functools import cache

from sqlmodel import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.services import audit
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Practice, StaffUser


def password_tag(password_hash: str) -> str:
    """A short tag of the hash: sessions carry it, so a new password ends them."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@cache
def _dummy_hash(method: str) -> str:
    """Checked against when no account matches, so that failure takes as long either way."""
    return generate_password_hash("no account has this password", method)


def sign_in(
    rt: Runtime, email: str, password: str, *, now: datetime
) -> tuple[StaffUser, Practice] | None:
    """The member of staff and their practice when the password matches; audited either way."""
    with transaction(rt.engine, read_only=True) as session:
        user = session.exec(select(StaffUser).where(func.lower(StaffUser.email) == email)).first()
        practice = session.get(Practice, user.practice_id) if user else None
    stored = user.password_hash if user else _dummy_hash(rt.settings.staff_password_hash)
    matches = check_password_hash(stored, password)
    if user is None:
        return None
    with transaction(rt.engine) as session:
        audit.record(
            session,
            practice_id=user.practice_id,
            actor=f"user:{user.id}" if matches else "system",
            action="staff.signed_in" if matches else "staff.sign_in_failed",
            subject_type="staff_user",
            subject_id=user.id,
            now=now,
        )
    return (user, practice) if matches and practice else None


def signed_in(rt: Runtime, user_id: str, tag: str) -> tuple[StaffUser, Practice] | None:
    """The member of staff a session names, while their password is the one it was made with."""
    with transaction(rt.engine, read_only=True) as session:
        user = session.get(StaffUser, user_id)
        if user is None or not hmac.compare_digest(tag, password_tag(user.password_hash)):
            return None
        practice = session.get(Practice, user.practice_id)
        return (user, practice) if practice else None


def sign_out(rt: Runtime, user_id: str, practice_id: str, *, now: datetime) -> None:
    with transaction(rt.engine) as session:
        audit.record(
            session,
            practice_id=practice_id,
            actor=f"user:{user_id}",
            action="staff.signed_out",
            subject_type="staff_user",
            subject_id=user_id,
            now=now,
        )
