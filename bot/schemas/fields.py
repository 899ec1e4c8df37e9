"""The rules for single values, written once: they validate and they write the JSON Schema.

Each type here is a pydantic ``Annotated`` type whose check and whose schema
come from the same regular expression or bounds, so the OpenAPI document and
the code cannot disagree: a value the document allows is one the check lets
through to the service, and the reverse. Checks the document cannot state (an
NHS number's check digit, a mobile that the numbering plan says exists, a
date in the future) answer 422 like any other.

Every text field refuses control characters (line breaks, NUL), the Unicode
bidirectional controls that can make a name display as something else, and
lone UTF-16 surrogates (which no database or password hash can encode).
Messages start with a verb phrase; ``bot.schemas.errors`` puts the field's
name in front.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import isodate
import phonenumbers
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from bot.domain import DAY_NAMES, NATIONS
from bot.identifiers import (
    DRAMA_MOBILE_PREFIX,
    InvalidIdentifier,
    normalise_nhs_number,
    normalise_uk_mobile,
)

# Characters no text field may hold: C0 and C1 controls, the bidirectional controls
# (LRM, RLM, ALM, embeddings, overrides and isolates) and lone surrogates. As regex
# source text with \u escapes, which Python's re and ECMAScript both read.
FORBIDDEN = r"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_FORBIDDEN = re.compile(f"[{FORBIDDEN}]")
RECORD_ID = r"^[0-9a-f]{32}$"
PROTOCOL_NAME = r"^[a-z][a-z0-9_]{0,59}$"
INSTRUMENT_ID = r"^[a-z][a-z0-9_]{0,31}$"
EMAIL = rf"^ *[^@\s{FORBIDDEN}]+@[^@\s{FORBIDDEN}]+\.[^@\s{FORBIDDEN}]+ *$"
DATE = r"^\d{4}-\d{2}-\d{2}$"
DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
# ISO-8601 durations: P14D, P2W, P1M, PT2H, P1Y2M3DT4H ...; SIGNED_DURATION may go backwards
_DURATION_BODY = r"P(?!T? *$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
DURATION = rf"^ *{_DURATION_BODY} *$"
SIGNED_DURATION = rf"^ *-?{_DURATION_BODY} *$"
CLOCK = r"^ *([01]?\d|2[0-3]):[0-5]\d *$"
CLOCK_OR_MIDNIGHT = r"^ *(([01]?\d|2[0-3]):[0-5]\d|24:00) *$"
# a point in time that durations are tried against before they are accepted
PROBE = datetime(2000, 1, 1, tzinfo=UTC)
# Ofcom's drama ranges (never allocated) that the phonenumbers metadata calls invalid
DRAMA_PHONE_PREFIXES = ("+441632960", DRAMA_MOBILE_PREFIX)


def problem(message: str) -> PydanticCustomError:
    """A rule broken; ``message`` reads after the field's name ("must be ...")."""
    return PydanticCustomError("prombot", message)


def text_pattern(blank_allowed: bool = False) -> str:
    """Text without forbidden characters and, unless allowed, not blank."""
    if blank_allowed:
        return f"^[^{FORBIDDEN}]*$"
    return rf"^[^{FORBIDDEN}]*[^{FORBIDDEN}\s][^{FORBIDDEN}]*$"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise problem("must be text")
    return value


def _rule(check: Any, schema: dict[str, Any]) -> tuple[PlainValidator, WithJsonSchema]:
    return PlainValidator(check), WithJsonSchema(schema)


# -- text --------------------------------------------------------------------------------


def text(limit: int, *, description: str | None = None) -> Any:
    """Required text of at most ``limit`` characters, surrounding spaces removed."""
    pattern = re.compile(text_pattern())

    def check(value: Any) -> str:
        value = _string(value)
        if _FORBIDDEN.search(value):
            raise problem(
                "must not contain control characters, line breaks or bidirectional controls"
            )
        if not value.strip():
            raise problem("is required")
        if len(value) > limit:
            raise problem(f"must be text of at most {limit} characters")
        assert pattern.fullmatch(value)
        return value.strip()

    schema: dict[str, Any] = {"type": "string", "maxLength": limit, "pattern": text_pattern()}
    if description:
        schema["description"] = description
    return Annotated[str, *_rule(check, schema)]


def secret(minimum: int, limit: int) -> Any:
    """A password: any characters a person can type (not controls), kept exactly as given."""
    pattern = f"^[^{FORBIDDEN}]*$"

    def check(value: Any) -> str:
        value = _string(value)
        if _FORBIDDEN.search(value):
            raise problem("must not contain control characters or bidirectional controls")
        if not minimum <= len(value) <= limit:
            raise problem(f"must be text of at least {minimum} characters (at most {limit})")
        return value

    schema = {
        "type": "string",
        "minLength": minimum,
        "maxLength": limit,
        "pattern": pattern,
        "writeOnly": True,
    }
    return Annotated[str, *_rule(check, schema)]


def _email(value: Any) -> str:
    value = _string(value)
    if len(value) > 254 or not re.fullmatch(EMAIL, value):
        raise problem("must be an e-mail address, such as reception@example.nhs.uk")
    return value.strip()


Email = Annotated[
    str,
    *_rule(_email, {"type": "string", "maxLength": 254, "pattern": EMAIL, "format": "email"}),
]


def _record_id(value: Any) -> str:
    value = _string(value)
    if not re.fullmatch(RECORD_ID, value):
        raise problem("must be a record id: 32 lower-case hexadecimal digits")
    return value


RecordId = Annotated[
    str,
    *_rule(_record_id, {"type": "string", "pattern": RECORD_ID, "description": "a record's id"}),
]


def _lookup_id(value: Any) -> str:
    value = _string(value)
    if not value:
        raise problem("must not be empty: leave it out for all")
    return value


# An id to look up, as given: any text that is not a record of this practice is a 404,
# exactly like another practice's id (so nothing can be learnt from its shape).
LookupId = Annotated[
    str,
    *_rule(_lookup_id, {"type": "string", "minLength": 1, "description": "a record's id"}),
]


def _protocol_name(value: Any) -> str:
    value = _string(value)
    if not re.fullmatch(PROTOCOL_NAME, value):
        raise problem(
            "must be lower_snake_case: a-z, digits and _, starting with a letter, "
            "at most 60 characters (e.g. low_mood_review)"
        )
    return value


ProtocolName = Annotated[str, *_rule(_protocol_name, {"type": "string", "pattern": PROTOCOL_NAME})]


def _instrument_id(value: Any) -> str:
    value = _string(value)
    if not re.fullmatch(INSTRUMENT_ID, value):
        raise problem("must be an instrument id, such as phq9 (GET /api/v1/instruments)")
    return value


# The ids come from the catalogue (PROMBOT_INSTRUMENTS_DIRS may add more): the OpenAPI
# document puts the running app's ids where this marker is (bot/web/openapi.py); the
# service checks membership.
INSTRUMENT_MARKER = "x-prombot-instrument-ids"
InstrumentId = Annotated[
    str,
    *_rule(
        _instrument_id,
        {"type": "string", "pattern": INSTRUMENT_ID, INSTRUMENT_MARKER: True},
    ),
]


# -- identifiers and phone numbers ---------------------------------------------------------


def _uk_mobile(value: Any) -> str:
    value = _string(value)
    if len(value) > 30:
        raise problem("must be a UK mobile number, such as 07700 900123")
    try:
        return normalise_uk_mobile(value)
    except InvalidIdentifier as exc:
        # the identifier's message names "phone"; the field's name is put in front instead
        raise problem(str(exc).removeprefix("phone ")) from None


UK_MOBILE_SCHEMA = {
    "type": "string",
    "maxLength": 30,
    "pattern": r"\d",
    "description": "a UK mobile number in any common form, e.g. 07700 900123; stored in E.164",
}
UkMobile = Annotated[str, *_rule(_uk_mobile, UK_MOBILE_SCHEMA)]


def _optional_uk_mobile(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _uk_mobile(value)


OptionalUkMobile = Annotated[
    str | None,
    *_rule(
        _optional_uk_mobile,
        {
            "anyOf": [UK_MOBILE_SCHEMA, {"type": "string", "pattern": r"^ *$"}, {"type": "null"}],
            "description": "a UK mobile number, or empty or null for none",
        },
    ),
]


def _nhs_number(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise problem("must be text, such as 943 476 5919")
    try:
        return normalise_nhs_number(str(value))
    except InvalidIdentifier as exc:
        raise problem(str(exc).removeprefix("nhs_number ")) from None


NhsNumber = Annotated[
    str | None,
    *_rule(
        _nhs_number,
        {
            "anyOf": [
                {"type": "string", "maxLength": 20, "pattern": r"^[\d -]*$"},
                {"type": "integer", "minimum": 0, "maximum": 9999999999},
                {"type": "null"},
            ],
            "description": "10 digits passing the NHS number's check digit; spaces allowed",
        },
    ),
]


def _contact_phone(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    message = "must be a UK phone number patients can call, such as 020 7946 0000"
    if not isinstance(value, str) or len(value) > 30:
        raise problem(message)
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        raise problem(message) from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    drama = e164.startswith(DRAMA_PHONE_PREFIXES) and len(e164) == 13
    if number.country_code != 44 or not (drama or phonenumbers.is_valid_number(number)):
        raise problem(message)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


ContactPhone = Annotated[
    str | None,
    *_rule(
        _contact_phone,
        {
            "anyOf": [{"type": "string", "maxLength": 30}, {"type": "null"}],
            "description": "a UK number patients can call; empty or null for none",
        },
    ),
]


def _optional_email(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _email(value)


OptionalEmail = Annotated[
    str | None,
    *_rule(
        _optional_email,
        {
            "anyOf": [
                {"type": "string", "maxLength": 254, "pattern": EMAIL, "format": "email"},
                {"type": "string", "pattern": r"^ *$"},
                {"type": "null"},
            ]
        },
    ),
]


# -- dates, times and durations -----------------------------------------------------------


def _date(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(DATE, value):
        raise problem("must be a date such as 1980-04-21")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise problem("must be a date such as 1980-04-21") from None


def _optional_date(value: Any) -> date | None:
    return None if value is None or value == "" else _date(value)


OptionalDate = Annotated[
    date | None,
    *_rule(
        _optional_date,
        {"anyOf": [{"type": "string", "format": "date"}, {"const": ""}, {"type": "null"}]},
    ),
]


def _date_time(value: Any) -> datetime:
    message = "must be an ISO-8601 date and time, such as 2026-03-16T10:00:00Z"
    if not isinstance(value, str) or not re.fullmatch(DATE_TIME, value):
        raise problem(message)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed.astimezone(UTC)  # at the very ends of the calendar this overflows
    except (ValueError, OverflowError):
        raise problem(message) from None
    return parsed


# Without an offset a time is the practice's local wall-clock time (its ``timezone``):
# the service reads it so, and says so in the document.
LocalDateTime = Annotated[
    datetime,
    *_rule(
        _date_time,
        {
            "type": "string",
            "pattern": DATE_TIME,
            "description": "ISO-8601 date and time. With an offset (`Z`, `+01:00`) it is that "
            "instant; without one it is the practice's local time (its `timezone`).",
        },
    ),
]


def _after(value: Any) -> str:
    """A duration that does not go backwards (P1M and P14D, not -P1D or -P1M), as given."""
    message = "must be an ISO-8601 duration of zero or more, such as P14D"
    if not isinstance(value, str) or not re.fullmatch(DURATION, value):
        raise problem(message)
    try:
        duration = isodate.parse_duration(value.strip())
        PROBE + duration  # months and years only compare once applied
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError):
        raise problem(message) from None
    return value.strip()


Duration = Annotated[
    str,
    *_rule(
        _after,
        {
            "type": "string",
            "pattern": DURATION,
            "description": "ISO-8601 duration, e.g. P14D, P2W, P1M; P0D is as soon as the "
            "send window allows",
        },
    ),
]


def _shift(value: Any) -> str:
    message = "must be an ISO-8601 duration, e.g. P1W, PT2H or -P2D (earlier)"
    if not isinstance(value, str) or not re.fullmatch(SIGNED_DURATION, value):
        raise problem(message)
    try:
        PROBE + isodate.parse_duration(value.strip())
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError):
        raise problem(message) from None
    return value.strip()


Shift = Annotated[
    str,
    *_rule(
        _shift,
        {
            "type": "string",
            "pattern": SIGNED_DURATION,
            "description": "ISO-8601 duration, e.g. P1W; negative (-P2D) moves earlier",
        },
    ),
]


def duration_of(text_value: str) -> timedelta | isodate.Duration:
    """A checked duration's value (``Duration`` and ``Shift`` keep the text as given)."""
    return isodate.parse_duration(text_value.strip())


# -- practice settings --------------------------------------------------------------------


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _time_zone(value: Any) -> str:
    if not isinstance(value, str) or value not in time_zones():
        raise problem("must be an IANA time zone, such as Europe/London")
    return value


TimeZoneName = Annotated[
    str,
    *_rule(
        _time_zone,
        {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_+/-]*$", "examples": ["Europe/London"]},
    ),
]


def _nation(value: Any) -> str:
    if not isinstance(value, str) or value.strip().upper() not in NATIONS:
        raise problem(f"must be one of {', '.join(NATIONS)} (for bank holidays)")
    return value.strip().upper()


Nation = Annotated[
    str,
    *_rule(
        _nation,
        {
            "type": "string",
            "enum": list(NATIONS),
            "description": "the UK nation whose bank holidays close the send window "
            "(NONE: none do); any case is accepted",
        },
    ),
]


def _clock(pattern: str, until: str) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise problem(f"must be a time HH:MM from 00:00 to 23:59{until}")
        hour, minute = value.strip().split(":")
        return f"{int(hour):02d}:{minute}"

    return check


ClockTime = Annotated[
    str, *_rule(_clock(CLOCK, ""), {"type": "string", "pattern": CLOCK, "examples": ["09:00"]})
]
ClockTimeOrMidnight = Annotated[
    str,
    *_rule(
        _clock(CLOCK_OR_MIDNIGHT, ", or 24:00 for midnight"),
        {"type": "string", "pattern": CLOCK_OR_MIDNIGHT, "examples": ["17:00"]},
    ),
]


def _working_days(value: Any) -> list[str]:
    names = value.replace(",", " ").split() if isinstance(value, str) else value
    message = f"must be a list of one or more of {', '.join(DAY_NAMES)}"
    if not isinstance(names, list) or not names:
        raise problem(message)
    days = set()
    for name in names:
        if not isinstance(name, str) or name.strip().lower() not in DAY_NAMES:
            raise problem(message)
        days.add(name.strip().lower())
    return [d for d in DAY_NAMES if d in days]


_DAY = "(" + "|".join(DAY_NAMES) + ")"  # the document gives lower case; any case is read
WorkingDays = Annotated[
    list[str],
    *_rule(
        _working_days,
        {
            "anyOf": [
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": f"^ *{_DAY} *$"},
                },
                {"type": "string", "pattern": rf"^[ ,]*{_DAY}([ ,]+{_DAY})*[ ,]*$"},
            ],
            "description": f"working days: a list of {', '.join(DAY_NAMES)} (any case), or "
            "the same in one string",
        },
    ),
]


def strict_int(low: int, high: int) -> Any:
    """A whole number within bounds: not text, not a fraction, not true or false."""

    def check(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise problem(f"must be a whole number from {low} to {high}")
        return value

    return Annotated[int, *_rule(check, {"type": "integer", "minimum": low, "maximum": high})]


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise problem("must be true or false")
    return value


StrictBool = Annotated[bool, *_rule(_strict_bool, {"type": "boolean"})]


def field_problem(field: str, message: str) -> PydanticCustomError:
    """A rule over several fields, blaming ``field``; ``message`` is a whole sentence."""
    return PydanticCustomError("prombot_field", "{message}", {"field": field, "message": message})


def iso(value: datetime | None) -> str | None:
    """A stored time as the API writes it: UTC with ``Z``."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


Instant = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
