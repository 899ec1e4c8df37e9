"""The production layout without Docker: docker-compose.yml's processes, started as it starts them.

On PostgreSQL: the ``migrate`` service's command once, then fake-twilio, the
``web`` service (gunicorn with bot/gunicorn_conf.py) and the ``scheduler``
service, each with the command docker-compose.yml gives it
(tests/e2e/processes.py reads them from the file; only the program's folder,
the address and the ports differ). The web service's own healthcheck command
decides when it is up. Then, over HTTP only: a questionnaire scheduled
through the API goes out through the scheduler to (fake) Twilio, the patient
answers through signed webhooks served by gunicorn, the result is read back;
gunicorn's access log names paths without query strings or phone numbers;
every process stops cleanly on SIGTERM, as ``docker compose stop`` sends.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from tests.dbs import postgres_admin_url
from tests.e2e import processes
from tests.e2e.conftest import OURS, _fresh_postgres, answers_ok, free_port, http, sms_params

pytestmark = pytest.mark.slow

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "production-layout-auth-token"
WAIT = 90  # seconds: bounds on waiting, never expectations of speed
PHONE = "+447700900311"
# the ways a log could spell that number
PHONE_FORMS = (PHONE, PHONE[1:], "07700900311", "7700900311", "%2B447700900311", "07700 900311")


@dataclass
class Layout:
    env: dict[str, str]
    folder: Path
    web_port: int
    twilio_port: int
    demo: dict[str, Any] = field(default_factory=dict)
    running: list[processes.Process] = field(default_factory=list)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def twilio_url(self) -> str:
        return f"http://127.0.0.1:{self.twilio_port}"

    @property
    def ports(self) -> dict[str, int]:
        return {
            processes.CONTAINER_WEB_PORT: self.web_port,
            processes.CONTAINER_TWILIO_PORT: self.twilio_port,
        }

    def one_shot(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            argv, env=self.env, cwd=self.folder, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{argv} failed:\n{done.stderr}"
        return done

    def start(self, service: str) -> processes.Process:
        argv = processes.local(processes.command(service), self.ports)
        process = processes.start(service, argv, self.env, self.folder)
        self.running.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.output()[-3000:]}" for p in self.running)

    def wait_for(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            for process in self.running:
                assert process.alive(), f"{process.name} died:\n{self.logs()}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}:\n{self.logs()}")

    def healthy(self) -> bool:
        """The compose file's own healthcheck command, run against this web process."""
        check = processes.local(processes.healthcheck("web"), self.ports)
        done = subprocess.run(check, env=self.env, capture_output=True, timeout=30, check=False)
        return done.returncode == 0

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.demo['api_token']}"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        response = http(method, self.web_url + "/api/v1" + path, data=data, headers=headers)
        assert response.status in (200, 201), response.body
        return response.json()

    def text(self, body: str, from_: str) -> list[str]:
        params = sms_params(body, from_=from_, to=self.demo["sms_number"])
        url = self.web_url + "/sms/inbound"
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
        assert response.headers.get("Server", "").startswith("gunicorn"), response.headers
        return response.messages()

    def twilio_messages(self, to: str) -> list[dict[str, Any]]:
        messages = http("GET", self.twilio_url + "/_fake/messages").json()["messages"]
        return [m for m in messages if m["to"] == to]


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    database, url = _fresh_postgres(admin)
    web_port, twilio_port = free_port(), free_port()
    compose_env = processes.service("web")["environment"]
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update({k: str(v) for k, v in compose_env.items()})
    env.update(
        # what differs from the containers: addresses, ports, credentials, folders
        DATABASE_URL=url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        TWILIO_API_URL=f"http://127.0.0.1:{twilio_port}",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PROMBOT_INSTANCE=str(tmp_path / "instance"),
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{web_port}",
        WEB_CONCURRENCY="2",  # a shared machine: two workers are enough to show the layout
        PROMBOT_JOB_INTERVALS=(
            "dispatch=1,outbox=1,reminders=5,expiries=5,alert_notifications=1,alert_escalations=5"
        ),
        PYTHONUNBUFFERED="1",
    )
    assert env["SMS_GATEWAY"] == "twilio"
    the_layout = Layout(env=env, folder=tmp_path, web_port=web_port, twilio_port=twilio_port)
    try:
        yield the_layout
    finally:
        for process in the_layout.running:
            process.stop()
        database.drop()


def test_the_compose_processes_run_a_questionnaire_end_to_end_under_gunicorn(
    layout: Layout,
) -> None:
    # migrate: once, before anything else starts
    layout.one_shot(processes.local(processes.command("migrate")))
    # the one-off seeding docker-compose.yml's header documents
    done = layout.one_shot(processes.local(["prombot", "demo", "--json"]))
    layout.demo = json.loads(done.stdout.strip().splitlines()[-1])

    layout.start("fake-twilio")
    web = layout.start("web")
    layout.wait_for("the web service's healthcheck", layout.healthy)
    health = http("GET", layout.web_url + "/healthz")
    assert health.status == 200
    assert health.json()["status"] == "ok"
    assert health.headers["Server"].startswith("gunicorn")
    layout.wait_for("fake-twilio", lambda: answers_ok(layout.twilio_url + "/_fake/messages"))
    scheduler = layout.start("scheduler")

    patient = layout.api("POST", "/patients", {"name": "Rowan Inventedname", "phone": PHONE})
    layout.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient["id"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": "phq9", "after": "P0D"}],
        },
    )
    sent = layout.wait_for(
        "the scheduler's opening texts at fake-twilio",
        lambda: len(layout.twilio_messages(PHONE)) >= 2 and layout.twilio_messages(PHONE),
    )
    assert "Q1/9" in sent[1]["body"]

    for answer in ["1", "2", "Several days", "0", "1", "0", "0", "1", "0"]:
        assert layout.text(answer, PHONE)
    assert layout.text("somewhat difficult", PHONE)

    [result] = layout.api("GET", f"/patients/{patient['id']}/results")
    assert (result["status"], result["total"], result["band"]) == ("completed", 6, "mild")

    # a request whose query string holds the number, as a staff search might
    searched = http("GET", layout.web_url + "/healthz?" + urllib.parse.urlencode({"q": PHONE}))
    assert searched.status == 200

    # docker compose stop: SIGTERM to each; each finishes cleanly
    assert scheduler.stop() == 0, scheduler.output()[-3000:]
    assert web.stop() == 0, web.output()[-3000:]

    access = [line for line in web.output().splitlines() if '"POST /sms/inbound"' in line]
    assert len(access) == 10, web.output()[-3000:]
    assert all('"POST /sms/inbound" 200 ' in line for line in access)
    assert any('"GET /healthz" 200 ' in line for line in web.output().splitlines())
    for name, log in (("web", web.output()), ("scheduler", scheduler.output())):
        for form in PHONE_FORMS:
            assert form not in log, f"{name}'s log holds the phone number as {form!r}"
        assert "?q=" not in log
