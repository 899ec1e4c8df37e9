"""Helpers shared between test files, so that no test file keeps a copy of another's.

Kept free of fixtures: conftest files define those and import what they need from here.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

from flask import Flask

from bot.settings import Settings, load_settings

# Staff passwords hashed cheaply in every app and ``prombot`` process the tests start
# (tests/conftest.py sets STAFF_PASSWORD_HASH); production keeps scrypt (bot/settings.py).
TEST_PASSWORD_HASH = "pbkdf2:sha256:1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody was listening on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def sms_params(
    body: str,
    *,
    from_: str,
    to: str,
    account_sid: str,
    sid: str | None = None,
    num_media: int = 0,
    media_type: str = "image/png",
) -> dict[str, str]:
    """The parameters Twilio posts for an inbound SMS (with ``num_media`` pictures)."""
    sid = sid or new_sid()
    params = {
        "ToCountry": "GB",
        "SmsMessageSid": sid,
        "NumMedia": str(num_media),
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "FromCountry": "GB",
        "ApiVersion": "2010-04-01",
    }
    for n in range(num_media):
        params[f"MediaContentType{n}"] = media_type
        params[f"MediaUrl{n}"] = f"https://api.twilio.com/media/ME{n:032d}"
    return params


def use_settings(app: Flask, **changes: Any) -> Settings:
    """Restart ``app`` with some settings changed (``smtp_url=...``), checked as at start-up.

    The runtime carries the settings every service reads (``rt.settings``); a bad
    value raises ``SettingsError`` here, as it would stop ``create_app``.
    """
    runtime = app.extensions["prombot.runtime"]
    current: Settings = runtime.settings
    settings = load_settings(
        {**current.as_config(), **{name.upper(): value for name, value in changes.items()}}
    )
    object.__setattr__(runtime, "settings", settings)  # the runtime is frozen for the app's code
    app.config.update(settings.as_config())
    return settings
