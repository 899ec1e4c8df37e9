"""Importing patients from a CSV file: read, preview every row's outcome, then apply.

Three steps, each usable on its own:

- ``read_csv(data)`` is pure: bytes in, rows out. It decodes what practice
  systems and spreadsheets export (UTF-8 with or without a BOM, UTF-16 with a
  BOM, Windows-1252), reads it with the standard library's ``csv`` module
  (quoted fields, CRLF, comma, semicolon or tab), maps the header names (any
  case and order, common aliases such as "NHS No" or "DOB") to prombot's
  columns, and checks each row with the API's own models (``PatientCreate``:
  the same UK-mobile, NHS-number and text rules as ``POST /api/v1/patients``).
  A file it cannot read at all raises ``ImportRefused`` with a sentence to show.
- ``preview(rt, practice, data)`` adds what needs the database, in a few
  set-based queries whatever the file's length: is the patient already
  enrolled (the API's duplicate rule: one patient per mobile in a practice),
  does the protocol exist, is this consultation already scheduled.
- ``apply(rt, practice, data, actor)`` does it, in one unit of work with the
  practice's import lock held, writing in bulk (a few inserts per table, not
  one per row) the same records and audit events as the enrolment and
  scheduling services (``add_patient``, ``create_consultation``) write one by
  one, so each new record is audited like one made through the API. It plans
  again inside that unit of work: a plan that differs from the previewed one
  (``expected`` digest), or a mobile enrolled elsewhere meanwhile, is refused
  with ``PlanChanged``, so the import is exactly what was shown.

Re-importing a file creates nothing twice: a patient already enrolled with the
row's mobile is matched (never enrolled again), and a consultation already
registered for that patient on that date with that protocol is not registered
again. A match is only made when the row and the record agree on who the
patient is (name, and NHS number and date of birth where both give them): a
mobile enrolled for someone else, or an NHS number enrolled with another
mobile, is an error for the practice to resolve, never a guess.

Nothing here logs a name, number or date: counts and ids only.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.errors import InputError
from bot.instruments import Catalogue
from bot.schemas.errors import checked
from bot.schemas.fields import ProtocolName
from bot.schemas.patients import PatientCreate
from bot.schemas.scheduling import ScheduleStep
from bot.services import audit
from bot.services.enrolment import check_new_patient, due_times, in_practice_zone
from bot.services.protocols import in_catalogue
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Consultation,
    Invitation,
    Patient,
    Practice,
    Protocol,
    new_id,
    patient_search_keys,
)

log = structlog.get_logger(__name__)

MAX_ROWS = 10_000
BATCH = 500  # ids per IN (...) query: well inside SQLite's and PostgreSQL's limits
INSERT_BATCH = 1000  # rows per bulk insert (sent as multi-row VALUES by SQLAlchemy)
COLUMNS = ("name", "mobile", "nhs_number", "date_of_birth", "consultation_date", "protocol")
REQUIRED = ("name", "mobile")
# Header names as practice systems and spreadsheets write them, after ``_header_key``
# (lower case, punctuation as spaces). Earlier aliases win when a file has two.
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "patient name", "full name", "patient", "patient full name"),
    "given_name": ("first name", "forename", "forenames", "given name", "given names"),
    "family_name": ("surname", "last name", "family name"),
    "mobile": (
        "mobile", "mobile number", "mobile phone", "mobile phone number", "mobile telephone",
        "mobile no", "mobile tel", "cell", "phone", "phone number", "telephone",
        "telephone number", "tel", "sms number",
    ),
    "nhs_number": ("nhs number", "nhs no", "nhs", "nhsnumber", "nhs num"),
    "date_of_birth": ("date of birth", "dob", "d o b", "birth date", "birthdate", "born"),
    "consultation_date": (
        "consultation date", "consultation", "date of consultation", "consulted",
        "appointment date", "appointment", "date seen", "seen", "consultation datetime",
    ),
    "protocol": ("protocol", "follow up", "followup", "follow up protocol", "schedule"),
}  # fmt: skip
ACCEPTED_HEADINGS = {
    "name": "name (or first name and surname)",
    "mobile": "mobile",
    "nhs_number": "NHS number",
    "date_of_birth": "date of birth",
    "consultation_date": "consultation date",
    "protocol": "protocol",
}

# what each outcome is called on the page and in the failures file
ACTIONS = ("enrol", "enrol_schedule", "schedule", "duplicate", "error")
REASONS = {
    "missing_field": "missing field",
    "bad_mobile": "bad mobile",
    "bad_nhs_number": "bad NHS number",
    "bad_date": "bad date",
    "unknown_protocol": "unknown protocol",
    "bad_text": "bad text",
    "different_patient": "different patient",
    "opted_out": "opted out",
    "bad_row": "unreadable row",
}
_BAD_BYTES = re.compile("[\udc80-\udcff]")  # bytes that were not text (surrogateescape)
_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}  # fmt: skip
_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NAMED_DATE = re.compile(r"(\d{1,2})[ -]([A-Za-z]{3,9})[ -](\d{2,4})")
_TIME = re.compile(r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:Z|[+-]00:?00)?")
_PROTOCOL_NAME = TypeAdapter(ProtocolName)


class ImportRefused(ValueError):
    """A file that cannot be imported at all; the message says why, in a sentence."""


class PlanChanged(Exception):
    """The practice's records changed between preview and confirm: preview again."""

    def __init__(self, preview: Preview) -> None:
        super().__init__("the import's outcome changed since it was previewed")
        self.preview = preview


@dataclass
class Row:
    """One row of the file: what it says, and what importing it would do."""

    number: int  # as a spreadsheet numbers it: the header is row 1
    values: dict[str, str]  # prombot's columns, as written in the file
    original: list[str]  # every cell, for the failures file
    patient: PatientCreate | None = None
    consultation_at: datetime | None = None  # the practice's local time, without an offset
    protocol: str | None = None  # as written; ``protocol_name`` once matched
    protocol_name: str | None = None
    action: str = "enrol"
    reason: str | None = None  # a key of REASONS when ``action`` is "error"
    message: str = ""
    same_as: int | None = None  # an earlier row of this file it duplicates
    patient_id: str | None = None  # the enrolled patient it matched

    @property
    def reason_label(self) -> str:
        return REASONS.get(self.reason or "", "")

    @property
    def consultation_date(self) -> date | None:
        return self.consultation_at.date() if self.consultation_at else None

    def fail(self, reason: str, message: str) -> None:
        self.action, self.reason, self.message = "error", reason, message


@dataclass
class ParsedFile:
    header: list[str]
    columns: dict[str, int]  # prombot's column -> its index in the file
    rows: list[Row]
    encoding: str


@dataclass
class Preview:
    header: list[str]
    columns: dict[str, str]  # prombot's column -> the file's heading for it
    rows: list[Row]
    encoding: str
    digest: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.action == "error"]


@dataclass
class Applied:
    preview: Preview
    enrolled: int = 0
    consultations: int = 0
    invitations: int = 0


# -- reading the file ---------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read as, or ``ImportRefused``.

    UTF-8 with a few broken bytes stays UTF-8 (the rows holding them get an
    error); a file with no UTF-8 sequences at all is read as Windows-1252.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "surrogateescape"), "UTF-8 with BOM"
    for bom, name in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[2:].decode(name), "UTF-16"
            except UnicodeDecodeError:
                raise ImportRefused("The file says it is UTF-16 but is not.") from None
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRefused(
            "This looks like a spreadsheet workbook, not a CSV file. In your spreadsheet, "
            "choose Save As (or Download) and pick CSV."
        )
    if _binary(data[:65536]):
        raise ImportRefused("This is not a CSV file: it holds binary data, not text.")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    if _MULTIBYTE.search(data) or _ENCODED_SURROGATE.search(data):
        return data.decode("utf-8", "surrogateescape"), "UTF-8"
    # Windows-1252 leaves five bytes undefined: keep them as errors in their rows
    return data.decode("cp1252", "surrogateescape"), "Windows-1252"


def _binary(sample: bytes) -> bool:
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    return controls > max(8, len(sample) // 100)


def _header_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).replace("\ufeff", "").casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def map_header(header: Sequence[str]) -> dict[str, int]:
    """prombot's columns (plus given_name/family_name) -> index, or ``ImportRefused``."""
    found: dict[str, tuple[int, int]] = {}  # column -> (alias rank, index)
    for index, heading in enumerate(header):
        key = _header_key(heading)
        key = key.replace(" ", "_") if key.replace(" ", "_") in COLUMNS else key
        for column, aliases in ALIASES.items():
            names = (column, column.replace("_", " "), *aliases)
            if key in names:
                rank = names.index(key)
                if column in found and found[column][0] == rank:
                    raise ImportRefused(
                        f"Two columns give the {ACCEPTED_HEADINGS.get(column, column)}: "
                        f"{header[found[column][1]]!r} and {heading!r}. Remove one."
                    )
                if column not in found or rank < found[column][0]:
                    found[column] = (rank, index)
                break
    columns = {column: index for column, (_rank, index) in found.items()}
    if "name" not in columns and {"given_name", "family_name"} <= columns.keys():
        columns["name"] = -1  # made from the two
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        wanted = " and ".join(ACCEPTED_HEADINGS[c] for c in missing)
        raise ImportRefused(
            f"The first row must name the columns: no column for {wanted} was found. "
            "Accepted headings (any case and order): " + ", ".join(ACCEPTED_HEADINGS.values()) + "."
        )
    return columns


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(data: bytes, *, max_bytes: int, today: date) -> ParsedFile:
    """The rows of a CSV file of patients, each checked on its own (no database).

    ``today`` is the practice's date: dates of birth after it are refused, and a
    row with a protocol but no consultation date is a consultation today.
    """
    if len(data) > max_bytes:
        raise ImportRefused(
            f"The file is {size_text(len(data))}: the largest that can be imported is "
            f"{size_text(max_bytes)}. Split it into smaller files."
        )
    if not data.strip():
        raise ImportRefused("The file is empty.")
    text, encoding = decode(data)
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    records = _records(reader)
    try:
        number, header = next(records)
    except StopIteration:
        raise ImportRefused("The file is empty.") from None
    if isinstance(header, str):
        raise ImportRefused(f"The first row cannot be read: {header}")
    columns = map_header(header)
    read = []
    for number, cells in records:
        if isinstance(cells, list) and not any(c.strip() for c in cells):
            continue  # a blank line: spreadsheets leave them at the end
        if len(read) >= MAX_ROWS:
            raise ImportRefused(
                f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files."
            )
        read.append((number, cells))
    rows: list[Row] = []
    for number, cells in read:
        if isinstance(cells, str):
            row = Row(number=number, values={}, original=[])
            row.fail("bad_row", cells)
            rows.append(row)
            continue
        rows.append(_row(number, cells, columns, today))
    return ParsedFile(header=list(header), columns=columns, rows=rows, encoding=encoding)


def _records(reader: Any) -> Iterable[tuple[int, list[str] | str]]:
    """(row number, cells) for each record, or (row number, why) for one csv cannot read."""
    number = 0
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = str(exc)
            if "field larger than field limit" in reason:
                reason = f"a cell is longer than {csv.field_size_limit():,} characters"
            yield number, f"row {number} cannot be read as CSV ({reason})."
            continue
        yield number, cells


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if 0 <= index < len(cells) else ""


def _row(number: int, cells: list[str], columns: dict[str, int], today: date) -> Row:
    values = {c: _cell(cells, i) for c, i in columns.items() if i >= 0}
    if columns.get("name") == -1:
        given, family = values.pop("given_name", ""), values.pop("family_name", "")
        values["name"] = f"{given} {family}".strip()
    values = {c: values.get(c, "") for c in COLUMNS}
    row = Row(number=number, values=values, original=list(cells))
    for column, value in values.items():
        if _BAD_BYTES.search(value):
            row.values = {c: _shown_text(v) for c, v in values.items()}
            row.original = [_shown_text(c) for c in cells]
            row.fail(
                "bad_text",
                f"{_label(column)} holds bytes that are not text in the file's encoding: "
                "save the file as CSV UTF-8 and upload it again",
            )
            return row
        if "\n" in value or "\r" in value:
            row.fail(
                "bad_row",
                f"{_label(column)} runs over several lines: check the row for a quote mark "
                "that is not closed",
            )
            return row
    for column in REQUIRED:
        if not values[column]:
            row.fail("missing_field", f"{_label(column)} is required")
            return row
    try:
        birth = _date_text(values["date_of_birth"]) if values["date_of_birth"] else None
        consultation_at = (
            _date_time(values["consultation_date"]) if values["consultation_date"] else None
        )
    except _BadDate as exc:
        row.fail("bad_date", str(exc))
        return row
    fields = {
        "name": values["name"],
        "phone": values["mobile"],
        "nhs_number": values["nhs_number"] or None,
        "date_of_birth": birth,
    }
    try:
        # the API's own rules for a new patient, word for word
        row.patient = checked(PatientCreate, fields)
        check_new_patient(row.patient, today=today)
    except InputError as exc:
        row.fail(*_reason(exc))
        return row
    protocol = values["protocol"]
    if consultation_at is not None and not protocol:
        row.fail("missing_field", "protocol is required when a consultation date is given")
        return row
    if protocol:
        row.protocol = protocol
        row.consultation_at = consultation_at or datetime.combine(today, time(0, 0))
        if row.consultation_at.date() > today:
            row.fail("bad_date", "consultation date is in the future")
            return row
    return row


def _shown_text(value: str) -> str:
    """Text that can be shown and written again: bytes that were not text as U+FFFD."""
    return _BAD_BYTES.sub("\ufffd", value)


def _label(column: str) -> str:
    return ACCEPTED_HEADINGS.get(column, column).split(" (")[0]


def _reason(exc: InputError) -> tuple[str, str]:
    """A rule from the API's models, in the file's words (``phone`` is the mobile column)."""
    by_field = {
        "phone": ("bad_mobile", "mobile"),
        "nhs_number": ("bad_nhs_number", "NHS number"),
        "date_of_birth": ("bad_date", "date of birth"),
        "name": ("bad_text", "name"),
    }
    reason, label = by_field.get(exc.field, ("bad_text", exc.field))
    message = exc.message
    if message.startswith(exc.field):
        message = label + message[len(exc.field) :]
    if reason == "bad_text" and message.endswith("is required"):
        reason = "missing_field"
    return reason, message


class _BadDate(ValueError):
    pass


def _date_text(value: str) -> str:
    """A date in a form people and practice systems write, as ISO for the API's rule."""
    day = _parse_date(value, "date of birth")[0]
    return day.isoformat()


def _date_time(value: str) -> datetime:
    day, rest = _parse_date(value, "consultation date")
    clock = _TIME.fullmatch(rest)
    if clock is None:
        raise _BadDate(f"consultation date {_shown(value)} is not a date such as 02/12/2026")
    hour, minute, second = (int(x) if x else 0 for x in clock.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise _BadDate(f"consultation date {_shown(value)} has a time that does not exist")
    return datetime.combine(day, time(hour, minute, second))


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _parse_date(value: str, label: str) -> tuple[date, str]:
    """(the date, the text after it); dd/mm/yyyy (day first, as in the UK), ISO, 21-Apr-1980."""
    example = f"{label} {_shown(value)} is not a date such as 21/04/1980 or 1980-04-21"
    if match := _ISO_DATE.match(value):
        year, month, day = (int(x) for x in match.groups())
    elif match := _NUMERIC_DATE.match(value):
        day, month, year = (int(x) for x in match.groups())
    elif match := _NAMED_DATE.match(value):
        day, year = int(match.group(1)), int(match.group(3))
        month = _MONTHS.get(match.group(2).lower(), 0)
        if not month:
            raise _BadDate(example)
    else:
        raise _BadDate(example)
    if year < 100 or year > 9999:
        raise _BadDate(f"{label} {_shown(value)} needs a four-digit year")
    try:
        found = date(year, month, day)
    except ValueError:
        raise _BadDate(f"{label} {_shown(value)} is not a day in the calendar") from None
    if found.year < 1880:
        raise _BadDate(f"{label} {_shown(value)} is too long ago")
    return found, value[match.end() :]


def size_text(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    return f"{max(1, round(count / 1000))} KB"


# -- what importing would do ---------------------------------------------------------------


def _same_person(name: str, other: str) -> bool:
    """Two spellings of one name: case, punctuation and order aside ("SMITH, Jo" = "Jo Smith")."""

    if name == other:
        return True

    def words(text: str) -> list[str]:
        text = unicodedata.normalize("NFKD", text.casefold())
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        return sorted(re.sub(r"[^\w]+", " ", text).split())

    return words(name) == words(other)


def _disagreement(row: PatientCreate, known: Any) -> str | None:
    """Why a record with the row's mobile is not the row's patient, if it is not."""
    if row.nhs_number and known.nhs_number and row.nhs_number != known.nhs_number:
        return "the NHS number differs"
    if row.date_of_birth and known.date_of_birth and row.date_of_birth != known.date_of_birth:
        return "the date of birth differs"
    if not _same_person(row.name, known.name):
        return "the name differs"
    return None


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), BATCH):
        yield values[start : start + BATCH]


def plan(
    session: Session,
    practice: Practice,
    catalogue: Catalogue,
    parsed: ParsedFile,
) -> Preview:
    """Each row's outcome against the practice's records, in a few batched queries."""
    rows = parsed.rows
    good = [r for r in rows if r.action != "error" and r.patient is not None]
    phones = sorted({r.patient.phone for r in good if r.patient})
    nhs_numbers = sorted({r.patient.nhs_number for r in good if r.patient and r.patient.nhs_number})
    by_phone: dict[str, Any] = {}  # the columns a match needs, not whole records
    for chunk in _chunks(phones):
        for patient in session.exec(
            select(
                Patient.id,
                Patient.phone,
                Patient.name,
                Patient.nhs_number,
                Patient.date_of_birth,
                Patient.opted_out,
            )
            .where(Patient.practice_id == practice.id)
            .where(col(Patient.phone).in_(chunk))
        ).all():
            by_phone[patient.phone] = patient
    phone_of_nhs: dict[str, str] = {}
    for chunk in _chunks(nhs_numbers):
        for nhs_number, phone in session.exec(
            select(Patient.nhs_number, Patient.phone)
            .where(Patient.practice_id == practice.id)
            .where(col(Patient.nhs_number).in_(chunk))
        ).all():
            if nhs_number:
                phone_of_nhs.setdefault(nhs_number, phone)
    protocols = {
        p.name: p
        for p in session.exec(select(Protocol).where(Protocol.practice_id == practice.id)).all()
    }
    zone = ZoneInfo(practice.timezone)
    scheduled: set[tuple[str, date, str | None]] = set()
    matched_ids = sorted({p.id for p in by_phone.values()})
    for chunk in _chunks(matched_ids):
        for patient_id, occurred_at, protocol in session.exec(
            select(Consultation.patient_id, Consultation.occurred_at, Consultation.protocol)
            .where(Consultation.practice_id == practice.id)
            .where(col(Consultation.patient_id).in_(chunk))
        ).all():
            local = _aware(occurred_at).astimezone(zone).date()
            scheduled.add((patient_id, local, protocol))

    first_of_phone: dict[str, Row] = {}
    first_of_nhs: dict[str, Row] = {}
    installed: dict[str, bool] = {}  # protocol name -> its questionnaires are all installed
    for row in good:
        new = row.patient
        assert new is not None
        if row.protocol is not None:
            name = _protocol_match(row.protocol, protocols)
            if name is None:
                choices = ", ".join(sorted(protocols)) or "none: add one in the settings"
                row.fail(
                    "unknown_protocol",
                    f"protocol {_shown(row.protocol)} is not one of this practice's: {choices}",
                )
                continue
            if name not in installed:  # checked once per protocol, not once per row
                try:
                    in_catalogue(_steps(protocols[name]), catalogue)
                    installed[name] = True
                except InputError:
                    installed[name] = False
            if not installed[name]:
                row.fail("unknown_protocol", f"protocol {name} names a questionnaire not installed")
                continue
            row.protocol_name = name
        known = by_phone.get(new.phone)
        earlier = first_of_phone.get(new.phone)
        if known is not None:
            why = _disagreement(new, known)
            if why:
                row.fail(
                    "different_patient",
                    f"this mobile is already enrolled for another patient ({why}): "
                    "check the row, or change that patient's record first",
                )
                continue
            row.patient_id = known.id
        elif earlier is not None:
            assert earlier.patient is not None
            why = _disagreement(new, earlier.patient)
            if why:
                row.fail(
                    "different_patient",
                    f"row {earlier.number} has the same mobile for another patient ({why})",
                )
                continue
        elif new.nhs_number and (
            phone_of_nhs.get(new.nhs_number, new.phone) != new.phone
            or first_of_nhs.get(new.nhs_number, row) is not row
        ):
            other = first_of_nhs.get(new.nhs_number)
            where = f"row {other.number}" if other else "an enrolled patient"
            row.fail(
                "different_patient",
                f"this NHS number is already given for another mobile ({where}): one patient "
                "is enrolled once; change their mobile on their record instead",
            )
            continue
        if new.nhs_number:
            first_of_nhs.setdefault(new.nhs_number, row)
        patient_key = known.id if known is not None else f"row:{(earlier or row).number}"
        enrolling = known is None and earlier is None
        if known is not None and known.opted_out and row.protocol_name:
            row.fail("opted_out", "this patient has opted out of texts: nothing is scheduled")
            continue
        if earlier is not None:
            row.same_as = earlier.number
        first_of_phone.setdefault(new.phone, row)
        if row.protocol_name and row.consultation_at is not None:
            key = (patient_key, row.consultation_at.date(), row.protocol_name)
            if key in scheduled:
                row.action = "duplicate"
                row.message = (
                    "already enrolled; this consultation is already scheduled"
                    if not enrolling
                    else "this consultation is already in the file"
                )
                continue
            scheduled.add(key)
            row.action = "enrol_schedule" if enrolling else "schedule"
        else:
            row.action = "enrol" if enrolling else "duplicate"
            if not enrolling:
                row.message = (
                    "already enrolled"
                    if known is not None
                    else f"the same patient as row {earlier.number if earlier else '?'}"
                )
    counts = {action: 0 for action in ACTIONS}
    for row in rows:
        counts[row.action] += 1
    preview = Preview(
        header=parsed.header,
        columns={
            c: (parsed.header[i] if i >= 0 else "first name and surname")
            for c, i in parsed.columns.items()
            if c in COLUMNS
        },
        rows=rows,
        encoding=parsed.encoding,
        counts=counts,
    )
    preview.digest = _digest(rows)
    return preview


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _steps(protocol: Protocol) -> list[ScheduleStep]:
    return [ScheduleStep.model_validate(s) for s in json.loads(protocol.schedule_json)]


def _protocol_match(written: str, protocols: dict[str, Protocol]) -> str | None:
    """The practice's protocol a cell names: by name in any case, or by its exact title."""
    candidate = re.sub(r"[\s-]+", "_", written.strip().casefold())
    try:
        name = _PROTOCOL_NAME.validate_python(candidate)
    except ValidationError:
        name = None
    if name in protocols:
        return name
    for protocol in protocols.values():
        if protocol.title.casefold() == written.strip().casefold():
            return protocol.name
    return None


def _digest(rows: list[Row]) -> str:
    outcome = "\n".join(f"{r.number}:{r.action}:{r.patient_id or ''}" for r in rows)
    return hashlib.sha256(outcome.encode()).hexdigest()


def _today(practice: Practice, now: datetime) -> date:
    return now.astimezone(ZoneInfo(practice.timezone)).date()


def max_bytes(rt: Runtime) -> int:
    """The largest file accepted: the setting, within the request size limit's room for it."""
    settings = rt.settings
    return min(settings.prombot_import_max_bytes, settings.prombot_max_request_bytes - 4_096)


def preview(rt: Runtime, practice: Practice, data: bytes, *, now: datetime) -> Preview:
    """What importing ``data`` would do, row by row; ``ImportRefused`` for an unusable file."""
    parsed = read_csv(data, max_bytes=max_bytes(rt), today=_today(practice, now))
    with transaction(rt.engine, read_only=True) as session:
        result = plan(session, practice, rt.catalogue, parsed)
    log.info("patient_import.previewed", practice_id=practice.id, rows=len(result.rows),
             **result.counts)  # fmt: skip
    return result


def apply(
    rt: Runtime,
    practice: Practice,
    data: bytes,
    actor: str,
    *,
    now: datetime,
    expected: str | None = None,
) -> Applied:
    """Import ``data``: enrol and schedule as previewed, in one unit of work.

    Imports into one practice queue behind each other (a lock on the practice's
    row that does not block its other writes), so two confirms of one file create
    nothing twice: the second plans again, finds everything done, and (with
    ``expected``, the previewed digest) is refused with ``PlanChanged``.
    """
    parsed = read_csv(data, max_bytes=max_bytes(rt), today=_today(practice, now))
    try:
        with transaction(rt.engine) as session:
            locked = session.exec(
                select(Practice).where(Practice.id == practice.id).with_for_update(key_share=True)
            ).one()
            result = plan(session, locked, rt.catalogue, parsed)
            if expected is not None and result.digest != expected:
                raise PlanChanged(result)
            applied = Applied(preview=result)
            _write(session, locked, rt.catalogue, result, applied, now=now, actor=actor)
            audit.record(
                session,
                practice_id=practice.id,
                actor=actor,
                action="patients.imported",
                subject_type="import",
                subject_id=hashlib.sha256(data).hexdigest()[:32],
                now=now,
            )
    except IntegrityError:
        # a patient enrolled through the API or a page since the plan (they do not
        # wait for the import's lock): nothing was written; show the new outcome
        raise PlanChanged(preview(rt, practice, data, now=now)) from None
    log.info(
        "patient_import.applied",
        practice_id=practice.id,
        actor=actor,
        enrolled=applied.enrolled,
        consultations=applied.consultations,
        invitations=applied.invitations,
        duplicates=result.counts.get("duplicate", 0),
        errors=result.counts.get("error", 0),
    )
    return applied


def _write(
    session: Session,
    practice: Practice,
    catalogue: Catalogue,
    result: Preview,
    applied: Applied,
    *,
    now: datetime,
    actor: str,
) -> None:
    """Enrol and schedule the planned rows in bulk: one insert per table per 1,000 rows.

    The same records and audit events as ``add_patient`` and ``create_consultation``
    would write one by one (their rules were applied by the plan: the API's checks
    per row, one patient per mobile, the protocol's steps in the catalogue), but a
    file of 5,000 rows is a few statements, not tens of thousands.
    """
    protocols = {
        p.name: p
        for p in session.exec(select(Protocol).where(Protocol.practice_id == practice.id)).all()
    }
    steps_of: dict[str, list[ScheduleStep]] = {}
    patients: list[dict[str, Any]] = []
    consultations: list[dict[str, Any]] = []
    invitations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    created: dict[int, str] = {}  # row number -> new patient id

    def event(action: str, subject_type: str, subject_id: str) -> None:
        events.append(
            {"id": new_id(), "practice_id": practice.id, "actor": actor, "action": action,
             "subject_type": subject_type, "subject_id": subject_id, "at": now}
        )  # fmt: skip

    for row in result.rows:
        if row.action not in ("enrol", "enrol_schedule"):
            continue
        new = row.patient
        assert new is not None
        check_new_patient(new, today=now.date())
        row.patient_id = created[row.number] = new_id()
        patients.append(
            {"id": row.patient_id, "practice_id": practice.id, "name": new.name,
             "phone": new.phone, "nhs_number": new.nhs_number,
             "date_of_birth": new.date_of_birth, "language": new.language, "opted_out": False,
             "opted_out_at": None, "created_at": now, **patient_search_keys(new.name, new.phone)}
        )  # fmt: skip
        event("patient.created", "patient", row.patient_id)
    applied.enrolled = len(patients)
    for row in result.rows:
        if row.action not in ("schedule", "enrol_schedule"):
            continue
        assert row.consultation_at is not None and row.protocol_name is not None
        row.patient_id = row.patient_id or created[row.same_as or row.number]
        name = row.protocol_name
        if name not in steps_of:
            steps_of[name] = _steps(protocols[name])
            in_catalogue(steps_of[name], catalogue)
        occurred_at = in_practice_zone(row.consultation_at, practice)
        consultation_id = new_id()
        consultations.append(
            {"id": consultation_id, "practice_id": practice.id, "patient_id": row.patient_id,
             "occurred_at": occurred_at, "protocol": name, "created_at": now}
        )  # fmt: skip
        for step, due_at in due_times(practice, occurred_at, steps_of[name], protocol=name):
            invitations.append(
                {"id": new_id(), "practice_id": practice.id, "patient_id": row.patient_id,
                 "consultation_id": consultation_id, "instrument": step.instrument,
                 "continue_if_positive": False, "due_at": due_at, "status": "pending",
                 "started_at": None, "finished_at": None, "created_at": now}
            )  # fmt: skip
        event("consultation.created", "consultation", consultation_id)
    applied.consultations, applied.invitations = len(consultations), len(invitations)
    for row in result.rows:
        if row.action == "duplicate" and row.patient_id is None and row.same_as:
            row.patient_id = created.get(row.same_as)
    connection = session.connection()
    for model, values in (
        (Patient, patients),
        (Consultation, consultations),
        (Invitation, invitations),
        (AuditEvent, events),
    ):
        for start in range(0, len(values), INSERT_BATCH):
            connection.execute(insert(model), values[start : start + INSERT_BATCH])


# -- the rows that failed, as a file to fix and upload again -------------------------------

_FORMULA = re.compile(r"^[=@\t\r]|^[+-](?![\d ()+-]*$)")


def _cell_out(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (a phone's + stays)."""
    value = _BAD_BYTES.sub("\ufffd", value)
    return "'" + value if _FORMULA.match(value) else value


def failures_csv(result: Preview) -> bytes:
    """The rows that failed, each with its reason, then its cells as uploaded.

    UTF-8 with a BOM and CRLF, so Excel opens it as it opens the original.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "reason", "problem", *[_cell_out(h) for h in result.header]])
    for row in result.failures:
        writer.writerow(
            [row.number, row.reason_label, row.message, *[_cell_out(c) for c in row.original]]
        )
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
