"""Reading a JSON request body without letting it do harm.

Before any parsing: the size is bounded by ``PROMBOT_MAX_REQUEST_BYTES``
(werkzeug answers 413), and the nesting depth is measured by a linear scan, so
``[[[[...`` 100,000 deep is a 400, never a ``RecursionError``. Then the body
must be JSON (415 otherwise), parse strictly (no ``NaN``; 400 otherwise) and
be an object (422 naming ``body``). The parsed value is left in Flask's
cache, where spectree reads it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

MAX_DEPTH = 32  # our deepest shape is 3 levels; nobody needs 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class BodyError(Exception):
    """A body that cannot be read as a JSON object: ``status`` and a sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def nesting_depth(data: bytes, *, stop_at: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest (strings skipped), counting no further than ``stop_at``."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match[0] in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    break
        else:
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_object(data: bytes, *, is_json: bool) -> dict[str, Any]:
    if not data.strip():
        raise BodyError(422, "the request body must be a JSON object")
    if not is_json:
        raise BodyError(
            415, "the request body must be JSON, sent as Content-Type: application/json"
        )
    if nesting_depth(data) > MAX_DEPTH:
        raise BodyError(400, f"the JSON body nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BodyError(400, "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BodyError(422, "the request body must be a JSON object")
    return value


def read_object() -> dict[str, Any]:
    """The request's body as a JSON object, or ``BodyError``; cached for spectree."""
    value = parse_object(request.get_data(cache=True), is_json=request.is_json)
    request.get_json()  # the same bytes, now known to be safe: into Flask's cache
    return value
