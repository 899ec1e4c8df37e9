"""End to end: the real ``prombot`` commands and the real server process, over HTTP.

The ``server`` fixture builds a fresh database with ``prombot db upgrade``,
seeds it with ``prombot demo --json``, and starts ``prombot serve`` on a free
port on 127.0.0.1, as a practice would. It runs once on SQLite and, when
TEST_DATABASE_URL names a PostgreSQL server, once on a database of its own
there. Requests go over real sockets (the standard library's urllib), signed
with twilio's own RequestValidator. The server is always stopped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from tests import support
from tests.dbs import PostgresDatabase, postgres_admin_url
from tests.support import free_port as free_port  # re-exported: e2e modules import them here
from tests.support import new_sid as new_sid

AUTH_TOKEN = "e2e-twilio-auth-token"
ACCOUNT_SID = "AC" + "e" * 32
START_TIMEOUT = 60  # seconds: bounds on waiting, never expectations of speed
REQUEST_TIMEOUT = 60
COMMAND_TIMEOUT = 120
STOP_TIMEOUT = 15

# Configuration the server must not inherit from whoever runs the tests.
OURS = (
    "DATABASE_URL",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_URL",
    "SMS_GATEWAY",
    "SMTP_URL",
    "PROMBOT_INSTANCE",
    "PROMBOT_INSTRUMENTS_DIRS",
    "PROMBOT_LOG_FORMAT",
    "FLASK_APP",
    "FLASK_DEBUG",
)


def prombot_command() -> list[str]:
    """The installed console script next to this Python, as a practice runs it."""
    script = Path(sys.executable).with_name("prombot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


@dataclass
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def messages(self) -> list[str]:
        """The texts of a TwiML reply, one per <Message>, after checking its shape."""
        assert self.status == 200, self.body
        assert self.headers["Content-Type"].startswith("application/xml"), self.headers
        root = ET.fromstring(self.body)
        assert root.tag == "Response"
        assert all(child.tag == "Message" for child in root), self.body
        return [child.text or "" for child in root]


# No proxies: these requests are for 127.0.0.1 only, whatever the environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
            return HttpResponse(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpResponse(error.code, dict(error.headers), error.read())


def answers_ok(url: str) -> bool:
    """Whether a GET of ``url`` answers 200 yet: a refused, reset or timed-out connection
    means the process is not listening yet (it may still be starting)."""
    try:
        return http("GET", url).status == 200
    except OSError:
        return False


def sms_params(
    body: str, *, from_: str, to: str, sid: str | None = None, num_media: int = 0
) -> dict[str, str]:
    """The parameters Twilio posts for an inbound SMS."""
    return support.sms_params(
        body, from_=from_, to=to, account_sid=ACCOUNT_SID, sid=sid, num_media=num_media
    )


@dataclass
class Server:
    """A running ``prombot serve`` and the demo data it was seeded with."""

    backend: str
    port: int
    env: dict[str, str]
    folder: Path
    demo: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    command_stderr: list[str] = field(default_factory=list)
    enrolled: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr_path(self) -> Path:
        return self.folder / "server.stderr"

    # -- commands ----------------------------------------------------------------------

    def prombot(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a ``prombot`` command against this server's database; it must succeed."""
        done = subprocess.run(
            [*prombot_command(), *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        self.command_stderr.append(done.stderr)
        assert done.returncode == 0, f"prombot {' '.join(args)} failed:\n{done.stderr}"
        return done

    def tick(self) -> dict[str, Any]:
        return json.loads(self.prombot("tick").stdout.strip().splitlines()[-1])

    # -- the process -------------------------------------------------------------------

    def start(self) -> None:
        out = (self.folder / "server.stdout").open("ab")
        err = self.stderr_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [*prombot_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.folder,
                stdout=out,
                stderr=err,
            )
        finally:
            out.close()
            err.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prombot serve exited early:\n{self.stderr()}")
            try:
                if http("GET", self.base_url + "/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prombot serve did not answer /healthz in time:\n{self.stderr()}")

    def stop(self) -> None:
        """Terminate the server and wait for it (killing it if it will not go)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    # -- HTTP --------------------------------------------------------------------------

    def sign(self, path: str, params: Mapping[str, str], *, token: str = AUTH_TOKEN) -> str:
        return RequestValidator(token).compute_signature(self.base_url + path, dict(params))

    def post_form(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """POST form parameters signed as Twilio signs them (or with the signature given)."""
        sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        signature = self.sign(path, params) if signature is None else signature
        if signature:
            sent["X-Twilio-Signature"] = signature
        body = urllib.parse.urlencode(dict(params)).encode()
        return http("POST", self.base_url + path, data=body, headers=sent)

    def text(
        self,
        body: str,
        *,
        from_: str,
        to: str | None = None,
        sid: str | None = None,
        num_media: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """A patient's text, as Twilio posts it to /sms/inbound."""
        params = sms_params(
            body, from_=from_, to=to or self.demo["sms_number"], sid=sid, num_media=num_media
        )
        return self.post_form("/sms/inbound", params, headers=headers)

    def api(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        sent = {"Authorization": f"Bearer {self.demo['api_token']}", **(headers or {})}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            sent["Content-Type"] = "application/json"
        return http(method, self.base_url + "/api/v1" + path, data=data, headers=sent)


INVENTED_NAMES = ["Robin Placeholder", "Kit Imaginary", "Sol Madeup", "Ash Notreal", "Lee Pretend"]


def new_patient(server: Server, **extra: Any) -> dict[str, Any]:
    """Enrol a patient of the test's own through the API, on the next free drama number."""
    server.enrolled += 1
    n = server.enrolled
    payload = {
        "name": f"{INVENTED_NAMES[n % len(INVENTED_NAMES)]} {n}",
        "phone": f"+447700900{200 + n:03d}",
        **extra,
    }
    response = server.api("POST", "/patients", payload)
    assert response.status == 201, response.body
    return response.json()


def _fresh_postgres(admin_url: str) -> tuple[PostgresDatabase, str]:
    """A database of this test's own, emptied so that ``prombot db upgrade`` builds it all."""
    database = PostgresDatabase(admin_url)
    engine = create_engine(database.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return database, database.url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``prombot db upgrade``, ``prombot demo --json``, then ``prombot serve``, on a free port.

    One server per test module and database; tests keep out of each other's way by
    enrolling patients of their own (``Server.new_patient``). A module's ``SERVER_ENV``
    (a dict) adds settings of its own.
    """
    tmp_path = tmp_path_factory.mktemp(f"e2e-{request.param}")
    database: PostgresDatabase | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prombot.db'}"
    else:
        admin_url = postgres_admin_url()
        if admin_url is None:
            pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
        database, url = _fresh_postgres(admin_url)
        request.addfinalizer(database.drop)

    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env.update(
        DATABASE_URL=url,
        PROMBOT_INSTANCE=str(tmp_path / "instance"),
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        SMS_GATEWAY="local",
        PROMBOT_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    env.update(getattr(request.module, "SERVER_ENV", {}))
    instance = Server(backend=request.param, port=0, env=env, folder=tmp_path, demo={})
    instance.prombot("db", "upgrade")
    instance.demo = json.loads(instance.prombot("demo", "--json").stdout.strip().splitlines()[-1])

    request.addfinalizer(instance.stop)
    for attempt in range(3):  # another process may take the free port before we do
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
