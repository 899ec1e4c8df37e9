"""An urgent alert always reaches a person, and while it has not, nobody can miss that.

On SQLite and PostgreSQL, with a controlled clock and a real SMTP server
(aiosmtpd on 127.0.0.1). The rules under test (``bot.services.alert_routing``
and ``bot.services.alert_reach``):

- no on-duty clinician can be told (nobody on duty; on duty but no mobile
  while e-mail is off) -> the escalation contacts and the practice's contact
  e-mail are told at once, and the alert's history says why;
- every notice to the on-duty clinicians failed for good (including a text
  reported undelivered) -> the alert counts as having reached nobody (red
  banner on every staff page, ``/healthz``), then the same fallback;
- one notice sent or delivered -> reached; one still queued or sending ->
  not yet reached, and no fallback while it may still go;
- ``prombot practice create``, ``PATCH /api/v1/practice`` and the staff
  endpoints warn when a new urgent alert would reach nobody.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from bot.app import create_app
from bot.cli import cli
from bot.services import alert_reach
from bot.services.alert_notices import MAX_ATTEMPTS, RETRY_AFTER, escalate_due, notify_due
from bot.services.demo import DEMO_SMS_NUMBER, Demo
from bot.services.runtime import Runtime
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
    Mailbox,
    all_at_once,
    new_sid,
    other_practice,
    raise_urgent,
    smtp_server,
)
from tests.service.conftest import Clock
from tests.service.test_staff_views import sign_in
from tests.service.test_webhook import ACCOUNT_SID, STATUS, post_signed
from tests.support import use_settings

RILEY = "dr.riley@demo.prombot.test"  # on duty, mobile +447700900050
ADMIN = "admin@demo.prombot.test"  # escalation contact, mobile +447700900051
ADMIN_MOBILE = "+447700900051"
RECEPTION = "reception@demo.prombot.test"  # the demo practice's contact e-mail
BANNER = 'id="unreached-banner"'
SMTP_NOWHERE = "smtp://127.0.0.1:1"  # e-mail on, for judging warnings; never connected to


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Mailbox]:
    with smtp_server() as box:
        use_settings(app, smtp_url=box.url)
        yield box


@pytest.fixture
def alex(demo: Demo) -> Patient:
    return next(p for p in demo.patients if p.name == "Alex Example")


@pytest.fixture
def signed_in(client: FlaskClient, demo: Demo) -> FlaskClient:
    assert sign_in(client).status_code == 302
    return client


class TwilioLikeGateway:
    """Accepts texts as Twilio does: a fresh SM sid, status "queued", delivery reported later."""

    name = "twilio-like"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        sid = new_sid()
        self.sent.append((to, sid))
        return Sent(provider_sid=sid, status="queued")


class RefusingGateway:
    """Refuses every text for good, as Twilio refuses a number that is not a mobile."""

    name = "refusing"

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        raise SendError(21211, "not a valid mobile", permanent=True)


def use_gateway(app: Flask, gateway: Any) -> Runtime:
    """The app's runtime (pages, webhooks and services alike) with this SMS gateway."""
    runtime = dataclasses.replace(app.extensions["prombot.runtime"], gateway=gateway)
    app.extensions["prombot.runtime"] = runtime
    return runtime


def delivery_report(client: FlaskClient, sid: str, status: str) -> None:
    """Twilio's signed status callback for one text."""
    params = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": DEMO_SMS_NUMBER,
        "To": "+447700900050",
        "ApiVersion": "2010-04-01",
    }
    response = post_signed(client, STATUS, params)
    assert response.status_code in (200, 204), response.data


def unreached(runtime: Runtime, practice_id: str | None = None) -> int:
    with transaction(runtime.engine, read_only=True) as session:
        return alert_reach.unreached_count(session, practice_id)


def healthz(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/healthz")
    assert response.status_code == 200
    return response.json


def states(runtime: Runtime, alert_id: str) -> list[tuple[str, str, str, str]]:
    """(recipient, channel, kind, delivery state) of every notice, as the alert page lists them."""
    with transaction(runtime.engine, read_only=True) as session:
        notices = alert_reach.notices_of(session, [alert_id])[alert_id]
    return [(n.recipient_name or "practice", n.channel, n.kind, n.state) for n in notices]


def actions(runtime: Runtime, alert_id: str) -> list[str]:
    with transaction(runtime.engine, read_only=True) as session:
        return [
            e.action
            for e in session.exec(
                select(AuditEvent).where(AuditEvent.subject_id == alert_id).order_by(AuditEvent.at)
            ).all()
        ]


def set_staff(runtime: Runtime, **changes: Any) -> None:
    """Change every member of the demo's staff the same way (e.g. on_duty=False)."""
    with transaction(runtime.engine) as session:
        for user in session.exec(select(StaffUser)).all():
            for key, value in changes.items():
                setattr(user, key, value)


def text_of(html: str) -> str:
    """A page's words, without tags and with spaces collapsed, to read as a person would."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def notice_states_listed(html: str) -> list[tuple[str, str]]:
    """The alerts list's (channel, state) for each recipient, in page order."""
    return re.findall(r'class="notice-state" data-channel="(\w+)" data-state="(\w+)"', html)


# -- the definition ------------------------------------------------------------------------

DELIVERY_STATES = [
    # notice status, channel, the text's status in the message log -> delivery state
    ("queued", "email", None, "queued"),
    ("retry", "email", None, "queued"),
    ("sending", "email", None, "sending"),
    ("sending", "sms", "sending", "sending"),
    ("sent", "email", None, "sent"),
    ("sent", "sms", "queued", "sent"),
    ("sent", "sms", "sent", "sent"),
    ("sent", "sms", "delivered", "delivered"),
    ("sent", "sms", "read", "delivered"),
    ("sent", "sms", "undelivered", "failed"),
    ("sent", "sms", "failed", "failed"),
    ("failed", "email", None, "failed"),
    ("failed", "sms", "failed", "failed"),
    ("cancelled", "email", None, "cancelled"),
]


def test_each_notice_has_one_delivery_state_and_only_sent_or_delivered_reaches_someone(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient
) -> None:
    riley = demo_staff_id(runtime, RILEY)
    alert_ids = []
    with transaction(runtime.engine) as session:
        for status, channel, text_status, _state in DELIVERY_STATES:
            alert = Alert(
                practice_id=demo.practice.id,
                patient_id=alex.id,
                flag="self_harm_risk",
                severity="urgent",
                reason="risk_phrase",
                created_at=clock.now,
                notified_at=clock.now,
            )
            session.add(alert)
            message_id = None
            if text_status is not None:
                message = Message(
                    practice_id=demo.practice.id,
                    direction="outbound",
                    phone="+447700900050",
                    body="prombot, Demo Surgery: an urgent alert needs attention.",
                    status=text_status,
                    created_at=clock.now,
                    updated_at=clock.now,
                )
                session.add(message)
                message_id = message.id
            session.flush()
            session.add(
                AlertNotification(
                    alert_id=alert.id,
                    practice_id=demo.practice.id,
                    recipient_id=riley,
                    channel=channel,
                    kind="notify",
                    status=status,
                    message_id=message_id,
                    created_at=clock.now,
                )
            )
            alert_ids.append(alert.id)
    with transaction(runtime.engine, read_only=True) as session:
        found = alert_reach.notices_of(session, alert_ids)
        unreached_ids = alert_reach.unreached_among(session, alert_ids)
        count = alert_reach.unreached_count(session, demo.practice.id)
        awaiting = set(session.exec(select(Alert.id).where(alert_reach.awaiting_fallback())).all())
    for alert_id, (status, channel, text_status, state) in zip(
        alert_ids, DELIVERY_STATES, strict=True
    ):
        case = (status, channel, text_status)
        assert [n.state for n in found[alert_id]] == [state], case
        assert (alert_id not in unreached_ids) == (state in ("sent", "delivered")), case
        # Everything tried failed for good (or was cancelled): the fallback is due.
        assert (alert_id in awaiting) == (state in ("failed", "cancelled")), case
    assert count == len(unreached_ids) == 9


def demo_staff_id(runtime: Runtime, email: str) -> str:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.email == email)).one().id


def test_a_new_alert_has_reached_nobody_until_its_first_notice_goes(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox, signed_in
) -> None:
    assert healthz(signed_in)["unreached_urgent_alerts"] == 0
    assert BANNER not in signed_in.get("/staff/alerts").text

    alert_id = raise_urgent(runtime, alex, clock.now)
    assert unreached(runtime) == 1
    assert healthz(signed_in) == {"status": "ok", "database": "up", "unreached_urgent_alerts": 1}
    page = signed_in.get("/staff/alerts").text
    assert BANNER in page and "1 urgent alert has reached nobody" in text_of(page)

    assert notify_due(runtime, clock.now)["sent"] == 2
    assert unreached(runtime) == 0
    assert healthz(signed_in)["unreached_urgent_alerts"] == 0
    page = signed_in.get("/staff/alerts").text
    assert BANNER not in page
    assert notice_states_listed(page) == [("email", "sent"), ("sms", "delivered")]
    assert states(runtime, alert_id) == [
        ("Dr Sam Riley", "email", "notify", "sent"),
        ("Dr Sam Riley", "sms", "notify", "delivered"),  # the local gateway delivers at once
    ]


# -- nobody on duty can be told: the fallback at once --------------------------------------


def test_with_nobody_on_duty_the_contact_email_and_escalation_contacts_are_told_and_it_says_so(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox, signed_in
) -> None:
    set_staff(runtime, on_duty=False)
    alert_id = raise_urgent(runtime, alex, clock.now)
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 3, "failed": 0}
    assert sorted(m.rcpt_tos[0] for m in mailbox.received) == [ADMIN, RECEPTION]
    assert states(runtime, alert_id) == [
        ("Jo Admin", "email", "fallback", "sent"),
        ("Jo Admin", "sms", "fallback", "delivered"),
        ("practice", "email", "fallback", "sent"),
    ]
    assert actions(runtime, alert_id) == [
        "alert.raised",
        "alert.fallback.nobody_on_duty",
    ]
    assert unreached(runtime) == 0

    page = text_of(signed_in.get(f"/staff/alerts/{alert_id}").text)
    assert (
        "Nobody was on duty, so the escalation contacts and the practice's contact e-mail "
        "were told instead." in page
    )
    assert "E-mail to the practice's contact e-mail (fallback): sent." in page
    assert "Practice contact e-mail e-mail fallback sent" in page  # the notices table
    assert "SMS to Jo Admin (fallback): sent." in page

    # Still not acknowledged after 30 minutes: the mailbox is told again with the others.
    escalate_due(runtime, clock.advance(minutes=30))
    escalated = [m.rcpt_tos[0] for m in mailbox.received if m.message["Subject"].startswith("ESC")]
    assert sorted(escalated) == [ADMIN, RECEPTION]


def test_on_duty_clinicians_without_a_mobile_while_email_is_off_fall_back_to_who_can_be_told(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, signed_in
) -> None:
    with transaction(runtime.engine) as session:
        riley = session.exec(select(StaffUser).where(StaffUser.email == RILEY)).one()
        riley.mobile = None
    alert_id = raise_urgent(runtime, alex, clock.now)  # SMTP_URL is not set: e-mail is off
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 1, "failed": 0}
    # The practice's contact e-mail cannot be used either: only the admin's text goes.
    assert states(runtime, alert_id) == [("Jo Admin", "sms", "fallback", "delivered")]
    assert "alert.fallback.on_duty_unreachable" in actions(runtime, alert_id)
    page = text_of(signed_in.get(f"/staff/alerts/{alert_id}").text)
    assert "No clinician on duty could be told (no mobile, and e-mail alerts are off)" in page


def test_with_nobody_at_all_to_tell_the_alert_stays_unreached_for_everyone_to_see(
    app: Flask, runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, signed_in
) -> None:
    set_staff(runtime, on_duty=False, escalation_contact=False)
    alert_id = raise_urgent(runtime, alex, clock.now)  # e-mail off: the mailbox cannot be used
    assert notify_due(runtime, clock.now) == {"alerts": 1, "fallbacks": 0, "sent": 0, "failed": 0}
    assert states(runtime, alert_id) == []
    assert actions(runtime, alert_id)[-2:] == [
        "alert.fallback.nobody_on_duty",
        "alert.notify_unsent",
    ]
    assert healthz(signed_in)["unreached_urgent_alerts"] == 1
    for path in ["/staff/alerts", f"/staff/alerts/{alert_id}", f"/staff/patients/{alex.id}"]:
        assert BANNER in signed_in.get(path).text, path
    page = text_of(signed_in.get(f"/staff/alerts/{alert_id}").text)
    assert "Nobody could be told" in page and "Reached Nobody yet" in page
    assert "Reached nobody" in text_of(signed_in.get("/staff/alerts").text)

    # Someone acknowledges it: it no longer waits for anyone.
    page = signed_in.get(f"/staff/alerts/{alert_id}").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token
    signed_in.post(
        f"/staff/alerts/{alert_id}/acknowledge",
        data={"csrf_token": token[1], "outcome": "contacted"},
    )
    assert unreached(runtime) == 0
    assert BANNER not in signed_in.get("/staff/alerts").text


# -- every notice failed for good: unreached, then the fallback -----------------------------


def test_when_every_notice_fails_for_good_it_is_unreached_then_falls_back(
    app: Flask, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox, signed_in
) -> None:
    runtime = use_gateway(app, RefusingGateway())  # every text refused for good
    mailbox.refuse.add(RILEY)  # and the duty clinician's e-mail refused each time
    raised = clock.now
    alert_id = raise_urgent(runtime, alex, raised)

    assert notify_due(runtime, raised) == {"alerts": 1, "fallbacks": 0, "sent": 0, "failed": 2}
    # The e-mail waits to be tried again, so nothing has failed for good yet: no fallback.
    assert unreached(runtime) == 1
    page = signed_in.get("/staff/alerts").text
    assert BANNER in page
    assert notice_states_listed(page) == [("email", "queued"), ("sms", "failed")]

    for attempt in range(2, MAX_ATTEMPTS):
        result = notify_due(runtime, raised + RETRY_AFTER * (attempt - 1))
        assert result == {"alerts": 0, "fallbacks": 0, "sent": 0, "failed": 1}, attempt
        assert healthz(signed_in)["unreached_urgent_alerts"] == 1

    # The last attempt fails: every notice has failed for good, and the fallback goes at once.
    last = raised + RETRY_AFTER * (MAX_ATTEMPTS - 1)
    assert notify_due(runtime, last) == {"alerts": 0, "fallbacks": 1, "sent": 2, "failed": 2}
    assert sorted(m.rcpt_tos[0] for m in mailbox.received) == [ADMIN, RECEPTION]
    assert unreached(runtime) == 0
    assert healthz(signed_in)["unreached_urgent_alerts"] == 0
    assert BANNER not in signed_in.get("/staff/alerts").text
    assert states(runtime, alert_id)[-3:] == [
        ("Jo Admin", "email", "fallback", "sent"),
        ("Jo Admin", "sms", "fallback", "failed"),
        ("practice", "email", "fallback", "sent"),
    ]
    assert actions(runtime, alert_id).count("alert.fallback.notices_failed") == 1
    page = text_of(signed_in.get(f"/staff/alerts/{alert_id}").text)
    assert (
        "No notice to the clinicians on duty got through, so the escalation contacts and the "
        "practice's contact e-mail were told instead." in page
    )
    assert "E-mail to Dr Sam Riley (new alert): failed." in page

    # Falling back happens once: later passes find nothing to do.
    assert notify_due(runtime, last + timedelta(minutes=5))["fallbacks"] == 0


def test_a_text_reported_undelivered_counts_as_failed_and_brings_the_fallback(
    app: Flask, client: FlaskClient, clock: Clock, demo: Demo, alex: Patient
) -> None:
    gateway = TwilioLikeGateway()
    runtime = use_gateway(app, gateway)  # e-mail off: texts only
    alert_id = raise_urgent(runtime, alex, clock.now)
    assert notify_due(runtime, clock.now)["sent"] == 1
    ((to, sid),) = gateway.sent
    assert to == "+447700900050"
    assert states(runtime, alert_id) == [("Dr Sam Riley", "sms", "notify", "sent")]
    assert unreached(runtime) == 0  # accepted by the provider: reached, unless it says otherwise

    delivery_report(client, sid, "undelivered")
    assert states(runtime, alert_id) == [("Dr Sam Riley", "sms", "notify", "failed")]
    assert unreached(runtime) == 1
    assert healthz(client)["unreached_urgent_alerts"] == 1

    assert notify_due(runtime, clock.advance(seconds=10))["fallbacks"] == 1
    assert [t for t, _sid in gateway.sent] == ["+447700900050", ADMIN_MOBILE]
    assert unreached(runtime) == 0


def test_one_delivered_notice_is_enough_whatever_else_failed(
    app: Flask, client: FlaskClient, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    gateway = TwilioLikeGateway()
    runtime = use_gateway(app, gateway)
    mailbox.refuse.add(RILEY)
    alert_id = raise_urgent(runtime, alex, clock.now)
    notify_due(runtime, clock.now)
    ((_to, sid),) = gateway.sent
    delivery_report(client, sid, "delivered")
    for n in range(1, MAX_ATTEMPTS + 2):  # the e-mail fails every time it is tried
        notify_due(runtime, clock.now + RETRY_AFTER * n)
    assert states(runtime, alert_id)[0] == ("Dr Sam Riley", "email", "notify", "failed")
    assert ("Dr Sam Riley", "sms", "notify", "delivered") in states(runtime, alert_id)
    assert unreached(runtime) == 0
    assert "fallback" not in {kind for _who, _how, kind, _state in states(runtime, alert_id)}
    assert mailbox.received == []


def test_a_notice_still_on_its_way_has_not_reached_anyone_and_brings_no_fallback(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    """A scheduler that died mid-send leaves a notice ``sending``; it will be sent again."""
    alert_id = raise_urgent(runtime, alex, clock.now)
    with transaction(runtime.engine) as session:
        alert = session.get(Alert, alert_id)
        alert.notified_at = clock.now
        session.add(
            AlertNotification(
                alert_id=alert_id,
                practice_id=demo.practice.id,
                recipient_id=demo_staff_id(runtime, RILEY),
                channel="email",
                kind="notify",
                status="sending",
                created_at=clock.now,
                sent_at=clock.now,
            )
        )
    assert notify_due(runtime, clock.advance(minutes=5))["fallbacks"] == 0
    assert unreached(runtime) == 1
    assert states(runtime, alert_id) == [("Dr Sam Riley", "email", "notify", "sending")]
    notify_due(runtime, clock.advance(minutes=6))  # sent again: at least once
    assert unreached(runtime) == 0
    assert [m.rcpt_tos for m in mailbox.received] == [[RILEY]]


def test_several_schedulers_fall_back_once(
    runtime: Runtime, clock: Clock, demo: Demo, alex: Patient, mailbox: Mailbox
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    with transaction(runtime.engine) as session:
        session.get(Alert, alert_id).notified_at = clock.now
        session.add(
            AlertNotification(
                alert_id=alert_id,
                practice_id=demo.practice.id,
                recipient_id=demo_staff_id(runtime, RILEY),
                channel="email",
                kind="notify",
                status="failed",
                error="SMTP 550: refused",
                created_at=clock.now,
            )
        )
    results = all_at_once([lambda: notify_due(runtime, clock.now) for _ in range(4)])
    assert sum(r["fallbacks"] for r in results) == 1
    assert sorted(m.rcpt_tos[0] for m in mailbox.received) == [ADMIN, RECEPTION]
    assert actions(runtime, alert_id).count("alert.fallback.notices_failed") == 1


# -- /healthz ------------------------------------------------------------------------------


def test_healthz_counts_unreached_urgent_alerts_of_every_practice_and_nothing_else(
    runtime: Runtime, client: FlaskClient, clock: Clock, demo: Demo, alex: Patient
) -> None:
    other = other_practice(runtime, clock.now)
    raise_urgent(runtime, alex, clock.now)
    raise_urgent(runtime, other.patient, clock.now, to=other.practice.sms_number)
    body = healthz(client)
    assert body == {"status": "ok", "database": "up", "unreached_urgent_alerts": 2}
    assert client.get("/healthz").mimetype == "application/json"
    assert (unreached(runtime, demo.practice.id), unreached(runtime, other.practice.id)) == (1, 1)
    notify_due(runtime, clock.now)
    assert healthz(client)["unreached_urgent_alerts"] == 0


def test_healthz_without_its_database_answers_503_in_json(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMBOT_INSTANCE", str(tmp_path / "instance"))
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing",  # nothing there
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {
        "status": "unavailable",
        "database": "down",
        "unreached_urgent_alerts": None,
    }


# -- warnings: a practice that cannot be told of an urgent alert ---------------------------

NO_ROUTE = "urgent_alerts_reach_nobody"
REACHABILITY = [
    # what, change to the demo's staff, contact_email, e-mail on, warning?, words in it
    ("a duty clinician with a mobile", {}, RECEPTION, False, False, None),
    ("nobody on duty, an escalation contact with a mobile", {"on_duty": False}, None, False,
     False, None),
    ("nobody on duty or escalating, the contact e-mail with e-mail on",
     {"on_duty": False, "escalation_contact": False}, RECEPTION, True, False, None),
    ("nobody on duty or escalating, the contact e-mail with e-mail off",
     {"on_duty": False, "escalation_contact": False}, RECEPTION, False, True, "SMTP_URL"),
    ("nobody on duty or escalating, no contact e-mail",
     {"on_duty": False, "escalation_contact": False}, None, True, True, "no contact e-mail"),
    ("on duty and escalating without mobiles, e-mail off", {"mobile": None}, RECEPTION, False,
     True, "has a mobile"),
    ("on duty without mobiles, e-mail on", {"mobile": None}, None, True, False, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("staff", "contact_email", "email_on", "warned", "words"),
    [r[1:] for r in REACHABILITY],
    ids=[r[0] for r in REACHABILITY],
)
def test_the_practice_api_warns_when_an_urgent_alert_would_reach_nobody(
    app: Flask,
    client: FlaskClient,
    runtime: Runtime,
    api_headers: dict[str, str],
    staff: dict[str, Any],
    contact_email: str | None,
    email_on: bool,
    warned: bool,
    words: str | None,
) -> None:
    set_staff(runtime, **staff)
    use_settings(app, smtp_url=SMTP_NOWHERE if email_on else None)
    response = client.patch(
        "/api/v1/practice", headers=api_headers, json={"contact_email": contact_email}
    )
    assert response.status_code == 200, response.json
    warnings = response.json["warnings"]
    assert [w["code"] for w in warnings] == ([NO_ROUTE] if warned else [])
    if words:
        assert words in warnings[0]["message"]
    assert client.get("/api/v1/practice", headers=api_headers).json["warnings"] == warnings


def test_the_warning_and_the_notifier_agree(
    app: Flask,
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    alex: Patient,
) -> None:
    """Warned: an alert raised now reaches nobody. Not warned: it reaches someone."""
    set_staff(runtime, on_duty=False, escalation_contact=False)
    response = client.patch("/api/v1/practice", headers=api_headers, json={"contact_email": None})
    assert response.json["warnings"]
    raise_urgent(runtime, alex, clock.now)
    notify_due(runtime, clock.now)
    assert unreached(runtime) == 1

    response = client.patch(
        "/api/v1/staff/" + demo_staff_id(runtime, RILEY),
        headers=api_headers,
        json={"on_duty": True},
    )
    assert response.status_code == 200 and response.json["warnings"] == []
    escalate_due(runtime, clock.advance(minutes=30))
    assert unreached(runtime) == 0


def test_staff_changes_that_leave_nobody_to_tell_are_warned_about(
    client: FlaskClient, runtime: Runtime, api_headers: dict[str, str], demo: Demo
) -> None:
    with transaction(runtime.engine) as session:
        session.get(Practice, demo.practice.id).contact_email = None
    riley, admin = demo_staff_id(runtime, RILEY), demo_staff_id(runtime, ADMIN)
    response = client.patch(f"/api/v1/staff/{riley}", headers=api_headers, json={"on_duty": False})
    assert response.json["warnings"] == []  # the admin, an escalation contact, is the fallback
    response = client.patch(
        f"/api/v1/staff/{admin}", headers=api_headers, json={"escalation_contact": False}
    )
    assert response.status_code == 200
    assert [w["code"] for w in response.json["warnings"]] == [NO_ROUTE]
    assert "nobody is on duty or an escalation contact" in response.json["warnings"][0]["message"]
    response = client.post(
        "/api/v1/staff",
        headers=api_headers,
        json={
            "email": "dr.nowak@demo.prombot.test",
            "name": "Dr Lee Nowak",
            "on_duty": True,
            "mobile": "07700 900070",
        },
    )
    assert response.status_code == 201 and response.json["warnings"] == []


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_practice_create_warns_on_stderr_when_urgent_alerts_would_reach_nobody(
    app: Flask, as_json: bool
) -> None:
    runner = app.test_cli_runner()
    args = ["practice", "create", "--name", "Riverside Health Centre"]
    result = runner.invoke(cli, [*args, "--sms-number", "+447700900990"] + ["--json"] * as_json)
    assert result.exit_code == 0, result.output
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: An urgent alert would reach nobody")
    assert "nobody is on duty or an escalation contact" in warning
    assert not [line for line in result.stdout.splitlines() if line.startswith("warning")]
    if as_json:
        data = json.loads(result.stdout)
        assert [w["code"] for w in data["warnings"]] == [NO_ROUTE]
        assert data["warnings"][0]["message"] in warning
    else:
        assert "API token:" in result.stdout
