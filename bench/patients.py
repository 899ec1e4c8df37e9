"""The patient list and its search at 10,000 patients, as ratios to a same-run baseline.

``python -m bench --only patients`` builds a migrated SQLite database in a
temporary folder (and a PostgreSQL one when ``TEST_DATABASE_URL`` names an admin
URL, ANALYZEd after seeding), gives the demo practice 10,000 more patients (and a second
practice 10,000 of its own, as noise in the same table) by bulk inserts, and
times, each the best of ``repeats`` runs, interleaved so that drift hits all
cases alike:

- the baseline: one page of the practice's patients in plain SQL
  (``SELECT * ... WHERE practice_id = ? ORDER BY name_key, id LIMIT 25``), the
  least any patient list must do;
- ``patient_search.search`` for the list (page 1 and page 200) and for each
  kind of search: the start of a name, of a surname, a broad one-letter
  search, an exact NHS number, and the last four digits of a mobile;
- the whole page through Flask (signed in as the demo's admin): the list, a
  search, and the live search's results fragment (htmx), against a second
  baseline, the change-password page (the same header and sign-in checks, no
  patients);
- for reference, the search as it was before migration 0009: ``lower(name)
  LIKE '%...%'`` ordered by ``lower(name)`` (a scan and a sort of the practice).
"""

from __future__ import annotations

import logging
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import insert, text

from bench.dispatch import database
from bot.app import create_app
from bot.services import patient_search
from bot.services.demo import DEMO_PASSWORD, seed_demo
from bot.store.db import transaction
from bot.store.migrate import upgrade
from bot.store.models import Patient, Practice, new_id, patient_search_keys

PATIENTS = 10_000
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
GIVEN = [
    "Alex",
    "Bo",
    "Cas",
    "Dana",
    "Eli",
    "Fran",
    "Gus",
    "Hana",
    "Ivo",
    "Jo",
    "Kit",
    "Lee",
    "Max",
    "Nia",
    "Ola",
    "Pat",
    "Rae",
    "Sam",
    "Tam",
    "Uma",
]
SYLLABLES = [
    "ab",
    "bel",
    "cor",
    "dun",
    "el",
    "fen",
    "gar",
    "hol",
    "ing",
    "jes",
    "kel",
    "lan",
    "mor",
    "nor",
    "ost",
    "pen",
    "quin",
    "ros",
    "sut",
    "tor",
]


def nhs_number(nine: int) -> str | None:
    """A valid NHS number from nine digits (invented), or None when no check digit fits."""
    digits = f"{nine:09d}"
    check = (11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
    return None if check == 10 else digits + str(check)


def _patients(practice_id: str, count: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    """Invented patients; mobiles under +999 (no country's code), so none is anyone's."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        surname = "".join(rng.choice(SYLLABLES) for _ in range(3)).title()
        name = f"{rng.choice(GIVEN)} {surname}"
        phone = f"+999{prefix}{n:07d}"
        rows.append(
            {"id": new_id(), "practice_id": practice_id, "name": name, "phone": phone,
             "nhs_number": nhs_number(400_000_000 + seed * 100_000 + n), "language": "en",
             "opted_out": False, "created_at": NOW, **patient_search_keys(name, phone)}
        )  # fmt: skip
    return rows


def _best(work: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best


def run(repeats: int = 5) -> dict:
    """SQLite, and PostgreSQL when ``TEST_DATABASE_URL`` names an admin URL (as in the tests)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    kinds = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
    databases = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            with database(kind, Path(folder)) as url:
                databases[kind] = _run_one(url, folder, repeats)
    return {
        "benchmark": "patients",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "patients": PATIENTS,
        "repeats": repeats,
        "databases": databases,
    }


def _run_one(url: str, folder: str, repeats: int) -> dict:
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "PROMBOT_INSTANCE": folder,
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    rt = app.extensions["prombot.runtime"]
    upgrade(rt.engine)
    with transaction(rt.engine) as session:
        practice = seed_demo(session, NOW).practice
        other = Practice(name="Other Surgery", sms_number="+447700900999", created_at=NOW)
        session.add(other)
        session.flush()
        other_id = other.id
    ours = _patients(practice.id, PATIENTS, seed=1, prefix="1")
    with transaction(rt.engine) as session:
        connection = session.connection()
        connection.execute(insert(Patient), ours)
        connection.execute(insert(Patient), _patients(other_id, PATIENTS, seed=2, prefix="2"))
    if rt.engine.dialect.name == "postgresql":  # as autovacuum would, in production
        with rt.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    sample = ours[4321]
    surname = sample["name"].split()[1]
    cases_search = {
        "list, page 1": ("", 1),
        "list, page 200": ("", 200),
        "name: given name and surname": (sample["name"], 1),
        "name: surname's start": (surname[:5], 1),
        "name: one letter (broad)": ("m", 1),
        "NHS number": (sample["nhs_number"], 1),
        "mobile: last 4 digits": (sample["phone"][-4:], 1),
    }
    for label, (query, _page) in cases_search.items():
        found = patient_search.search(rt, practice.id, query)
        if not found.patients:
            raise SystemExit(f"bench search {label!r} found nobody")

    page_sql = text("SELECT * FROM patient WHERE practice_id = :p ORDER BY name_key, id LIMIT 25")
    old_sql = text(
        "SELECT * FROM patient WHERE practice_id = :p AND lower(name) LIKE :q "
        "ORDER BY lower(name), id LIMIT 25"
    )
    old_count = text("SELECT count(*) FROM patient WHERE practice_id = :p AND lower(name) LIKE :q")

    def baseline() -> object:
        with rt.engine.connect() as connection:
            return connection.execute(page_sql, {"p": practice.id}).all()

    def before_0009() -> object:
        like = {"p": practice.id, "q": f"%{surname[:5].lower()}%"}
        with rt.engine.connect() as connection:
            connection.execute(old_count, like).one()
            return connection.execute(old_sql, like).all()

    client = app.test_client()
    login = client.get("/staff/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
    assert token is not None, "no CSRF token on the sign-in page"
    signed = client.post(
        "/staff/login",
        data={"csrf_token": token.group(1), "email": "admin@demo.prombot.test",
              "password": DEMO_PASSWORD},
    )  # fmt: skip
    assert signed.status_code == 302, signed.status_code

    def get(path: str, **headers: str) -> Callable[[], object]:
        def work() -> object:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            return response

        return work

    cases: dict[str, Callable[[], object]] = {"baseline: a page in plain SQL": baseline}
    for label, (query, page) in cases_search.items():
        cases[f"search: {label}"] = lambda q=query, p=page: patient_search.search(
            rt, practice.id, q, p
        )
    cases["before 0009: LIKE '%...%' and sort"] = before_0009
    pages: dict[str, Callable[[], object]] = {
        "baseline: bare staff page": get("/staff/password"),
        "page: the list": get("/staff/patients"),
        "page: a search": get(f"/staff/patients?q={surname[:5]}"),
        "page: live search fragment": get(
            f"/staff/patients/results?q={surname[:5]}", **{"HX-Request": "true"}
        ),
    }
    everything = {**cases, **pages}
    best = dict.fromkeys(everything, float("inf"))
    for _ in range(repeats):
        for name, work in everything.items():
            best[name] = min(best[name], _best(work, 1))
    rt.engine.dispose()
    base, page_base = best["baseline: a page in plain SQL"], best["baseline: bare staff page"]
    return {
        "baseline_seconds": round(base, 6),
        "page_baseline_seconds": round(page_base, 6),
        "measurements": [
            {
                "name": n,
                "seconds": round(s, 6),
                "ratio": round(s / (page_base if n in pages else base), 1),
                "against": "bare staff page" if n in pages else "plain SQL page",
            }
            for n, s in best.items()
        ],
    }


def table(report: dict) -> str:
    rows = [("database", "measure", "ms", "x baseline")]
    for kind, result in report["databases"].items():
        rows += [
            (kind, m["name"], f"{m['seconds'] * 1000:.2f}", f"{m['ratio']:.1f}")
            for m in result["measurements"]
        ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}"
        for a, b, c, d in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append(
        f"{report['patients']:,} patients (and as many in another practice): searches against "
        "one page in plain SQL, pages against a bare staff page, on the same database"
    )
    return "\n".join(lines)
