"""Onboarding a practice with one command: the practice, its API token, its first admin.

Everything is one unit of work: when the admin's e-mail address is already in
use, no practice is created either. The first admin's one-time password is
generated here, hashed before the transaction opens, and handed back once to
the caller to show (``prombot practice create`` prints it on stdout, never in a
log); the admin must change it at first sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from bot.errors import InputError
from bot.schemas.errors import checked
from bot.schemas.staff import StaffCreate
from bot.services.alert_routing import practice_warnings
from bot.services.enrolment import DRAMA_SMS_NUMBERS, create_practice, new_api_token
from bot.services.passwords import add_first_admin, one_time_password
from bot.services.runtime import Runtime
from bot.services.staff_admin import hash_password
from bot.store.db import transaction
from bot.store.models import Practice

NATIONS = ("ENG", "WLS", "SCT", "NIR")


@dataclass(frozen=True)
class Onboarded:
    """A new practice, its first API token (shown once), what it still lacks, and its
    first admin's e-mail address and one-time password (shown once), when one was asked for."""

    practice: Practice
    api_token: str
    warnings: list[dict[str, str]]
    admin_email: str | None = None
    admin_password: str | None = None


def onboard_practice(
    rt: Runtime,
    *,
    name: str,
    now: datetime,
    sms_number: str | None = None,
    contact_phone: str | None = None,
    nation: str = "ENG",
    admin_name: str | None = None,
    admin_email: str | None = None,
) -> Onboarded:
    """A new practice, its first API token and, given a name and an e-mail address, its
    first admin. Without an SMS number the first unused Ofcom drama number is taken, for
    trying prombot out. The warnings say when the practice cannot yet be told of an urgent
    alert (a new practice has nobody on duty)."""
    nation = (nation or "").upper()
    if nation not in NATIONS:
        raise InputError("nation", f"nation must be one of {', '.join(NATIONS)}")
    admin = None
    if admin_name is not None or admin_email is not None:
        if not admin_name or not admin_email:
            raise InputError("admin_email", "give both the admin's name and e-mail address")
        try:
            admin = checked(StaffCreate, {"email": admin_email, "name": admin_name})
        except InputError as exc:
            raise InputError(f"admin_{exc.field}", f"admin {exc.message}") from None
    password = one_time_password() if admin else None
    password_hash = (
        hash_password(password, rt.settings.staff_password_hash) if password else None
    )  # slow: outside the transaction
    with transaction(rt.engine) as session:
        if sms_number is None:
            used = set(session.exec(select(Practice.sms_number)).all())
            sms_number = next((n for n in DRAMA_SMS_NUMBERS if n not in used), None)
            if sms_number is None:
                raise InputError("sms_number", "no free demo numbers left: give an sms_number")
        practice = create_practice(
            session,
            name=name,
            sms_number=sms_number,
            contact_phone=contact_phone,
            nation=nation,
            now=now,
        )
        token = new_api_token(session, practice, now=now)
        if admin is not None and password_hash is not None:
            add_first_admin(
                session,
                practice,
                name=admin.name,
                email=admin.email,
                password_hash=password_hash,
                now=now,
            )
        warnings = practice_warnings(session, practice, rt.settings)
    return Onboarded(
        practice=practice,
        api_token=token,
        warnings=warnings,
        admin_email=admin.email if admin else None,
        admin_password=password,
    )
