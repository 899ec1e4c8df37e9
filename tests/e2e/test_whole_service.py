"""The whole service as deployed: serve, scheduler and fake-twilio, three real processes.

A practice schedules a questionnaire through the API;
the scheduler sends it through (fake) Twilio; Twilio's signed status
callbacks mark it delivered; the patient answers through the signed webhook;
a risky answer becomes an urgent alert that the scheduler texts to the duty
clinician, without patient details; a rate-limited Twilio is retried and the
message still goes exactly once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from tests.dbs import postgres_admin_url
from tests.e2e.conftest import (
    OURS,
    _fresh_postgres,
    answers_ok,
    free_port,
    http,
    prombot_command,
    sms_params,
)

ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "whole-service-auth-token"
WAIT = 90  # seconds: bounds on waiting, never expectations of speed
DUTY_CLINICIAN_MOBILE = "+447700900050"


@dataclass
class Service:
    env: dict[str, str]
    folder: Path
    serve_url: str
    twilio_url: str
    demo: dict[str, Any]
    processes: list[subprocess.Popen[bytes]]

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.demo['api_token']}"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        response = http(method, self.serve_url + "/api/v1" + path, data=data, headers=headers)
        assert response.status in (200, 201), response.body
        return response.json()

    def text(self, body: str, from_: str) -> list[str]:
        params = sms_params(body, from_=from_, to=self.demo["sms_number"])
        url = self.serve_url + "/sms/inbound"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        response = http(
            "POST",
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
        return response.messages()

    def twilio_messages(self, to: str) -> list[dict[str, Any]]:
        messages = http("GET", self.twilio_url + "/_fake/messages").json()
        if isinstance(messages, dict):
            messages = messages.get("messages", [])
        return [m for m in messages if m["to"] == to]

    def twilio_behaviour(self, behaviour: dict[str, Any]) -> None:
        response = http(
            "POST",
            self.twilio_url + "/_fake/behaviour",
            data=json.dumps(behaviour).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 200, response.body

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("*.log")))


def wait_for(what: str, check: Callable[[], Any], service: Service) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        for process in service.processes:
            assert process.poll() is None, f"a process died:\n{service.logs()[-5000:]}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{service.logs()[-5000:]}")


def start(command: list[str], env: dict[str, str], folder: Path, name: str) -> subprocess.Popen:
    with (folder / f"{name}.log").open("ab") as log:
        return subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=log)


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prombot.db'}"
    else:
        admin = postgres_admin_url()
        if admin is None:
            pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
        database, url = _fresh_postgres(admin)
        request.addfinalizer(database.drop)
    serve_port, twilio_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(
        DATABASE_URL=url,
        PROMBOT_INSTANCE=str(tmp_path / "instance"),
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=f"http://127.0.0.1:{twilio_port}",
        SMS_GATEWAY="twilio",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{serve_port}",
        PROMBOT_LOG_FORMAT="json",
        PROMBOT_JOB_INTERVALS=(
            "dispatch=1,outbox=1,reminders=5,expiries=5,alert_notifications=1,alert_escalations=5"
        ),
        # Twilio's 429s are retried after 1-2 s rather than production's 30 s and more:
        # the same path through the backoff, without a minute's wait in the test.
        SMS_RETRY_BASE_SECONDS="1",
        SMS_RETRY_MAX_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    prombot = prombot_command()
    for args in (["db", "upgrade"], ["demo", "--json"]):
        done = subprocess.run(
            [*prombot, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    demo = json.loads(done.stdout.strip().splitlines()[-1])
    processes = [
        start([*prombot, "fake-twilio", "--port", str(twilio_port)], env, tmp_path, "twilio"),
        start([*prombot, "serve", "--port", str(serve_port)], env, tmp_path, "serve"),
    ]
    the_service = Service(
        env=env,
        folder=tmp_path,
        serve_url=f"http://127.0.0.1:{serve_port}",
        twilio_url=f"http://127.0.0.1:{twilio_port}",
        demo=demo,
        processes=processes,
    )
    try:
        wait_for("the web app", lambda: answers_ok(the_service.serve_url + "/healthz"), the_service)
        wait_for(
            "fake-twilio",
            lambda: answers_ok(the_service.twilio_url + "/_fake/behaviour"),
            the_service,
        )
        processes.append(start([*prombot, "scheduler"], env, tmp_path, "scheduler"))
        yield the_service
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


def enrol(service: Service, name: str, phone: str) -> str:
    patient = service.api("POST", "/patients", {"name": name, "phone": phone})
    service.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient["id"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": "phq9", "after": "P0D"}],
        },
    )
    return patient["id"]


def test_a_questionnaire_goes_out_through_twilio_and_a_risky_answer_reaches_the_clinician(
    service: Service,
) -> None:
    phone = "+447700900301"
    patient_id = enrol(service, "Morgan Inventedname", phone)

    sent = wait_for(
        "the opening texts",
        lambda: len(service.twilio_messages(phone)) >= 2 and service.twilio_messages(phone),
        service,
    )
    assert sent[0]["body"].startswith("Hello from Demo Surgery")
    assert "Q1/9" in sent[1]["body"]
    # Each text's callback URL names it (issue 11): reports find it before its SID is stored.
    callbacks = [m["status_callback"] for m in sent]
    assert all(
        re.fullmatch(re.escape(service.serve_url) + r"/sms/status\?message_id=[0-9a-f]{32}", c)
        for c in callbacks
    ), callbacks
    assert len(set(callbacks)) == len(callbacks)

    def delivered() -> bool:
        log = service.api("GET", f"/messages?patient_id={patient_id}")
        return len(log) >= 2 and all(m["status"] == "delivered" for m in log)

    wait_for("the signed status callbacks to mark the texts delivered", delivered, service)

    for answer in ["1", "2", "Several days", "0", "1", "0", "0", "1"]:
        assert service.text(answer, phone)
    replies = service.text("1", phone)  # item 9 above 0
    assert any("Samaritans 116 123" in r for r in replies)
    service.text("somewhat difficult", phone)

    [result] = service.api("GET", f"/patients/{patient_id}/results")
    assert (result["status"], result["total"], result["band"]) == ("completed", 7, "mild")
    assert "self_harm_risk" in result["flags"]
    [alert] = service.api("GET", "/alerts?status=open")
    assert (alert["flag"], alert["severity"]) == ("self_harm_risk", "urgent")

    notices = wait_for(
        "the duty clinician's text", lambda: service.twilio_messages(DUTY_CLINICIAN_MOBILE), service
    )
    notice = notices[0]["body"]
    assert f"/staff/alerts/{alert['id']}" in notice
    for personal in ("Morgan", "Inventedname", phone, phone[3:], "self", "harm", "PHQ"):
        assert personal not in notice

    # each text went to Twilio exactly once
    bodies = [m["body"] for m in service.twilio_messages(phone)]
    assert len(bodies) == len(set(bodies)) == 2


def test_a_rate_limited_twilio_is_retried_and_the_text_goes_once(service: Service) -> None:
    service.twilio_behaviour({"fail": [{"status": 429, "count": 2, "on": "create"}]})
    phone = "+447700900302"
    enrol(service, "Jess Notarealperson", phone)
    sent = wait_for(
        "the opening texts after the 429s",
        lambda: len(service.twilio_messages(phone)) >= 2 and service.twilio_messages(phone),
        service,
    )
    time.sleep(2)  # let any wrongful resend show itself
    assert len(service.twilio_messages(phone)) == 2
    assert sent[0]["body"].startswith("Hello from Demo Surgery")
