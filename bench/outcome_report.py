"""The practice outcomes report at 10,000 and 100,000 results, against baselines from the same run.

``python -m bench --only report`` builds a migrated database (SQLite in a
temporary folder; PostgreSQL too when ``TEST_DATABASE_URL`` names a server, in
a database of its own that is dropped afterwards), fills one practice with
10,000 results by bulk inserts (each with its invitation and conversation;
patients with a baseline and follow-ups at about 6 and 12 weeks; one alert per
20 results; a second practice of the same size as noise), times the report,
grows the practice to 100,000 results and times it again.

Absolute times depend on the machine, so each is reported with two
baselines measured in the same run: the report at 10,000 results (a ratio
near 10 means it grows linearly), and a plain ``SELECT instrument, count(*)
... GROUP BY instrument`` over the same practice's results at 100,000 (the
least any report over those rows must do). Each timing is the best of
``repeats`` runs. The tables are ANALYZEd after loading, as autovacuum would.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from bot.instruments import builtin_catalogue
from bot.services.outcome_report import build_report
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.store.models import (
    Alert,
    Consultation,
    Conversation,
    Invitation,
    Patient,
    Practice,
    ResultRecord,
)

SMALL, LARGE = 10_000, 100_000
# Patients' numbers: +999 is no country's code, so no bench number can be anyone's phone
# (Ofcom's 1,000 drama numbers are too few for 25,000 patients). Nothing is ever sent.
RESULTS_PER_PATIENT = 4  # a baseline, about 6 weeks, about 12 weeks, and one more
CHUNK = 5_000
START = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
PERIOD = {"start": date(2025, 1, 1), "end": date(2026, 12, 31)}
CATALOGUE = builtin_catalogue()


def _id() -> str:
    return uuid.uuid4().hex


class Loader:
    """Bulk inserts of a practice's history: rows as dicts, ``CHUNK`` at a time."""

    def __init__(self, engine: Engine, practice_id: str, seed: int) -> None:
        self.engine = engine
        self.practice_id = practice_id
        self.random = random.Random(seed)
        self.results = 0
        self.phone = 0

    def add_results(self, count: int, phone_prefix: str) -> None:
        rows: dict[Any, list[dict[str, Any]]] = {
            t: [] for t in (Patient, Consultation, Invitation, Conversation, ResultRecord, Alert)
        }
        rng = self.random
        for _ in range(count // RESULTS_PER_PATIENT):
            self.phone += 1
            patient = _id()
            baseline_at = START + timedelta(days=rng.randrange(0, 600), minutes=rng.randrange(480))
            rows[Patient].append(
                {
                    "id": patient,
                    "practice_id": self.practice_id,
                    "name": "Bench Patient",
                    "phone": f"{phone_prefix}{self.phone:07d}",
                    "language": "en",
                    "opted_out": False,
                    "created_at": baseline_at,
                }
            )
            consultation = _id()
            rows[Consultation].append(
                {
                    "id": consultation,
                    "practice_id": self.practice_id,
                    "patient_id": patient,
                    "occurred_at": baseline_at - timedelta(days=1),
                    "protocol": rng.choice(("depression_review", "anxiety_review")),
                    "created_at": baseline_at - timedelta(days=1),
                }
            )
            instrument = rng.choice(("phq9", "phq9", "gad7", "who5"))
            top = {"phq9": 27, "gad7": 21, "who5": 25}[instrument]
            score = rng.randrange(top + 1)
            for step, days in enumerate((0, 40 + rng.randrange(5), 80 + rng.randrange(8), 150)):
                at = baseline_at + timedelta(days=days)
                invitation = _id()
                complete = rng.random() > 0.1
                status = "completed" if complete else "incomplete"
                reminders = rng.randrange(2)
                rows[Invitation].append(
                    {
                        "id": invitation,
                        "practice_id": self.practice_id,
                        "patient_id": patient,
                        "consultation_id": consultation,
                        "instrument": instrument,
                        "continue_if_positive": False,
                        "due_at": at,
                        "status": status,
                        "started_at": at,
                        "finished_at": at + timedelta(minutes=rng.randrange(5, 300)),
                        "created_at": baseline_at,
                    }
                )
                rows[Conversation].append(
                    {
                        "id": _id(),
                        "practice_id": self.practice_id,
                        "patient_id": patient,
                        "invitation_id": invitation,
                        "phone": rows[Patient][-1]["phone"],
                        "active": False,
                        "status": "completed" if complete else "expired",
                        "state_json": f'{{"reminders_sent": {reminders}}}',
                        "version": 1,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
                score = max(0, min(top, score + rng.randrange(-6, 5))) if step else score
                rows[ResultRecord].append(
                    {
                        "id": _id(),
                        "practice_id": self.practice_id,
                        "patient_id": patient,
                        "invitation_id": invitation,
                        "instrument": instrument,
                        "instrument_version": "1",
                        "status": status,
                        "total": score if complete else None,
                        "band": None,
                        "percentage": score * 4 if complete and instrument == "who5" else None,
                        "prorated": False,
                        "answers_json": "{}",
                        "flags_json": "[]",
                        "finished_at": at,
                    }
                )
                self.results += 1
                if self.results % 20 == 0:
                    acknowledged = rng.random() > 0.2
                    rows[Alert].append(
                        {
                            "id": _id(),
                            "practice_id": self.practice_id,
                            "patient_id": patient,
                            "invitation_id": invitation,
                            "flag": "self_harm_risk",
                            "severity": rng.choice(("urgent", "routine")),
                            "reason": "item",
                            "status": "acknowledged" if acknowledged else "open",
                            "created_at": at,
                            "acknowledged_at": at + timedelta(minutes=rng.randrange(1, 240))
                            if acknowledged
                            else None,
                            "escalations": rng.randrange(3),
                        }
                    )
        with Session(self.engine) as session:
            for table, table_rows in rows.items():
                for i in range(0, len(table_rows), CHUNK):
                    session.execute(insert(table), table_rows[i : i + CHUNK])
            session.commit()


def _practice(engine: Engine, name: str, number: str) -> str:
    with Session(engine) as session:
        practice = Practice(name=name, sms_number=number, created_at=START)
        session.add(practice)
        session.commit()
        return practice.id


def _analyze(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def _best(work: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best


def _report(engine: Engine, practice_id: str) -> Callable[[], object]:
    def work() -> object:
        with Session(engine) as session:
            practice = session.get(Practice, practice_id)
            assert practice is not None
            return build_report(session, CATALOGUE, practice, **PERIOD)

    return work


def _count(engine: Engine, practice_id: str) -> Callable[[], object]:
    def work() -> object:
        with Session(engine) as session:
            return session.exec(
                select(col(ResultRecord.instrument), func.count())
                .where(col(ResultRecord.practice_id) == practice_id)
                .group_by(col(ResultRecord.instrument))
            ).all()

    return work


def measure(engine: Engine, backend: str, repeats: int) -> dict[str, Any]:
    began = time.perf_counter()
    ours = _practice(engine, "Bench Surgery", "+447700900801")
    other = _practice(engine, "Noise Surgery", "+447700900802")
    loader, noise = Loader(engine, ours, 1), Loader(engine, other, 2)
    loader.add_results(SMALL, "+9991")
    noise.add_results(SMALL, "+9992")
    _analyze(engine)
    small = _best(_report(engine, ours), repeats)
    loader.add_results(LARGE - SMALL, "+9991")
    _analyze(engine)
    report = _report(engine, ours)
    check = report()
    large = _best(report, repeats)
    baseline = _best(_count(engine, ours), repeats)
    phq9 = next(o for o in check.outcomes if (o.instrument, o.window) == ("phq9", "6 weeks"))  # type: ignore[attr-defined]
    return {
        "backend": backend,
        "results": loader.results,
        "noise_results": noise.results,
        "report_10k_s": round(small, 4),
        "report_100k_s": round(large, 4),
        "baseline_group_count_100k_s": round(baseline, 4),
        "ratio_100k_to_10k": round(large / small, 2),
        "ratio_report_to_group_count": round(large / baseline, 1),
        "check_reach_due": check.reach.due,  # type: ignore[attr-defined]
        "check_phq9_6_weeks_paired": phq9.paired,
        "wall_s": round(time.perf_counter() - began, 1),
    }


@contextmanager
def _sqlite() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def _postgres(admin_url: str) -> Iterator[Engine]:
    name = f"prombot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def run(repeats: int = 3) -> dict[str, Any]:
    runs = []
    with _sqlite() as engine:
        runs.append(measure(engine, "sqlite", repeats))
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if admin_url:
        with _postgres(admin_url) as engine:
            runs.append(measure(engine, "postgresql", repeats))
    return {
        "benchmark": "outcome_report",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "repeats": repeats,
        "runs": runs,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "backend      report@10k  report@100k  GROUP BY count@100k  100k/10k  report/count",
    ]
    for r in report["runs"]:
        lines.append(
            f"{r['backend']:<12} {r['report_10k_s']:>9.3f}s {r['report_100k_s']:>11.3f}s"
            f" {r['baseline_group_count_100k_s']:>19.4f}s {r['ratio_100k_to_10k']:>9.2f}"
            f" {r['ratio_report_to_group_count']:>13.1f}"
        )
    return "\n".join(lines)
