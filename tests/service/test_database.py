"""The schema: migrations build it on both databases and agree with the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401
from bot.services.runtime import Runtime
from bot.store.db import make_engine
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
