"""Every setting prombot reads from the environment, typed and checked once at start-up.

``create_app`` (and so every ``prombot`` command, the scheduler included)
builds one ``Settings`` from the environment, with a test's ``create_app``
mapping on top, and carries it in the runtime. A bad value stops start-up
with one line naming the variable (``SettingsError``), so nothing parses a
string later, per request or per text. The README's configuration table is
checked against this class by a test (``settings_table``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.alerts.email import SmtpSettings, smtp_settings

DEMO_ACCOUNT_SID = "AC00000000000000000000000000000000"
SHOWN_DEFAULTS = {  # defaults that are not a value: what happens instead
    "secret_key": "generated into `instance/secret_key` on first run",
    "prombot_instance": "`instance/` beside the code",
    "twilio_account_sid": "demo values that work with `fake-twilio`",
    "twilio_auth_token": "demo values that work with `fake-twilio`",
    "smtp_url": "none: e-mail alerts off",
    "web_concurrency": "2 x CPU cores + 1, at most 8",
    "prombot_assets_dir": "`node_modules/` beside the code (filled by `make assets`)",
}
CODE_ROOT = Path(__file__).resolve().parent.parent
DEMO_AUTH_TOKEN = "prombot-demo-auth-token"
STRONG_PASSWORD_HASH = "scrypt"  # werkzeug's default: scrypt:32768:8:1
PASSWORD_HASH_METHOD = re.compile(r"scrypt(:\d+:\d+:\d+)?|pbkdf2:sha256:\d+")


class SettingsError(ValueError):
    """A setting that cannot be used: one line, naming the variable, never its value."""


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.strip()


class Settings(BaseSettings):
    """prombot's configuration. Each field is the environment variable of its name."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: str = Field(
        "sqlite:///instance/prombot.db",
        description="SQLAlchemy URL; `postgresql+psycopg://...` in production",
    )
    database_pool_size: int = Field(
        5,
        ge=1,
        le=100,
        description="PostgreSQL connections each process keeps open (a gunicorn worker serves "
        "one request at a time)",
    )
    database_max_overflow: int = Field(
        5,
        ge=0,
        le=100,
        description="PostgreSQL connections a process may open beyond the pool at a busy moment; "
        "keep (workers + 1) x (pool + overflow) under the server's `max_connections`",
    )
    secret_key: str | None = Field(
        None,
        repr=False,
        description="Flask secret (signs sessions and CSRF tokens)",
    )
    public_base_url: str = Field(
        "http://127.0.0.1:5000",
        description="the URL Twilio calls and staff open; signatures are checked against it; "
        "`https://...` makes the session cookies `Secure`",
    )
    twilio_account_sid: str = Field(DEMO_ACCOUNT_SID, description="Twilio account SID")
    twilio_auth_token: str = Field(
        DEMO_AUTH_TOKEN, repr=False, description="Twilio auth token (checks webhook signatures)"
    )
    twilio_api_url: str = Field("https://api.twilio.com", description="base of Twilio's REST API")
    sms_gateway: Literal["local", "twilio"] = Field(
        "local", description="`local` (the simulator's gateway) or `twilio`"
    )
    smtp_url: str | None = Field(
        None,
        repr=False,
        description="where alert e-mails go, e.g. `smtp://127.0.0.1:1025`; unset: e-mail off",
    )
    prombot_instruments_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="extra folders of questionnaire files (`:`-separated)",
    )
    prombot_instance: Path | None = Field(
        None, description="the instance folder (SQLite database, secret key)"
    )
    prombot_assets_dir: Path | None = Field(
        None,
        description="the npm packages the staff pages use (`nhsuk-frontend`, `htmx.org`); "
        "only their built files are served, under `/assets/`",
    )
    prombot_log_format: Literal["json", "console"] = Field(
        "console", description="`json` (production) or `console`"
    )
    prombot_job_intervals: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="scheduler job intervals in seconds, e.g. `dispatch=30,outbox=5`",
    )
    prombot_proxy_hops: int = Field(
        0,
        ge=0,
        le=5,
        description="reverse proxies in front of the web app that set `X-Forwarded-For` and "
        "`X-Forwarded-Proto` (ProxyFix); 0 trusts no such header",
    )
    prombot_max_request_bytes: int = Field(
        1_048_576,
        ge=16_384,
        le=104_857_600,
        description="the largest request body accepted (413 above it)",
    )
    web_concurrency: int | None = Field(
        None,
        ge=1,
        le=64,
        description="gunicorn worker processes in production (`bot/gunicorn_conf.py`)",
    )
    prombot_import_max_bytes: int = Field(
        1_000_000,
        ge=1_024,
        le=104_857_600,
        description="the largest CSV file of patients a practice can import (the upload page "
        "says so; also bounded by `PROMBOT_MAX_REQUEST_BYTES`)",
    )
    sms_max_per_second: float = Field(
        10.0, ge=0, le=1000, description="outbound pacing per sending process (0: unpaced)"
    )
    sms_max_attempts: int = Field(
        5,
        ge=1,
        le=50,
        description="hand-overs that may have reached Twilio before a text is marked `failed`",
    )
    sms_retry_base_seconds: float = Field(
        30.0, gt=0, le=86_400, description="exponential backoff (with jitter): first delay"
    )
    sms_retry_max_seconds: float = Field(
        3600.0, gt=0, le=86_400, description="exponential backoff: longest delay"
    )
    sms_send_lease_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description=(
            "how soon a dead scheduler's claimed texts are taken over (live ones renew it); "
            "more than `TWILIO_TIMEOUT_SECONDS` plus one pacing interval"
        ),
    )
    sms_lookup_delay_seconds: float = Field(
        120.0,
        ge=0,
        le=3600,
        description=(
            "how long Twilio's Messages list may take to show a new text: a lookup that finds "
            "nothing is trusted only this long (plus `TWILIO_TIMEOUT_SECONDS`) after the hand-over"
        ),
    )
    sms_validity_period_seconds: int = Field(
        14_400,
        ge=1,
        le=36_000,
        description="Twilio's validity period: a stale question is not delivered late",
    )
    twilio_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="the Twilio client's HTTP timeout"
    )
    staff_login_max_failures: int = Field(
        5, ge=1, le=1000, description="failed sign-ins per address within the window"
    )
    staff_login_max_failures_per_client: int = Field(
        50, ge=1, le=100_000, description="failed sign-ins per client address within the window"
    )
    staff_login_window_seconds: int = Field(
        900, ge=1, le=86_400, description="the window for failed sign-ins, in seconds"
    )
    staff_inbox_poll_seconds: int = Field(
        10, ge=1, le=3600, description="how often an open alert inbox fetches its rows again"
    )
    staff_count_poll_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description="how often every staff page's header fetches the open urgent alert count",
    )
    staff_password_hash: str = Field(
        STRONG_PASSWORD_HASH,
        description="how new staff passwords are hashed (werkzeug): `scrypt`, slow on purpose, "
        "or `scrypt:N:r:p` / `pbkdf2:sha256:N`; keep the default in production (the tests set a "
        "cheap one to run fast)",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///path.db") from None
        return value

    @field_validator("staff_password_hash")
    @classmethod
    def _password_hash(cls, value: str) -> str:
        if not PASSWORD_HASH_METHOD.fullmatch(value.strip()):
            raise ValueError("must be scrypt, scrypt:N:r:p or pbkdf2:sha256:N (werkzeug's methods)")
        return value.strip()

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("twilio_api_url")
    @classmethod
    def _twilio_api_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        smtp_settings(value)  # raises ValueError with what is wrong
        return value

    @field_validator("prombot_instruments_dirs", mode="before")
    @classmethod
    def _folders(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("prombot_instance", "prombot_assets_dir", mode="before")
    @classmethod
    def _instance(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("prombot_job_intervals", mode="before")
    @classmethod
    def _intervals(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        intervals: dict[str, str] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            name, equals, seconds = part.partition("=")
            if not equals or not name.strip():
                raise ValueError("must be name=seconds pairs separated by commas")
            intervals[name.strip()] = seconds.strip()
        return intervals

    @field_validator("prombot_job_intervals")
    @classmethod
    def _positive_intervals(cls, value: dict[str, int]) -> dict[str, int]:
        if any(seconds < 1 for seconds in value.values()):
            raise ValueError("every interval must be at least 1 second")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> Settings:
        if self.sms_retry_max_seconds < self.sms_retry_base_seconds:
            raise ValueError("SMS_RETRY_MAX_SECONDS must not be less than SMS_RETRY_BASE_SECONDS")
        return self

    @cached_property
    def smtp(self) -> SmtpSettings | None:
        """``SMTP_URL`` parsed, or None when alert e-mails are off."""
        return smtp_settings(self.smtp_url)

    @property
    def assets_dir(self) -> Path:
        """Where ``npm ci`` put the front-end packages (``PROMBOT_ASSETS_DIR``)."""
        return self.prombot_assets_dir or CODE_ROOT / "node_modules"

    @property
    def secure_cookies(self) -> bool:
        """Served over https (as Twilio and staff reach it): cookies never go over plain http."""
        return urlsplit(self.public_base_url).scheme == "https"

    def delivery(self) -> dict[str, float | int]:
        """The outbox's tuning, by the names ``OutboxSettings`` gives them."""
        return {
            "max_per_second": self.sms_max_per_second,
            "max_attempts": self.sms_max_attempts,
            "retry_base_seconds": self.sms_retry_base_seconds,
            "retry_max_seconds": self.sms_retry_max_seconds,
            "lease_seconds": self.sms_send_lease_seconds,
            "lookup_delay_seconds": self.sms_lookup_delay_seconds,
        }

    def as_config(self) -> dict[str, Any]:
        """The values under their variables' names, for Flask's ``app.config``."""
        return {name.upper(): getattr(self, name) for name in type(self).model_fields}


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The environment, with ``overrides`` (a test's config, by variable name) on top."""
    known = {
        key.lower(): value
        for key, value in (overrides or {}).items()
        if key.lower() in Settings.model_fields
    }
    try:
        return Settings(**known)
    except ValidationError as exc:
        raise SettingsError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    location = error["loc"]
    message = str(error["msg"]).removeprefix("Value error, ")
    count = exc.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    if not location or message.startswith(str(location[0]).upper()):
        return f"{message}{more}"  # the message names its variables itself
    return f"{str(location[0]).upper()}: {message}{more}"


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, meaning, default) for each setting: the README's configuration table."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if name in SHOWN_DEFAULTS:
            shown = SHOWN_DEFAULTS[name]
        elif default is None or default == [] or default == {}:
            shown = "none"
        elif isinstance(default, float) and default.is_integer():
            shown = f"`{int(default)}`"
        else:
            shown = f"`{default}`"
        rows.append((name.upper(), field.description or "", shown))
    return rows
