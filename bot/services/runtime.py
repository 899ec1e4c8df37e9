"""What every service needs, built once per process by the app or the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from bot.instruments import Catalogue
from bot.sms.gateway import Gateway


@dataclass(frozen=True)
class Runtime:
    engine: Engine
    catalogue: Catalogue
    gateway: Gateway
    public_base_url: str
