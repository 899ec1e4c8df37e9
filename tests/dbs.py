"""Test databases: a migrated SQLite file per test, and a PostgreSQL database per run.

Every database test runs on SQLite, and on PostgreSQL too when
TEST_DATABASE_URL names a server (CI always sets it). Parametrised test ids
contain "sqlite" or "postgresql", which .ci/run reads to prove the
PostgreSQL half ran.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url

from bot.store.db import make_engine
from bot.store.migrate import upgrade

TABLES_IN_DELETE_ORDER = [
    "audit_event",
    "answer",
    "result",
    "alert",
    "message",
    "conversation",
    "invitation",
    "consultation",
    "protocol",
    "patient",
    "api_token",
    "staff_user",
    "practice",
]


def postgres_admin_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


class SqliteTemplate:
    """Migrate once, copy the file for each test: as real as migrating, much faster."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        upgrade(engine)
        engine.dispose()

    def fresh(self, folder: Path) -> str:
        target = folder / f"prombot-{uuid.uuid4().hex[:8]}.db"
        shutil.copy(self.path, target)
        return f"sqlite:///{target}"


class PostgresDatabase:
    """A database of our own on the test server for this run, dropped afterwards.

    Migrated once; ``reset`` empties it for the next test with DELETE, every table
    (as the migrations left them, alembic's own excepted) children first, in one
    transaction. On these nearly empty tables that is about ten times quicker
    than TRUNCATE, which makes new files for every table it empties.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"prombot_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)
        engine = make_engine(self.url)
        upgrade(engine)
        tables = MetaData()
        tables.reflect(engine)
        self.tables = [t for t in reversed(tables.sorted_tables) if t.name != "alembic_version"]
        engine.dispose()

    def reset(self) -> str:
        engine = create_engine(self.url)
        with engine.begin() as connection:
            for table in self.tables:
                connection.execute(table.delete())
        engine.dispose()
        return self.url

    def drop(self) -> None:
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()
