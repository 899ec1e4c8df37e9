"""Texts from one patient arriving at the same moment, on SQLite and PostgreSQL.

Threads released together by a barrier call ``handle_inbound`` (the webhook's
service function) at once. Whatever order the database lets them through in,
each text must be stored once and applied once, as if they had come one after
the other: no exception, no lost answer, no answer recorded twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.demo import DEMO_SMS_NUMBER, Demo
from bot.services.inbound import InboundOutcome, InboundSms, handle_inbound
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Answer, Conversation, Message
from tests.service.conftest import Clock
from tests.service.test_webhook import (
    PHQ9_ITEMS,
    Questionnaire,
    new_sid,
    start_questionnaire,
    table_counts,
)

THREADS = 5
WAIT = 60  # seconds: a bound on waiting, never an expectation of speed

T = TypeVar("T")


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(calls), timeout=WAIT)

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=WAIT) for future in futures]


def inbound(phone: str, body: str, sid: str | None = None) -> InboundSms:
    return InboundSms(sid=sid or new_sid(), from_=phone, to=DEMO_SMS_NUMBER, body=body)


@pytest.fixture
def phq9(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo) -> Questionnaire:
    return start_questionnaire(client, runtime, clock, demo)


def test_texts_from_one_patient_at_once_are_each_applied_once_in_some_order(
    phq9: Questionnaire, runtime: Runtime, clock: Clock
) -> None:
    version = phq9.conversation().version
    counts = table_counts(runtime)
    texts = [inbound(phq9.phone, body) for body in ["0", "1", "2", "3", "1"]]

    outcomes = all_at_once(
        [lambda sms=sms: handle_inbound(runtime, sms, clock.now) for sms in texts]
    )

    # Every text stored exactly once, each answered by one question.
    assert all(not o.replayed and len(o.replies) == 1 for o in outcomes)
    with transaction(runtime.engine, read_only=True) as session:
        for sms in texts:
            (stored,) = session.exec(select(Message).where(Message.provider_sid == sms.sid)).all()
            assert stored.body == sms.body and stored.direction == "inbound"
    after = table_counts(runtime)
    assert after["message"] == counts["message"] + 2 * THREADS  # each text and its reply

    # One save per text: the version went up by exactly the number of texts.
    conversation = phq9.conversation()
    assert conversation.version == version + THREADS

    # Applied in some serial order: the replies asked Q2..Q6, one each, and the
    # answers are the first five items, each from exactly one of the texts.
    asked = sorted(o.replies[0].split(":")[0].split("\n")[-1] for o in outcomes)
    assert asked == [f"Q{n}/9" for n in range(2, 7)]
    answers = phq9.answers()
    assert len(answers) == THREADS and not any(a.superseded for a in answers)
    assert sorted(a.item for a in answers) == sorted(PHQ9_ITEMS[:THREADS])
    by_message = {m.id: m for m in _inbound_messages(runtime, [s.sid for s in texts])}
    assert sorted(a.message_id or "" for a in answers) == sorted(by_message)
    for answer in answers:
        source = by_message[answer.message_id or ""]
        assert answer.raw_text == source.body
        assert answer.value == int(source.body)

    # The stored state agrees with the answers table, and asks the sixth item next.
    state = json.loads(conversation.state_json)
    assert state["answers"] == {a.item: a.value for a in answers}
    assert state["current_item"] == PHQ9_ITEMS[THREADS]

    # And each reply asked the item that followed the one its text answered.
    message_id = {m.provider_sid: m.id for m in by_message.values()}
    for sms, outcome in zip(texts, outcomes, strict=True):
        (answer,) = [a for a in answers if a.message_id == message_id[sms.sid]]
        following = PHQ9_ITEMS.index(answer.item) + 2
        assert f"Q{following}/9" in outcome.replies[0]


def _inbound_messages(rt: Runtime, sids: list[str]) -> list[Message]:
    with transaction(rt.engine, read_only=True) as session:
        return list(session.exec(select(Message).where(col(Message.provider_sid).in_(sids))).all())


def test_the_same_message_sid_at_once_is_stored_once_and_everyone_gets_the_same_reply(
    phq9: Questionnaire, runtime: Runtime, clock: Clock
) -> None:
    version = phq9.conversation().version
    counts = table_counts(runtime)
    sms = inbound(phq9.phone, "2")

    outcomes: list[InboundOutcome] = all_at_once(
        [lambda: handle_inbound(runtime, sms, clock.now) for _ in range(THREADS)]
    )

    assert sum(not o.replayed for o in outcomes) == 1
    assert all(o.replies == outcomes[0].replies for o in outcomes)
    assert "Q2/9" in outcomes[0].replies[0]
    after = table_counts(runtime)
    assert after["message"] == counts["message"] + 2
    assert after["answer"] == counts["answer"] + 1
    assert phq9.conversation().version == version + 1
    assert [(a.item, a.value) for a in phq9.answers()] == [("interest", 2)]


def test_a_stop_racing_answers_leaves_a_consistent_opt_out(
    phq9: Questionnaire, runtime: Runtime, clock: Clock
) -> None:
    """STOP and answers together: whatever the order, the answers before STOP are kept,
    none after it, and the patient ends up opted out with the questionnaire closed."""
    texts = [inbound(phq9.phone, body) for body in ["1", "2", "STOP", "3", "1"]]
    outcomes = all_at_once(
        [lambda sms=sms: handle_inbound(runtime, sms, clock.now) for sms in texts]
    )

    assert phq9.patient().opted_out
    conversation = phq9.conversation()
    assert not conversation.active and conversation.status == "opted_out"
    answered = [outcome for sms, outcome in zip(texts, outcomes, strict=True) if sms.body != "STOP"]
    # Texts let through after STOP were heard by nobody; those before were answered.
    silent = sum(1 for o in answered if o.replies == [])
    answers = phq9.answers()
    assert len(answers) == len(answered) - silent
    state = json.loads(conversation.state_json)
    assert state["answers"] == {a.item: a.value for a in answers}
    with transaction(runtime.engine, read_only=True) as session:
        stored = session.exec(
            select(Conversation).where(Conversation.patient_id == phq9.patient_id)
        ).all()
        live = session.exec(select(Answer).where(Answer.superseded == False)).all()  # noqa: E712
    assert len(stored) == 1
    assert len(live) == len(answers)


def test_texts_from_different_patients_at_once_do_not_block_each_other_for_ever(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    started = [
        start_questionnaire(client, runtime, clock, demo, patient=n)
        for n in range(len(demo.patients))
    ]
    texts = [inbound(q.phone, body) for q in started for body in ["1", "2"]]
    outcomes = all_at_once(
        [lambda sms=sms: handle_inbound(runtime, sms, clock.now) for sms in texts]
    )
    assert all(len(o.replies) == 1 for o in outcomes)
    for questionnaire in started:
        assert sorted(a.value for a in questionnaire.answers()) == [1, 2]
