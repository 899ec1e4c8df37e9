"""Urgent alerts reach a clinician: e-mail to a real local SMTP server, SMS, escalation.

On SQLite and PostgreSQL, with a controlled clock: ``notify_due`` and
``escalate_due`` are called as the scheduler calls them, with ``now``. E-mails
go over a real socket to an aiosmtpd server on 127.0.0.1; texts go through the
local gateway into the message log. Whatever is sent must carry no patient
details: only the practice, that an urgent alert waits, and a link to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import col, select

from bot.alerts.email import short_error, smtp_settings
from bot.alerts.texts import notice
from bot.app import create_app
from bot.services import alert_routing
from bot.services.alert_acknowledgement import acknowledge
from bot.services.alert_notices import MAX_ATTEMPTS, RETRY_AFTER, escalate_due, notify_due
from bot.services.demo import Demo
from bot.services.enrolment import create_patient
from bot.services.outbox import reconcile_in_flight
from bot.services.runtime import Runtime
from bot.settings import SettingsError
from bot.sms.gateway import SendError, Sent
from bot.store.db import transaction
from bot.store.models import (
    Alert,
    AlertNotification,
    AuditEvent,
    Message,
    Patient,
    Practice,
    StaffUser,
)
from tests.service.alerting import (
    RISK_TEXT,
    Mailbox,
    add_alert,
    add_staff,
    all_at_once,
    free_port,
    other_practice,
    raise_urgent,
    smtp_server,
)
from tests.service.conftest import PUBLIC_BASE_URL, Clock
from tests.support import use_settings

RILEY = "dr.riley@demo.prombot.test"  # the demo's duty clinician
RILEY_MOBILE = "+447700900050"
ADMIN = "admin@demo.prombot.test"  # the demo's escalation contact
ADMIN_MOBILE = "+447700900051"
KAUR = "dr.kaur@demo.prombot.test"
RECEPTION = "reception@demo.prombot.test"  # the demo practice's contact e-mail
NOTHING = {"alerts": 0, "sent": 0, "failed": 0}  # escalate_due
NOTHING_NEW = {"alerts": 0, "fallbacks": 0, "sent": 0, "failed": 0}  # notify_due


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Mailbox]:
    with smtp_server() as box:
        use_settings(app, smtp_url=box.url)
        yield box


@pytest.fixture
def alex(demo: Demo) -> Patient:
    return next(p for p in demo.patients if p.name == "Alex Example")


def staff_id(runtime: Runtime, email: str) -> str:
    with transaction(runtime.engine, read_only=True) as session:
        user = session.exec(select(StaffUser).where(StaffUser.email == email)).one()
        return user.id


def notices(runtime: Runtime, alert_id: str | None = None) -> list[AlertNotification]:
    with transaction(runtime.engine, read_only=True) as session:
        query = select(AlertNotification).order_by(
            col(AlertNotification.created_at), col(AlertNotification.channel)
        )
        if alert_id:
            query = query.where(AlertNotification.alert_id == alert_id)
        return list(session.exec(query).all())


def get_alert(runtime: Runtime, alert_id: str) -> Alert:
    with transaction(runtime.engine, read_only=True) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


def staff_texts(runtime: Runtime) -> list[Message]:
    """Outbound texts to no patient: the ones to staff."""
    with transaction(runtime.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Message)
                .where(col(Message.patient_id).is_(None))
                .order_by(col(Message.created_at), col(Message.phone))
            ).all()
        )


def audit_events(runtime: Runtime) -> list[AuditEvent]:
    with transaction(runtime.engine, read_only=True) as session:
        return list(session.exec(select(AuditEvent).order_by(col(AuditEvent.at))).all())


def forbidden_for(patient: Patient) -> list[str]:
    """What a notice must never contain about the patient it is about."""
    national = "0" + patient.phone[3:]
    words = [
        patient.name,
        *patient.name.split(),
        patient.phone,
        patient.phone[1:],
        national,
        f"{national[:5]} {national[5:]}",
        patient.id,
        RISK_TEXT,
        "end it all",
        "self_harm",
        "self-harm",
        "self harm",
        "harm",
        "suicid",
        "risk",
        "phq",
        "score",
        "answer",
    ]
    if patient.nhs_number:
        n = patient.nhs_number
        words += [n, f"{n[:3]} {n[3:6]} {n[6:]}"]
    return words


def assert_nothing_about(text: str, patient: Patient, *, ids_allowed: bool = False) -> None:
    lowered = text.lower()
    for word in forbidden_for(patient):
        if ids_allowed and word == patient.id:
            continue
        assert word.lower() not in lowered, f"{word!r} in a notice:\n{text}"


# -- notifying ---------------------------------------------------------------------------


def test_an_urgent_alert_emails_and_texts_the_duty_clinician_and_nobody_else(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    add_staff(
        runtime,
        demo.practice.id,
        clock.now,
        email="dr.off@demo.prombot.test",
        name="Dr Off Duty",
        mobile="+447700900052",
    )
    other = other_practice(runtime, clock.now)
    alert_id = raise_urgent(runtime, alex, clock.now)

    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 2, "failed": 0}

    # One e-mail, to the duty clinician only, over SMTP.
    (mail,) = mailbox.received
    assert mail.rcpt_tos == [RILEY]
    assert mail.mail_from == "alerts@prombot.test"
    assert mail.message["To"] == RILEY
    link = f"{PUBLIC_BASE_URL}/staff/alerts/{alert_id}"
    subject = mail.message["Subject"]
    assert "Urgent alert" in subject and "Demo Surgery" in subject
    body = mail.message.get_body(preferencelist=("plain",)).get_content()
    assert link in body.split()
    assert "Demo Surgery" in body
    assert_nothing_about(mail.text, alex)
    assert other.clinician.email not in mailbox.to(other.clinician.email)

    # One text, to the duty clinician's mobile, through the gateway, to no patient.
    (text,) = staff_texts(runtime)
    assert text.phone == RILEY_MOBILE
    assert text.direction == "outbound"
    assert text.practice_id == demo.practice.id
    assert text.patient_id is None and text.conversation_id is None
    assert text.provider_sid == f"LM{text.id}"  # the local gateway's id: it was sent
    assert text.status == "delivered"
    assert link in text.body and "Demo Surgery" in text.body
    assert_nothing_about(text.body, alex)

    rows = notices(runtime)
    riley = staff_id(runtime, RILEY)
    assert [(n.recipient_id, n.channel, n.kind, n.status, n.error) for n in rows] == [
        (riley, "email", "notify", "sent", None),
        (riley, "sms", "notify", "sent", None),
    ]
    assert all(n.sent_at == clock.now and n.alert_id == alert_id for n in rows)

    alert = get_alert(runtime, alert_id)
    assert alert.notified_at == clock.now
    assert alert.next_escalation_at == clock.now + timedelta(minutes=30)
    assert alert.escalations == 0

    # In the audit log by id only.
    events = audit_events(runtime)
    assert ("system", "alert.notified", "alert", alert_id) in [
        (e.actor, e.action, e.subject_type, e.subject_id) for e in events
    ]
    sent = [e for e in events if e.action == "alert_notification.sent"]
    assert sorted(e.subject_id for e in sent) == sorted(n.id for n in rows)
    assert all(e.subject_type == "alert_notification" and e.actor == "system" for e in sent)
    for event in events:
        text = " ".join(str(v) for v in event.model_dump().values())
        assert_nothing_about(text.replace("patient.", ""), alex, ids_allowed=True)

    # Notified once: the next runs find nothing to do.
    assert notify_due(runtime, clock.now) == NOTHING_NEW
    assert notify_due(runtime, clock.advance(seconds=10)) == NOTHING_NEW
    assert len(mailbox.received) == 1 and len(staff_texts(runtime)) == 1


def test_routine_and_information_alerts_are_not_pushed(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    ids = [
        add_alert(runtime, alex, clock.now, flag="severe_score", severity="routine"),
        add_alert(runtime, alex, clock.now, flag="callback_requested", severity="routine"),
        add_alert(runtime, alex, clock.now, flag="phq2_positive", severity="information"),
    ]
    for minutes in [0, 30, 60, 24 * 60]:
        now = clock.now + timedelta(minutes=minutes)
        assert notify_due(runtime, now) == NOTHING_NEW
        assert escalate_due(runtime, now) == NOTHING
    assert mailbox.received == [] and staff_texts(runtime) == [] and notices(runtime) == []
    for alert_id in ids:
        alert = get_alert(runtime, alert_id)
        assert alert.notified_at is None and alert.next_escalation_at is None


@pytest.mark.parametrize("smtp_url", [None, "", "none"])
def test_without_smtp_url_only_the_text_goes(
    app: Flask, runtime: Runtime, clock: Clock, alex: Patient, smtp_url: str | None
) -> None:
    use_settings(app, smtp_url=smtp_url)
    raise_urgent(runtime, alex, clock.now)
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 1, "failed": 0}
    assert [(n.channel, n.status) for n in notices(runtime)] == [("sms", "sent")]
    assert [t.phone for t in staff_texts(runtime)] == [RILEY_MOBILE]


def test_with_nobody_on_duty_the_escalation_contacts_and_the_practice_mailbox_are_told_at_once(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    with transaction(runtime.engine) as session:
        for user in session.exec(select(StaffUser)).all():
            user.on_duty = False
    alert_id = raise_urgent(runtime, alex, clock.now)
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 3, "failed": 0}
    assert sorted(m.rcpt_tos[0] for m in mailbox.received) == [ADMIN, RECEPTION]
    assert [t.phone for t in staff_texts(runtime)] == [ADMIN_MOBILE]
    rows = notices(runtime, alert_id)
    assert {n.kind for n in rows} == {"fallback"}
    assert sorted((n.recipient_type, n.channel) for n in rows) == [
        ("practice_contact", "email"),
        ("staff", "email"),
        ("staff", "sms"),
    ]
    for mail in mailbox.received:
        assert "no clinician on duty could be told" in mail.message["Subject"]
        assert f"{PUBLIC_BASE_URL}/staff/alerts/{alert_id}" in mail.text
        assert_nothing_about(mail.text, alex)
    assert_nothing_about(staff_texts(runtime)[0].body, alex)
    assert get_alert(runtime, alert_id).fallback_at == clock.now
    actions = [(e.action, e.subject_id) for e in audit_events(runtime)]
    assert ("alert.fallback.nobody_on_duty", alert_id) in actions
    assert ("alert.notified", alert_id) not in actions


def test_with_nobody_to_tell_the_alert_is_marked_unsent_in_the_audit_log(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    with transaction(runtime.engine) as session:
        for user in session.exec(select(StaffUser)).all():
            user.on_duty = user.escalation_contact = False
        session.get(Practice, demo.practice.id).contact_email = None
    alert_id = raise_urgent(runtime, alex, clock.now)
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 0, "failed": 0}
    assert notices(runtime) == []
    actions = [(e.action, e.subject_id) for e in audit_events(runtime)]
    assert ("alert.fallback.nobody_on_duty", alert_id) in actions
    assert ("alert.notify_unsent", alert_id) in actions
    # It still shows in the staff pages and the API, and still escalates on time.
    assert get_alert(runtime, alert_id).next_escalation_at == clock.now + timedelta(minutes=30)
    # The fallback was tried once; later passes do not try it again.
    assert notify_due(runtime, clock.advance(minutes=5)) == NOTHING_NEW


# -- escalating --------------------------------------------------------------------------


def test_an_unacknowledged_alert_is_escalated_after_30_minutes_then_every_30_until_acknowledged(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)

    def run(after: timedelta) -> dict[str, int]:
        """One scheduler pass at ``raised + after``: notifications, then escalations."""
        now = raised + after
        notify_due(runtime, now)
        return escalate_due(runtime, now)

    assert run(timedelta(0)) == NOTHING
    assert [m.rcpt_tos for m in mailbox.received] == [[RILEY]]

    assert run(timedelta(minutes=29, seconds=59)) == NOTHING  # not before 30 minutes
    assert get_alert(runtime, alert_id).escalations == 0
    assert mailbox.to(ADMIN) == []

    assert run(timedelta(minutes=30)) == {"alerts": 1, "sent": 4, "failed": 0}
    alert = get_alert(runtime, alert_id)
    assert alert.escalations == 1
    assert alert.next_escalation_at == raised + timedelta(minutes=60)
    (to_admin,) = mailbox.to(ADMIN)
    assert to_admin.message["Subject"].startswith("ESCALATED")
    assert "not been acknowledged 30 min after it was raised" in to_admin.text
    assert f"{PUBLIC_BASE_URL}/staff/alerts/{alert_id}" in to_admin.text
    assert_nothing_about(to_admin.text, alex)
    assert len(mailbox.to(RILEY)) == 2  # the duty clinician is told again
    texts = staff_texts(runtime)
    assert sorted(t.phone for t in texts) == [RILEY_MOBILE, RILEY_MOBILE, ADMIN_MOBILE]
    assert sum("still not acknowledged" in t.body for t in texts) == 2

    assert run(timedelta(minutes=45)) == NOTHING
    assert run(timedelta(minutes=59, seconds=59)) == NOTHING
    assert run(timedelta(minutes=60))["alerts"] == 1  # repeated at the interval
    assert get_alert(runtime, alert_id).escalations == 2
    assert len(mailbox.to(ADMIN)) == 2 and len(mailbox.to(RILEY)) == 3

    riley = staff_id(runtime, RILEY)
    with transaction(runtime.engine) as session:
        practice = session.get(Practice, demo.practice.id)
        acknowledge(
            session,
            practice,
            alert_id,
            actor=f"user:{riley}",
            now=raised + timedelta(minutes=70),
            outcome="contacted",
        )

    for minutes in [90, 120, 180, 24 * 60]:
        assert run(timedelta(minutes=minutes)) == NOTHING  # stopped by the acknowledgement
    assert get_alert(runtime, alert_id).escalations == 2
    assert len(mailbox.received) == 5 and len(staff_texts(runtime)) == 5

    rows = notices(runtime, alert_id)
    assert [(n.kind, n.status) for n in rows].count(("escalate", "sent")) == 8
    assert [(n.kind, n.status) for n in rows].count(("notify", "sent")) == 2
    actions = [(e.actor, e.action, e.subject_id) for e in audit_events(runtime)]
    assert actions.count(("system", "alert.escalated", alert_id)) == 2
    assert actions.count((f"user:{riley}", "alert.acknowledged", alert_id)) == 1
    assert len([a for a in actions if a[1] == "alert_notification.sent"]) == 10


def test_escalation_follows_the_practices_own_intervals(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    with transaction(runtime.engine) as session:
        practice = session.get(Practice, demo.practice.id)
        practice.escalate_after_minutes = 10
        practice.escalate_every_minutes = 5
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)
    notify_due(runtime, raised)
    escalated = []
    for minute in range(0, 21):
        if escalate_due(runtime, raised + timedelta(minutes=minute))["alerts"]:
            escalated.append(minute)
    assert escalated == [10, 15, 20]
    assert get_alert(runtime, alert_id).escalations == 3


def test_an_alert_raised_while_the_scheduler_was_stopped_escalates_at_once(
    runtime: Runtime, clock: Clock, alex: Patient, mailbox: Mailbox
) -> None:
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)
    later = raised + timedelta(hours=2)
    assert notify_due(runtime, later)["alerts"] == 1
    assert escalate_due(runtime, later)["alerts"] == 1
    assert get_alert(runtime, alert_id).next_escalation_at == later + timedelta(minutes=30)


# -- failures and retries ----------------------------------------------------------------


def test_a_refused_email_stops_neither_the_text_nor_other_recipients_and_is_retried(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    add_staff(runtime, demo.practice.id, clock.now, email=KAUR, name="Dr Ana Kaur", on_duty=True)
    mailbox.refuse.add(RILEY)
    alert_id = raise_urgent(runtime, alex, clock.now)

    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 2, "failed": 1}
    assert [m.rcpt_tos for m in mailbox.received] == [[KAUR]]
    assert [t.phone for t in staff_texts(runtime)] == [RILEY_MOBILE]
    riley = staff_id(runtime, RILEY)
    (failed,) = [n for n in notices(runtime) if n.status == "failed"]
    assert (failed.recipient_id, failed.channel) == (riley, "email")
    assert failed.error is not None and failed.error.startswith("SMTP 550")
    assert RILEY not in failed.error and len(failed.error) <= 200
    assert failed.sent_at is None
    assert sorted((n.channel, n.status) for n in notices(runtime) if n.recipient_id == riley) == [
        ("email", "failed"),
        ("email", "retry"),  # tried again on a later run
        ("sms", "sent"),
    ]

    mailbox.refuse.clear()
    assert notify_due(runtime, clock.now + RETRY_AFTER / 2) == NOTHING_NEW  # not at once
    assert notify_due(runtime, clock.now + RETRY_AFTER) == {
        "alerts": 0,
        "fallbacks": 0,
        "sent": 1,
        "failed": 0,
    }
    (retried,) = mailbox.to(RILEY)
    assert f"/staff/alerts/{alert_id}" in retried.text
    assert notify_due(runtime, clock.now + 10 * RETRY_AFTER) == NOTHING_NEW
    statuses = sorted(
        n.status for n in notices(runtime) if n.recipient_id == riley and n.channel == "email"
    )
    assert statuses == ["failed", "sent"]
    actions = [(e.action, e.subject_id) for e in audit_events(runtime)]
    assert ("alert_notification.failed", failed.id) in actions


def test_retries_are_bounded(
    runtime: Runtime, clock: Clock, alex: Patient, mailbox: Mailbox
) -> None:
    mailbox.refuse.add(RILEY)
    raise_urgent(runtime, alex, clock.now)
    for _ in range(10):  # 20 minutes of scheduler passes, before any escalation
        notify_due(runtime, clock.now)
        clock.advance(minutes=2)
    emails = [n for n in notices(runtime) if n.channel == "email"]
    assert [n.status for n in emails] == ["failed"] * MAX_ATTEMPTS
    assert mailbox.received == []
    assert [n.status for n in notices(runtime) if n.channel == "sms"] == ["sent"]


def test_an_unreachable_mail_server_is_a_failed_notice_not_a_crash(
    app: Flask, runtime: Runtime, clock: Clock, alex: Patient
) -> None:
    use_settings(app, smtp_url=f"smtp://127.0.0.1:{free_port()}?timeout=5")  # nobody listening
    raise_urgent(runtime, alex, clock.now)
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 1, "failed": 1}
    (email,) = [n for n in notices(runtime) if n.channel == "email" and n.status == "failed"]
    assert email.error is not None and "Connection" in email.error


def test_a_bad_smtp_url_stops_start_up_with_one_line_naming_the_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMBOT_INSTANCE", str(tmp_path / "instance"))
    with pytest.raises(SettingsError, match=r"^SMTP_URL\b.*smtp://") as refused:
        create_app({"DATABASE_URL": database_url, "SMTP_URL": "http://127.0.0.1:1025"})
    assert "\n" not in str(refused.value)


def test_a_bad_smtp_url_cannot_be_given_to_a_running_app_either(app: Flask) -> None:
    with pytest.raises(SettingsError, match="SMTP_URL"):
        use_settings(app, smtp_url="http://127.0.0.1:1025")
    assert not alert_routing.email_alerts_on(app.extensions["prombot.runtime"].settings)


class RefusingGateway:
    """A gateway that refuses every text, as Twilio does a bad number or a busy moment."""

    name = "refusing"

    def __init__(self, code: int, *, permanent: bool) -> None:
        self.code = code
        self.permanent = permanent
        self.calls: list[dict[str, str]] = []

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        self.calls.append({"to": to, "from_": from_, "body": body, "message_id": message_id})
        raise SendError(self.code, "refused by the test gateway", permanent=self.permanent)


@pytest.mark.parametrize(
    ("code", "permanent", "statuses"),
    [
        (21211, True, ["failed"]),  # not a valid mobile: never retried
        (429, False, ["failed", "retry"]),  # busy: tried again later
    ],
)
def test_a_text_the_gateway_refuses_is_recorded_and_retried_only_if_it_may_succeed(
    runtime: Runtime,
    clock: Clock,
    demo: Demo,
    alex: Patient,
    mailbox: Mailbox,
    code: int,
    permanent: bool,
    statuses: list[str],
) -> None:
    gateway = RefusingGateway(code, permanent=permanent)
    refusing = dataclasses.replace(runtime, gateway=gateway)
    raise_urgent(runtime, alex, clock.now)

    assert notify_due(refusing, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 1, "failed": 1}
    assert [m.rcpt_tos for m in mailbox.received] == [[RILEY]]  # the e-mail still went
    (call,) = gateway.calls
    assert call["to"] == RILEY_MOBILE and call["from_"] == demo.practice.sms_number
    sms = [n for n in notices(runtime) if n.channel == "sms"]
    assert [n.status for n in sms] == statuses
    assert sms[0].error == f"{code}: refused by the test gateway"
    (text,) = staff_texts(runtime)
    assert text.id == call["message_id"]
    assert (text.status, text.error_code, text.patient_id) == ("failed", code, None)


def test_a_waiting_retry_is_cancelled_once_the_alert_is_acknowledged(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    mailbox.refuse.add(RILEY)
    alert_id = raise_urgent(runtime, alex, clock.now)
    notify_due(runtime, clock.now)
    with transaction(runtime.engine) as session:
        practice = session.get(Practice, demo.practice.id)
        acknowledge(
            session, practice, alert_id, actor="user:someone", now=clock.now, outcome="no_action"
        )
    mailbox.refuse.clear()
    assert notify_due(runtime, clock.advance(minutes=5)) == NOTHING_NEW
    assert mailbox.received == []
    (cancelled,) = [n for n in notices(runtime) if n.status == "cancelled"]
    assert cancelled.error == "alert no longer open"


def test_a_notice_interrupted_while_sending_is_sent_again_later(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    """A scheduler killed mid-send leaves a row ``sending``: at least once, never none."""
    alert_id = raise_urgent(runtime, alex, clock.now)
    riley = staff_id(runtime, RILEY)
    with transaction(runtime.engine) as session:
        alert = session.get(Alert, alert_id)
        alert.notified_at = clock.now
        alert.next_escalation_at = clock.now + timedelta(minutes=30)
        session.add(
            AlertNotification(
                alert_id=alert_id,
                practice_id=demo.practice.id,
                recipient_id=riley,
                channel="email",
                kind="notify",
                status="sending",
                created_at=clock.now,
                sent_at=clock.now,
            )
        )
    assert notify_due(runtime, clock.advance(minutes=5)) == NOTHING_NEW  # maybe still sending
    assert notify_due(runtime, clock.advance(minutes=6)) == {
        "alerts": 0,
        "fallbacks": 0,
        "sent": 1,
        "failed": 0,
    }
    assert [m.rcpt_tos for m in mailbox.received] == [[RILEY]]
    assert [n.status for n in notices(runtime)] == ["sent"]


class SchedulerKilled(BaseException):
    """The process dies mid-send (not an error any code catches)."""


class DyingGateway:
    name = "dying"

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        raise SchedulerKilled


def test_the_outbox_leaves_a_text_to_staff_alone_while_it_is_in_flight_and_it_goes_once(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient
) -> None:
    """The outbox settles texts left ``sending``; a notice's text is this module's to settle.

    Without its lease, the outbox's reconciliation (every 5 s, in another job)
    would requeue the text mid-send and send it itself, and the notice would
    send it again: two texts, and a notice that never learns the outcome.
    """
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)  # e-mail off: one text to Dr Riley
    with pytest.raises(SchedulerKilled):
        notify_due(dataclasses.replace(runtime, gateway=DyingGateway()), raised)
    (text,) = staff_texts(runtime)
    assert (text.status, text.provider_sid) == ("sending", None)

    for minutes in [0, 1, 5, 10]:
        reconcile_in_flight(runtime, raised + timedelta(minutes=minutes))
        (still,) = staff_texts(runtime)
        assert (still.id, still.status, still.provider_sid) == (text.id, "sending", None)

    # The notice is sent again once its attempt is stale: on the same row, once.
    assert notify_due(runtime, raised + timedelta(minutes=10)) == {
        "alerts": 0,
        "fallbacks": 0,
        "sent": 1,
        "failed": 0,
    }
    (sent,) = staff_texts(runtime)
    assert (sent.id, sent.status, sent.attempts) == (text.id, "delivered", 2)
    assert sent.provider_sid == f"LM{text.id}"
    assert [(n.channel, n.status, n.message_id) for n in notices(runtime, alert_id)] == [
        ("sms", "sent", text.id)
    ]
    reconcile_in_flight(runtime, raised + timedelta(hours=1))
    assert len(staff_texts(runtime)) == 1 and staff_texts(runtime)[0].status == "delivered"


# -- several scheduler processes ---------------------------------------------------------


def test_concurrent_runs_notify_and_escalate_each_recipient_once(
    runtime: Runtime, clock: Clock, demo: Demo, mailbox: Mailbox
) -> None:
    add_staff(runtime, demo.practice.id, clock.now, email=KAUR, name="Dr Ana Kaur", on_duty=True)
    patients = list(demo.patients)
    with transaction(runtime.engine) as session:
        practice = session.get(Practice, demo.practice.id)
        for n in range(3):
            patients.append(
                create_patient(
                    session,
                    practice,
                    name=f"Invented Person {n}",
                    phone=f"+4477009003{n:02d}",
                    now=clock.now,
                    actor="system",
                )
            )
    alert_ids = {raise_urgent(runtime, p, clock.now) for p in patients}
    assert len(alert_ids) == 6

    def by_alert(recipient: str, kind: str) -> list[str]:
        marker = "ESCALATED" if kind == "escalate" else "Urgent alert"
        return sorted(
            r.text.split("/staff/alerts/")[1].split()[0]
            for r in mailbox.to(recipient)
            if r.message["Subject"].startswith(marker)
        )

    results = all_at_once([lambda: notify_due(runtime, clock.now) for _ in range(4)])
    assert sum(r["alerts"] for r in results) == 6
    assert sum(r["sent"] for r in results) == 6 * 3 and sum(r["failed"] for r in results) == 0
    assert by_alert(RILEY, "notify") == sorted(alert_ids)  # once per alert each
    assert by_alert(KAUR, "notify") == sorted(alert_ids)
    assert len(mailbox.received) == 12
    assert sorted(t.body.split("/staff/alerts/")[1] for t in staff_texts(runtime)) == sorted(
        alert_ids
    )

    later = clock.advance(minutes=30)
    results = all_at_once([lambda: escalate_due(runtime, later) for _ in range(4)])
    assert sum(r["alerts"] for r in results) == 6
    assert all(get_alert(runtime, a).escalations == 1 for a in alert_ids)
    for person in [ADMIN, RILEY, KAUR]:
        assert by_alert(person, "escalate") == sorted(alert_ids)
    assert len(mailbox.received) == 12 + 18
    rows = notices(runtime)
    assert len(rows) == 6 * 3 + 6 * 5 and {n.status for n in rows} == {"sent"}


# -- the words and the settings ----------------------------------------------------------


def test_the_words_name_the_practice_and_the_link_and_nothing_else() -> None:
    link = "https://prombot.example/staff/alerts/abc"
    for kind in ["notify", "fallback", "escalate"]:
        words = notice(practice_name="Demo Surgery", link=link, kind=kind, minutes_open=30)
        for text in [words.subject, words.email_body, words.sms_body]:
            assert "Demo Surgery" in text
        assert link in words.email_body and link in words.sms_body
        assert len(words.sms_body) <= 160 * 2
        assert words.sms_body.isascii()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, None),
        ("", None),
        ("none", None),
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, False, False, None, "prombot@localhost")),
        ("smtp://mail.example", ("mail.example", 25, False, False, None, "prombot@localhost")),
        (
            "smtp://alerts%40x.test:p%40ss@mail.example:587?starttls=1&from=gp@x.test",
            ("mail.example", 587, False, True, "alerts@x.test", "gp@x.test"),
        ),
        ("smtps://mail.example", ("mail.example", 465, True, False, None, "prombot@localhost")),
    ],
)
def test_smtp_url_forms(url: str | None, expected: tuple | None) -> None:
    settings = smtp_settings(url)
    if expected is None:
        assert settings is None
        return
    assert settings is not None
    got = (
        settings.host,
        settings.port,
        settings.tls,
        settings.starttls,
        settings.username,
        settings.sender,
    )
    assert got == expected
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "smtp://h:notaport"])
def test_bad_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        smtp_settings(url)


def test_errors_are_short_and_repeat_no_address() -> None:
    import smtplib

    refused = smtplib.SMTPRecipientsRefused(
        {"dr.x@demo.test": (550, b"5.1.1 <dr.x@demo.test>: Recipient address rejected")}
    )
    assert short_error(refused) == "SMTP 550: 5.1.1 <address>: Recipient address rejected"
    assert len(short_error(RuntimeError("x" * 1000))) == 200
