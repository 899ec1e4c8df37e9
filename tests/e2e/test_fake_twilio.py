"""Delivery through Twilio's API, end to end: real ``prombot`` processes and real sockets.

``prombot fake-twilio`` runs as a process of its own; ``prombot serve`` runs
with ``SMS_GATEWAY=twilio`` pointed at it (TWILIO_API_URL), and ``prombot
tick`` sends the outbox through it, as the scheduler would. fake-twilio's
signed status callbacks reach the real server and move each text to
``delivered`` (or ``undelivered`` with the carrier's code); each failure it
can be told to give is retried or surfaced in the API's message log as
specified, and no text ever reaches it twice.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text

from tests.dbs import PostgresDatabase, postgres_admin_url
from tests.e2e.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OURS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Server,
    _fresh_postgres,
    free_port,
    http,
    new_patient,
    prombot_command,
)

WAIT = 60  # seconds: a bound on waiting for callbacks, never an expectation of speed
# seconds: TWILIO_TIMEOUT_SECONDS; a normal answer on a busy machine can take 1 s
GATEWAY_TIMEOUT = "3"
T = TypeVar("T")


class FakeTwilioProcess:
    """A running ``prombot fake-twilio`` and its control API."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in OURS}
        env.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
        for attempt in range(3):  # another process may take the free port first
            self.port = free_port()
            with (self.folder / "fake-twilio.log").open("ab") as log:
                self.process = subprocess.Popen(
                    [*prombot_command(), "fake-twilio", "--port", str(self.port)],
                    env=env,
                    cwd=self.folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._answers():
                return
            self.stop()
            if attempt == 2:
                log_text = (self.folder / "fake-twilio.log").read_text(errors="replace")
                raise RuntimeError(f"prombot fake-twilio did not start:\n{log_text}")

    def _answers(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                if http("GET", self.url + "/").status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        response = http(
            method,
            self.url + "/_fake" + path,
            data=data,
            headers={"Content-Type": "application/json"} if data else None,
        )
        assert response.status == 200, response.body
        return response.json()

    def behave(self, **behaviour: Any) -> None:
        self.control("POST", "/behaviour", behaviour)

    def messages_to(self, phone: str) -> list[dict[str, Any]]:
        return [m for m in self.control("GET", "/messages")["messages"] if m["to"] == phone]

    def creates(self) -> list[int]:
        return [
            r["status"]
            for r in self.control("GET", "/requests")["requests"]
            if r["kind"] == "create"
        ]


@pytest.fixture(scope="module")
def fake_twilio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeTwilioProcess]:
    fake = FakeTwilioProcess(tmp_path_factory.mktemp("fake-twilio"))
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_twilio: FakeTwilioProcess,
) -> Iterator[Server]:
    """``prombot serve`` (and ``prombot tick``) sending through fake-twilio, open all week."""
    folder = tmp_path_factory.mktemp(f"twilio-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'prombot.db'}"
    else:
        admin_url = postgres_admin_url()
        if admin_url is None:
            pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
        database: PostgresDatabase
        database, url = _fresh_postgres(admin_url)
        request.addfinalizer(database.drop)
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(
        DATABASE_URL=url,
        PROMBOT_INSTANCE=str(folder / "instance"),
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=fake_twilio.url,
        TWILIO_TIMEOUT_SECONDS=GATEWAY_TIMEOUT,
        SMS_GATEWAY="twilio",
        PROMBOT_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    instance = Server(backend=request.param, port=0, env=env, folder=folder, demo={})
    instance.prombot("db", "upgrade")
    instance.demo = json.loads(instance.prombot("demo", "--json").stdout.strip().splitlines()[-1])
    _open_all_week(url)
    request.addfinalizer(instance.stop)
    for attempt in range(3):
        instance.port = free_port()
        instance.env["PUBLIC_BASE_URL"] = instance.base_url
        try:
            instance.start()
            break
        except RuntimeError:
            instance.stop()
            if attempt == 2:
                raise
    yield instance
    instance.stop()


def _open_all_week(url: str) -> None:
    """The demo practice sends at any hour on any day, so the test runs whenever it is run."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE practice SET send_window_start = '00:00', send_window_end = '24:00',"
                " working_days = 'mon tue wed thu fri sat sun', nation = 'NONE'"
            )
        )
    engine.dispose()


@pytest.fixture(autouse=True)
def fresh_fake(request: pytest.FixtureRequest, fake_twilio: FakeTwilioProcess) -> FakeTwilioProcess:
    """Each test starts with a fake that remembers nothing and fails nowhere, and a
    server with nothing left to send: texts an earlier test left queued, retrying or
    in doubt (the tests run in any order) are settled first, hours later, so each
    test's counts are its own."""
    fake_twilio.control("POST", "/reset")
    if "server" in request.fixturenames:
        fake_twilio.behave(callback_delay=0)
        tick_at(request.getfixturevalue("server"), timedelta(hours=6))
        fake_twilio.control("POST", "/reset")
    # No delay at all: reports usually arrive before prombot has recorded the SID, and
    # are matched by the text's id in their URL.
    fake_twilio.behave(callback_delay=0)
    return fake_twilio


def wait_for(read: Callable[[], T], done: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + WAIT
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def schedule_now(server: Server, patient_id: str, instrument: str = "phq9") -> dict[str, Any]:
    response = server.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": instrument, "after": "P0D"}],
        },
    )
    assert response.status == 201, response.body
    return response.json()


def outbound_log(server: Server, patient_id: str) -> list[dict[str, Any]]:
    response = server.api("GET", f"/messages?patient_id={patient_id}")
    assert response.status == 200, response.body
    return [m for m in response.json() if m["direction"] == "outbound"]


def tick_at(server: Server, later: timedelta) -> dict[str, Any]:
    at = (datetime.now(UTC) + later).isoformat()
    return json.loads(server.prombot("tick", "--at", at).stdout.strip().splitlines()[-1])


def test_texts_go_out_through_fake_twilio_and_signed_callbacks_mark_them_delivered(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    patient = new_patient(server)
    schedule_now(server, patient["id"])
    summary = server.tick()
    assert summary["dispatch"]["started"] == 1, summary
    sent = summary["outbox"]["sent"]
    assert sent >= 1 and summary["outbox"]["failed"] == 0, summary

    log = wait_for(
        lambda: outbound_log(server, patient["id"]),
        lambda log: all(m["status"] == "delivered" for m in log),
    )
    assert [m["status"] for m in log] == ["delivered"] * sent
    at_twilio = fake_twilio.messages_to(patient["phone"])
    assert [m["body"] for m in at_twilio] == [m["body"] for m in log]  # once each, in order
    ids = [m["id"] for m in _outbound_rows(server, patient["phone"])]
    for message, message_id in zip(at_twilio, ids, strict=True):
        assert message["from"] == server.demo["sms_number"]
        # Changed by design: each text's callback URL names it (Twilio signs the whole URL).
        assert message["status_callback"] == (
            server.base_url + "/sms/status?message_id=" + message_id
        )
        assert message["validity_period"] == 4 * 60 * 60
        callbacks = wait_for(lambda m=message: _callbacks(fake_twilio, m), lambda c: len(c) == 3)
        assert [c["status"] for c in callbacks] == ["queued", "sent", "delivered"]
        assert all(c.get("http_status") == 204 for c in callbacks), callbacks  # signature valid


def _outbound_rows(server: Server, phone: str) -> list[dict[str, Any]]:
    """The texts to ``phone`` in the order they were written, with our ids."""
    engine = create_engine(server.env["DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, provider_sid FROM message"
                " WHERE direction = 'outbound' AND phone = :phone ORDER BY created_at, position"
            ),
            {"phone": phone},
        ).all()
    engine.dispose()
    return [{"id": r.id, "provider_sid": r.provider_sid} for r in rows]


def _callbacks(fake: FakeTwilioProcess, message: dict[str, Any]) -> list[dict[str, Any]]:
    return next(m for m in fake.messages_to(message["to"]) if m["sid"] == message["sid"])[
        "callbacks"
    ]


def test_an_undelivered_text_shows_the_carriers_error_code(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    patient = new_patient(server)
    fake_twilio.behave(numbers={patient["phone"]: {"status": "undelivered", "error_code": 30003}})
    schedule_now(server, patient["id"], "phq2")
    assert server.tick()["outbox"]["sent"] >= 1
    log = wait_for(
        lambda: outbound_log(server, patient["id"]),
        lambda log: all(m["status"] == "undelivered" for m in log),
    )
    assert {(m["status"], m["error_code"]) for m in log} == {("undelivered", 30003)}


def test_not_a_valid_mobile_is_failed_at_once_with_21211_in_the_message_log(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    patient = new_patient(server)
    fake_twilio.behave(numbers={patient["phone"]: {"create_error": 21211}})
    schedule_now(server, patient["id"], "phq2")
    outbox = server.tick()["outbox"]
    assert outbox["sent"] == 0 and outbox["failed"] == 1, outbox
    first = outbound_log(server, patient["id"])[0]
    assert (first["status"], first["error_code"]) == ("failed", 21211)
    assert fake_twilio.messages_to(patient["phone"]) == []


def test_21610_at_send_time_opts_the_patient_out(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    patient = new_patient(server)
    fake_twilio.behave(numbers={patient["phone"]: {"create_error": 21610}})
    response = server.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient["id"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [
                {"instrument": "phq2", "after": "P0D"},
                {"instrument": "gad2", "after": "P14D"},
            ],
        },
    )
    assert response.status == 201, response.body
    assert server.tick()["outbox"]["failed"] == 1
    assert server.api("GET", f"/patients/{patient['id']}").json()["opted_out"] is True
    invitations = server.api("GET", f"/patients/{patient['id']}/invitations").json()
    assert sorted(i["status"] for i in invitations) == ["cancelled", "opted_out"]
    log = outbound_log(server, patient["id"])
    assert (log[0]["status"], log[0]["error_code"]) == ("failed", 21610)
    assert all(m["status"] == "canceled" for m in log[1:])


def test_429_then_success_sends_each_text_once(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    patient = new_patient(server)
    fake_twilio.behave(fail=[{"status": 429, "count": 1, "on": "create", "retry_after": 1}])
    schedule_now(server, patient["id"], "phq2")
    first = server.tick()["outbox"]
    assert first["retrying"] == 1 and first["sent"] == 0, first
    assert fake_twilio.messages_to(patient["phone"]) == []

    second = tick_at(server, timedelta(minutes=10))["outbox"]
    assert second["sent"] >= 1, second
    log = outbound_log(server, patient["id"])
    at_twilio = fake_twilio.messages_to(patient["phone"])
    assert [m["body"] for m in at_twilio] == [m["body"] for m in log]
    assert fake_twilio.creates() == [429] + [201] * len(log)


def test_server_errors_and_slow_answers_are_looked_up_before_any_resend(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    """A 500, then an answer slower than the gateway's timeout (Twilio kept that text)."""
    patient = new_patient(server)
    fake_twilio.behave(
        fail=[{"status": 500, "count": 1, "on": "create"}],
        slow=[{"seconds": 8, "count": 2, "on": "create", "when": "after"}],
        callback_delay=60,  # the reports come too late to help: lookups must settle the texts
    )
    schedule_now(server, patient["id"], "phq2")
    first = server.tick()["outbox"]
    assert first.get("in_doubt") == 1 and first["sent"] == 0, first

    # The 500's text is looked up (not there), requeued and sent, slowly: in doubt again.
    second = tick_at(server, timedelta(minutes=10))["outbox"]
    assert second.get("requeued") == 1 and second.get("in_doubt") == 1, second
    # This time Twilio has it: recorded, not resent; then the next text goes.
    third = tick_at(server, timedelta(minutes=30))["outbox"]
    assert third.get("recovered") == 1, third
    for minutes in (60, 120, 240):  # bounded: settle whatever is still in doubt
        tick_at(server, timedelta(minutes=minutes))

    log = outbound_log(server, patient["id"])
    assert all(m["status"] not in ("sending", "failed") for m in log), log
    at_twilio = fake_twilio.messages_to(patient["phone"])
    assert sorted(m["body"] for m in at_twilio) == sorted(m["body"] for m in log)  # once each
    recorded = {r["provider_sid"] for r in _outbound_rows(server, patient["phone"])}
    assert recorded == {m["sid"] for m in at_twilio}  # every text settled with its own SID


def test_fake_twilio_wants_the_accounts_credentials(fake_twilio: FakeTwilioProcess) -> None:
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    anonymous = http("GET", fake_twilio.url + path)
    assert anonymous.status == 401
    assert anonymous.json()["code"] == 20003 and anonymous.json()["status"] == 401
    wrong = base64.b64encode(f"{ACCOUNT_SID}:not-the-token".encode()).decode()
    assert (
        http("GET", fake_twilio.url + path, headers={"Authorization": f"Basic {wrong}"}).status
        == 401
    )
    right = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    listed = http("GET", fake_twilio.url + path, headers={"Authorization": f"Basic {right}"})
    assert listed.status == 200 and listed.json()["messages"] == []


def test_a_slow_answer_whose_reports_arrive_first_is_settled_by_them_not_looked_up(
    server: Server, fake_twilio: FakeTwilioProcess
) -> None:
    """Twilio took the text and reported on it while prombot still waited for the answer:
    the report names the text, so its SID is recorded and nothing is looked up or resent."""
    patient = new_patient(server)
    fake_twilio.behave(slow=[{"seconds": 8, "count": 1, "on": "create", "when": "after"}])
    schedule_now(server, patient["id"], "phq2")
    outbox = server.tick()["outbox"]
    assert outbox.get("settled_elsewhere") == 1, (
        outbox
    )  # its answer timed out after the reports came
    for minutes in (10, 30):
        tick_at(server, timedelta(minutes=minutes))
    log = wait_for(
        lambda: outbound_log(server, patient["id"]),
        lambda log: all(m["status"] == "delivered" for m in log),
    )
    assert [m["status"] for m in log] == ["delivered"] * len(log)
    bodies = [m["body"] for m in fake_twilio.messages_to(patient["phone"])]
    assert sorted(bodies) == sorted(m["body"] for m in log)  # each exactly once
    assert [
        r for r in fake_twilio.control("GET", "/requests")["requests"] if r["kind"] == "list"
    ] == []
