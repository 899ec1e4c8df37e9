"""Several scheduler processes at once, and a scheduler killed mid-dispatch.

Real ``prombot tick`` and ``prombot scheduler`` processes against one
database. The invariant in every case: each invitation is started exactly
once, each opening text is sent exactly once, and nothing is left in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from bot.app import create_app
from bot.services.enrolment import create_consultation, create_patient, create_practice
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.store.models import Conversation, Invitation, Message, Practice
from tests.dbs import PostgresDatabase, postgres_admin_url
from tests.e2e.conftest import OURS, prombot_command

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WAIT = 240  # seconds: a bound on waiting, not an expectation of speed


def drama_number(n: int) -> str:
    return f"+447700900{n:03d}"


def seed(
    url: str,
    patients: int,
    invitations_each: int,
    at: datetime = T0,
    *,
    sms_number: str = "+441632960000",
) -> None:
    """A practice open around the clock, and its patients with invitations due ``at``."""
    engine = make_engine(url)
    upgrade(engine)
    app = create_app({"DATABASE_URL": url, "PROMBOT_SKIP_LOGGING_SETUP": True, "SECRET_KEY": "x"})
    catalogue = app.extensions["prombot.runtime"].catalogue
    with Session(engine, expire_on_commit=False) as session:
        practice = create_practice(
            session, name="Night and Day Practice", sms_number=sms_number, now=at
        )
        practice.send_window_start, practice.send_window_end = "00:00", "24:00"
        practice.working_days = "mon tue wed thu fri sat sun"
        practice.nation = "NONE"
        for n in range(patients):
            patient = create_patient(
                session,
                practice,
                name=f"Invented Person {n}",
                phone=drama_number(n),
                now=at,
                actor="test",
            )
            create_consultation(
                session,
                practice,
                catalogue,
                patient_id=patient.id,
                occurred_at=at,
                schedule=[{"instrument": "phq2", "after": "P0D"}] * invitations_each,
                now=at,
                actor="test",
            )
        session.commit()
    engine.dispose()
    app.extensions["prombot.runtime"].engine.dispose()


def environment(url: str, folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(
        DATABASE_URL=url,
        PROMBOT_INSTANCE=str(folder / "instance"),
        SMS_GATEWAY="local",
        PROMBOT_LOG_FORMAT="json",
        **extra,
    )
    return env


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with Session(engine) as session:
        result = {
            "invitations": session.exec(select(func.count()).select_from(Invitation)).one(),
            "started": session.exec(
                select(func.count()).where(Invitation.status != "pending")
            ).one(),
            "conversations": session.exec(select(func.count()).select_from(Conversation)).one(),
            "conversation_invitations": session.exec(
                select(func.count(func.distinct(Conversation.invitation_id)))
            ).one(),
            "outbound": session.exec(
                select(func.count()).where(Message.direction == "outbound")
            ).one(),
            "delivered": session.exec(
                select(func.count())
                .where(Message.direction == "outbound")
                .where(Message.status == "delivered")
            ).one(),
            "practices": session.exec(select(func.count()).select_from(Practice)).one(),
        }
    engine.dispose()
    return result


def run_together(commands: list[list[str]], env: dict[str, str], cwd: Path) -> list[dict]:
    """Run the commands at once; their output goes to files, never to pipes.

    A pipe that fills while the test waits for another process would stop its
    writer in the middle of a transaction, and the other could wait on it.
    """
    outputs = [(cwd / f"run-{n}.out", cwd / f"run-{n}.err") for n in range(len(commands))]
    processes = []
    for command, (out_path, err_path) in zip(commands, outputs, strict=True):
        with out_path.open("wb") as out, err_path.open("wb") as err:
            processes.append(subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err))
    summaries = []
    for process, (out_path, err_path) in zip(processes, outputs, strict=True):
        process.wait(timeout=WAIT)
        assert process.returncode == 0, err_path.read_text(errors="replace")[-5000:]
        summaries.append(json.loads(out_path.read_text().strip().splitlines()[-1]))
    return summaries


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    database = PostgresDatabase(admin)
    yield database.url
    database.drop()


def test_two_tick_processes_on_postgresql_start_each_of_2000_invitations_once(
    postgresql_url: str, tmp_path: Path
) -> None:
    # Ofcom has 1,000 drama mobile numbers: 1,000 patients with two invitations each.
    # One conversation per number, so each round can start only one per patient.
    seed(postgresql_url, patients=1000, invitations_each=2)
    env = environment(postgresql_url, tmp_path)
    tick = [*prombot_command(), "tick", "--at"]

    first = run_together([[*tick, T0.isoformat()]] * 2, env, tmp_path)
    assert sum(s["dispatch"]["started"] for s in first) == 1000
    after_first = counts(postgresql_url)
    assert after_first["conversations"] == after_first["conversation_invitations"] == 1000

    # A week on, the first questionnaires expire and the second ones start. Run truly side
    # by side, one tick may find a patient's old conversation still open (the other is
    # expiring it) while the other skips that invitation (locked by the first): it waits
    # for the next run, as it would in the scheduler. So a third tick follows, and the
    # invariant is checked over all three: each started exactly once.
    later = (T0 + timedelta(days=8)).isoformat()
    second = run_together([[*tick, later]] * 2, env, tmp_path)
    second += run_together([[*tick, later]], env, tmp_path)
    assert sum(s["expiry"]["expired_conversations"] for s in second) == 1000
    assert sum(s["dispatch"]["started"] for s in second) == 1000

    final = counts(postgresql_url)
    assert final["invitations"] == final["started"] == 2000
    assert final["conversations"] == final["conversation_invitations"] == 2000
    # an intro and a first question for each, each sent once
    assert final["outbound"] == final["delivered"] == 4000


KILL_ATTEMPTS = 3  # scenarios on fresh databases until a kill lands mid-dispatch


@contextmanager
def scenario_database(backend: str, folder: Path) -> Iterator[str]:
    """An empty database of its own for one attempt at the scenario."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'prombot.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    database = PostgresDatabase(admin)
    try:
        yield database.url
    finally:
        database.drop()


def delivered_so_far(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM message WHERE direction = 'outbound' AND status = 'delivered'"
            )
        ).scalar_one()


def kill_once_some_are_delivered(
    command: list[str], env: dict[str, str], folder: Path, url: str, log: IO[bytes]
) -> dict[str, int]:
    """Start a scheduler, SIGKILL it as soon as a first text is delivered; the counts then."""
    poll = make_engine(url)  # one connection polled, so the kill follows the first delivery
    first = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and delivered_so_far(poll) == 0:
            assert first.poll() is None, "the first scheduler stopped on its own"
            time.sleep(0.01)
    finally:
        first.send_signal(signal.SIGKILL)  # no chance to tidy up
        first.wait(timeout=30)
        poll.dispose()
    return counts(url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_scheduler_killed_mid_dispatch_and_restarted_sends_everything_once(
    backend: str, tmp_path: Path
) -> None:
    # The local gateway is unpaced: on a loaded machine the first scheduler can send all
    # 600 texts between two polls. Such an attempt tests nothing, so the scenario is run
    # again on a fresh database (at most KILL_ATTEMPTS times) until the kill lands while
    # some texts are delivered and others are not; only that attempt is checked.
    patients = 300
    scheduler = [*prombot_command(), "scheduler"]
    log_path = tmp_path / "scheduler.log"
    too_late: list[dict[str, int]] = []
    with ExitStack() as stack, log_path.open("ab") as log:
        for attempt in range(KILL_ATTEMPTS):
            folder = tmp_path / f"attempt-{attempt}"
            folder.mkdir()
            url = stack.enter_context(scenario_database(backend, folder))
            seed(url, patients=patients, invitations_each=1, at=datetime.now(UTC))  # real clock
            env = environment(
                url,
                folder,
                PROMBOT_JOB_INTERVALS="dispatch=1,outbox=1,expiries=3600,reminders=3600",
                SMS_SEND_LEASE_SECONDS="5",  # what a killed sender held is settled after 5 s
            )
            killed_at = kill_once_some_are_delivered(scheduler, env, folder, url, log)
            assert killed_at["delivered"] > 0, log_path.read_text(errors="replace")[-5000:]
            if killed_at["delivered"] < 2 * patients:
                break
            too_late.append(killed_at)
        assert len(too_late) < KILL_ATTEMPTS, (
            f"every kill came too late to test anything: {too_late}"
        )

        second = subprocess.Popen(scheduler, env=env, cwd=folder, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                now = counts(url)
                if now["delivered"] == 2 * patients and now["started"] == patients:
                    break
                assert second.poll() is None, log_path.read_text(errors="replace")[-5000:]
                time.sleep(0.2)
        finally:
            second.terminate()
            second.wait(timeout=30)

        final = counts(url)
    assert 0 < killed_at["delivered"] < 2 * patients
    assert final["started"] == final["invitations"] == patients
    assert final["conversations"] == final["conversation_invitations"] == patients
    assert final["outbound"] == final["delivered"] == 2 * patients
