"""The schema: migrations build it on both databases and agree with the models."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401
from bot.app import build_runtime
from bot.services.runtime import Runtime
from bot.store import db
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from tests.dbs import SqliteTemplate


def test_migrations_match_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upgrade_is_safe_to_repeat(runtime: Runtime) -> None:
    upgrade(runtime.engine)
    upgrade(runtime.engine)
    tables = set(inspect(runtime.engine).get_table_names())
    assert {"practice", "patient", "invitation", "conversation", "message", "alert"} <= tables


def test_sqlite_is_tuned_for_a_server_and_a_scheduler(
    sqlite_template: SqliteTemplate, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_template.fresh(tmp_path))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()


def test_a_sqlite_writer_waits_for_the_write_lock_and_takes_it_once_freed(
    sqlite_template: SqliteTemplate, tmp_path: Path
) -> None:
    """A second writer waits for the first and begins once it commits, polling every few
    ms rather than sleeping SQLite's 25-100 ms steps; other statements keep the timeout."""
    engine = make_engine(sqlite_template.fresh(tmp_path))
    began: list[float] = []

    def second_writer() -> None:
        with transaction(engine) as session:
            session.execute(text("SELECT 1"))  # the first statement begins
            began.append(time.monotonic())

    with transaction(engine) as first:
        first.execute(text("SELECT 1"))
        waiter = threading.Thread(target=second_writer)
        waiter.start()
        time.sleep(0.3)
        assert began == []  # still waiting for the lock
        released = time.monotonic()
    waiter.join(timeout=10)
    assert len(began) == 1 and began[0] >= released
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()


def test_a_sqlite_writer_that_never_gets_the_lock_fails_after_the_busy_timeout(
    sqlite_template: SqliteTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    engine = make_engine(sqlite_template.fresh(tmp_path))
    with transaction(engine) as first:
        first.execute(text("SELECT 1"))
        with pytest.raises(OperationalError, match="locked"), transaction(engine) as second:
            second.execute(text("SELECT 1"))
    engine.dispose()


def test_a_process_holds_at_most_the_database_pool_and_overflow_set(
    database_url: str, app: Flask
) -> None:
    """Eight gunicorn workers and a scheduler must fit PostgreSQL's max_connections."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool is PostgreSQL's")
    settings = app.extensions["prombot.runtime"].settings
    assert (settings.database_pool_size, settings.database_max_overflow) == (5, 5)  # defaults
    changed = settings.model_copy(update={"database_pool_size": 3, "database_max_overflow": 2})
    engine = build_runtime(app, changed).engine
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 2)
    engine.dispose()
