"""Structured logs that never carry personal data.

JSON lines in production, readable lines in development; every line in a
request carries its request id. ``scrub_personal_data`` runs last before
rendering: it drops fields that hold personal data by name, and masks phone
numbers, NHS numbers and e-mail addresses wherever else they appear, so a
careless ``log.info(..., body=text)`` still logs nothing personal.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset(
    {
        "body",
        "text",
        "raw_text",
        "name",
        "phone",
        "from",
        "from_",
        "to",
        "nhs_number",
        "date_of_birth",
        "email",
        "mobile",
        "password",
        "token",
        "api_token",
    }
)
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{2}\s?|0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\w)")
_NHS = re.compile(r"(?<!\w)\d{3}[\s-]?\d{3}[\s-]?\d{4}(?!\w)")
SAFE_KEYS = frozenset({"timestamp", "level", "logger", "request_id"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _mask(value: str) -> str:
    value = _EMAIL.sub("[email]", value)
    value = _PHONE.sub("[number]", value)
    return _NHS.sub("[number]", value)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, dict):
        return {k: ("[removed]" if k in PERSONAL_KEYS else _clean(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def scrub_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in SAFE_KEYS:
            continue
        if key in PERSONAL_KEYS:
            event_dict[key] = "[removed]"
        else:
            event_dict[key] = _clean(event_dict[key])
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
