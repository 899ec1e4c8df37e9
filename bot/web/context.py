"""What every view needs from the app: the runtime, and the time (a fixed clock in tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app

from bot.services.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["prombot.runtime"]


def now() -> datetime:
    """The current time, or the ``PROMBOT_CLOCK`` the tests set."""
    return current_app.config.get("PROMBOT_CLOCK", lambda: datetime.now(UTC))()
