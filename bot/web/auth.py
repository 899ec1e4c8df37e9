"""The API's bearer tokens: ``Authorization: Bearer <token>`` names one practice."""

from __future__ import annotations

from flask import g, request

from bot.services.enrolment import authenticate
from bot.web import context


class Unauthorised(Exception):
    """No valid bearer token: a 401 that says how to authenticate."""


def require_practice() -> None:
    """Resolve the token to its practice (``g.practice``, ``g.actor``), or ``Unauthorised``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorised
    found = authenticate(context.runtime(), token.strip())
    if found is None:
        raise Unauthorised
    g.practice, api_token = found
    g.actor = f"token:{api_token.id}"
