"""Finding a patient stays an index range with many patients (migration 0009).

Pinned by what does not depend on the machine: the statements a page costs,
and the plan each database chooses for each kind of search. Timing is the
benchmark's business (``python -m bench --only patients``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from bot.services import patient_search
from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import Patient, new_id, patient_search_keys
from tests.service.conftest import Clock
from tests.service.test_round_trips import counting

PATIENTS = 400


@pytest.fixture
def many(runtime: Runtime, demo: Demo, clock: Clock) -> Demo:
    """The demo practice with a few hundred more patients (written in bulk, keys and all)."""
    rows = []
    for n in range(PATIENTS):
        name, phone = f"Test Person {n:04d}", f"+4477009{200 + n:05d}"
        rows.append(
            {"id": new_id(), "practice_id": demo.practice.id, "name": name, "phone": phone,
             "language": "en", "opted_out": False, "created_at": clock.now,
             **patient_search_keys(name, phone)}
        )  # fmt: skip
    with transaction(runtime.engine) as session:
        session.execute(Patient.__table__.insert(), rows)
    with runtime.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE patient"))
    return demo


def test_the_search_keys_follow_the_name_and_the_mobile(runtime: Runtime, demo: Demo) -> None:
    alex = next(p for p in demo.patients if p.name == "Alex Example")
    with transaction(runtime.engine) as session:
        patient = session.get(Patient, alex.id)
        assert (patient.name_key, patient.family_key) == ("alex example", "example alex")
        assert patient.phone_key == "101009007744"
        patient.name, patient.phone = "Zoë O'Brien-Smith", "+447700900199"
    with transaction(runtime.engine) as session:
        patient = session.get(Patient, alex.id)
        assert (patient.name_key, patient.family_key) == ("zoe o brien smith", "smith zoe o brien")
        assert patient.phone_key == "991009007744"


@pytest.mark.parametrize(
    ("query", "selects"),
    [
        ("", 2),  # the count and the page
        ("test person 02", 2),
        ("test", 2),
        ("0250", 2),  # the end of a mobile
        ("07700 900250", 2),
        ("0123", 1),  # nobody: the count alone
    ],
)
def test_a_page_is_at_most_two_statements_however_many_patients(
    runtime: Runtime, many: Demo, query: str, selects: int
) -> None:
    with counting(runtime.engine) as statements:
        found = patient_search.search(runtime, many.practice.id, query, page=3)
    assert [s for s in statements if s == "SELECT"] == ["SELECT"] * selects, statements
    assert len(statements) <= selects + 1, statements  # and at most SQLite's BEGIN
    assert bool(found.patients) == (selects == 2)


@contextmanager
def executed(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent to the database, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _plans(runtime: Runtime, query: str, practice_id: str) -> list[str]:
    """The plan of each statement a search sends, as the database would run it."""
    with executed(runtime.engine) as sent:
        patient_search.search(runtime, practice_id, query)
    plans = []
    with runtime.engine.connect() as connection:
        postgresql = connection.dialect.name == "postgresql"
        if postgresql:
            # a few hundred rows fit in one page, where a scan is cheapest: ask whether
            # the indexes can answer, as they must at 10,000 patients
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in sent:
            rows = connection.exec_driver_sql(
                ("EXPLAIN " if postgresql else "EXPLAIN QUERY PLAN ") + statement, parameters
            ).all()
            plans.append("\n".join(str(r[0] if postgresql else r[-1]) for r in rows))
    return plans


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("", ["ix_patient_practice_name_key"]),  # the list: in index order, no sort
        ("test person 0123", ["ix_patient_practice_name_key", "ix_patient_practice_family_key"]),
        ("9434765919", ["ix_patient_practice_nhs_number", "ix_patient_practice_phone_key"]),
        ("900250", ["ix_patient_practice_phone_key"]),
    ],
)
def test_each_search_is_an_index_range_never_a_walk_of_the_practice(
    runtime: Runtime, many: Demo, query: str, indexes: list[str]
) -> None:
    count_plan, page_plan = _plans(runtime, query, many.practice.id)
    for index in indexes:
        assert index in page_plan, page_plan
        assert index in count_plan or not query, count_plan
    for plan in (count_plan, page_plan):
        assert "Seq Scan" not in plan and "SCAN patient" not in plan, plan
    if not query:
        assert "TEMP B-TREE" not in page_plan and "Sort" not in page_plan, page_plan
    else:
        # the rows are looked up by id from the ranges' union, not found by walking
        # the practice (its id in a range of the page's own query) in name order
        assert "ix_patient_practice_id" not in page_plan, page_plan
        assert "(practice_id=?)" not in page_plan, page_plan


def test_migration_0009_fills_the_keys_of_patients_enrolled_before_it(tmp_path) -> None:
    """Upgrading a database that already has patients: each is found by the new search."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0008")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO practice (id, name, sms_number, timezone, nation, send_window_start,"
                " send_window_end, working_days, reminder_after_hours, max_reminders,"
                " expire_after_days, invitation_valid_days, escalate_after_minutes,"
                " escalate_every_minutes, created_at) VALUES ('p1', 'Old Surgery',"
                " '+447700900998', 'Europe/London', 'ENG', '09:00', '17:00', 'mon', 24, 1, 7,"
                " 14, 30, 30, '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO patient (id, practice_id, name, phone, language, opted_out,"
                " created_at) VALUES ('a1', 'p1', 'Zoë Older', '+447700900321', 'en', 0,"
                " '2026-01-01 00:00:00')"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        keys = connection.execute(
            text("SELECT name_key, family_key, phone_key FROM patient WHERE id = 'a1'")
        ).one()
    assert tuple(keys) == ("zoe older", "older zoe", "123009007744")
    engine.dispose()
