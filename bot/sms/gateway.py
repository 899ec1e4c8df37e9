"""The one thing every gateway does: send a text and say what the provider called it.

A gateway may also be able to *find* a text it was given earlier
(``find_sent``): the outbox uses that to settle texts whose fate is unknown
(a crash, a timeout) before it would ever send them again. A gateway that
cannot look texts up (the local one) simply has its unsettled texts sent
again, which for it is harmless.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Sent:
    provider_sid: str
    status: str  # the provider's status right after sending: queued, sent, delivered
    error_code: int | None = None  # only when the provider already reports a failure


class SendError(Exception):
    """A send that failed.

    ``permanent`` errors must not be retried. ``in_doubt`` means the provider
    may have accepted the text although we got no answer (a read timeout, a
    5xx): before any resend, the text must be looked up (``find_sent``).
    ``reached`` is False only when the request certainly never arrived (no
    connection was made): such a try is not counted as an attempt.
    ``retry_after`` is the provider's hint, in seconds, when it gave one.
    """

    def __init__(
        self,
        code: int | None,
        message: str,
        *,
        permanent: bool,
        in_doubt: bool = False,
        retry_after: float | None = None,
        reached: bool = True,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.in_doubt = in_doubt and not permanent
        self.retry_after = retry_after
        self.reached = reached or self.in_doubt


class Gateway(Protocol):
    name: str

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent: ...


@runtime_checkable
class FindsSent(Protocol):
    """A gateway that can look up a text it may have been given earlier.

    ``timeout`` bounds one request to the provider, in seconds: a hand-over
    whose answer never came cannot have arrived later than that (the outbox
    adds the provider's listing delay before it trusts a lookup that finds
    nothing).
    """

    timeout: float

    def find_sent(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> Sent | None:
        """The provider's record of this text to ``to`` created after ``since``, if any.

        ``exclude`` holds provider ids already accounted for (an identical text
        sent earlier must not be mistaken for this one). Raises ``SendError``
        when the provider cannot be asked; never sends anything.
        """
        ...
