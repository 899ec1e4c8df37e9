"""The Flask application factory: configuration from the environment, the instance folder."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from bot.instruments import Catalogue, load_catalogue

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///instance/prombot.db",
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_AUTH_TOKEN": "prombot-demo-auth-token",
    "TWILIO_API_URL": "https://api.twilio.com",
    "SMS_GATEWAY": "local",
    "SMTP_URL": None,
    "PROMBOT_INSTRUMENTS_DIRS": "",
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
    app = Flask("bot", instance_path=os.environ.get("PROMBOT_INSTANCE", None) or None)
    app.instance_path = str(Path(app.instance_path))
    app.config.from_mapping(DEFAULTS)
    for key in DEFAULTS:
        if key in os.environ:
            app.config[key] = os.environ[key]
    if "SECRET_KEY" in os.environ:
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(Path(app.instance_path))
    app.extensions["prombot.catalogue"] = instruments_from_config(app.config)
    return app


def instruments_from_config(config: Any) -> Catalogue:
    """The shipped instruments plus any practice folders named in configuration."""
    folders = [d for d in str(config.get("PROMBOT_INSTRUMENTS_DIRS") or "").split(os.pathsep) if d]
    return load_catalogue(folders)
