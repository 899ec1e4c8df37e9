"""Structured logs that never carry personal data.

JSON lines in production, readable lines in development; every line in a
request carries its request id. ``scrub_personal_data`` runs last before
rendering: it drops fields that hold personal data by name (``body``,
``phone``, ``patient_name``, Twilio's ``From``...), and masks phone numbers,
NHS numbers and e-mail addresses wherever else they appear, so a careless
``log.info(..., note=text)`` still logs nothing personal. Database errors
quote the rows they failed on; those quotes are cut out of exception text.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# A key is personal when any of its words (split on "_", "-", ".", case ignored) is one of these.
PERSONAL_WORDS = frozenset(
    {
        "body",
        "text",
        "name",
        "names",
        "phone",
        "mobile",
        "from",
        "to",
        "nhs",
        "birth",
        "dob",
        "email",
        "address",
        "postcode",
        "password",
        "token",
        "secret",
        "authorization",
        "cookie",
    }
)
# Whole keys that are personal although none of their words is in the list above.
PERSONAL_KEYS = frozenset({"from_", "raw_text", "nhs_number", "date_of_birth", "api_token"})
SAFE_KEYS = frozenset({"timestamp", "level", "logger", "request_id", "event"})
REMOVED = "[removed]"

_WORDS = re.compile(r"[_\-.\s]+")
# +44 7700 900123, +44 (0)7700 900123, 07700 900123, 07700900123, 447700900123
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(0\)[\s.-]?)?|0)\d{2,4}[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\w)"
    r"|(?<![\w+])44\s?7\d{3}\s?\d{6}(?!\w)"
)
_NHS = re.compile(r"(?<!\w)\d{3}[\s-]?\d{3}[\s-]?\d{4}(?!\w)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
# What database drivers quote from the failing statement: every value of the row.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_FAILING_ROW = re.compile(r"Failing row contains [^\n]*")
_KEY_VALUES = re.compile(r"(Key \([^)\n]*\)=)\([^\n]*?\)(?= |$)", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def is_personal_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    folded = key.casefold()
    if folded in SAFE_KEYS:
        return False
    if folded in PERSONAL_KEYS:
        return True
    return any(word in PERSONAL_WORDS for word in _WORDS.split(folded) if word)


def _mask(value: str) -> str:
    value = _SQL_PARAMETERS.sub("[parameters: removed]", value)
    value = _FAILING_ROW.sub("Failing row contains [removed]", value)
    value = _KEY_VALUES.sub(r"\1([removed])", value)
    value = _EMAIL.sub("[email]", value)
    value = _PHONE.sub("[number]", value)
    return _NHS.sub("[number]", value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, bytes):
        return _mask(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {k: (REMOVED if is_personal_key(k) else _clean(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return value


def scrub_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Remove personal fields by name and mask numbers and addresses everywhere else."""
    for key in list(event_dict):
        if key in ("timestamp", "level", "logger", "request_id"):
            continue
        if is_personal_key(key):
            event_dict[key] = REMOVED
        else:
            event_dict[key] = _clean(event_dict[key])
    return event_dict


def strip_terminal_colours(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Werkzeug colours its request lines for a terminal; log files want plain text."""
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = _ANSI.sub("", event)
    return event_dict


def configure(*, json_lines: bool, level: int = logging.INFO, stream: Any = None) -> None:
    """Route structlog and the standard library's logging through one scrubbed pipeline."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            strip_terminal_colours,
            scrub_personal_data,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
