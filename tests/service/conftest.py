"""Fixtures for service-tier tests: the app on SQLite and PostgreSQL, a fixed clock."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.app import build_runtime, create_app
from bot.instruments import Catalogue
from bot.instruments.loader import builtin_catalogue, load_catalogue
from bot.services.demo import Demo, seed_demo
from bot.services.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.store.db import transaction
from bot.web.staff import LoginLimiter
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


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "SMS_GATEWAY": "local",
    "PROMBOT_SKIP_LOGGING_SETUP": True,
}


@dataclass
class SharedApp:
    """A built app and its config as ``create_app`` left it, restored before every test."""

    app: Flask
    config: dict[str, Any]
    wsgi_app: Any


class SharedApps:
    """One Flask app per worker (per distinct set of settings), a fresh runtime per test.

    Building the app (registering ~80 routes, which werkzeug compiles one by one)
    was most of a service test's time. The app's routes, templates and hooks do not
    change between tests; what does (the database, the clock, the settings a test
    changes with ``use_settings``, the sign-in limiter, anything a test swaps in)
    is set afresh for each test and put back after it.
    """

    def __init__(self) -> None:
        self.apps: dict[str, SharedApp] = {}
        self.settings: dict[tuple[tuple[str, str], ...], Settings] = {}

    def settings_for(self, database_url: str) -> Settings:
        """The settings ``create_app(TEST_CONFIG + database)`` would read, cached per
        environment (a test may set variables first): parsing them costs ~10 ms."""
        environment = tuple(sorted(os.environ.items()))
        settings = self.settings.get(environment)
        if settings is None:
            settings = load_settings({**TEST_CONFIG, "DATABASE_URL": database_url})
            self.settings[environment] = settings
        return settings.model_copy(update={"database_url": database_url})

    def app_for(self, settings: Settings, config: dict[str, Any]) -> SharedApp:
        key = repr(settings.model_dump(exclude={"database_url", "prombot_instance"}))
        shared = self.apps.get(key)
        if shared is None:
            app = create_app(config)
            app.extensions["prombot.runtime"].engine.dispose()
            shared = SharedApp(app=app, config=dict(app.config), wsgi_app=app.wsgi_app)
            self.apps[key] = shared
        return shared


@pytest.fixture(scope="session")
def shared_apps() -> SharedApps:
    return SharedApps()


@pytest.fixture
def app(
    database_url: str,
    clock: Clock,
    shared_apps: SharedApps,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    """The app on a fresh database, its clock the test's ``clock``."""
    monkeypatch.setattr("bot.app.load_catalogue", _shipped_catalogue_once)
    settings = shared_apps.settings_for(database_url)
    config = {**TEST_CONFIG, "DATABASE_URL": database_url, "PROMBOT_CLOCK": clock}
    shared = shared_apps.app_for(settings, config)
    app = shared.app
    app.config.clear()
    app.config.update(shared.config)
    app.config.update(settings.as_config())
    app.config.update(DATABASE_URL=database_url, PROMBOT_CLOCK=clock)
    app.extensions["prombot.login_limiter"] = LoginLimiter()
    runtime = build_runtime(app, settings)
    app.extensions["prombot.runtime"] = runtime
    yield app
    runtime.engine.dispose()
    current = app.extensions["prombot.runtime"]
    if current is not runtime:  # a test swapped in a runtime of its own
        current.engine.dispose()
    app.wsgi_app = shared.wsgi_app  # type: ignore[method-assign]


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
