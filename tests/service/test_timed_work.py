"""Timed work with a controlled clock: due dates, send windows, catch-up, reminders, expiry."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select

from bot.services.demo import Demo
from bot.services.due_work import run_due_work
from bot.services.enrolment import create_consultation
from bot.services.inbound import InboundSms, handle_inbound
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AuditEvent, Invitation, Message, ResultRecord
from tests.service.conftest import Clock


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(
    runtime: Runtime,
    demo: Demo,
    clock: Clock,
    *,
    occurred_at: datetime,
    protocol: str | None = None,
    steps: list[dict[str, str]] | None = None,
    patient: int = 0,
) -> list[str]:
    with transaction(runtime.engine) as session:
        _, invitations = create_consultation(
            session,
            demo.practice,
            runtime.catalogue,
            patient_id=demo.patients[patient].id,
            occurred_at=occurred_at,
            protocol=protocol,
            schedule=steps,
            now=clock.now,
            actor="test",
        )
        return [i.id for i in invitations]


def invitation(runtime: Runtime, invitation_id: str) -> Invitation:
    with transaction(runtime.engine, read_only=True) as session:
        row = session.get(Invitation, invitation_id)
        assert row is not None
        return row


def outbound(runtime: Runtime, demo: Demo, patient: int = 0) -> list[Message]:
    with transaction(runtime.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.patient_id == demo.patients[patient].id)
                .where(Message.direction == "outbound")
                .order_by(col(Message.created_at), col(Message.position))
            ).all()
        )


def text(runtime: Runtime, demo: Demo, clock: Clock, body: str, patient: int = 0) -> list[str]:
    sms = InboundSms(
        sid=f"SM{clock.now.timestamp():.0f}{body}{patient}"[:34],
        from_=demo.patients[patient].phone,
        to=demo.practice.sms_number,
        body=body,
    )
    return handle_inbound(runtime, sms, clock.now).replies


def tick(runtime: Runtime, clock: Clock, at: str) -> dict:
    clock.now = utc(at)
    return run_due_work(runtime, clock.now)


def test_protocol_due_dates_keep_the_local_hour_across_the_clock_change(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    # 10:00 GMT on Monday 16 March; the clocks go forward on 29 March.
    ids = schedule(
        runtime, demo, clock, occurred_at=utc("2026-03-16T10:00"), protocol="depression_review"
    )
    due = [invitation(runtime, i).due_at for i in ids]
    assert due == [utc("2026-03-30T09:00"), utc("2026-04-27T09:00"), utc("2026-06-08T09:00")]


def test_nothing_is_sent_before_it_is_due_and_it_is_sent_once_when_due(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "gad7", "after": "P1D"}]
    )
    assert tick(runtime, clock, "2026-03-03T09:59")["dispatch"]["started"] == 0
    assert tick(runtime, clock, "2026-03-03T10:00")["dispatch"]["started"] == 1
    assert tick(runtime, clock, "2026-03-03T10:05")["dispatch"]["started"] == 0
    assert invitation(runtime, first).status == "active"
    assert [m.status for m in outbound(runtime, demo)] == ["delivered", "delivered"]


def test_due_at_the_weekend_goes_at_the_next_opening_never_dropped(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    # due Saturday 7 March 10:00
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "phq9", "after": "P5D"}]
    )
    assert tick(runtime, clock, "2026-03-07T10:00")["dispatch"]["deferred"] == 1
    assert tick(runtime, clock, "2026-03-09T08:59")["dispatch"]["deferred"] == 1
    assert invitation(runtime, first).status == "pending"
    assert tick(runtime, clock, "2026-03-09T09:00")["dispatch"]["started"] == 1


def test_due_on_a_bank_holiday_goes_the_next_working_day(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    clock.now = utc("2026-03-30T08:00")
    # due Good Friday 3 April 2026, 10:00 BST
    [first] = schedule(
        runtime,
        demo,
        clock,
        occurred_at=utc("2026-03-27T09:00"),
        steps=[{"instrument": "who5", "after": "P7D"}],
    )
    assert tick(runtime, clock, "2026-04-03T09:00")["dispatch"]["deferred"] == 1
    assert tick(runtime, clock, "2026-04-06T12:00")["dispatch"]["deferred"] == 1  # Easter Monday
    assert tick(runtime, clock, "2026-04-07T08:00")["dispatch"]["started"] == 1  # 09:00 BST
    assert invitation(runtime, first).started_at == utc("2026-04-07T08:00")


def test_missed_while_the_scheduler_was_down_is_sent_at_the_next_opportunity_if_still_valid(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "gad7", "after": "P0D"}]
    )
    # the scheduler was down for four days
    assert tick(runtime, clock, "2026-03-06T11:00")["dispatch"]["started"] == 1
    assert invitation(runtime, first).status == "active"


def test_missed_for_too_long_is_marked_expired_visibly_not_sent(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "gad7", "after": "P0D"}]
    )
    summary = tick(runtime, clock, "2026-03-17T10:00")  # 15 days later; valid for 14
    assert summary["dispatch"]["expired"] == 1
    assert invitation(runtime, first).status == "expired"
    assert outbound(runtime, demo) == []
    with transaction(runtime.engine, read_only=True) as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert "invitation.expired_unsent" in actions


def test_one_active_conversation_per_number_the_next_waits_its_turn(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    ids = schedule(
        runtime,
        demo,
        clock,
        occurred_at=clock.now,
        steps=[{"instrument": "phq2", "after": "P0D"}, {"instrument": "gad2", "after": "P0D"}],
    )
    summary = tick(runtime, clock, "2026-03-02T10:00")
    assert (summary["dispatch"]["started"], summary["dispatch"]["waiting"]) == (1, 1)
    [first] = [i for i in ids if invitation(runtime, i).status == "active"]
    [second] = [i for i in ids if invitation(runtime, i).status == "pending"]
    clock.advance(minutes=1)
    text(runtime, demo, clock, "0")
    clock.advance(minutes=1)
    text(runtime, demo, clock, "0")
    assert invitation(runtime, first).status == "completed"
    assert tick(runtime, clock, "2026-03-02T10:05")["dispatch"]["started"] == 1
    assert invitation(runtime, second).status == "active"


def test_no_reply_for_a_day_gets_one_reminder_inside_the_window(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "phq9", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T10:00")
    assert tick(runtime, clock, "2026-03-03T09:59")["reminders"]["reminded"] == 0
    assert tick(runtime, clock, "2026-03-03T10:00")["reminders"]["reminded"] == 1
    assert tick(runtime, clock, "2026-03-04T10:00")["reminders"]["reminded"] == 0  # max 1
    bodies = [m.body for m in outbound(runtime, demo)]
    assert bodies[2].startswith("A reminder from Demo Surgery")
    assert "Q1/9: Little interest or pleasure in doing things" in bodies[3]


def test_a_reminder_due_at_night_waits_for_the_morning(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "gad7", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T16:30")  # started late afternoon
    assert tick(runtime, clock, "2026-03-03T16:45")["reminders"]["reminded"] == 1
    [reminder] = [m for m in outbound(runtime, demo) if m.body.startswith("A reminder")]
    assert reminder.created_at == utc("2026-03-03T16:45")

    # a second patient, started at 16:55: the reminder falls due at 16:55 next day,
    # still open; a third at 16:59 falls due at 16:59; one started Friday waits for Monday
    schedule(
        runtime,
        demo,
        clock,
        occurred_at=utc("2026-03-06T16:50"),
        steps=[{"instrument": "gad7", "after": "P0D"}],
        patient=1,
    )
    tick(runtime, clock, "2026-03-06T16:50")
    summary = tick(runtime, clock, "2026-03-07T16:50")  # Saturday
    assert summary["reminders"] == {"reminded": 0, "reminder_deferred": 1}
    assert tick(runtime, clock, "2026-03-09T08:59")["reminders"]["reminded"] == 0
    assert tick(runtime, clock, "2026-03-09T09:00")["reminders"]["reminded"] == 1


def test_no_reply_for_seven_days_expires_keeping_partial_answers_with_no_total(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "phq9", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T10:00")
    text(runtime, demo, clock, "2")
    text(runtime, demo, clock, "1")
    assert tick(runtime, clock, "2026-03-09T09:59")["expiry"]["expired_conversations"] == 0
    assert tick(runtime, clock, "2026-03-09T10:00")["expiry"]["expired_conversations"] == 1
    assert invitation(runtime, first).status == "incomplete"
    with transaction(runtime.engine, read_only=True) as session:
        [result] = session.exec(select(ResultRecord)).all()
    assert (result.status, result.total, result.band) == ("incomplete", None, None)
    assert result.answers_json == '{"interest": 2, "mood": 1}'


def test_a_paused_conversation_gets_no_reminder_but_still_expires(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "gad7", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T10:00")
    text(runtime, demo, clock, "LATER")
    assert tick(runtime, clock, "2026-03-03T10:00")["reminders"]["reminded"] == 0
    tick(runtime, clock, "2026-03-09T10:00")
    assert invitation(runtime, first).status == "incomplete"


def test_tick_summary_counts_every_kind_of_work(runtime: Runtime, demo: Demo, clock: Clock) -> None:
    summary = tick(runtime, clock, "2026-03-02T10:00")
    assert set(summary) >= {"expiry", "reminders", "dispatch", "outbox"}


def test_a_reply_starts_the_expiry_clock_again(runtime: Runtime, demo: Demo, clock: Clock) -> None:
    [first] = schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "phq9", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T10:00")
    clock.now = utc("2026-03-08T10:00")  # six days on, the patient answers one question
    text(runtime, demo, clock, "1")
    assert tick(runtime, clock, "2026-03-09T10:00")["expiry"]["expired_conversations"] == 0
    assert invitation(runtime, first).status == "active"
    assert tick(runtime, clock, "2026-03-15T10:00")["expiry"]["expired_conversations"] == 1


def test_a_reply_puts_off_the_reminder(runtime: Runtime, demo: Demo, clock: Clock) -> None:
    schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "phq9", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T10:00")
    clock.now = utc("2026-03-03T09:00")
    text(runtime, demo, clock, "2")
    assert tick(runtime, clock, "2026-03-03T10:00")["reminders"]["reminded"] == 0
    assert tick(runtime, clock, "2026-03-04T09:00")["reminders"]["reminded"] == 1


def test_a_finished_questionnaire_has_no_timers_left(
    runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    schedule(
        runtime, demo, clock, occurred_at=clock.now, steps=[{"instrument": "gad2", "after": "P0D"}]
    )
    tick(runtime, clock, "2026-03-02T10:00")
    text(runtime, demo, clock, "0")
    clock.advance(minutes=1)
    text(runtime, demo, clock, "0")
    summary = tick(runtime, clock, "2026-03-20T10:00")
    assert summary["reminders"]["reminded"] == 0
    assert summary["expiry"]["expired_conversations"] == 0
