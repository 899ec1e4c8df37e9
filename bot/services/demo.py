"""The demo practice: what ``make run`` and the simulator start from. Safe to repeat.

Everything here is invented: the practice, the staff, and patients on Ofcom's
drama numbers (07700 900xxx), which never reach a real phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlmodel import Session, select
from werkzeug.security import generate_password_hash

from bot.services.enrolment import create_patient, create_practice, hash_token, new_api_token
from bot.services.runtime import Runtime
from bot.settings import STRONG_PASSWORD_HASH
from bot.store.db import transaction
from bot.store.models import ApiToken, Patient, Practice, StaffUser

DEMO_SMS_NUMBER = "+447700900000"
DEMO_TOKEN = "pb_demo_token_do_not_use_in_production"
DEMO_PASSWORD = "demo-password"
# The duty clinician gets urgent alerts at once; the admin, as escalation contact,
# gets those nobody has acknowledged. Their mobiles are drama numbers too.
DEMO_STAFF = [
    {
        "email": "dr.riley@demo.prombot.test",
        "name": "Dr Sam Riley",
        "role": "clinician",
        "on_duty": True,
        "escalation_contact": False,
        "mobile": "+447700900050",
    },
    {
        "email": "admin@demo.prombot.test",
        "name": "Jo Admin",
        "role": "admin",
        "on_duty": False,
        "escalation_contact": True,
        "mobile": "+447700900051",
    },
]
DEMO_PATIENTS = [
    {"name": "Alex Example", "phone": "+447700900101", "nhs_number": "9434765919"},
    {"name": "Bo Sample", "phone": "+447700900102", "nhs_number": None},
    {"name": "Cas Testperson", "phone": "+447700900103", "nhs_number": None},
]


@dataclass(frozen=True)
class Demo:
    practice: Practice
    api_token: str
    patients: list[Patient]
    users: list[dict[str, str]]


def install_demo(rt: Runtime, now: datetime) -> Demo:
    """``prombot demo``: the demo practice, open around the clock, as one unit of work."""
    with transaction(rt.engine) as session:
        return seed_demo(
            session, now, around_the_clock=True, password_hash=rt.settings.staff_password_hash
        )


@cache
def demo_password_hash(method: str = STRONG_PASSWORD_HASH) -> str:
    """The demo staff's shared password, hashed once per process (hashing is slow on purpose)."""
    return generate_password_hash(DEMO_PASSWORD, method)


def seed_demo(
    session: Session,
    now: datetime,
    *,
    around_the_clock: bool = False,
    password_hash: str = STRONG_PASSWORD_HASH,
) -> Demo:
    """The demo practice; ``around_the_clock`` opens its send window at every hour.

    ``prombot demo`` asks for that, so the demo can be tried at any time of day
    (real practices default to 09:00-17:00 on working days). Tests of the send
    window use the default. ``password_hash`` is the hashing method
    (``STAFF_PASSWORD_HASH``).
    """
    practice = session.exec(select(Practice).where(Practice.sms_number == DEMO_SMS_NUMBER)).first()
    if practice is None:
        practice = create_practice(
            session,
            name="Demo Surgery",
            sms_number=DEMO_SMS_NUMBER,
            contact_phone="01632 960000",
            contact_email="reception@demo.prombot.test",
            now=now,
        )
    if around_the_clock:
        practice.send_window_start, practice.send_window_end = "00:00", "24:00"
        practice.working_days = "mon tue wed thu fri sat sun"
        practice.nation = "NONE"
    if (
        session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(DEMO_TOKEN))).first()
        is None
    ):
        new_api_token(session, practice, now=now, label="demo", token=DEMO_TOKEN)
    for staff in DEMO_STAFF:
        if session.exec(select(StaffUser).where(StaffUser.email == staff["email"])).first() is None:
            session.add(
                StaffUser(
                    practice_id=practice.id,
                    password_hash=demo_password_hash(password_hash),
                    created_at=now,
                    **staff,
                )
            )
    patients = []
    for data in DEMO_PATIENTS:
        patient = session.exec(
            select(Patient)
            .where(Patient.practice_id == practice.id)
            .where(Patient.phone == data["phone"])
        ).first()
        if patient is None:
            patient = create_patient(
                session,
                practice,
                name=data["name"],
                phone=data["phone"],
                nhs_number=data["nhs_number"],
                now=now,
                actor="system",
            )
        patients.append(patient)
    session.flush()
    users = [
        {"email": s["email"], "name": s["name"], "role": s["role"], "password": DEMO_PASSWORD}
        for s in DEMO_STAFF
    ]
    return Demo(practice=practice, api_token=DEMO_TOKEN, patients=patients, users=users)
