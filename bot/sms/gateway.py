"""The one thing every gateway does: send a text and say what the provider called it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sent:
    provider_sid: str
    status: str  # the provider's status right after sending: queued, sent, delivered


class SendError(Exception):
    """A send that failed. ``permanent`` errors must not be retried."""

    def __init__(self, code: int | None, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class Gateway(Protocol):
    name: str

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent: ...
