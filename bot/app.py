"""The Flask application factory: typed settings from the environment, the instance folder.

``create_app`` builds the runtime every service needs (database engine,
instruments, SMS gateway) once, and registers the web layer. Questionnaire
files are validated here, so a bad file stops the app at start-up.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from flask import Flask, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from bot import logging as prombot_logging
from bot.instruments import Catalogue, load_catalogue
from bot.services.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.sms.gateway import Gateway
from bot.store.db import make_engine, resolve_url


def _secret_key(instance: Path) -> str:
    """A secret generated once into the instance folder, so sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The app, its settings (the environment, then ``test_config``) and its runtime.

    A bad setting raises ``SettingsError`` naming the variable; a bad
    questionnaire file raises ``InstrumentFileError``: either stops start-up.
    """
    settings = load_settings(test_config)
    app = Flask(
        "bot",
        instance_path=str(settings.prombot_instance) if settings.prombot_instance else None,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(settings.as_config())
    if test_config:
        app.config.from_mapping(test_config)
        app.config.update(settings.as_config())  # the checked, typed values
    if not settings.secret_key:
        settings = settings.model_copy(update={"secret_key": _secret_key(Path(app.instance_path))})
    database_url = resolve_url(settings.database_url, app.instance_path)
    settings = settings.model_copy(update={"database_url": database_url})
    app.config.update(SECRET_KEY=settings.secret_key, DATABASE_URL=database_url)
    _web_settings(app, settings)
    if not app.config.get("PROMBOT_SKIP_LOGGING_SETUP"):
        prombot_logging.configure(json_lines=settings.prombot_log_format == "json")

    catalogue = load_catalogue(settings.prombot_instruments_dirs)
    app.extensions["prombot.catalogue"] = catalogue
    app.extensions["prombot.runtime"] = build_runtime(app, settings)
    _request_ids(app)
    _size_limit(app)

    from bot import web
    from bot.web import patient_import, patient_pages, reports

    web.init_app(app)
    app.register_blueprint(reports.bp)
    app.register_blueprint(patient_import.bp)
    app.register_blueprint(patient_pages.bp)
    return app


def build_runtime(app: Flask, settings: Settings) -> Runtime:
    """What the services need: a database engine, the app's questionnaires, the gateway.

    Separate from ``create_app`` so that the test suite can give one app a fresh
    runtime (a new database) per test instead of building the whole app again.
    """
    return Runtime(
        engine=make_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        catalogue=app.extensions["prombot.catalogue"],
        gateway=gateway_from_settings(settings),
        public_base_url=settings.public_base_url,
        settings=settings,
        config=app.config,
    )


def _web_settings(app: Flask, settings: Settings) -> None:
    """Request size, cookies and proxies, from the settings.

    Served over https (``PUBLIC_BASE_URL``), every cookie (the session, which
    carries the CSRF token, and Flask-Login's remember-me) is ``Secure``; all
    are ``HttpOnly`` and ``SameSite=Lax``. Behind ``PROMBOT_PROXY_HOPS``
    reverse proxies, ProxyFix trusts that many ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` hops (and no more, or a client could claim any address).
    """
    app.config["MAX_CONTENT_LENGTH"] = settings.prombot_max_request_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.prombot_max_request_bytes
    secure = settings.secure_cookies
    app.config.update(
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    if settings.prombot_proxy_hops:
        hops = settings.prombot_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def instruments_from_config(config: Any) -> Catalogue:
    """The shipped instruments plus any practice folders named in configuration."""
    return load_catalogue(load_settings(config).prombot_instruments_dirs)


def gateway_from_config(config: Mapping[str, Any]) -> Gateway:
    """The gateway a config mapping (by variable name) asks for; see ``gateway_from_settings``."""
    return gateway_from_settings(load_settings(config))


def gateway_from_settings(settings: Settings) -> Gateway:
    if settings.sms_gateway == "local":
        from bot.sms.local import LocalGateway

        return LocalGateway()
    from bot.sms.twilio import TwilioGateway

    return TwilioGateway(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        api_url=settings.twilio_api_url,
        status_callback=settings.public_base_url.rstrip("/") + "/sms/status",
        validity_period=settings.sms_validity_period_seconds,
        timeout=settings.twilio_timeout_seconds,
    )


def _size_limit(app: Flask) -> None:
    """A declared body over the limit is refused before any view runs, whether or not the
    view would read it (413; JSON under /api/v1, plain text to the webhooks)."""

    @app.before_request
    def _refuse_large() -> None:
        length = request.content_length
        if length is not None and length > app.config["MAX_CONTENT_LENGTH"]:
            raise RequestEntityTooLarge()


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
