"""Batched dispatch keeps every guarantee, on SQLite and PostgreSQL.

``dispatch_due`` starts a page of invitations in one transaction and the outbox
claims a batch of texts in one statement. These tests break a batch on purpose
(two dispatchers racing over it, a failure half-way through it, one number twice
in it) and check that each invitation is started exactly once, that nothing of
a failed batch is half done, and that a number still has one questionnaire open
at a time.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, func, select

from bot.services import dispatch as dispatch_module
from bot.services import outbox as outbox_module
from bot.services.demo import Demo
from bot.services.dispatch import dispatch_due
from bot.services.enrolment import create_practice
from bot.services.outbox import send_outbox
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Message, Patient
from tests.service.conftest import Clock
from tests.service.test_concurrency import all_at_once


def due_invitations(
    rt: Runtime, clock: Clock, practice_id: str, numbers: list[int], *, per_patient: int = 1
) -> list[str]:
    """A patient per number, each with ``per_patient`` invitations due now; their ids."""
    ids: list[str] = []
    with transaction(rt.engine) as session:
        patients = [
            Patient(
                practice_id=practice_id,
                name=f"Batch Patient {n}",
                phone=f"+447700900{n:03d}",
                created_at=clock.now,
            )
            for n in numbers
        ]
        session.add_all(patients)
        session.flush()
        for patient in patients:
            for k in range(per_patient):
                invitation = Invitation(
                    practice_id=practice_id,
                    patient_id=patient.id,
                    instrument="phq9",
                    due_at=clock.now - timedelta(minutes=10 - k),
                    created_at=clock.now,
                )
                session.add(invitation)
                ids.append(invitation.id)
    return ids


def started(rt: Runtime) -> dict[str, int]:
    """Conversations per invitation, and the outbox's queued texts per conversation."""
    with transaction(rt.engine, read_only=True) as session:
        conversations = session.exec(
            select(Conversation.invitation_id, func.count()).group_by(
                col(Conversation.invitation_id)
            )
        ).all()
        return dict(conversations)


def test_two_dispatchers_racing_over_one_batch_start_each_invitation_once(
    runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    ids = due_invitations(runtime, clock, demo.practice.id, list(range(500, 560)))
    results = all_at_once(
        [lambda: dispatch_due(runtime, clock.now, limit=25, send=False) for _ in range(2)]
    )
    assert sum(r["started"] for r in results) == len(ids)
    assert started(runtime) == dict.fromkeys(ids, 1)
    with transaction(runtime.engine, read_only=True) as session:
        openings = session.exec(
            select(Message.conversation_id, func.count())
            .where(Message.direction == "outbound")
            .group_by(col(Message.conversation_id))
        ).all()
        statuses = set(session.exec(select(Invitation.status)).all())
    # every conversation got its opening texts once: the same number each
    assert len(openings) == len(ids) and len({n for _, n in openings}) == 1
    assert statuses == {"active"}


def test_a_failure_half_way_through_a_batch_leaves_all_of_it_due_again(
    runtime: Runtime, clock: Clock, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = due_invitations(runtime, clock, demo.practice.id, list(range(600, 610)))
    calls = {"n": 0}
    real = dispatch_module._queue_opening

    def fail_on_the_fifth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatch_module, "_queue_opening", fail_on_the_fifth)
    with pytest.raises(RuntimeError):
        dispatch_due(runtime, clock.now, send=False)
    with transaction(runtime.engine, read_only=True) as session:
        assert set(session.exec(select(Invitation.status)).all()) == {"pending"}
        assert session.exec(select(func.count()).select_from(Conversation)).one() == 0
        assert session.exec(select(func.count()).select_from(Message)).one() == 0
    monkeypatch.setattr(dispatch_module, "_queue_opening", real)
    assert dispatch_due(runtime, clock.now, send=False)["started"] == len(ids)
    assert started(runtime) == dict.fromkeys(ids, 1)


def test_a_patient_with_two_invitations_due_in_one_batch_gets_one_conversation_at_a_time(
    runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    ids = due_invitations(runtime, clock, demo.practice.id, [700], per_patient=2)
    counts = dispatch_due(runtime, clock.now, send=False)
    assert (counts["started"], counts["waiting"]) == (1, 1)
    assert started(runtime) == {ids[0]: 1}  # the one due first goes first
    with transaction(runtime.engine, read_only=True) as session:
        assert session.get(Invitation, ids[1]).status == "pending"  # waits its turn


def test_one_number_at_two_practices_due_in_one_batch_starts_once(
    runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    with transaction(runtime.engine) as session:
        other = create_practice(
            session, name="Hillside Surgery", sms_number="+447700900901", now=clock.now
        )
        other.send_window_start, other.send_window_end = "00:00", "24:00"
        other.working_days = "mon tue wed thu fri sat sun"
        other_id = other.id
    first = due_invitations(runtime, clock, demo.practice.id, [710])
    second = due_invitations(runtime, clock, other_id, [710])
    counts = dispatch_due(runtime, clock.now, send=False)
    assert (counts["started"], counts["waiting"]) == (1, 1)
    with transaction(runtime.engine, read_only=True) as session:
        active = session.exec(
            select(func.count()).select_from(Conversation).where(Conversation.active == True)  # noqa: E712
        ).one()
    assert active == 1
    assert len(started(runtime)) == 1 and set(started(runtime)) <= set(first + second)


def test_a_failed_claim_leaves_every_text_of_the_batch_claimable(
    runtime: Runtime, clock: Clock, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    due_invitations(runtime, clock, demo.practice.id, list(range(800, 806)))
    dispatch_due(runtime, clock.now, send=False)

    def broken(*_args, **_kwargs):
        raise RuntimeError("crash while reading the batch's practices")

    monkeypatch.setattr(outbox_module, "_claims_of", broken)
    with pytest.raises(RuntimeError):
        send_outbox(runtime, clock.now, limit=50)
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(select(Message).where(Message.direction == "outbound")).all()
    assert rows and all(m.status == "queued" and m.claim_token is None for m in rows)
    monkeypatch.undo()
    counts = send_outbox(runtime, clock.now, limit=50)
    assert counts["sent"] == len(rows)


def test_racing_outbox_passes_hand_each_text_over_once(
    runtime: Runtime, clock: Clock, demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    due_invitations(runtime, clock, demo.practice.id, list(range(820, 850)))
    dispatch_due(runtime, clock.now, send=False)
    handed: list[str] = []
    real_send = runtime.gateway.send

    def counting_send(**kwargs):
        handed.append(kwargs["message_id"])
        return real_send(**kwargs)

    monkeypatch.setattr(runtime.gateway, "send", counting_send)
    all_at_once([lambda: send_outbox(runtime, clock.now, limit=7) for _ in range(3)])
    send_outbox(runtime, clock.now)  # what a pass left for later (a number's next text)
    with transaction(runtime.engine, read_only=True) as session:
        rows = session.exec(select(Message).where(Message.direction == "outbound")).all()
    assert sorted(handed) == sorted(m.id for m in rows)  # each once, none left out
    assert all(m.provider_sid and m.attempts == 1 and m.claim_token is None for m in rows)
