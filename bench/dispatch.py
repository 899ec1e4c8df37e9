"""Dispatch speed as ratios measured in one run, on SQLite and PostgreSQL.

* ``send``: unpaced dispatch of N queued texts to a local fake-twilio (its own
  process), against the official twilio client creating the same texts on the
  same fake-twilio, one after the other (target: ratio >= 0.8);
* ``scaling``: ``dispatch_due`` for 2,000 against 20,000 due invitations
  (target: at most 10.5x; after a warm-up run, the fastest of three runs of each),
  with the plan of the outbox's claim at 20,000 queued;
* ``one_run``: due invitations (2,000 by default, ``--one-run 10000`` for issue
  12's figure), every opening text sent by one run of the scheduler's timed work
  (``run_due_work``, unpaced); reports texts sent, seconds and what is left queued;
* ``idle``: one pass of all timed work with nothing due, at 10,000 against a
  larger number of pending (not yet due) invitations (target: about 1x).

Phone numbers are Ofcom's drama ranges (twenty ranges of a thousand numbers:
07700 900xxx, 020 7946 0xxx, 0113 496 0xxx, ...), so twenty thousand patients
each have a number of their own and none can reach anyone. Logging goes through
prombot's own pipeline to /dev/null (formatting included, the terminal not).
PostgreSQL runs only when TEST_DATABASE_URL names an admin URL (as in the tests);
each run gets a database of its own, dropped afterwards, and ANALYZEd after
seeding as autovacuum would be in production.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url

from bot import logging as prombot_logging
from bot.app import create_app
from bot.services.dispatch import dispatch_due, due_page_query
from bot.services.due_work import run_due_work
from bot.services.outbox import claim_query, send_outbox
from bot.services.runtime import Runtime
from bot.settings import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.store.models import Invitation, Patient, Practice, new_id

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning
SMS_NUMBER = "+441632960999"  # the practice's (a drama number too)
# Ofcom's numbers for drama: (E.164 prefix, first number) ranges of a thousand each.
DRAMA_RANGES = [
    "+447700900",  # 07700 900xxx
    "+442079460",  # 020 7946 0xxx
    "+441134960",
    "+441144960",
    "+441159460",
    "+441164960",
    "+441174960",
    "+441184960",
    "+441214960",
    "+441314960",
    "+441414960",
    "+441514960",
    "+441614960",
    "+441914980",
    "+442896496",  # 028 9649 6xxx
    "+442920180",
    "+441632960",
    "+443069990",
    "+448081570",
    "+449098790",
]
NUMBERS = 1000 * len(DRAMA_RANGES)


def drama_number(n: int) -> str:
    """The n-th of Ofcom's drama numbers (0 <= n < 20,000)."""
    return f"{DRAMA_RANGES[n // 1000]}{n % 1000:03d}"


# -- databases ------------------------------------------------------------------------------


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated database URL of the kind asked for; removed afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    admin_url = os.environ["TEST_DATABASE_URL"]
    name = f"prombot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def runtime(url: str, fake_url: str) -> Runtime:
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "SMS_GATEWAY": "twilio",
            "TWILIO_API_URL": fake_url,
            "PUBLIC_BASE_URL": "https://prombot.bench",  # not loopback: no status callbacks
            "SMS_MAX_PER_SECOND": 0,
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    return app.extensions["prombot.runtime"]


def seed(rt: Runtime, due: int, *, pending: int = 0) -> None:
    """A practice open around the clock; ``due`` invitations due now, ``pending`` later."""
    with rt.engine.begin() as connection:
        practice_id = connection.execute(
            text("SELECT id FROM practice WHERE sms_number = :n"), {"n": SMS_NUMBER}
        ).scalar()
        if practice_id is None:
            practice_id = new_id()
            connection.execute(
                insert(Practice),
                [
                    {
                        "id": practice_id,
                        "name": "Bench Surgery",
                        "sms_number": SMS_NUMBER,
                        "timezone": "Europe/London",
                        "nation": "NONE",
                        "send_window_start": "00:00",
                        "send_window_end": "24:00",
                        "working_days": "mon tue wed thu fri sat sun",
                        "reminder_after_hours": 24,
                        "max_reminders": 1,
                        "expire_after_days": 7,
                        "invitation_valid_days": 14,
                        "escalate_after_minutes": 30,
                        "escalate_every_minutes": 30,
                        "created_at": NOW,
                    }
                ],
            )
        # One patient (and number) per due invitation; pending ones share the same
        # patients, ten or more each, as the drama ranges hold twenty thousand numbers.
        assert due <= NUMBERS
        people = max(due, min(pending, NUMBERS))
        patient_ids = [new_id() for _ in range(people)]
        for start in range(0, people, 5000):
            connection.execute(
                insert(Patient),
                [
                    {
                        "id": patient_ids[n],
                        "practice_id": practice_id,
                        "name": f"Bench Patient {n}",
                        "phone": drama_number(n),
                        "language": "en",
                        "opted_out": False,
                        "created_at": NOW,
                    }
                    for n in range(start, min(people, start + 5000))
                ],
            )
        total = due + pending
        for start in range(0, total, 5000):
            connection.execute(
                insert(Invitation),
                [
                    {
                        "id": new_id(),
                        "practice_id": practice_id,
                        "patient_id": patient_ids[n if n < due else (n - due) % people],
                        "instrument": "phq9",
                        "continue_if_positive": False,
                        "due_at": NOW - timedelta(minutes=1)
                        if n < due
                        else NOW + timedelta(days=30 + n % 60),
                        "status": "pending",
                        "created_at": NOW,
                    }
                    for n in range(start, min(total, start + 5000))
                ],
            )
    analyse(rt)


def analyse(rt: Runtime) -> None:
    """What autovacuum does in production (it is off on the development machines)."""
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def outbox_size(rt: Runtime, status: str = "queued") -> int:
    with rt.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM message WHERE direction = 'outbound' AND status = :s"
                " AND provider_sid IS NULL"
            ),
            {"s": status},
        ).scalar_one()


# -- fake-twilio, in a process of its own ------------------------------------------------


@contextmanager
def fake_twilio() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "fake-twilio", "--port", str(port)]
        if _cli_is_module()
        else [str(Path(sys.executable).parent / "prombot"), "fake-twilio", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _cli_is_module() -> bool:
    return not (Path(sys.executable).parent / "prombot").exists()


def _reset_fake(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(url + "/_fake/reset", method="POST"), timeout=10)


# -- the cases ------------------------------------------------------------------------------


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = work()
    return time.perf_counter() - began, result


def case_send(kind: str, folder: Path, fake_url: str, texts: int, repeats: int) -> dict[str, Any]:
    """Our outbox against the official client, interleaved, best of ``repeats``."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeats):
        with database(kind, folder) as url:
            rt = runtime(url, fake_url)
            seed(rt, texts // 2)
            dispatch_due(rt, NOW, send=False)
            analyse(rt)
            with rt.engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT phone, body FROM message WHERE status = 'queued'"
                        " ORDER BY created_at, position, id"
                    )
                ).all()
            seconds, counts = timed(lambda rt=rt: send_outbox(rt, NOW))
            assert counts["sent"] == len(rows), counts
            ours.append(len(rows) / seconds)
            rt.engine.dispose()
        client = Client(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, http_client=TwilioHttpClient(timeout=10))
        client.api.base_url = fake_url

        def official(rows: list[Any] = rows, client: Client = client) -> None:
            callback = "https://prombot.bench/sms/status?message_id=" + "0" * 32
            for phone, body in rows:
                client.messages.create(
                    to=phone,
                    from_=SMS_NUMBER,
                    body=body,
                    validity_period=14_400,
                    status_callback=callback,
                )

        seconds, _ = timed(official)
        theirs.append(len(rows) / seconds)
        _reset_fake(fake_url)
    ratio = max(ours) / max(theirs)
    return {
        "texts": len(rows),
        "prombot_texts_per_second": round(max(ours), 1),
        "official_client_texts_per_second": round(max(theirs), 1),
        "runs": {"prombot": [round(x, 1) for x in ours], "official": [round(x, 1) for x in theirs]},
        "ratio": round(ratio, 3),
        "target": ">= 0.8",
        "met": ratio >= 0.8,
    }


def case_scaling(
    kind: str, folder: Path, fake_url: str, small: int, large: int, repeats: int = 3
) -> dict[str, Any]:
    """``dispatch_due`` at ``small`` and ``large`` due, each on a fresh database.

    A first run of ``small // 10`` is thrown away (it pays for compiling statements
    and warming the caches, which would otherwise count against the small size
    only); then the sizes alternate ``repeats`` times and each keeps its fastest
    run, the one least disturbed by the rest of a shared machine.
    """
    runs: dict[int, list[float]] = {small: [], large: []}
    plans: dict[str, list[str]] = {}
    for size in [small // 10] + [small, large] * repeats:
        with database(kind, folder) as url:
            rt = runtime(url, fake_url)
            seed(rt, size)
            took, counts = timed(lambda rt=rt: dispatch_due(rt, NOW, send=False))
            assert counts["started"] == size, counts
            if size in runs:
                runs[size].append(took)
            if size == large and not plans:
                analyse(rt)
                plans = explain_all(rt)
                claim, _ = timed(lambda rt=rt: send_outbox(rt, NOW, max_batches=1))
                plans["first_claim_and_send_of_one_batch_seconds"] = [str(round(claim, 3))]
            rt.engine.dispose()
    seconds = {size: min(times) for size, times in runs.items()}
    ratio = seconds[large] / seconds[small]
    return {
        "due": [small, large],
        "seconds": [round(seconds[small], 2), round(seconds[large], 2)],
        "runs": {str(size): [round(t, 2) for t in times] for size, times in runs.items()},
        "ratio": round(ratio, 2),
        "linear": large / small,
        "target": f"<= {1.05 * large / small:g}",
        "met": ratio <= 1.05 * large / small,
        "plans": plans,
    }


def case_one_run(kind: str, folder: Path, fake_url: str, due: int) -> dict[str, Any]:
    """One run of all the scheduler's timed work (``run_due_work``, what ``prombot tick``
    runs): the due invitations started and every opening text sent, unpaced."""
    with database(kind, folder) as url:
        rt = runtime(url, fake_url)
        seed(rt, due)
        took, summary = timed(lambda rt=rt: run_due_work(rt, NOW))
        left = outbox_size(rt)
        rt.engine.dispose()
    _reset_fake(fake_url)
    started, sent = summary["dispatch"]["started"], summary["outbox"]["sent"]
    return {
        "due": due,
        "started": started,
        "sent": sent,
        "left_queued": left,
        "seconds": round(took, 1),
        "texts_per_second": round(sent / took, 1),
        "met": started == due and left == 0,
    }


def case_idle(kind: str, folder: Path, fake_url: str, small: int, large: int) -> dict[str, Any]:
    seconds: dict[int, float] = {}
    for size in (small, large):
        with database(kind, folder) as url:
            rt = runtime(url, fake_url)
            seed(rt, 0, pending=size)
            run_due_work(rt, NOW)  # warm
            runs = [timed(lambda rt=rt: run_due_work(rt, NOW))[0] for _ in range(5)]
            seconds[size] = statistics.median(runs)
            rt.engine.dispose()
    ratio = seconds[large] / seconds[small]
    return {
        "pending": [small, large],
        "seconds": [round(seconds[small], 4), round(seconds[large], 4)],
        "ratio": round(ratio, 2),
        "target": "about 1",
    }


# -- plans ----------------------------------------------------------------------------------

BUSY = "SELECT phone FROM conversation WHERE phone IN (:a, :b) AND active = :t"
RECONCILE = """
SELECT id FROM message WHERE status = 'sending' AND direction = 'outbound'
  AND coalesce(provider_sid, '') = '' ORDER BY created_at, position, id LIMIT 200
"""
INBOUND = """
SELECT p.id FROM practice pr JOIN patient p ON p.practice_id = pr.id
LEFT JOIN conversation c ON c.phone = :a AND c.active = :t AND c.practice_id = pr.id
LEFT JOIN invitation i ON i.id = c.invitation_id
WHERE pr.sms_number = :n AND p.phone = :a
"""


def explain_all(rt: Runtime) -> dict[str, list[str]]:
    params = {"now": NOW, "a": drama_number(1), "b": drama_number(2), "t": True, "n": SMS_NUMBER}
    prefix = "EXPLAIN QUERY PLAN " if rt.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = {
        "claim": explain_real(rt, claim_query(NOW, 200), prefix),
        "due_page": explain_real(rt, due_page_query(NOW, (NOW, "0" * 32), 200), prefix),
    }
    with rt.engine.connect() as connection:
        for name, sql in (
            ("busy_numbers", BUSY),
            ("reconcile", RECONCILE),
            ("inbound_lookup", INBOUND),
        ):
            rows = connection.execute(text(prefix + sql), params).all()
            plans[name] = [" ".join(str(c) for c in row) for row in rows]
    return plans


def explain_real(rt: Runtime, statement: Any, prefix: str) -> list[str]:
    """The plan of the statement the service really sends, with its real parameters."""
    plan: list[str] = []

    def explain(_conn, cursor, sql, parameters, _context, _many) -> None:
        if not plan and sql.lstrip().upper().startswith("SELECT"):
            cursor.execute(prefix + sql, parameters)
            plan.extend(" ".join(str(c) for c in row) for row in cursor.fetchall())

    event.listen(rt.engine, "before_cursor_execute", explain)
    try:
        with rt.engine.connect() as connection:
            connection.execute(statement).all()
            connection.rollback()
    finally:
        event.remove(rt.engine, "before_cursor_execute", explain)
    return plan


# -- the run --------------------------------------------------------------------------------


def run(
    *, quick: bool = False, kinds: list[str] | None = None, sizes: dict[str, int] | None = None
) -> dict[str, Any]:
    """Every case on each database; ``sizes`` overrides the case sizes (see the report)."""
    if kinds is None:
        kinds = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
    sizes = (
        {"send": 200, "repeats": 1, "small": 200, "large": 2000, "one_run": 500, "idle": 10_000}
        if quick
        else {
            "send": 1000,
            "repeats": 3,
            "small": 2000,
            "large": 20_000,
            "one_run": 2000,  # `python -m bench --only dispatch --one-run 10000`: issue 12's
            "idle": 200_000,
        }
    ) | (sizes or {})
    null = open(os.devnull, "w")  # noqa: SIM115
    prombot_logging.configure(json_lines=True, stream=null)
    report: dict[str, Any] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "sizes": sizes,
        "databases": {},
    }
    folder = Path(tempfile.mkdtemp(prefix="prombot-bench-"))
    try:
        with fake_twilio() as fake_url:
            for kind in kinds:
                result: dict[str, Any] = {}
                print(f"[{kind}] send ...", flush=True)
                result["send"] = case_send(kind, folder, fake_url, sizes["send"], sizes["repeats"])
                print(f"[{kind}] scaling ...", flush=True)
                result["scaling"] = case_scaling(
                    kind, folder, fake_url, sizes["small"], sizes["large"]
                )
                print(f"[{kind}] one run ...", flush=True)
                result["one_run"] = case_one_run(kind, folder, fake_url, sizes["one_run"])
                print(f"[{kind}] idle ...", flush=True)
                result["idle"] = case_idle(kind, folder, fake_url, 10_000, sizes["idle"])
                report["databases"][kind] = result
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        "| database | figure | measured | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, r in report["databases"].items():
        s, sc, one, idle = r["send"], r["scaling"], r["one_run"], r["idle"]
        lines += [
            f"| {kind} | unpaced dispatch of {s['texts']} texts vs official client"
            f" | {s['prombot_texts_per_second']} vs {s['official_client_texts_per_second']}"
            f" texts/s | {s['ratio']} | {s['target']} |",
            f"| {kind} | dispatch_due {sc['due'][0]:,} vs {sc['due'][1]:,} due"
            f" | {sc['seconds'][0]} s vs {sc['seconds'][1]} s | {sc['ratio']}x | {sc['target']} |",
            f"| {kind} | {one['due']:,} due in one scheduler run"
            f" | {one['sent']:,} texts sent in {one['seconds']} s, {one['left_queued']} left"
            f" | - | all sent |",
            f"| {kind} | idle tick, {idle['pending'][0]:,} vs {idle['pending'][1]:,} pending"
            f" | {idle['seconds'][0]} s vs {idle['seconds'][1]} s | {idle['ratio']}x | ~1x |",
        ]
    return "\n".join(lines)
