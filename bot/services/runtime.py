"""What every service needs, built once per process by the app or the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from bot.instruments import Catalogue
from bot.sms.gateway import Gateway


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    catalogue: Catalogue
    gateway: Gateway
    public_base_url: str
    config: Mapping[str, Any] = field(default_factory=dict)
    """The app's settings (SMTP_URL, SMS_MAX_PER_SECOND, ...), read-only."""
