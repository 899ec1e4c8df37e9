"""A fault run of the outbox: real scheduler processes, fake-twilio, ``kill -9`` and failures.

``OutboxFaultRun`` seeds a practice (open around the clock) with one due
invitation per patient, starts ``prombot fake-twilio``, ``prombot serve`` (it
receives the signed delivery reports) and N ``prombot scheduler`` processes
sending through fake-twilio, and can kill any scheduler with SIGKILL and start
it again. ``outcome()`` then compares what fake-twilio received with the
message log: texts doubled (received more often than written), texts lost
(written but never received), texts left unsettled, attempts over the bound,
and delivery reports not applied.

The suite's fault test (``test_outbox_faults.py``) uses it; so can a person,
to measure a configuration by hand::

    .venv/bin/python -m tests.e2e.outbox_faults --backend postgresql --schedulers 2 \
        --invitations 500 --kills 20 --lease 8

(PostgreSQL needs TEST_DATABASE_URL.) It prints the outcome as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.dbs import PostgresDatabase, postgres_admin_url
from tests.e2e.conftest import OURS, free_port, http, prombot_command

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "outbox-fault-run-auth-token"
PRACTICE_NUMBER = "+441632960001"
START_TIMEOUT = 60  # seconds: bounds on waiting for a process, never expectations of speed
FINAL = ("delivered", "undelivered", "failed", "canceled", "read")

# Everything that tunes delivery: never inherited from whoever runs the tests.
TUNING = (
    "SMS_MAX_PER_SECOND",
    "SMS_MAX_ATTEMPTS",
    "SMS_RETRY_BASE_SECONDS",
    "SMS_RETRY_MAX_SECONDS",
    "SMS_SEND_LEASE_SECONDS",
    "SMS_LOOKUP_DELAY_SECONDS",
    "SMS_VALIDITY_PERIOD_SECONDS",
    "TWILIO_TIMEOUT_SECONDS",
    "PROMBOT_JOB_INTERVALS",
)


@dataclass
class Outcome:
    """What came of a run, as counts; ``problems`` lists the texts behind each."""

    written: int = 0  # outbound texts in the message log
    received: int = 0  # texts fake-twilio accepted
    doubled: int = 0  # extra copies received
    lost: int = 0  # texts written and never received
    unsettled: int = 0  # texts left queued or sending without a provider id
    failed: int = 0  # texts the outbox gave up on
    over_attempts: int = 0  # texts handed over more often than SMS_MAX_ATTEMPTS
    not_final: int = 0  # texts whose last delivery report is not in the log
    wrong_sid: int = 0  # texts recorded with a SID fake-twilio gave to another text
    reports_refused: int = 0  # delivery reports prombot did not answer 2xx
    max_attempts_seen: int = 0
    kills: int = 0  # kill -9s of running schedulers
    faults: dict[str, int] = field(default_factory=dict)  # "create 429": n, as fake-twilio drew
    problems: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, what: str) -> None:
        self.problems.setdefault(kind, [])
        if len(self.problems[kind]) < 10:
            self.problems[kind].append(what)

    @property
    def exactly_once(self) -> bool:
        return self.doubled == 0 and self.lost == 0 and self.received == self.written

    def summary(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultPlan:
    """The run's shape; timings are settings handed to the processes, not expectations."""

    invitations: int = 500
    schedulers: int = 2
    kills: int = 20
    kill_every: tuple[float, float] = (1.0, 3.0)  # seconds a victim works before its kill
    seed: int = 11
    tuning: dict[str, str] = field(default_factory=dict)
    behaviour: dict[str, Any] = field(default_factory=dict)  # fake-twilio's, see its docstring


class OutboxFaultRun:
    """The processes of one run, and what they did. Stops everything it started."""

    def __init__(self, url: str, folder: Path, plan: FaultPlan) -> None:
        self.url = url
        self.folder = folder
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.fake_port = 0
        self.serve_port = 0
        self.fake: subprocess.Popen[bytes] | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.schedulers: list[subprocess.Popen[bytes] | None] = [None] * plan.schedulers
        self.kills_done = 0
        self.starts_of = [0] * plan.schedulers

    # -- set-up --------------------------------------------------------------------------

    def seed(self) -> None:
        """The schema, a practice open around the clock, and invitations due now."""
        from tests.e2e.test_scheduler_processes import seed

        seed(
            self.url,
            patients=self.plan.invitations,
            invitations_each=1,
            at=datetime.now(UTC),
            sms_number=PRACTICE_NUMBER,
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in OURS and k not in TUNING}
        env.update(
            DATABASE_URL=self.url,
            PROMBOT_INSTANCE=str(self.folder / "instance"),
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_API_URL=f"http://127.0.0.1:{self.fake_port}",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.serve_port}",
            SMS_GATEWAY="twilio",
            PROMBOT_LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
            **self.plan.tuning,
            **extra,
        )
        return env

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (self.folder / log_name).open("ab") as log:
            return subprocess.Popen(
                [*prombot_command(), *args],
                env=self.env(),
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_for(self, process: subprocess.Popen[bytes], url: str, log_name: str) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if http("GET", url).status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def start_fake_and_server(self) -> None:
        for attempt in range(3):  # another process may take a free port first
            self.fake_port, self.serve_port = free_port(), free_port()
            self.fake = self._spawn(
                ["fake-twilio", "--port", str(self.fake_port)], "fake-twilio.log"
            )
            fake_up = self._wait_for(
                self.fake, f"http://127.0.0.1:{self.fake_port}/", "fake-twilio.log"
            )
            self.server = self._spawn(
                ["serve", "--host", "127.0.0.1", "--port", str(self.serve_port)], "serve.log"
            )
            server_up = self._wait_for(
                self.server, f"http://127.0.0.1:{self.serve_port}/healthz", "serve.log"
            )
            if fake_up and server_up:
                break
            self.stop()
            if attempt == 2:
                raise RuntimeError("fake-twilio or prombot serve did not start:\n" + self.logs())
        self.control("POST", "/behaviour", self.plan.behaviour)

    def start_scheduler(self, n: int) -> None:
        self.schedulers[n] = self._spawn(["scheduler"], f"scheduler-{n}.log")
        self.starts_of[n] += 1

    def kill_scheduler(self, n: int) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost host would: no chance to tidy up."""
        process = self.schedulers[n]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            self.kills_done += 1
        self.schedulers[n] = None

    def stop(self) -> None:
        for n in range(len(self.schedulers)):
            self._terminate(self.schedulers[n])
            self.schedulers[n] = None
        self._terminate(self.server)
        self._terminate(self.fake)
        self.server = self.fake = None

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes] | None) -> None:
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- the run -------------------------------------------------------------------------

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        response = http(
            method,
            f"http://127.0.0.1:{self.fake_port}/_fake{path}",
            data=data,
            headers={"Content-Type": "application/json"} if data else None,
        )
        assert response.status == 200, response.body
        return response.json()

    def running(self, n: int) -> bool:
        """Scheduler ``n`` has started its jobs (its log says so once per start)."""
        log = (self.folder / f"scheduler-{n}.log").read_text(errors="replace")
        return log.count('"scheduler.started"') >= self.starts_of[n]

    def chaos(self, until: float) -> None:
        """Kill a running scheduler at random, a few seconds into its work, ``kills`` times.

        Each victim is restarted at once (or after a moment alone for the other).
        Kills wait for the victim to be running: a kill during start-up tests less.
        """
        while self.kills_done < self.plan.kills and time.monotonic() < until:
            victim = self.rng.randrange(len(self.schedulers))
            while not self.running(victim) and time.monotonic() < until:
                time.sleep(0.1)
            time.sleep(self.rng.uniform(*self.plan.kill_every))
            if self.settled():
                return
            self.kill_scheduler(victim)
            if self.rng.random() < 0.3:  # sometimes the other one is alone for a moment
                time.sleep(self.rng.uniform(0.2, 1.0))
            self.start_scheduler(victim)

    def progress(self) -> dict[str, int]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    text(
                        "SELECT"
                        " (SELECT count(*) FROM invitation WHERE status = 'pending'),"
                        " (SELECT count(*) FROM message WHERE direction = 'outbound'),"
                        " (SELECT count(*) FROM message WHERE direction = 'outbound'"
                        "   AND status IN ('delivered', 'undelivered', 'failed', 'canceled',"
                        "                  'read'))"
                    )
                ).one()
        finally:
            engine.dispose()
        return {"pending": row[0], "outbound": row[1], "final": row[2]}

    def settled(self) -> bool:
        now = self.progress()
        return now["pending"] == 0 and now["outbound"] > 0 and now["final"] == now["outbound"]

    def wait_until_settled(self, until: float) -> bool:
        while time.monotonic() < until:
            for n, process in enumerate(self.schedulers):
                if process is not None and process.poll() is not None:
                    raise AssertionError(f"scheduler {n} exited by itself:\n{self.logs()}")
            if self.settled():
                return True
            time.sleep(0.5)
        return False

    def outcome(self, max_attempts: int) -> Outcome:
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT id, phone, body, status, provider_sid, attempts FROM message"
                        " WHERE direction = 'outbound'"
                    )
                ).all()
        finally:
            engine.dispose()
        received = self.control("GET", "/messages")["messages"]
        result = Outcome(written=len(rows), received=len(received))
        at_twilio = Counter((m["to"], m["body"]) for m in received)
        sid_of = {m["sid"]: (m["to"], m["body"]) for m in received}
        final_of = {m["sid"]: m["status"] for m in received}
        written = Counter((r.phone, r.body) for r in rows)
        for key in written.keys() | at_twilio.keys():
            extra = at_twilio[key] - written[key]
            if extra > 0:
                result.doubled += extra
                result.note("doubled", f"{key[0]} x{at_twilio[key]}")
            elif extra < 0:
                result.lost += -extra
                result.note("lost", key[0])
        for r in rows:
            result.max_attempts_seen = max(result.max_attempts_seen, r.attempts or 0)
            if r.provider_sid is None and r.status in ("queued", "sending"):
                result.unsettled += 1
                result.note("unsettled", r.id)
            if r.status == "failed" and r.provider_sid is None:
                result.failed += 1
                result.note("failed", r.id)
            if (r.attempts or 0) > max_attempts:
                result.over_attempts += 1
                result.note("over_attempts", f"{r.id}: {r.attempts}")
            if r.provider_sid is not None:
                if sid_of.get(r.provider_sid) != (r.phone, r.body):
                    result.wrong_sid += 1
                    result.note("wrong_sid", r.id)
                elif r.status != final_of[r.provider_sid] or r.status not in FINAL:
                    result.not_final += 1
                    result.note("not_final", f"{r.id}: {r.status}")
        for request in self.control("GET", "/requests")["requests"]:
            if "fault" in request:
                key = f"{request['kind']} {request['fault']}"
                result.faults[key] = result.faults.get(key, 0) + 1
        for message in received:
            for report in message["callbacks"]:
                if not 200 <= report.get("http_status", 0) < 300:
                    result.reports_refused += 1
                    result.note("reports_refused", f"{message['sid']}: {report}")
        return result


def fault_plan(invitations: int = 500, kills: int = 20, seed: int = 11) -> FaultPlan:
    """The suite's fault run: two schedulers, repeated kill -9s, fake-twilio failing often.

    Short leases and timeouts keep it to a few minutes; the settings keep the
    outbox's own rule that a lookup waits out the list delay (1 s at the fake,
    3 s allowed), so the outcome may not depend on timing.
    """
    return FaultPlan(
        invitations=invitations,
        schedulers=2,
        kills=kills,
        kill_every=(0.5, 3.0),
        seed=seed,
        tuning={
            "SMS_MAX_PER_SECOND": "20",
            "SMS_MAX_ATTEMPTS": "10",
            "SMS_RETRY_BASE_SECONDS": "1",
            "SMS_RETRY_MAX_SECONDS": "4",
            "SMS_SEND_LEASE_SECONDS": "3",
            "SMS_LOOKUP_DELAY_SECONDS": "3",
            "TWILIO_TIMEOUT_SECONDS": "1",
            "PROMBOT_JOB_INTERVALS": (
                "dispatch=1,outbox=1,expiries=3600,reminders=3600,"
                "alert_notifications=3600,alert_escalations=3600"
            ),
        },
        behaviour={
            "callback_delay": 0.05,
            "list_delay": 1.0,
            # Every create is answered a little after the text exists, and after its
            # first delivery report has been sent.
            "slow": [{"seconds": 0.08, "count": 10_000, "on": "create", "when": "after"}],
            "faults": {
                "seed": seed,
                "seconds": 2,  # longer than TWILIO_TIMEOUT_SECONDS: the client gives up
                "create": {
                    "429": 0.03,
                    "500": 0.02,
                    "503": 0.02,
                    "timeout_before": 0.02,
                    "timeout_after": 0.02,
                },
                "list": {"503": 0.05, "timeout_before": 0.02},
            },
        },
    )


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    """An empty database for one run: a SQLite file, or a PostgreSQL database of its own."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'prombot.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        raise RuntimeError("TEST_DATABASE_URL is not set")
    created = PostgresDatabase(admin)
    engine = create_engine(created.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:  # empty: the seed upgrades it
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    try:
        yield created.url
    finally:
        created.drop()


def run(backend: str, folder: Path, plan: FaultPlan, *, seconds: float) -> tuple[Outcome, bool]:
    """One whole run; returns its outcome and whether everything settled within ``seconds``.

    The bound starts once the data is seeded and the processes are up: on a busy
    machine those alone can take minutes, and they are not what is under test.
    """
    with database(backend, folder) as url:
        fault_run = OutboxFaultRun(url, folder, plan)
        fault_run.seed()
        try:
            fault_run.start_fake_and_server()
            deadline = time.monotonic() + seconds
            for n in range(plan.schedulers):
                fault_run.start_scheduler(n)
            fault_run.chaos(until=deadline)
            settled = fault_run.wait_until_settled(until=deadline)
            kills = fault_run.kills_done
            # Stop the senders before counting.
            for n in range(plan.schedulers):
                fault_run.kill_scheduler(n)
            max_attempts = int(plan.tuning.get("SMS_MAX_ATTEMPTS", "5"))
            outcome = fault_run.outcome(max_attempts)
            outcome.kills = kills
            return outcome, settled
        finally:
            fault_run.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.outbox_faults")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--plan",
        choices=["issue", "suite"],
        default="issue",
        help="issue: the issue's runs (set by the options below); suite: the fault test's",
    )
    parser.add_argument("--schedulers", type=int, default=2)
    parser.add_argument("--invitations", type=int, default=500)
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--lease", default="60", help="SMS_SEND_LEASE_SECONDS")
    parser.add_argument("--rate", default="10", help="SMS_MAX_PER_SECOND per scheduler")
    parser.add_argument("--create-delay", type=float, default=0.15, help="seconds per create")
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.folder or Path(f"/tmp/outbox-faults-{os.getpid()}")
    folder.mkdir(parents=True, exist_ok=True)
    plan = (
        fault_plan(args.invitations, args.kills)
        if args.plan == "suite"
        else FaultPlan(
            invitations=args.invitations,
            schedulers=args.schedulers,
            kills=args.kills,
            tuning={
                "SMS_SEND_LEASE_SECONDS": args.lease,
                "SMS_MAX_PER_SECOND": args.rate,
                "PROMBOT_JOB_INTERVALS": "dispatch=1,outbox=1,expiries=3600,reminders=3600",
            },
            behaviour={
                "callback_delay": 0.05,
                "slow": [
                    {"seconds": args.create_delay, "count": 10_000, "on": "create", "when": "after"}
                ],
            },
        )
    )
    started = time.monotonic()
    outcome, settled = run(args.backend, folder, plan, seconds=args.minutes * 60)
    print(
        json.dumps(
            {
                "settled": settled,
                "seconds": round(time.monotonic() - started),
                **outcome.summary(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
