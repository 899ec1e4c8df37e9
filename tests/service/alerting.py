"""Helpers for the alert tests: a real local SMTP server, staff, and urgent alerts.

Every name, address and number here is invented; phone numbers are Ofcom drama
numbers (07700 900xxx), e-mail domains end in .test.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TypeVar

from aiosmtpd.controller import Controller
from werkzeug.security import generate_password_hash

from bot.services.demo import DEMO_SMS_NUMBER
from bot.services.enrolment import create_patient, create_practice, new_api_token
from bot.services.inbound import InboundSms, handle_inbound
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, Patient, Practice, StaffUser
from tests.support import TEST_PASSWORD_HASH
from tests.support import free_port as free_port  # re-exported: tests import it here

RISK_TEXT = "Some days I want to end it all"
STAFF_PASSWORD = "a-staff-password-for-tests"
WAIT = 60  # seconds: a bound on waiting for threads, never an expectation of speed

T = TypeVar("T")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        """Every header and the body, as one string to search for what must not be there."""
        headers = "\n".join(f"{k}: {v}" for k, v in self.message.items())
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return headers + "\n\n" + body.get_content()


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what it accepts, refuses the addresses in ``refuse``."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if address in r.rcpt_tos]


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 and a free port, stopped afterwards."""
    mailbox = Mailbox()
    for attempt in range(3):  # another process may take the free port before we do
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        try:
            controller.start()
        except Exception:
            if attempt == 2:
                raise
            continue
        mailbox.url = f"smtp://127.0.0.1:{port}?from=alerts@prombot.test&timeout=10"
        try:
            yield mailbox
        finally:
            controller.stop()
        return


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(calls), timeout=WAIT)

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=WAIT) for future in futures]


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def raise_urgent(
    runtime: Runtime, patient: Patient, now: datetime, to: str = DEMO_SMS_NUMBER
) -> str:
    """The patient texts a risk phrase: the webhook's path raises an urgent alert."""
    outcome = handle_inbound(
        runtime, InboundSms(sid=new_sid(), from_=patient.phone, to=to, body=RISK_TEXT), now
    )
    (alert_id,) = outcome.alert_ids
    return alert_id


def add_alert(
    runtime: Runtime, patient: Patient, now: datetime, *, flag: str, severity: str
) -> str:
    """An alert as carry_out stores one (for severities a risk phrase does not raise)."""
    with transaction(runtime.engine) as session:
        alert = Alert(
            practice_id=patient.practice_id,
            patient_id=patient.id,
            flag=flag,
            severity=severity,
            reason="score" if flag == "severe_score" else "screen",
            created_at=now,
        )
        session.add(alert)
        return alert.id


def add_staff(
    runtime: Runtime,
    practice_id: str,
    now: datetime,
    *,
    email: str,
    name: str,
    on_duty: bool = False,
    escalation_contact: bool = False,
    mobile: str | None = None,
    password: str = STAFF_PASSWORD,
) -> StaffUser:
    with transaction(runtime.engine) as session:
        user = StaffUser(
            practice_id=practice_id,
            email=email,
            name=name,
            password_hash=generate_password_hash(password, TEST_PASSWORD_HASH),
            on_duty=on_duty,
            escalation_contact=escalation_contact,
            mobile=mobile,
            created_at=now,
        )
        session.add(user)
        return user


@dataclass
class OtherPractice:
    practice: Practice
    api_token: str
    patient: Patient
    clinician: StaffUser


def other_practice(runtime: Runtime, now: datetime) -> OtherPractice:
    """A second practice with an on-duty clinician and a patient of its own."""
    with transaction(runtime.engine) as session:
        practice = create_practice(
            session, name="Riverside Health Centre", sms_number="+447700900990", now=now
        )
        token = new_api_token(session, practice, now=now, label="tests")
        patient = create_patient(
            session,
            practice,
            name="Dana Otherplace",
            phone="+447700900991",
            nhs_number=None,
            now=now,
            actor="system",
        )
    clinician = add_staff(
        runtime,
        practice.id,
        now,
        email="dr.lowe@riverside.prombot.test",
        name="Dr Kim Lowe",
        on_duty=True,
        escalation_contact=True,
        mobile="+447700900992",
    )
    return OtherPractice(practice=practice, api_token=token, patient=patient, clinician=clinician)
