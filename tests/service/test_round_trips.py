"""How many statements the hot paths send to the database, counted (never timed).

A count is deterministic, so it can be pinned: a change that adds a round trip
per answer, or makes the dispatcher's statements grow with the number of
invitations, fails here and has to say why. Counted with SQLAlchemy's
``before_cursor_execute`` event, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, event
from sqlmodel import select

from bot.services.demo import Demo
from bot.services.dispatch import dispatch_due
from bot.services.outbox import HAND_OVER_CHUNK, send_outbox
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Invitation, Message, Patient
from tests.service.conftest import Clock
from tests.service.test_webhook import Questionnaire, phq9, twiml  # noqa: F401

# SQLite's BEGIN IMMEDIATE goes straight to the driver (bot.store.db waits for the
# write lock itself), so it is not counted; PostgreSQL's BEGIN is implicit in the driver.
# Statements for one answer mid-questionnaire: the one read of practice + patient +
# conversation + invitation, the conversation's compare-and-set, superseding an earlier
# answer to the item (BACK), and one insert each for the texts (the inbound one and the
# replies together) and the answer.
STATEMENTS_PER_ANSWER = {"sqlite": 5, "postgresql": 5}
# Statements for one page of due invitations, whatever its size: claim the
# page, lock its patients, read its practices, ask which numbers are busy, then one
# insert each for conversations, texts and audit rows, and one update of invitations.
STATEMENTS_PER_DISPATCH_PAGE = {"sqlite": 8, "postgresql": 8}


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def _count(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", _count)


def test_an_answer_costs_a_fixed_small_number_of_statements(phq9: Questionnaire) -> None:  # noqa: F811
    engine = phq9.runtime.engine
    with counting(engine) as statements:
        replies = phq9.send("2")
    assert replies, "the answer was not taken"
    assert len(statements) == STATEMENTS_PER_ANSWER[engine.dialect.name], statements
    assert len(phq9.answers()) == 1


def test_a_replayed_answer_is_still_recognised_with_the_insert_at_commit(
    phq9: Questionnaire,  # noqa: F811
) -> None:
    params_sid = "SM" + "ab" * 16
    first = phq9.send("1", sid=params_sid)
    again = phq9.send("1", sid=params_sid)
    assert again == first
    assert len(phq9.answers()) == 1


def _due_invitations(rt: Runtime, clock: Clock, demo: Demo, numbers: range) -> None:
    with transaction(rt.engine) as session:
        patients = [
            Patient(
                practice_id=demo.practice.id,
                name=f"Round Trip {n}",
                phone=f"+447700900{n:03d}",
                created_at=clock.now,
            )
            for n in numbers
        ]
        session.add_all(patients)
        session.flush()
        session.add_all(
            Invitation(
                practice_id=demo.practice.id,
                patient_id=patient.id,
                instrument="phq9",
                due_at=clock.now - timedelta(minutes=1),
                created_at=clock.now,
            )
            for patient in patients
        )


def test_a_page_of_due_invitations_costs_the_same_statements_for_3_or_30(
    runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    _due_invitations(runtime, clock, demo, range(500, 503))
    with counting(runtime.engine) as few:
        assert dispatch_due(runtime, clock.now, send=False)["started"] == 3
    _due_invitations(runtime, clock, demo, range(600, 630))
    with counting(runtime.engine) as many:
        assert dispatch_due(runtime, clock.now, send=False)["started"] == 30
    assert len(few) == len(many) == STATEMENTS_PER_DISPATCH_PAGE[runtime.engine.dialect.name], (
        few,
        many,
    )
    with transaction(runtime.engine, read_only=True) as session:
        queued = session.exec(select(Message).where(Message.status == "queued")).all()
    assert len({m.patient_id for m in queued}) == 33


def test_sending_the_outbox_costs_statements_per_chunk_not_per_text(
    runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    """Unpaced, each chunk of HAND_OVER_CHUNK texts is one transaction: the previous
    chunk's SIDs recorded (a read and one batched update) and this chunk handed over
    (one update), whatever the chunk's size; failures alone are written text by text."""
    _due_invitations(runtime, clock, demo, range(700, 730))  # 60 texts: 3 chunks
    dispatch_due(runtime, clock.now, send=False)
    with counting(runtime.engine) as statements:
        counts = send_outbox(runtime, clock.now)
    assert counts["sent"] == 60
    chunks = math.ceil(60 / HAND_OVER_CHUNK)
    # Settle what is in doubt (a read), claim the batch (a read, its practices, an update),
    # then per chunk: hand over, and record the SIDs of the one before (the last at the end).
    expected = 1 + 3 + chunks * 1 + chunks * 2
    assert len(statements) == expected, statements
    assert len(statements) < 60  # it used to be six or more a text
