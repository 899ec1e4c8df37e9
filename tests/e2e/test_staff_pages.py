"""The staff pages in a real browser, against the real server, with a real e-mail.

``prombot db upgrade``, ``prombot demo`` and ``prombot practice create`` build
a database with two practices; ``prombot serve`` runs on a free port with
``SMTP_URL`` pointing at an aiosmtpd server of the test's own on 127.0.0.1.
A demo patient texts a risk phrase (through the simulator's endpoint, which
takes the webhook's path), ``prombot tick`` e-mails the duty clinician, and
Debian's Chromium, driven by Playwright, follows the e-mail's link: signs in
as the demo clinician, sees the alerts list, opens the alert, acknowledges it,
and sees it acknowledged, in the page and through the JSON API. A POST
without the CSRF token is refused, and another practice's alert is a 404.

Then an urgent alert that reaches nobody (the duty clinician can only be
e-mailed, and the mail server refuses them every time): the red banner on
every page, each notice's delivery state, the alert's history, and, once the
retries are used up, the fallback to the escalation contact and the
practice's contact e-mail, after which the banner goes.

Playwright drives /usr/bin/chromium (``scripts/ensure-chromium`` installs it);
Playwright's own browser download is never used. Without Chromium the test is
skipped, except in CI, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium_page, sync_api
from tests.service.alerting import Mailbox, free_port, smtp_server

START_TIMEOUT = 60
CLINICIAN = "dr.riley@demo.prombot.test"
PASSWORD = "demo-password"
RISK_TEXT = "I just want to end it all"
_SCRIPT = Path(sys.executable).with_name("prombot")
PROMBOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "bot.cli"]
INHERITED_NOT = {
    "DATABASE_URL",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "SMS_GATEWAY",
    "SMTP_URL",
    "TWILIO_API_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "PROMBOT_INSTANCE",
    "PROMBOT_INSTRUMENTS_DIRS",
    "FLASK_APP",
    "FLASK_DEBUG",
}
# No proxies: these requests are for 127.0.0.1 only, whatever the environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Server:
    base_url: str
    env: dict[str, str]
    folder: Path
    demo: dict[str, Any]
    other: dict[str, Any]
    mailbox: Mailbox
    log: Path

    def prombot(self, *args: str) -> str:
        return _prombot(*args, env=self.env, cwd=self.folder)

    def call(
        self, method: str, path: str, payload: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        url = self.base_url + path
        assert url.startswith("http://127.0.0.1:"), url
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _prombot(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [*PROMBOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"prombot {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _last_json(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with smtp_server() as mailbox:
        env = {k: v for k, v in os.environ.items() if k not in INHERITED_NOT}
        env.update(
            PROMBOT_INSTANCE=str(tmp_path / "instance"),
            DATABASE_URL=f"sqlite:///{tmp_path / 'prombot.db'}",
            SMS_GATEWAY="local",
            SMTP_URL=mailbox.url,
            PYTHONUNBUFFERED="1",
        )
        _prombot("db", "upgrade", env=env, cwd=tmp_path)
        demo = _last_json(_prombot("demo", "--json", env=env, cwd=tmp_path))
        other = _last_json(
            _prombot(
                "practice",
                "create",
                "--name",
                "Riverside Health Centre",
                "--sms-number",
                "+447700900990",
                "--json",
                env=env,
                cwd=tmp_path,
            )
        )
        log = tmp_path / "server.log"
        for attempt in range(3):  # another process may take the free port before we do
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            env["PUBLIC_BASE_URL"] = base_url
            running = Server(base_url, env, tmp_path, demo, other, mailbox, log)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [*PROMBOT, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=tmp_path,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while process.poll() is None and time.monotonic() < deadline:
                    try:
                        if running.call("GET", "/healthz")[0] == 200:
                            break
                    except OSError:
                        pass
                    time.sleep(0.1)
                else:
                    _stop(process)
                    if attempt == 2:
                        pytest.fail(f"prombot serve did not answer /healthz:\n{running.log_tail()}")
                    continue
                yield running
                return
            finally:
                _stop(process)


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with chromium_page(width=1100) as page:
        yield page


def _risk_text(server: Server, patient_id: str) -> None:
    """The patient texts a risk phrase; the simulator hands it to the webhook's service."""
    status, body = server.call(
        "POST", "/simulator/send", {"patient_id": patient_id, "text": RISK_TEXT}
    )
    assert status == 200, body


def _alerts(server: Server, token: str, status: str | None = None) -> list[dict[str, Any]]:
    code, body = server.call(
        "GET", "/api/v1/alerts" + (f"?status={status}" if status else ""), token=token
    )
    assert code == 200, body
    return body


def test_a_clinician_follows_the_email_signs_in_and_acknowledges_the_alert(
    page: sync_api.Page, server: Server, tmp_path: Path
) -> None:
    expect = sync_api.expect
    token = server.demo["api_token"]
    alex = next(p for p in server.demo["patients"] if p["name"] == "Alex Example")
    bo = next(p for p in server.demo["patients"] if p["name"] == "Bo Sample")

    # Two urgent alerts at the demo practice, one at another practice.
    _risk_text(server, alex["id"])
    _risk_text(server, bo["id"])
    status, theirs = server.call(
        "POST",
        "/api/v1/patients",
        {"name": "Dana Otherplace", "phone": "+447700900991"},
        token=server.other["api_token"],
    )
    assert status == 201, theirs
    _risk_text(server, theirs["id"])
    ours = {a["patient_id"]: a["id"] for a in _alerts(server, token)}
    alert_id, bo_alert_id = ours[alex["id"]], ours[bo["id"]]
    (their_alert,) = _alerts(server, server.other["api_token"])

    # prombot tick tells the duty clinician: an e-mail with a link and no patient details.
    summary = _last_json(server.prombot("tick"))
    assert summary["alerts"]["notify"]["alerts"] == 3
    assert summary["alerts"]["notify"]["failed"] == 0
    mails = server.mailbox.to(CLINICIAN)
    assert len(mails) == 2
    links = sorted(
        re.findall(
            r"http://127\.0\.0\.1:\d+/staff/alerts/[0-9a-f]+", "\n".join(m.text for m in mails)
        )
    )
    assert links == sorted(f"{server.base_url}/staff/alerts/{a}" for a in [alert_id, bo_alert_id])
    for mail in mails:
        for secret in ["Alex", "Example", "Bo Sample", alex["phone"], "9434765919", "end it all"]:
            assert secret not in mail.text
    link = f"{server.base_url}/staff/alerts/{alert_id}"

    # The link asks for a sign-in first, then opens the alert.
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/staff/login\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("E-mail address").fill(CLINICIAN)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    page.get_by_label("E-mail address").fill(CLINICIAN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(link)
    expect(page.locator("#alert-status")).to_have_text("Open")

    # The list: both of the practice's alerts, none of the other practice's.
    page.get_by_role("link", name="All alerts").first.click()
    expect(page.get_by_role("heading", name="Open alerts")).to_be_visible()
    rows = page.locator("tr.alert-row")
    expect(rows).to_have_count(2)
    expect(page.locator("main")).to_contain_text("Alex Example")
    expect(page.locator("main")).not_to_contain_text("Dana Otherplace")
    page.screenshot(path=str(tmp_path / "staff-alerts.png"), full_page=True)

    # Open Alex's alert from the list.
    page.get_by_role("link", name="Open alert for Alex Example").click()
    expect(page).to_have_url(link)
    expect(
        page.get_by_role("heading", name=re.compile("Possible risk of self-harm"))
    ).to_be_visible()
    expect(page.locator("main")).to_contain_text("9434765919")
    expect(page.get_by_role("link", name="See this patient's results")).to_be_visible()

    # A POST without the CSRF token, with the clinician's own cookies, is refused.
    refused = page.request.post(f"{server.base_url}/staff/alerts/{alert_id}/acknowledge", form={})
    assert refused.status == 400
    refused = page.request.post(
        f"{server.base_url}/staff/alerts/{alert_id}/acknowledge", form={"csrf_token": "forged"}
    )
    assert refused.status == 400
    assert alert_id in {a["id"] for a in _alerts(server, token, "open")}

    # Acknowledge through the page, with what was done.
    page.get_by_label("Contacted the patient").check()
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("status")).to_contain_text("Alert acknowledged")
    expect(page.locator("#alert-status")).to_have_text("Acknowledged")
    expect(page.locator("#acknowledged-by")).to_contain_text("by Dr Sam Riley")
    expect(page.get_by_role("button", name="Record")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "staff-alert-acknowledged.png"), full_page=True)

    # ... and through the API.
    (acknowledged,) = _alerts(server, token, "acknowledged")
    assert acknowledged["id"] == alert_id
    assert acknowledged["acknowledged_by"].startswith("user:")
    assert [a["id"] for a in _alerts(server, token, "open")] == [bo_alert_id]

    # The inbox shows only the open one; with "All", it too, as acknowledged.
    page.get_by_role("link", name="All alerts").first.click()
    expect(page.locator("tr.alert-row")).to_have_count(1)
    page.get_by_label("State").select_option("all")
    page.get_by_role("button", name="Show alerts").click()
    expect(page.locator("tr.alert-row")).to_have_count(2)
    expect(page.locator("tr.alert-row[data-status='acknowledged']")).to_contain_text("Alex Example")

    # Another practice's alert: not found, and nothing about it shown.
    response = page.goto(f"{server.base_url}/staff/alerts/{their_alert['id']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Dana")

    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(link)
    expect(page).to_have_url(re.compile(r"/staff/login"))

    # The next tick: nothing new to send for the acknowledged alert.
    assert _last_json(server.prombot("tick"))["alerts"]["notify"]["alerts"] == 0


def _staff_id(server: Server, email: str) -> str:
    status, staff = server.call("GET", "/api/v1/staff", token=server.demo["api_token"])
    assert status == 200, staff
    return next(s["id"] for s in staff if s["email"] == email)


def _tick(server: Server, at: datetime | None = None) -> dict[str, Any]:
    args = ["tick", "--at", at.isoformat()] if at else ["tick"]
    return _last_json(server.prombot(*args))


def _unreached(server: Server) -> int:
    status, body = server.call("GET", "/healthz")
    assert status == 200, body
    return body["unreached_urgent_alerts"]


def test_an_urgent_alert_that_reached_nobody_shows_on_every_page_until_the_fallback_reaches_someone(
    page: sync_api.Page, server: Server, tmp_path: Path
) -> None:
    """The duty clinician can only be e-mailed, and the mail server refuses them every time."""
    expect = sync_api.expect
    token = server.demo["api_token"]
    alex = next(p for p in server.demo["patients"] if p["name"] == "Alex Example")
    banner = page.locator("#unreached-banner")
    riley = _staff_id(server, CLINICIAN)
    status, changed = server.call("PATCH", f"/api/v1/staff/{riley}", {"mobile": None}, token=token)
    assert status == 200 and changed["warnings"] == [], changed  # e-mail is on: still reachable
    server.mailbox.refuse.add(CLINICIAN)

    # The patient texts a risk phrase: an urgent alert that no one has been told of yet.
    _risk_text(server, alex["id"])
    (alert,) = _alerts(server, token)
    assert _unreached(server) == 1
    page.goto(f"{server.base_url}/staff/login")
    page.get_by_label("E-mail address").fill(CLINICIAN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Open alerts")).to_be_visible()
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("1 urgent alert has reached nobody")
    expect(page.locator("tr.alert-row")).to_contain_text("Reached nobody")
    expect(page.locator("tr.alert-row")).to_contain_text("none yet")

    # The alert job tries: the e-mail is refused, and waits to be tried again.
    first = _tick(server)
    assert first["alerts"]["notify"]["failed"] == 1
    page.reload()
    expect(banner).to_be_visible()
    expect(page.locator(".notice-state")).to_have_text(["Dr Sam Riley, e-mail: queued"])
    page.get_by_role("link", name="Open alert for Alex Example").click()
    expect(banner).to_be_visible()  # on the alert's own page too
    expect(page.locator("#notices .notice-row")).to_have_count(2)
    expect(page.locator("#notices")).to_contain_text("failed")
    expect(page.locator("#alert-history")).to_contain_text(
        "E-mail to Dr Sam Riley (new alert): failed."
    )
    expect(page.locator("#alert-reach")).to_contain_text("Nobody yet")
    page.screenshot(path=str(tmp_path / "staff-alert-reached-nobody.png"), full_page=True)

    # The last retry fails too: the fallback goes at once, to the admin and the practice mailbox.
    started = datetime.fromisoformat(first["at"])
    _tick(server, started + timedelta(seconds=65))
    last = _tick(server, started + timedelta(seconds=130))
    assert last["alerts"]["notify"]["fallbacks"] == 1
    assert sorted(m.rcpt_tos[0] for m in server.mailbox.received) == [
        "admin@demo.prombot.test",
        "reception@demo.prombot.test",
    ]
    assert _unreached(server) == 0
    page.reload()
    expect(banner).to_have_count(0)
    expect(page.locator("#alert-history")).to_contain_text(
        "No notice to the clinicians on duty got through, so the escalation contacts and the "
        "practice's contact e-mail were told instead."
    )
    expect(page.locator("#alert-reach")).to_contain_text("At least one notice was sent")

    # The list: each recipient's latest notice by each channel, with its delivery state.
    page.get_by_role("link", name="All alerts").first.click()
    expect(banner).to_have_count(0)
    expect(page.locator(".notice-state")).to_have_text(
        [
            "Dr Sam Riley, e-mail: failed",
            "Jo Admin, e-mail: sent",
            "Jo Admin, SMS: delivered",
            "Practice contact e-mail, e-mail: sent",
        ]
    )
    page.screenshot(path=str(tmp_path / "staff-alerts-after-fallback.png"), full_page=True)
    assert alert["id"] in page.content()
