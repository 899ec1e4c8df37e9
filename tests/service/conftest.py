"""Fixtures for service-tier tests: the app on SQLite and PostgreSQL, a fixed clock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.app import create_app
from bot.instruments import Catalogue
from bot.instruments.loader import builtin_catalogue, load_catalogue
from bot.services.demo import Demo, seed_demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from tests.dbs import PostgresDatabase, SqliteTemplate, postgres_admin_url

AUTH_TOKEN = "test-twilio-auth-token"
PUBLIC_BASE_URL = "https://prombot.test"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase | None]:
    url = postgres_admin_url()
    if url is None:
        yield None
        return
    database = PostgresDatabase(url)
    yield database
    database.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: SqliteTemplate,
) -> str:
    """A migrated, empty database: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return sqlite_template.fresh(tmp_path)
    database = request.getfixturevalue("postgres_database")
    if database is None:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    return database.reset()


@dataclass
class Clock:
    """The time every service call in a test sees; tests move it on explicitly."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))  # a Monday morning


def _shipped_catalogue_once(extra_dirs: Iterable[Path | str] = ()) -> Catalogue:
    """The shipped questionnaires are read-only: parse them once per worker, not per app."""
    extra = list(extra_dirs)
    return load_catalogue(extra) if extra else builtin_catalogue()


@pytest.fixture
def app(
    database_url: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    monkeypatch.setenv("PROMBOT_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setattr("bot.app.load_catalogue", _shipped_catalogue_once)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "SMS_GATEWAY": "local",
            "PROMBOT_CLOCK": clock,
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    yield app
    app.extensions["prombot.runtime"].engine.dispose()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return app.extensions["prombot.runtime"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def demo(runtime: Runtime, clock: Clock) -> Demo:
    with transaction(runtime.engine) as session:
        return seed_demo(session, clock.now, password_hash=runtime.settings.staff_password_hash)


@pytest.fixture
def api_headers(demo: Demo) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.api_token}"}
