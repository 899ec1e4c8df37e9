"""``prombot scheduler``: one long-running process that drives all timed work.

APScheduler 3's ``BlockingScheduler`` in its own process, never inside the
web server's workers (each worker would run every job). The jobs are short
and only claim due rows from the database (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so several scheduler processes can run side by side, and a
restarted one simply carries on: what is due lives in the database, not in
APScheduler's memory. Outbound texts are claimed with a token each
(``bot.services.outbox``): a process killed mid-send (``kill -9``) leaves
nothing that another process, or this one restarted, cannot settle exactly
once; at start-up it settles what it finds left over before its first job.

Settings: jobs run in UTC (each practice's own zone and send window are
applied by the services); ``coalesce`` runs a missed job once, not once per
missed interval; ``max_instances=1`` keeps a slow run from overlapping
itself; ``misfire_grace_time`` lets a job that was late by a few seconds
still run.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from bot.services.alert_notices import escalate_due, notify_due
from bot.services.dispatch import dispatch_due
from bot.services.outbox import send_outbox
from bot.services.runtime import Runtime
from bot.services.timers import expire_due, remind_due
from bot.settings import SettingsError

log = structlog.get_logger(__name__)

# job name -> (seconds between runs, the service it calls)
JOBS: dict[str, tuple[int, Callable[[Runtime, datetime], Any]]] = {
    "expiries": (60, expire_due),
    "reminders": (60, remind_due),
    "dispatch": (30, lambda rt, now: dispatch_due(rt, now, send=False)),
    "outbox": (5, send_outbox),
    "alert_notifications": (10, notify_due),
    "alert_escalations": (60, escalate_due),
}


def build_scheduler(app: Flask, *, intervals: dict[str, int] | None = None) -> BlockingScheduler:
    runtime: Runtime = app.extensions["prombot.runtime"]
    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
    )
    check_intervals(intervals or {})
    for name, (seconds, service) in JOBS.items():
        every = (intervals or {}).get(name, seconds)
        scheduler.add_job(
            _run,
            "interval",
            seconds=every,
            args=[name, service, runtime],
            id=name,
            name=name,
            next_run_time=datetime.now(UTC),
        )
    return scheduler


def _run(name: str, service: Callable[[Runtime, datetime], Any], runtime: Runtime) -> None:
    """One job run; an error is logged and the job runs again next time."""
    try:
        result = service(runtime, datetime.now(UTC))
    except Exception as exc:
        # the error's class only: its message and traceback may quote personal data
        log.error("scheduler.job_failed", job=name, error=type(exc).__name__)
        return
    counts = {k: v for k, v in (result or {}).items() if isinstance(v, int) and v}
    if counts:
        log.info("scheduler.job_done", job=name, **counts)


def check_intervals(intervals: dict[str, int]) -> None:
    """``PROMBOT_JOB_INTERVALS`` may only name jobs that exist (a typo would be ignored)."""
    unknown = sorted(set(intervals) - set(JOBS))
    if unknown:
        raise SettingsError(
            f"PROMBOT_JOB_INTERVALS: no job named {', '.join(unknown)}; "
            f"the jobs are {', '.join(sorted(JOBS))}"
        )


def run(app: Flask, *, intervals: dict[str, int] | None = None) -> None:
    """Reconcile what a crash left in flight, then run the jobs until SIGTERM or Ctrl-C."""
    runtime: Runtime = app.extensions["prombot.runtime"]
    if intervals is None:
        intervals = runtime.settings.prombot_job_intervals
    check_intervals(intervals)
    from bot.services.outbox import reconcile_in_flight

    log.info("scheduler.reconciling")
    reconcile_in_flight(runtime, datetime.now(UTC))
    scheduler = build_scheduler(app, intervals=intervals)

    def _stop(_signum: int, _frame: object) -> None:
        log.info("scheduler.stopping")
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    log.info("scheduler.started", jobs=sorted(j.id for j in scheduler.get_jobs()))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
    log.info("scheduler.stopped")
