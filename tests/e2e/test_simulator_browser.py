"""The simulator in a real browser, against the real server process.

Starts ``prombot serve`` as a subprocess on a free port with its own SQLite
database (after ``prombot db upgrade`` and ``prombot demo``), then plays the
demo patient's phone in Debian's Chromium through Playwright: sends a PHQ-9,
answers every item (messy replies included), and checks the scored result
through the JSON API.

Playwright drives /usr/bin/chromium (``scripts/ensure-chromium`` installs
it; ``make test`` runs that first). Playwright's own browser download is
never used. Without Chromium the test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.browser import TIMEOUT_MS, chromium_page, sync_api

DEMO_TOKEN = "pb_demo_token_do_not_use_in_production"
START_TIMEOUT = 60
# The console script next to this Python, as a practice runs it.
_SCRIPT = Path(sys.executable).with_name("prombot")
PROMBOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "bot.cli"]
# Configuration the server must not inherit from whoever runs the tests.
INHERITED_NOT = {
    "DATABASE_URL",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "SMS_GATEWAY",
    "SMTP_URL",
    "PROMBOT_INSTANCE",
    "PROMBOT_INSTRUMENTS_DIRS",
    "FLASK_APP",
    "FLASK_DEBUG",
}


@dataclass
class Server:
    base_url: str
    demo: dict
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prombot(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [*PROMBOT, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"prombot {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


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
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    """``prombot db upgrade``, ``prombot demo``, then ``prombot serve`` on a free port."""
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_NOT}
    env.update(
        PROMBOT_INSTANCE=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prombot.db'}",
        SMS_GATEWAY="local",
        PYTHONUNBUFFERED="1",
    )
    _prombot("db", "upgrade", env=env, cwd=tmp_path)
    _prombot("demo", env=env, cwd=tmp_path)  # twice: seeding is safe to repeat
    demo = json.loads(_prombot("demo", "--json", env=env, cwd=tmp_path).strip().splitlines()[-1])

    log = tmp_path / "server.log"
    for attempt in range(3):  # another process may take the free port before we do
        port = _free_port()
        running = Server(base_url=f"http://127.0.0.1:{port}", demo=demo, log=log)
        env["PUBLIC_BASE_URL"] = running.base_url
        process = _start([*PROMBOT, "serve", "--port", str(port)], env, tmp_path, log)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if _get(f"{running.base_url}/healthz")[0] == 200:
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
    with chromium_page(width=1000) as page:
        yield page


def test_simulator_completes_a_phq9_in_the_browser(
    page: sync_api.Page, sqlite_server: Server, tmp_path: Path
) -> None:
    server = sqlite_server
    expect = sync_api.expect
    patient = next(p for p in server.demo["patients"] if p["name"] == "Alex Example")
    browser_errors: list[str] = []
    page.on("pageerror", lambda error: browser_errors.append(str(error)))

    page.goto(f"{server.base_url}/simulator")
    expect(page.get_by_role("heading", name="Patient phone simulator")).to_be_visible()
    state = page.locator("#state")
    expect(state).to_have_text("No questionnaire open")
    page.get_by_label("Patient", exact=True).select_option(patient["id"])
    page.get_by_label("Questionnaire", exact=True).select_option("phq9")
    page.get_by_role("button", name="Send questionnaire").click()

    expect(page.get_by_role("status")).to_contain_text("Questionnaire sent")
    expect(state).to_have_text("phq9 in progress")
    thread = page.locator("#thread li")
    expect(thread).to_have_count(2)
    expect(thread.nth(0)).to_have_class("outbound")
    expect(thread.nth(0)).to_contain_text("Demo Surgery")
    expect(thread.nth(0)).to_contain_text("questionnaire")
    expect(thread.nth(1)).to_contain_text("Q1/9")
    expect(thread.nth(1)).to_contain_text("Little interest or pleasure")

    def reply(text: str, expected: str) -> None:
        """Type and send a text; the patient's bubble appears, then the bot's answer."""
        before = thread.count()
        box = page.get_by_label("Your reply")
        box.fill(text)
        box.press("Enter")
        page.wait_for_function(
            "n => document.querySelectorAll('#thread li').length >= n",
            arg=before + 2,
            timeout=TIMEOUT_MS,
        )
        expect(thread.nth(before)).to_have_class("inbound")
        expect(thread.nth(before).locator(".body")).to_have_text(text)
        expect(thread.last).to_have_class("outbound")
        expect(thread.last).to_contain_text(expected)

    reply("Several days", "Q2/9")  # 1: an option's words
    reply("2!", "Q3/9")  # 2: a number with a stray mark
    reply("\N{SLIGHTLY SMILING FACE}", "Sorry, I didn't understand")  # no answer: re-prompt
    expect(thread.last).not_to_contain_text("Q4/9")
    page.screenshot(path=str(tmp_path / "simulator-reprompt.png"))
    reply("3", "Q4/9")  # 3
    reply("1", "Q5/9")  # 1
    reply("not at all", "Q6/9")  # 0
    reply(" 1.", "Q7/9")  # 1
    reply("2", "Q8/9")  # 2
    reply("0", "Q9/9")  # 0
    reply("0", "One more question")  # item 9 at 0: no safety message
    reply("Somewhat difficult", "Thank you")  # the difficulty question (not scored)
    expect(thread.last).to_contain_text("end of the questionnaire")
    expect(state).to_have_text("No questionnaire open")
    # 1 + 2 + 3 + 1 + 0 + 1 + 2 + 0 + 0 = 10: moderate

    page.screenshot(path=str(tmp_path / "simulator.png"), full_page=True)
    assert browser_errors == []

    status, body = _get(f"{server.base_url}/api/v1/patients/{patient['id']}/results", DEMO_TOKEN)
    assert status == 200, body
    results = json.loads(body)
    assert len(results) == 1
    result = results[0]
    assert result["instrument"] == "phq9"
    assert result["status"] == "completed"
    assert result["total"] == 10
    assert result["band"] == "moderate"
    assert result["flags"] == []
    assert result["answers"] == {
        "interest": 1,
        "mood": 2,
        "sleep": 3,
        "energy": 1,
        "appetite": 0,
        "self_worth": 1,
        "concentration": 2,
        "psychomotor": 0,
        "self_harm": 0,
        "difficulty": 1,
    }

    status, _ = _get(f"{server.base_url}/api/v1/patients/{patient['id']}/results")
    assert status == 401
