"""The errors a service raises; each entry point translates them (HTTP, a page, a CLI line).

- ``InputError``: a caller's value is not usable; ``field`` names it (``schedule[0].after``)
  and ``message`` says what it must be. The API answers 422.
- ``NotFound``: no such record in this practice (another practice's ids are not found
  either, so nothing tells the two apart). The API answers 404.
- ``Conflict``: the record's state does not allow the change. The API answers 409.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a caller, naming the field: the API answers it with 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotFound(LookupError):
    """No such record in this practice.

    ``field`` names the body field that held the id, when it was not in the path.
    """

    def __init__(self, record_id: object, field: str | None = None) -> None:
        super().__init__(record_id)
        self.field = field


class Conflict(Exception):
    """The record's state does not allow the change: a 409."""


class InvitationNotPending(Conflict):
    """Only a pending invitation (not yet sent) can be cancelled or moved: a 409.

    ``status`` is the invitation's status; ``doing`` what was asked (``cancelled``, ``moved``).
    """

    def __init__(self, status: str, doing: str) -> None:
        super().__init__(status, doing)
        self.status = status
        self.doing = doing
