"""What every service needs, built once per process by the app or the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from bot.instruments import Catalogue
from bot.sms.gateway import Gateway

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    catalogue: Catalogue
    gateway: Gateway
    public_base_url: str
    settings: Settings
    """The typed settings, read once from the environment at start-up."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The Flask app's config: the same settings under their variables' names (typed)."""
