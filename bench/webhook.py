"""The signed answer webhook under gunicorn, as a ratio to a bare Flask TwiML endpoint.

Both are served by gunicorn with the production settings (bot/gunicorn_conf.py:
the same workers, worker class, timeouts and access log) on 127.0.0.1, and
driven from this process over real sockets:

- **baseline**: ``bench/bare_app.py``, a Flask endpoint that reads Twilio's form
  and answers with twilio's ``MessagingResponse`` (no database, no signature).
- **prombot** on SQLite (a WAL file) and on PostgreSQL (a database of its own,
  ANALYZEd after seeding, as autovacuum would): the demo practice and
  patients on Ofcom drama numbers (400 for the closed loop, and enough for
  the open loop's requests), each with a PHQ-9 started, so every request is
  a valid answer to the question the patient was asked: a new ``MessageSid``
  each time, signed with twilio's ``RequestValidator``, patients taken in
  turn so that (unless the server falls seconds behind) no patient has two
  texts in flight.

Two figures per server:

- **closed loop**: ``CONCURRENCY`` clients, each sending its next request as
  soon as the last one is answered, for ``duration`` seconds after a warm-up:
  requests per second. ``ratio`` = prombot / baseline, taken in the same run.
- **open loop**: requests sent at a fixed rate (``RATE`` per second) whatever
  the answers do, as Twilio sends them; latency is measured from when each
  request was due to go, so a server that falls behind shows it (no
  coordinated omission): p50, p90, p99, max, and the rate achieved.

The load generator is asyncio over plain sockets (HTTP/1.1, keeping a
connection open when the server allows; gunicorn's sync workers close it);
it shares the machine with the servers, equally for all. Timings vary with
whatever else the machine does: compare the ratio, not the rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "bench-webhook-auth-token"
ACCOUNT_SID = "AC" + "d" * 32
PATIENTS = [f"+447700900{n:03d}" for n in range(200, 1000)]  # 800 drama numbers at most
# One PHQ-9, item by item (item 9 "0": no risk alert); each patient answers in turn.
ANSWERS = ["1", "2", "0", "Several days", "1", "0", "2", "1", "0"]
CONCURRENCY = 16
RATE = 100.0
REQUEST_TIMEOUT = 30.0
START_TIMEOUT = 180.0
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# -- load generation ------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int  # 0: no answer (connection error or timeout)
    latency: float
    done_at: float
    question: bool  # the reply asks the next question ("Q<n>/9")


class Client:
    """Connections to one server, reused while the server keeps them open."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, payload: bytes) -> tuple[int, bytes]:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, body

    async def timed(self, payload: bytes, due: float) -> Outcome:
        loop = asyncio.get_running_loop()
        try:
            status, body = await asyncio.wait_for(self.send(payload), REQUEST_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            status, body = 0, b""
        now = loop.time()
        return Outcome(status, now - due, now, b"/9" in body)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 200]
    # a request that failed or timed out counts with the time it took to fail
    latencies = [o.latency for o in outcomes] or [float("nan")]
    return {
        "requests": len(outcomes),
        "ok": len(ok),
        "errors": len(outcomes) - len(ok),
        # by status; 0: no answer (refused, reset, or not within REQUEST_TIMEOUT)
        "statuses": dict(sorted(Counter(str(o.status) for o in outcomes).items())),
        "replies_with_a_question": len([o for o in ok if o.question]),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


async def closed_loop(
    port: int, payloads: Iterator[bytes], *, concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, end = start + warmup, start + warmup + duration
    outcomes: list[Outcome] = []

    async def one_client() -> None:
        client = Client(port)
        try:
            while loop.time() < end:
                payload = next(payloads, None)
                if payload is None:
                    return
                outcome = await client.timed(payload, loop.time())
                if outcome.done_at >= measure_from:
                    outcomes.append(outcome)
        finally:
            client.close()

    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    counted = [o for o in outcomes if o.done_at <= end]
    span = max(1e-9, min(end, max((o.done_at for o in counted), default=end)) - measure_from)
    ok = [o for o in counted if o.status == 200]
    return {
        "concurrency": concurrency,
        "seconds": round(span, 2),
        "per_second": round(len(ok) / span, 1),
        **summary(counted),
    }


async def open_loop(
    port: int, payloads: Iterator[bytes], *, rate: float, duration: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = Client(port)
    start = loop.time() + 0.05
    tasks = []
    for i in range(int(rate * duration)):
        payload = next(payloads, None)
        if payload is None:
            break
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(client.timed(payload, due)))
    outcomes = list(await asyncio.gather(*tasks))
    client.close()
    last = max((o.done_at for o in outcomes), default=start)
    ok = [o for o in outcomes if o.status == 200]
    return {
        "offered_per_second": rate,
        "achieved_per_second": round(len(ok) / max(1e-9, last - start), 1),
        **summary(outcomes),
    }


# -- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


@contextlib.contextmanager
def gunicorn(
    app: str, port: int, env: dict[str, str], folder: Path, workers: int
) -> Iterator[None]:
    """gunicorn with bot/gunicorn_conf.py serving ``app`` on 127.0.0.1:``port``."""
    env = {**env, "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"}
    binary = Path(sys.executable).with_name("gunicorn")
    log = folder / f"gunicorn-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(binary), "--config", "python:bot.gunicorn_conf", app],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT

        def ready() -> bool:  # every worker has loaded the app (bot/gunicorn_conf.py says so)
            booted = log.read_text(errors="replace").count("Worker ready (pid:")
            return booted >= workers and _answers(port)

        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"gunicorn {app} did not start:\n{tail}")
            time.sleep(0.2)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _base_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    env.update(
        PROMBOT_INSTANCE=str(folder / "instance"),
        SECRET_KEY="bench-" + secrets.token_hex(8),
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        SMS_GATEWAY="local",
        PROMBOT_LOG_FORMAT="json",
    )
    return env


# -- prombot's data -------------------------------------------------------------------------


def seed(database_url: str, folder: Path, patients: list[str]) -> str:
    """Schema, the demo practice, and each patient one PHQ-9 started; returns its number."""
    import structlog

    from bot.app import create_app
    from bot.services.demo import DEMO_SMS_NUMBER, install_demo
    from bot.services.dispatch import dispatch_due
    from bot.services.enrolment import create_consultation, create_patient
    from bot.store.db import transaction
    from bot.store.migrate import upgrade
    from bot.store.models import Practice

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "PROMBOT_INSTANCE": str(folder / "instance"),
            "SMS_GATEWAY": "local",
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet
    runtime = app.extensions["prombot.runtime"]
    now = datetime.now(UTC)
    upgrade(runtime.engine)
    practice_id = install_demo(runtime, now).practice.id
    with transaction(runtime.engine) as session:
        practice = session.get(Practice, practice_id)
        for n, phone in enumerate(patients):
            patient = create_patient(
                session, practice, name=f"Bench Patient {n}", phone=phone, now=now, actor="bench"
            )
            create_consultation(
                session,
                practice,
                runtime.catalogue,
                patient_id=patient.id,
                occurred_at=now,
                now=now,
                actor="bench",
                schedule=[{"instrument": "phq9", "after": "P0D"}],
            )
    started = dispatch_due(runtime, now, send=False)
    if started.get("started") != len(patients):
        raise SystemExit(f"bench: expected {len(patients)} questionnaires started, got {started}")
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    runtime.engine.dispose()
    return DEMO_SMS_NUMBER


def signed_answers(port: int, to: str, patients: list[str]) -> Iterator[bytes]:
    """Each patient's next answer in turn, as Twilio posts it: new MessageSid, signed."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    url = f"http://127.0.0.1:{port}/sms/inbound"
    for answer in ANSWERS:
        for phone in patients:
            sid = "SM" + secrets.token_hex(16)
            params = {
                "ToCountry": "GB",
                "SmsMessageSid": sid,
                "NumMedia": "0",
                "SmsSid": sid,
                "SmsStatus": "received",
                "Body": answer,
                "To": to,
                "NumSegments": "1",
                "MessageSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": phone,
                "FromCountry": "GB",
                "ApiVersion": "2010-04-01",
            }
            body = urllib.parse.urlencode(params).encode()
            signature = validator.compute_signature(url, params)
            yield (
                f"POST /sms/inbound HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n\r\n"
            ).encode() + body


def bare_requests(port: int) -> Iterator[bytes]:
    """The same requests, over and over, for the bare endpoint (which checks no signature)."""
    while True:
        yield from signed_answers(port, "+447700900000", PATIENTS)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str | None]:
    """A new, empty database on the server ``admin_url`` names (None if it cannot be reached)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    name = "prombot_bench_" + secrets.token_hex(4)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        yield None
        return
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- the run --------------------------------------------------------------------------------


def measure(
    port: int,
    payloads: Iterator[bytes],
    open_payloads: Iterator[bytes],
    *,
    duration: float,
    warmup: float,
    rate: float,
) -> dict[str, Any]:
    """Closed loop, then open loop, each with its own patients (``payloads`` gives the closed
    loop's, ``open_payloads`` the open loop's): the closed loop leaves at most its clients'
    requests in flight, whereas an open loop the server cannot keep up with leaves a queue."""
    started = time.monotonic()
    # The load generator must not pause: a collection of its own garbage mid-loop would
    # show as the server's latency, so the collector waits until the loops are over.
    gc.collect()
    gc.disable()
    try:
        closed = asyncio.run(
            closed_loop(port, payloads, concurrency=CONCURRENCY, duration=duration, warmup=warmup)
        )
        opened = asyncio.run(open_loop(port, open_payloads, rate=rate, duration=duration))
    finally:
        gc.enable()
    print(f"  measured in {time.monotonic() - started:.0f} s", flush=True)
    return {"closed_loop": closed, "open_loop": opened}


def run(
    *,
    duration: float = 10.0,
    warmup: float = 2.0,
    rate: float = RATE,
    workers: int | None = None,
    admin_url: str | None = None,
    patients: int = 400,
) -> dict[str, Any]:
    admin_url = (
        admin_url
        or os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or DEFAULT_ADMIN_URL
    )
    # the open loop's requests come from patients of their own, enough for all of them
    open_patients = math.ceil(rate * duration / len(ANSWERS))
    phones = PATIENTS[: open_patients + patients]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="prombot-bench-") as tmp:
        folder = Path(tmp)
        env = _base_env(folder)
        if workers is not None:
            env["WEB_CONCURRENCY"] = str(workers)
        from bot import gunicorn_conf  # the workers it gives under this environment

        worker_processes = workers or gunicorn_conf.workers

        port = free_port()
        print(f"webhook: baseline (bare Flask TwiML, {worker_processes} workers) ...", flush=True)
        with gunicorn("bench.bare_app:create_app()", port, env, folder, worker_processes):
            results["baseline"] = measure(
                port,
                bare_requests(port),
                bare_requests(port),
                duration=duration,
                warmup=warmup,
                rate=rate,
            )

        backends: list[tuple[str, contextlib.AbstractContextManager[str | None]]] = [
            ("sqlite", contextlib.nullcontext(f"sqlite:///{folder / 'bench.db'}")),
            ("postgresql", postgres_database(admin_url)),
        ]
        for backend, database in backends:
            with database as url:
                if url is None:
                    print(f"webhook: {backend}: no server at the admin URL; skipped", flush=True)
                    results[backend] = None
                    continue
                print(f"webhook: prombot on {backend}: seeding {len(phones)} patients ...")
                seeding = time.monotonic()
                to = seed(url, folder / backend, phones)
                print(f"  seeded in {time.monotonic() - seeding:.0f} s", flush=True)
                port = free_port()
                server_env = {
                    **env,
                    "DATABASE_URL": url,
                    "PROMBOT_INSTANCE": str(folder / backend / "instance"),
                    "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                }
                print(f"webhook: prombot on {backend}: measuring ...", flush=True)
                with gunicorn("bot.app:create_app()", port, server_env, folder, worker_processes):
                    results[backend] = measure(
                        port,
                        signed_answers(port, to, phones[open_patients:]),
                        signed_answers(port, to, phones[:open_patients]),
                        duration=duration,
                        warmup=warmup,
                        rate=rate,
                    )

    bare = results["baseline"]["closed_loop"]["per_second"]
    ratios = {
        backend: round(results[backend]["closed_loop"]["per_second"] / bare, 3)
        for backend in ("sqlite", "postgresql")
        if results.get(backend) and bare
    }
    return {
        "benchmark": "webhook",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "gunicorn_workers": worker_processes,
        "patients": len(phones),
        "duration_s": duration,
        "warmup_s": warmup,
        "open_loop_rate": rate,
        "results": results,
        "ratio": ratios,
    }


def table(report: dict[str, Any]) -> str:
    rows = [("server", "closed req/s", "x baseline", "open p50 ms", "open p99 ms", "achieved/s")]
    results = report["results"]
    for name in ("baseline", "sqlite", "postgresql"):
        result = results.get(name)
        if not result:
            rows.append((name, "-", "-", "-", "-", "-"))
            continue
        closed, opened = result["closed_loop"], result["open_loop"]
        ratio = "1.000" if name == "baseline" else f"{report['ratio'][name]:.3f}"
        errors = closed["errors"] + opened["errors"]
        label = name if name == "baseline" else f"prombot, {name}"
        rows.append(
            (
                label + (f" ({errors} errors)" if errors else ""),
                f"{closed['per_second']:,.1f}",
                ratio,
                f"{opened['p50_ms']:,.1f}",
                f"{opened['p99_ms']:,.1f}",
                f"{opened['achieved_per_second']:,.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append(
        f"signed answer webhook under gunicorn ({report['gunicorn_workers']} sync workers), "
        f"closed loop with {CONCURRENCY} clients; open loop at {report['open_loop_rate']:.0f}/s"
    )
    lines.append(
        "throughput ratio prombot / bare Flask TwiML: "
        + ", ".join(f"{k} {v:.3f}" for k, v in report["ratio"].items())
    )
    return "\n".join(lines)
