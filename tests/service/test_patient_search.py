"""Finding a patient stays an index range with many patients (migration 0009).

Pinned by what does not depend on the machine: the statements a page costs,
and the plan each database chooses for each kind of search. Timing is the
benchmark's business (``python -m bench --only patients``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from bot.services import patient_search
from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
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


@pytest.mark.parametrize("query", ["", "test person 02", "person", "0123", "07700 900123"])
def test_a_page_is_two_statements_however_many_patients(
    runtime: Runtime, many: Demo, query: str
) -> None:
    with counting(runtime.engine) as statements:
        found = patient_search.search(runtime, many.practice.id, query, page=3)
    assert [s for s in statements if s in ("SELECT",)] == ["SELECT", "SELECT"], statements
    assert len(statements) <= 3, statements  # and at most SQLite's BEGIN
    assert found.patients or query  # the unfiltered third page is full


def _plan(runtime: Runtime, query: str, practice_id: str) -> str:
    condition = patient_search.matching(practice_id, query)
    statement = select(Patient).where(Patient.practice_id == practice_id)
    if condition is not None:
        statement = statement.where(condition)
    statement = statement.order_by(Patient.name_key, Patient.id).limit(patient_search.PAGE_SIZE)
    with runtime.engine.connect() as connection:
        dialect = connection.dialect.name
        compiled = statement.compile(
            dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect(),
            compile_kwargs={"literal_binds": True},
        )
        if dialect == "postgresql":
            # a few hundred rows fit in one page, where a scan is cheapest: ask whether
            # the index can answer, as it must at 10,000 patients
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            rows = connection.execute(text(f"EXPLAIN {compiled}")).all()
            return "\n".join(r[0] for r in rows)
        rows = connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "\n".join(r[-1] for r in rows)


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("", ["ix_patient_practice_name_key"]),  # the list: in index order, no sort
        ("test person 0123", ["ix_patient_practice_name_key", "ix_patient_practice_family_key"]),
        ("9434765919", ["ix_patient_practice_nhs_number", "ix_patient_practice_phone_key"]),
        ("900123", ["ix_patient_practice_phone_key"]),
    ],
)
def test_each_search_is_an_index_range(
    runtime: Runtime, many: Demo, query: str, indexes: list[str]
) -> None:
    plan = _plan(runtime, query, many.practice.id)
    for index in indexes:
        assert index in plan, plan
    assert "Seq Scan" not in plan and "SCAN patient" not in plan, plan
    if not query:
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
