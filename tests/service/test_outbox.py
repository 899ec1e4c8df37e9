"""The outbox through TwilioGateway and fake-twilio, on SQLite and PostgreSQL.

fake-twilio runs in a thread of the test process on the test's clock, so
Twilio's dates and ours agree; the outbox's clock is moved on explicitly, so
backoff and leases are checked as computed times, never by waiting. Each
failure Twilio can give is retried or surfaced as specified, and a crash at
any point between claim and commit neither loses nor doubles a text. Another
sender is played by calling ``send_outbox`` from inside the first one's
gateway or pacer, at exactly the moment a race would need, with the clock
moved on as a slow or stalled process would see it.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.carry_out import opt_out
from bot.services.demo import DEMO_SMS_NUMBER, Demo
from bot.services.dispatch import dispatch_due
from bot.services.outbox import (
    HAND_OVER_SPREAD,
    OutboxSettings,
    Pacer,
    _pacer_for,
    backoff_seconds,
    reconcile_in_flight,
    send_outbox,
)
from bot.services.runtime import Runtime
from bot.sms.fake_twilio import running
from bot.sms.gateway import SendError, Sent
from bot.sms.local import LocalGateway
from bot.sms.twilio import TwilioGateway
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Message, Patient
from tests.service.conftest import Clock
from tests.service.test_twilio_gateway import ACCOUNT_SID, AUTH_TOKEN, Fake

LEASE = timedelta(seconds=OutboxSettings.lease_seconds)
GATEWAY_TIMEOUT = 5  # seconds: the test gateway's TWILIO_TIMEOUT_SECONDS
# After a hand-over without an answer, a lookup that finds nothing proves nothing until then
# (a text goes at most HAND_OVER_SPREAD after its hand-over is recorded).
SETTLE = timedelta(seconds=GATEWAY_TIMEOUT + OutboxSettings.lookup_delay_seconds) + HAND_OVER_SPREAD
WAIT = 60  # seconds: a bound on waiting for threads, not an expectation of speed


@pytest.fixture
def fake(clock: Clock) -> Iterator[Fake]:
    with running(ACCOUNT_SID, AUTH_TOKEN, clock=clock) as (url, state):
        yield Fake(url, state)


def twilio_gateway(fake: Fake, **options: Any) -> TwilioGateway:
    return TwilioGateway(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        api_url=fake.url,
        status_callback=None,  # no web server here: the e2e tests cover callbacks
        timeout=options.pop("timeout", GATEWAY_TIMEOUT),
        **options,
    )


def with_gateway(app: Flask, gateway: Any, **config: Any) -> Runtime:
    """The app's runtime with this gateway (and settings), unpaced unless asked."""
    base = app.extensions["prombot.runtime"]
    config = {"SMS_MAX_PER_SECOND": 0, **config}
    rt = dataclasses.replace(
        base,
        gateway=gateway,
        config={**base.config, **config},
        settings=base.settings.model_copy(update={k.lower(): v for k, v in config.items()}),
    )
    app.extensions["prombot.runtime"] = rt
    return rt


@pytest.fixture
def rt(app: Flask, fake: Fake) -> Runtime:
    return with_gateway(app, twilio_gateway(fake))


def queue(rt: Runtime, demo: Demo, body: str, clock: Clock, *, patient: int = 0) -> str:
    """An outbound text in the outbox, as carry_out writes it."""
    chosen = demo.patients[patient]
    with transaction(rt.engine) as session:
        position = len(session.exec(select(Message.id)).all()) + 1
        message = Message(
            practice_id=chosen.practice_id,
            patient_id=chosen.id,
            direction="outbound",
            phone=chosen.phone,
            body=body,
            status="queued",
            position=position,
            created_at=clock.now,
            updated_at=clock.now,
        )
        session.add(message)
        session.flush()
        return message.id


def row(rt: Runtime, message_id: str) -> Message:
    with transaction(rt.engine, read_only=True) as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message


def outbound(rt: Runtime, patient_id: str) -> list[Message]:
    with transaction(rt.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.patient_id == patient_id)
                .where(Message.direction == "outbound")
                .order_by(col(Message.created_at), col(Message.position))
            ).all()
        )


def bodies_at(fake: Fake) -> list[str]:
    return [m["body"] for m in fake.messages()]


# -- transient failures ---------------------------------------------------------------------


def test_429_then_success_sends_once_after_a_recorded_backoff(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    fake.behave(fail=[{"status": 429, "count": 1, "on": "create", "retry_after": 45}])
    message_id = queue(rt, demo, "Your questionnaire from the surgery", clock)

    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0, "retrying": 1}
    waiting = row(rt, message_id)
    assert (waiting.status, waiting.attempts, waiting.error_code) == ("queued", 1, 20429)
    assert waiting.provider_sid is None
    delay = waiting.next_attempt_at - clock.now
    assert timedelta(seconds=45) <= delay <= timedelta(seconds=OutboxSettings.retry_max_seconds)

    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0}  # not due yet
    clock.now = waiting.next_attempt_at
    assert send_outbox(rt, clock.now) == {"sent": 1, "failed": 0}

    sent = row(rt, message_id)
    (at_twilio,) = fake.messages()
    assert at_twilio["body"] == "Your questionnaire from the surgery"
    assert sent.provider_sid == at_twilio["sid"]
    assert (sent.status, sent.attempts, sent.error_code) == ("queued", 2, None)
    assert sent.sent_at == clock.now and sent.next_attempt_at is None
    assert [r["status"] for r in fake.requests("create")] == [429, 201]
    assert send_outbox(rt, clock.now + timedelta(hours=1)) == {"sent": 0, "failed": 0}
    assert len(fake.messages()) == 1


def test_500_five_times_fails_after_bounded_attempts_and_never_sends_twice(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Each 500 may have gone through, so each is looked up before the next attempt."""
    fake.behave(fail=[{"status": 500, "count": 5, "on": "create"}])
    message_id = queue(rt, demo, "Are you free to answer a few questions?", clock)
    passes = 0
    while row(rt, message_id).status != "failed" and passes < 20:
        send_outbox(rt, clock.now)
        passes += 1
        after = row(rt, message_id).next_attempt_at
        if after is not None:
            clock.now = max(clock.now, after)

    failed = row(rt, message_id)
    assert (failed.status, failed.attempts, failed.error_code) == ("failed", 5, 20500)
    assert failed.provider_sid is None and failed.next_attempt_at is None
    assert [r["status"] for r in fake.requests("create")] == [500] * 5
    assert len(fake.requests("list")) >= 5  # looked up before every further attempt
    assert fake.messages() == []


def test_transient_failure_backoff_grows_and_a_sixth_attempt_never_happens(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    fake.behave(fail=[{"status": 429, "count": 10, "on": "create"}])
    message_id = queue(rt, demo, "Hello", clock)
    delays: list[timedelta] = []
    for _ in range(5):
        send_outbox(rt, clock.now)
        message = row(rt, message_id)
        if message.status == "failed":
            break
        delays.append(message.next_attempt_at - clock.now)
        clock.now = message.next_attempt_at
    failed = row(rt, message_id)
    assert (failed.status, failed.attempts, failed.error_code) == ("failed", 5, 20429)
    assert len(delays) == 4
    for attempt, delay in enumerate(delays, start=1):
        ceiling = OutboxSettings.retry_base_seconds * 2 ** (attempt - 1)
        assert timedelta(seconds=ceiling / 2) <= delay <= timedelta(seconds=ceiling)
    send_outbox(rt, clock.now + timedelta(days=1))
    assert len(fake.requests("create")) == 5


def test_a_later_text_to_the_same_phone_waits_for_an_earlier_one_held_back(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    fake.behave(fail=[{"status": 429, "count": 1, "on": "create"}])
    first = queue(rt, demo, "First: who we are", clock)
    second = queue(rt, demo, "Second: question one", clock)
    other = queue(rt, demo, "To somebody else", clock, patient=1)

    counts = send_outbox(rt, clock.now)
    assert counts == {"sent": 1, "failed": 0, "retrying": 1, "deferred": 1}
    assert bodies_at(fake) == ["To somebody else"]
    # Handed over with its chunk, never sent: given back as if never handed over.
    assert row(rt, second).status == "queued" and row(rt, second).attempts == 0
    assert row(rt, second).handed_over_at is None and row(rt, second).claim_token is None
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0}  # still held back

    clock.now = row(rt, first).next_attempt_at
    assert send_outbox(rt, clock.now)["sent"] == 2
    assert bodies_at(fake) == ["To somebody else", "First: who we are", "Second: question one"]
    assert row(rt, other).attempts == 1


def test_a_slow_answer_is_looked_up_not_resent(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    rt = with_gateway(app, twilio_gateway(fake, timeout=0.5))
    fake.behave(slow=[{"seconds": 3, "count": 1, "on": "create", "when": "after"}])
    message_id = queue(rt, demo, "Thank you for waiting", clock)

    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0, "in_doubt": 1}
    in_doubt = row(rt, message_id)
    assert (in_doubt.status, in_doubt.provider_sid) == ("sending", None)
    (at_twilio,) = fake.messages()  # Twilio has it although we heard nothing

    clock.now = in_doubt.next_attempt_at
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0, "recovered": 1}
    recovered = row(rt, message_id)
    assert recovered.provider_sid == at_twilio["sid"]
    assert recovered.status in ("queued", "sent", "delivered")
    assert len(fake.messages()) == 1 and len(fake.requests("create")) == 1


def test_a_text_in_doubt_is_not_sent_after_the_patient_opted_out_meanwhile(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """The opt-out's sweep cancels queued texts; one in flight then must not come back."""
    fake.behave(fail=[{"status": 500, "count": 1, "on": "create"}])
    message_id = queue(rt, demo, "Q3/9 Trouble sleeping?", clock)
    assert send_outbox(rt, clock.now)["in_doubt"] == 1
    waiting = row(rt, message_id)
    assert waiting.next_attempt_at - clock.now >= LEASE  # looked up only after a lease
    clock.advance(minutes=1)
    with transaction(rt.engine) as session:
        patient = session.get(Patient, demo.patients[0].id)
        opt_out(session, patient, now=clock.now)

    clock.now = max(clock.now, waiting.next_attempt_at)
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0, "canceled": 1}
    assert row(rt, message_id).status == "canceled"
    assert fake.messages() == []


def test_one_pass_works_through_the_whole_outbox_batch_by_batch(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    for n in range(7):
        queue(rt, demo, f"Text {n}", clock, patient=n % 3)
    assert send_outbox(rt, clock.now, limit=3) == {"sent": 7, "failed": 0}
    assert sorted(bodies_at(fake)) == [f"Text {n}" for n in range(7)]
    queue(rt, demo, "One more", clock)
    assert send_outbox(rt, clock.now, limit=3, max_batches=1) == {"sent": 1, "failed": 0}


# -- permanent failures -------------------------------------------------------------------


def schedule(client: FlaskClient, demo: Demo, clock: Clock, patient: int, plan: list) -> dict:
    response = client.post(
        "/api/v1/consultations",
        json={
            "patient_id": demo.patients[patient].id,
            "occurred_at": clock.now.isoformat(),
            "schedule": plan,
        },
        headers={"Authorization": f"Bearer {demo.api_token}"},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def message_log(client: FlaskClient, demo: Demo, patient_id: str) -> list[dict]:
    response = client.get(
        f"/api/v1/messages?patient_id={patient_id}",
        headers={"Authorization": f"Bearer {demo.api_token}"},
    )
    assert response.status_code == 200
    return response.get_json()


def test_21610_opts_the_patient_out_and_cancels_what_was_pending(
    rt: Runtime, fake: Fake, client: FlaskClient, demo: Demo, clock: Clock
) -> None:
    patient = demo.patients[0]
    fake.behave(numbers={patient.phone: {"create_error": 21610}})
    schedule(
        client,
        demo,
        clock,
        0,
        [{"instrument": "phq9", "after": "P0D"}, {"instrument": "gad7", "after": "P14D"}],
    )
    summary = dispatch_due(rt, clock.now)
    assert summary["started"] == 1 and summary["failed"] == 1 and summary["sent"] == 0

    texts = outbound(rt, patient.id)
    assert texts[0].status == "failed" and texts[0].error_code == 21610
    assert all(t.status == "canceled" for t in texts[1:])  # never handed to Twilio
    assert fake.messages() == []
    with transaction(rt.engine, read_only=True) as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out and stored.opted_out_at == clock.now
        invitations = session.exec(
            select(Invitation)
            .where(Invitation.patient_id == patient.id)
            .order_by(col(Invitation.due_at))
        ).all()
        conversation = session.exec(
            select(Conversation).where(Conversation.patient_id == patient.id)
        ).one()
    assert [i.status for i in invitations] == ["opted_out", "cancelled"]
    assert not conversation.active
    log = message_log(client, demo, patient.id)
    assert log[0]["status"] == "failed" and log[0]["error_code"] == 21610


@pytest.mark.parametrize("code", [21211, 21614])
def test_not_a_valid_mobile_fails_at_once_with_the_code_in_the_message_log(
    rt: Runtime, fake: Fake, client: FlaskClient, demo: Demo, clock: Clock, code: int
) -> None:
    patient = demo.patients[1]
    fake.behave(numbers={patient.phone: {"create_error": code}})
    message_id = queue(rt, demo, "Hello from the surgery", clock, patient=1)

    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 1}
    failed = row(rt, message_id)
    assert (failed.status, failed.error_code, failed.attempts) == ("failed", code, 1)
    assert send_outbox(rt, clock.now + timedelta(days=1)) == {"sent": 0, "failed": 0}
    assert len(fake.requests("create")) == 1  # never retried
    (entry,) = message_log(client, demo, patient.id)
    assert (entry["direction"], entry["status"], entry["error_code"]) == (
        "outbound",
        "failed",
        code,
    )
    with transaction(rt.engine, read_only=True) as session:
        assert not session.get(Patient, patient.id).opted_out


# -- pacing ----------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that only moves when the pacer sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_sending_is_paced_to_the_configured_rate(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    rt = with_gateway(app, twilio_gateway(fake), SMS_MAX_PER_SECOND=4)
    settings = OutboxSettings(**rt.settings.delivery())
    assert settings.max_per_second == 4
    timer = FakeTime()
    pacer = Pacer(settings.max_per_second, clock=timer.clock, sleep=timer.sleep)
    for n in range(6):
        queue(rt, demo, f"Text {n}", clock, patient=n % 3)

    assert send_outbox(rt, clock.now, pacer=pacer)["sent"] == 6
    assert timer.sleeps == pytest.approx([0.25] * 5)  # the first goes at once
    assert len(fake.messages()) == 6


def test_the_process_wide_pacer_follows_the_setting_and_skips_the_local_gateway(
    app: Flask, fake: Fake
) -> None:
    rt = with_gateway(app, twilio_gateway(fake), SMS_MAX_PER_SECOND=7)
    pacer = _pacer_for(rt, OutboxSettings(**rt.settings.delivery()))
    assert pacer is not None and pacer.rate == 7
    assert _pacer_for(rt, OutboxSettings(**rt.settings.delivery())) is pacer  # shared across passes
    local = with_gateway(app, LocalGateway(), SMS_MAX_PER_SECOND=7)
    assert _pacer_for(local, OutboxSettings(**local.settings.delivery())) is None
    default = OutboxSettings()
    assert (default.max_per_second, default.max_attempts) == (10, 5)


def test_pacer_refills_with_time_and_allows_bursts_when_configured() -> None:
    timer = FakeTime()
    pacer = Pacer(10, burst=3, clock=timer.clock, sleep=timer.sleep)
    assert [pacer.wait() for _ in range(3)] == [0, 0, 0]
    assert pacer.wait() == pytest.approx(0.1)
    timer.now += 10  # a quiet spell refills the bucket, but never beyond the burst
    assert [pacer.wait() for _ in range(3)] == [0, 0, 0]
    assert pacer.wait() == pytest.approx(0.1)
    assert Pacer(0, clock=timer.clock, sleep=timer.sleep).wait() == 0


def test_backoff_is_exponential_with_jitter_capped_and_honours_retry_after() -> None:
    settings = OutboxSettings()
    low, high = random.Random(), random.Random()
    low.uniform = lambda a, b: a  # type: ignore[method-assign]
    high.uniform = lambda a, b: b  # type: ignore[method-assign]
    assert [backoff_seconds(n, settings, high) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert [backoff_seconds(n, settings, low) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert backoff_seconds(20, settings, high) == settings.retry_max_seconds
    assert backoff_seconds(1, settings, low, retry_after=90) == 90
    assert backoff_seconds(1, settings, low, retry_after=10**6) == settings.retry_max_seconds
    spread = {round(backoff_seconds(3, settings, random.Random(seed)), 3) for seed in range(20)}
    assert len(spread) > 1 and all(60 <= d <= 120 for d in spread)


# -- crashes and reconciliation -------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The process dying (a kill), not an error anybody handles."""


@dataclasses.dataclass
class CrashAfterSend:
    """The gateway accepts the text, then the process dies before the outbox commits."""

    inner: Any
    name: str = "crash-after-send"

    def send(self, **kwargs: Any) -> Sent:
        self.inner.send(**kwargs)
        raise SimulatedCrash


@dataclasses.dataclass
class CrashBeforeSend:
    """The process dies inside the gateway call, before the request left.

    The outbox cannot tell this from a death just after the request left: the
    hand-over was recorded, so the text is looked up before it is sent again.
    """

    name: str = "crash-before-send"

    def send(self, **kwargs: Any) -> Sent:
        raise SimulatedCrash


class CrashWhilePacing:
    """The process dies after the claim, before the hand-over: it never reached the gateway."""

    def wait(self) -> float:
        raise SimulatedCrash


def test_crash_after_twilio_accepted_is_found_by_reconcile_and_never_resent(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    real = twilio_gateway(fake)
    crashing = with_gateway(app, CrashAfterSend(real))
    message_id = queue(rt=crashing, demo=demo, body="Q1/9 Little interest?", clock=clock)
    with pytest.raises(SimulatedCrash):
        send_outbox(crashing, clock.now)
    left = row(crashing, message_id)
    assert (left.status, left.provider_sid, left.attempts) == ("sending", None, 1)
    (at_twilio,) = fake.messages()

    restarted = with_gateway(app, real)
    assert reconcile_in_flight(restarted, clock.now) == {}  # its lease has not run out yet
    assert send_outbox(restarted, clock.now) == {"sent": 0, "failed": 0}  # nor is it resent
    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(restarted, clock.now) == {"recovered": 1}

    recovered = row(restarted, message_id)
    assert recovered.provider_sid == at_twilio["sid"]
    assert recovered.status in ("queued", "sent", "delivered")
    assert recovered.next_attempt_at is None
    assert send_outbox(restarted, clock.now + timedelta(hours=1)) == {"sent": 0, "failed": 0}
    assert len(fake.messages()) == 1 and len(fake.requests("create")) == 1


def test_crash_between_claim_and_hand_over_is_requeued_when_its_lease_ends_unlooked_up(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Nothing was handed over, so nothing needs looking up and no attempt was used."""
    rt = with_gateway(app, twilio_gateway(fake))
    message_id = queue(rt, demo, "Q1/9 Little interest?", clock)
    with pytest.raises(SimulatedCrash):
        send_outbox(rt, clock.now, pacer=CrashWhilePacing())  # type: ignore[arg-type]
    left = row(rt, message_id)
    assert (left.status, left.attempts, left.handed_over_at) == ("sending", 0, None)
    assert left.claimed_until == clock.now + LEASE

    assert reconcile_in_flight(rt, clock.now) == {}  # its holder may still be alive
    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(rt, clock.now) == {"requeued": 1}
    assert fake.requests("list") == []
    assert (row(rt, message_id).status, row(rt, message_id).attempts) == ("queued", 0)
    assert send_outbox(rt, clock.now) == {"sent": 1, "failed": 0}
    assert bodies_at(fake) == ["Q1/9 Little interest?"]
    assert row(rt, message_id).attempts == 1


def test_crash_inside_the_gateway_is_resent_only_once_a_lookup_can_prove_it_absent(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Changed by design: at the lease's end the lookup finds nothing, which proves nothing
    until Twilio's list has had time to show it; only then is the text requeued."""
    crashing = with_gateway(app, CrashBeforeSend())
    message_id = queue(crashing, demo, "Q1/9 Little interest?", clock)
    handed_over = clock.now
    with pytest.raises(SimulatedCrash):
        send_outbox(crashing, clock.now)
    left = row(crashing, message_id)
    assert (left.status, left.attempts, left.handed_over_at) == ("sending", 1, handed_over)
    assert fake.messages() == []

    restarted = with_gateway(app, twilio_gateway(fake))
    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(restarted, clock.now) == {"unconfirmed": 1}
    waiting = row(restarted, message_id)
    assert (waiting.status, waiting.claim_token) == ("sending", None)
    assert waiting.next_attempt_at == handed_over + SETTLE
    assert send_outbox(restarted, clock.now) == {"sent": 0, "failed": 0}  # not resent yet

    clock.now = handed_over + SETTLE
    assert reconcile_in_flight(restarted, clock.now) == {"requeued": 1}
    assert row(restarted, message_id).status == "queued"
    assert send_outbox(restarted, clock.now) == {"sent": 1, "failed": 0}
    assert bodies_at(fake) == ["Q1/9 Little interest?"]
    assert row(restarted, message_id).attempts == 2


def test_send_outbox_settles_expired_leases_itself_without_a_restart(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    rt = with_gateway(app, twilio_gateway(fake))
    queue(rt, demo, "Left behind by a crashed scheduler", clock)
    with pytest.raises(SimulatedCrash):
        send_outbox(rt, clock.now, pacer=CrashWhilePacing())  # type: ignore[arg-type]
    clock.advance(seconds=LEASE.total_seconds())
    assert send_outbox(rt, clock.now) == {"sent": 1, "failed": 0, "requeued": 1}
    assert bodies_at(fake) == ["Left behind by a crashed scheduler"]


def test_reconcile_does_not_mistake_an_identical_earlier_text_for_the_lost_one(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    real = twilio_gateway(fake)
    rt = with_gateway(app, real)
    earlier = queue(rt, demo, "Reminder: we sent you a question", clock)
    assert send_outbox(rt, clock.now)["sent"] == 1
    clock.advance(minutes=1)
    crashing = with_gateway(app, CrashBeforeSend())
    lost = queue(crashing, demo, "Reminder: we sent you a question", clock)
    with pytest.raises(SimulatedCrash):
        send_outbox(crashing, clock.now)

    rt = with_gateway(app, real)
    clock.advance(seconds=SETTLE.total_seconds())
    assert reconcile_in_flight(rt, clock.now) == {"requeued": 1}  # the twin was not taken
    assert send_outbox(rt, clock.now)["sent"] == 1
    assert row(rt, lost).provider_sid != row(rt, earlier).provider_sid
    assert len(fake.messages()) == 2


def test_when_twilio_cannot_be_asked_the_text_waits_rather_than_risk_a_double(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    real = twilio_gateway(fake)
    crashing = with_gateway(app, CrashAfterSend(real))
    message_id = queue(crashing, demo, "Q2/9 Feeling down?", clock)
    with pytest.raises(SimulatedCrash):
        send_outbox(crashing, clock.now)
    rt = with_gateway(app, real)
    fake.behave(fail=[{"status": 503, "count": 1, "on": "list"}])
    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(rt, clock.now) == {"unsettled": 1}
    assert row(rt, message_id).status == "sending"
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0}  # still not resent

    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(rt, clock.now) == {"recovered": 1}
    assert row(rt, message_id).provider_sid == fake.messages()[0]["sid"]
    assert len(fake.requests("create")) == 1


def test_the_local_gateway_has_nothing_to_look_up_so_its_texts_are_requeued(
    app: Flask, demo: Demo, clock: Clock
) -> None:
    crashing = with_gateway(app, CrashBeforeSend())
    message_id = queue(crashing, demo, "Hello", clock)
    with pytest.raises(SimulatedCrash):
        send_outbox(crashing, clock.now)
    local = with_gateway(app, LocalGateway())
    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(local, clock.now) == {"requeued": 1}
    assert send_outbox(local, clock.now) == {"sent": 1, "failed": 0}
    sent = row(local, message_id)
    assert (sent.status, sent.provider_sid) == ("delivered", f"LM{message_id}")


def test_a_crash_in_the_gateway_code_leaves_the_text_in_flight_for_a_lookup(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    class Broken:
        name = "broken"

        def send(self, **kwargs: Any) -> Sent:
            raise RuntimeError("a bug, after the request may have gone")

    rt = with_gateway(app, Broken())
    message_id = queue(rt, demo, "Hello", clock)
    other = queue(rt, demo, "Hello again", clock)
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0, "in_doubt": 1, "deferred": 1}
    assert row(rt, message_id).status == "sending"
    assert row(rt, other).status == "queued" and row(rt, other).attempts == 0


# -- several senders ------------------------------------------------------------------------


def test_two_senders_at_once_send_each_text_exactly_once(
    rt: Runtime, fake: Fake, demo: Demo, clock: Clock
) -> None:
    bodies = [f"Text {n:02d}" for n in range(30)]
    for n, body in enumerate(bodies):
        queue(rt, demo, body, clock, patient=n % 3)
    barrier = threading.Barrier(2, timeout=WAIT)

    def sender() -> dict[str, int]:
        barrier.wait()
        total: dict[str, int] = {}
        for _ in range(5):  # bounded: each pass may find the other holding a phone's turn
            for key, value in send_outbox(rt, clock.now).items():
                total[key] = total.get(key, 0) + value
        return total

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [f.result(timeout=WAIT) for f in [pool.submit(sender) for _ in range(2)]]
    assert sum(r["sent"] for r in results) == 30
    assert sorted(bodies_at(fake)) == bodies
    with transaction(rt.engine, read_only=True) as session:
        statuses = session.exec(select(Message.status, Message.attempts)).all()
    assert all(status != "sending" for status, _ in statuses)
    assert fake.messages()[0]["from"] == DEMO_SMS_NUMBER


# -- races between senders, played out step by step -----------------------------------------


@dataclasses.dataclass
class SlowGateway:
    """Twilio as a slow sender sees it: each send takes ``seconds`` on the test's clock.

    ``meanwhile`` runs after the clock has moved and before the text goes out:
    what another scheduler does while this one is busy.
    """

    inner: Any
    clock: Clock
    seconds: float
    meanwhile: Callable[[], None] | None = None
    name: str = "slow"
    timeout: float = GATEWAY_TIMEOUT

    def send(self, **kwargs: Any) -> Sent:
        self.clock.advance(seconds=self.seconds)
        if self.meanwhile is not None:
            self.meanwhile()
        return self.inner.send(**kwargs)

    def find_sent(self, **kwargs: Any) -> Sent | None:
        return self.inner.find_sent(**kwargs)


def test_a_sender_slower_than_its_lease_keeps_its_texts_and_another_never_doubles_them(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """The doubled texts of issue 11: a lease counted from the start of a long pass ran out
    while its holder was still working through the batch, another scheduler requeued the
    texts, and both sent them. Now every hand-over renews the batch's lease."""
    real = twilio_gateway(fake)
    other = with_gateway(app, real)
    other_counts: dict[str, int] = {}

    def other_scheduler() -> None:
        for key, value in send_outbox(other, clock.now).items():
            other_counts[key] = other_counts.get(key, 0) + value

    bodies = [f"Text {n:02d}" for n in range(12)]
    for n, body in enumerate(bodies):
        queue(other, demo, body, clock, patient=n % 3)
    slow = SlowGateway(real, clock, seconds=LEASE.total_seconds() * 0.4, meanwhile=other_scheduler)
    busy = with_gateway(app, slow)

    counts = send_outbox(busy, clock.now)  # 12 sends: almost five leases long
    assert counts == {"sent": 12, "failed": 0}
    assert other_counts.get("sent", 0) == 0 and "requeued" not in other_counts
    assert sorted(bodies_at(fake)) == bodies
    with transaction(busy.engine, read_only=True) as session:
        assert {m.attempts for m in session.exec(select(Message))} == {1}


def test_a_holder_stalled_past_its_lease_cannot_hand_over_a_text_taken_over_meanwhile(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Stalled between claim and hand-over (a long GC pause, a frozen VM): another scheduler
    takes the text over and sends it; the stalled one's hand-over then fails its token."""
    real = twilio_gateway(fake)
    other = with_gateway(app, real)
    message_id = queue(other, demo, "Q1/9 Little interest?", clock)
    taken_over: dict[str, int] = {}

    class StallingPacer:
        def wait(self) -> float:
            clock.advance(seconds=2 * LEASE.total_seconds())
            taken_over.update(send_outbox(other, clock.now))
            return 0.0

    stalled = with_gateway(app, real)
    counts = send_outbox(stalled, clock.now, pacer=StallingPacer())  # type: ignore[arg-type]
    assert taken_over == {"sent": 1, "failed": 0, "requeued": 1}
    assert counts == {"sent": 0, "failed": 0, "settled_elsewhere": 1}
    assert bodies_at(fake) == ["Q1/9 Little interest?"]
    assert row(stalled, message_id).attempts == 1


def test_a_holder_stalled_after_its_hand_over_is_found_and_never_resent(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Stalled after recording its hand-over, before the request left: the scheduler that
    takes over looks the text up, finds nothing yet and waits; the stalled one's SID,
    when it comes, is recorded although its claim was lost."""
    real = twilio_gateway(fake)
    other = with_gateway(app, real)
    message_id = queue(other, demo, "Q2/9 Feeling down?", clock)
    seen: dict[str, int] = {}
    slow = SlowGateway(
        real,
        clock,
        seconds=2 * LEASE.total_seconds(),
        meanwhile=lambda: seen.update(send_outbox(other, clock.now)),
    )
    stalled = with_gateway(app, slow)
    assert send_outbox(stalled, clock.now) == {"sent": 1, "failed": 0}
    assert seen == {"sent": 0, "failed": 0, "unconfirmed": 1}
    (at_twilio,) = fake.messages()
    recorded = row(stalled, message_id)
    assert (recorded.provider_sid, recorded.claim_token) == (at_twilio["sid"], None)

    for later in (SETTLE, 2 * SETTLE):  # nothing is left to settle, so nothing is resent
        assert send_outbox(other, clock.now + later) == {"sent": 0, "failed": 0}
    assert len(fake.messages()) == 1


def test_a_lookup_that_finds_nothing_proves_nothing_until_twilios_list_has_caught_up(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Twilio's list may lag behind a create: the lookup at the lease's end misses the text,
    and the text is not resent; the lookup once the list must show it finds it."""
    fake.behave(list_delay=OutboxSettings.lookup_delay_seconds * 0.75)  # > a lease
    real = twilio_gateway(fake)
    crashing = with_gateway(app, CrashAfterSend(real))
    message_id = queue(crashing, demo, "Q3/9 Trouble sleeping?", clock)
    handed_over = clock.now
    with pytest.raises(SimulatedCrash):
        send_outbox(crashing, clock.now)
    (at_twilio,) = fake.messages()

    rt = with_gateway(app, real)
    clock.advance(seconds=LEASE.total_seconds())
    assert reconcile_in_flight(rt, clock.now) == {"unconfirmed": 1}
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0}
    clock.now = handed_over + SETTLE
    assert reconcile_in_flight(rt, clock.now) == {"recovered": 1}
    assert row(rt, message_id).provider_sid == at_twilio["sid"]
    assert len(fake.requests("create")) == 1


def test_an_attempt_that_never_reached_twilio_is_not_counted(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    """Twilio unreachable (no connection made) for longer than SMS_MAX_ATTEMPTS tries: the
    text waits, it is not given up, and it goes once Twilio answers again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens there once closed
    unreachable = with_gateway(
        app,
        TwilioGateway(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            api_url=f"http://127.0.0.1:{closed_port}",
            timeout=GATEWAY_TIMEOUT,
        ),
    )
    message_id = queue(unreachable, demo, "Hello from the surgery", clock)
    for _ in range(OutboxSettings.max_attempts + 2):
        assert send_outbox(unreachable, clock.now) == {"sent": 0, "failed": 0, "retrying": 1}
        waiting = row(unreachable, message_id)
        assert (waiting.status, waiting.attempts, waiting.handed_over_at) == ("queued", 0, None)
        clock.now = waiting.next_attempt_at

    rt = with_gateway(app, twilio_gateway(fake))
    assert send_outbox(rt, clock.now) == {"sent": 1, "failed": 0}
    assert row(rt, message_id).attempts == 1
    assert bodies_at(fake) == ["Hello from the surgery"]


def test_claims_are_sized_to_the_pace_and_leased_from_the_moment_of_each_claim(
    app: Flask, fake: Fake, demo: Demo, clock: Clock
) -> None:
    rt = with_gateway(app, twilio_gateway(fake), SMS_MAX_PER_SECOND=2)
    settings = OutboxSettings(**rt.settings.delivery())
    assert settings.batch_size(paced=True) == 2
    assert settings.batch_size(paced=False) == settings.batch_size(paced=True) * 100
    leases: list[tuple[datetime, datetime]] = []

    class WatchingPacer:
        """Each wait is half a second on the test's clock; notes each text's lease as it goes."""

        def wait(self) -> float:
            clock.advance(seconds=0.5)
            with transaction(rt.engine, read_only=True) as session:
                for message in session.exec(
                    select(Message).where(col(Message.claim_token).is_not(None))
                ):
                    leases.append((clock.now, message.claimed_until))
            return 0.5

    for n in range(5):
        queue(rt, demo, f"Text {n}", clock, patient=n % 3)
    start = clock.now
    assert send_outbox(rt, clock.now, pacer=WatchingPacer())["sent"] == 5  # type: ignore[arg-type]
    # Every lease seen was taken or renewed at most a quarter of a lease (and one pacing
    # interval) before that moment: none ages while its holder works through the batch.
    oldest = LEASE / 4 + timedelta(seconds=0.5)
    assert len(leases) >= 5
    assert all(now + LEASE - oldest <= until <= now + LEASE for now, until in leases)
    assert clock.now - start == timedelta(seconds=2.5)


def test_a_slow_provider_never_sends_a_text_long_after_its_recorded_hand_over(
    app: Flask, demo: Demo, clock: Clock
) -> None:
    """Unpaced, a chunk of texts is handed over in one statement before any is sent.

    Each send here takes 0.4 s of the test's clock and the fourth never answers:
    before it goes, the rest of the chunk is stamped afresh, so every text is sent
    within HAND_OVER_SPREAD of its recorded hand-over (a lookup waits that long too).
    """
    calls: list[tuple[str, datetime]] = []

    class Slow:
        name = "slow"
        paced = False
        timeout = float(GATEWAY_TIMEOUT)

        def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
            calls.append((message_id, clock.now))
            clock.advance(seconds=0.4)
            if len(calls) == 4:
                raise SendError(None, "no answer", permanent=False, in_doubt=True)
            return Sent(provider_sid=f"SM{len(calls):032d}", status="queued")

        def find_sent(self, **_: Any) -> Sent | None:
            return None

    rt = with_gateway(app, Slow())
    ids = [queue(rt, demo, f"Text {n}", clock, patient=n % len(demo.patients)) for n in range(4)]
    assert send_outbox(rt, clock.now) == {"sent": 3, "failed": 0, "in_doubt": 1}
    assert [message_id for message_id, _ in calls] == ids
    doubtful = row(rt, ids[3])
    began = calls[3][1]
    assert doubtful.handed_over_at is not None
    assert began - HAND_OVER_SPREAD <= doubtful.handed_over_at <= began
    assert doubtful.attempts == 1  # stamped afresh, not counted twice
    assert doubtful.next_attempt_at >= doubtful.handed_over_at + SETTLE
    assert [row(rt, i).provider_sid for i in ids[:3]] == [f"SM{n:032d}" for n in (1, 2, 3)]
