"""The Flask application factory: configuration from the environment, the instance folder.

``create_app`` builds the runtime every service needs (database engine,
instruments, SMS gateway) once, and registers the web layer. Questionnaire
files are validated here, so a bad file stops the app at start-up.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path
from typing import Any

import structlog
from flask import Flask, g, request

from bot import logging as prombot_logging
from bot.instruments import Catalogue, load_catalogue
from bot.services.runtime import Runtime
from bot.sms.gateway import Gateway
from bot.store.db import make_engine, resolve_url

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///instance/prombot.db",
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_AUTH_TOKEN": "prombot-demo-auth-token",
    "TWILIO_API_URL": "https://api.twilio.com",
    "SMS_GATEWAY": "local",
    "SMTP_URL": None,
    "PROMBOT_INSTRUMENTS_DIRS": "",
    "PROMBOT_LOG_FORMAT": "console",
    "PROMBOT_JOB_INTERVALS": "",
    # Delivery tuning (see bot/services/outbox.py and bot/sms/twilio.py)
    "SMS_MAX_PER_SECOND": "10",
    "SMS_MAX_ATTEMPTS": "5",
    "SMS_RETRY_BASE_SECONDS": "30",
    "SMS_RETRY_MAX_SECONDS": "3600",
    "SMS_SEND_LEASE_SECONDS": "60",
    "SMS_VALIDITY_PERIOD_SECONDS": "14400",
    "TWILIO_TIMEOUT_SECONDS": "10",
}


def _secret_key(instance: Path) -> str:
    """A secret generated once into the instance folder, so sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        "bot",
        instance_path=os.environ.get("PROMBOT_INSTANCE") or None,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.from_mapping(DEFAULTS)
    for key in [*DEFAULTS, "SECRET_KEY"]:
        if key in os.environ:
            app.config[key] = os.environ[key]
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(Path(app.instance_path))
    if not app.config.get("PROMBOT_SKIP_LOGGING_SETUP"):
        prombot_logging.configure(json_lines=app.config["PROMBOT_LOG_FORMAT"] == "json")

    app.config["DATABASE_URL"] = resolve_url(app.config["DATABASE_URL"], app.instance_path)
    catalogue = instruments_from_config(app.config)
    app.extensions["prombot.catalogue"] = catalogue
    app.extensions["prombot.runtime"] = Runtime(
        engine=make_engine(app.config["DATABASE_URL"]),
        catalogue=catalogue,
        gateway=gateway_from_config(app.config),
        public_base_url=app.config["PUBLIC_BASE_URL"],
        config=app.config,
    )
    _request_ids(app)

    from bot import web

    web.init_app(app)
    return app


def instruments_from_config(config: Any) -> Catalogue:
    """The shipped instruments plus any practice folders named in configuration."""
    folders = [d for d in str(config.get("PROMBOT_INSTRUMENTS_DIRS") or "").split(os.pathsep) if d]
    return load_catalogue(folders)


def gateway_from_config(config: Any) -> Gateway:
    name = config["SMS_GATEWAY"]
    if name == "local":
        from bot.sms.local import LocalGateway

        return LocalGateway()
    if name == "twilio":
        from bot.sms.twilio import DEFAULT_TIMEOUT, DEFAULT_VALIDITY_PERIOD, TwilioGateway

        def setting(key: str, default: float) -> float:
            # Optional tuning: the app's config, else the environment, else the default.
            value = config.get(key) or os.environ.get(key)
            return float(value) if value not in (None, "") else default

        return TwilioGateway(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            api_url=config["TWILIO_API_URL"],
            status_callback=str(config["PUBLIC_BASE_URL"]).rstrip("/") + "/sms/status",
            validity_period=int(setting("SMS_VALIDITY_PERIOD_SECONDS", DEFAULT_VALIDITY_PERIOD)),
            timeout=setting("TWILIO_TIMEOUT_SECONDS", DEFAULT_TIMEOUT),
        )
    raise ValueError(f"SMS_GATEWAY must be 'twilio' or 'local', not {name!r}")


def _request_ids(app: Flask) -> None:
    """Every log line in a request carries its id; the response says it too."""

    @app.before_request
    def _bind() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _tag(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
