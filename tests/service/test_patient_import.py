"""CSV import of patients: what practice systems export is read, each row's outcome is
previewed, confirming imports exactly that, and importing again creates nothing twice.

On SQLite and PostgreSQL, through the service and through the staff pages (Flask's
test client). The browser walk-through is tests/e2e/test_import_browser.py.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from flask.testing import FlaskClient
from sqlmodel import col, func, select
from werkzeug.datastructures import FileStorage
from werkzeug.security import generate_password_hash
from werkzeug.test import encode_multipart

from bot.services import patient_import
from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.patient_import import ImportRefused, PlanChanged, read_csv
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AuditEvent, Consultation, Invitation, Patient, Practice, StaffUser
from tests.service.alerting import STAFF_PASSWORD, other_practice
from tests.service.conftest import Clock
from tests.service.test_round_trips import counting

TODAY = date(2026, 3, 2)  # the clock fixture's day
HEADER = "name,mobile,nhs_number,date_of_birth,consultation_date,protocol"
ALEX = ("Alex Example", "07700 900101", "943 476 5919")  # a demo patient, already enrolled


def nhs(nine: str) -> str:
    """A valid NHS number from its first nine digits (invented, for tests)."""
    weighted = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = (11 - weighted % 11) % 11
    assert check != 10, nine
    return nine + str(check)


def lines(*rows: str, header: str = HEADER, newline: str = "\r\n") -> str:
    return newline.join([header, *rows]) + newline


def parse(data: bytes | str, **kw) -> patient_import.ParsedFile:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return read_csv(raw, max_bytes=kw.pop("max_bytes", 1_000_000), today=TODAY, **kw)


def outcomes(parsed) -> list[tuple[str, str | None]]:
    return [(r.action, r.reason) for r in parsed.rows]


def count(runtime: Runtime, model, **where) -> int:
    with transaction(runtime.engine, read_only=True) as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.exec(query).one()


# -- reading what practice systems and spreadsheets export ---------------------------------

ZOE = "Zoë Ångström-O'Neill"
ROW = f"{ZOE},07700900201"
SEMI, TAB = HEADER.replace(",", ";"), HEADER.replace(",", "\t")
BOM, BOM16 = codecs.BOM_UTF8, codecs.BOM_UTF16_LE
ENCODED = [
    # how the file was written            bytes                                       read as
    ("UTF-8", lines(ROW).encode("utf-8"), "UTF-8"),
    ("UTF-8 with BOM (CSV UTF-8)", BOM + lines(ROW).encode(), "UTF-8 with BOM"),
    ("Windows-1252 (Excel's CSV)", lines(ROW).encode("cp1252"), "Windows-1252"),
    ("UTF-16 with BOM", BOM16 + lines(ROW).encode("utf-16-le"), "UTF-16"),
    ("LF line ends", lines(ROW, newline="\n").encode(), "UTF-8"),
    ("CR line ends (old Mac)", lines(ROW, newline="\r").encode(), "UTF-8"),
    ("semicolons", lines(ROW.replace(",", ";"), header=SEMI).encode(), "UTF-8"),
    ("tabs", lines(ROW.replace(",", "\t"), header=TAB).encode(), "UTF-8"),
    ("every field quoted", lines(f'"{ZOE}","07700900201","","","",""').encode(), "UTF-8"),
    ("no final line end", lines(ROW).rstrip().encode(), "UTF-8"),
    ("blank lines at the end", (lines(ROW) + "\r\n,,,\r\n\r\n").encode(), "UTF-8"),
]


@pytest.mark.parametrize(("written", "data", "encoding"), ENCODED, ids=[e[0] for e in ENCODED])
def test_every_common_export_reads_the_same_patient(written: str, data: bytes, encoding: str):
    parsed = parse(data)
    assert parsed.encoding == encoding
    assert outcomes(parsed) == [("enrol", None)]
    patient = parsed.rows[0].patient
    assert patient is not None
    assert (patient.name, patient.phone) == (ZOE, "+447700900201")


QUOTED = [
    # the row as written                                   name read              NHS number
    ('"Smith, Jo",07700900202', "Smith, Jo", None),
    ('"Jo ""JJ"" Smith",07700900202', 'Jo "JJ" Smith', None),
    ('Jo Smith,07700900202,"400 000 0012"', "Jo Smith", "4000000012"),
    ("  Jo Smith  , 07700 900202 ", "Jo Smith", None),
    ("Jo Smith,+44 7700 900202", "Jo Smith", None),
    ("Jo Smith,7700900202", "Jo Smith", None),  # Excel dropped the leading 0
    (f"Jo Smith,07700900202,{nhs('400000001')},,,,extra,cells", "Jo Smith", nhs("400000001")),
]  # fmt: skip


@pytest.mark.parametrize(("row", "name", "nhs_number"), QUOTED)
def test_quoted_fields_spaces_and_extra_cells_are_read_as_a_spreadsheet_shows_them(
    row: str, name: str, nhs_number: str | None
):
    parsed = parse(lines(row))
    assert outcomes(parsed) == [("enrol", None)], parsed.rows[0].message
    patient = parsed.rows[0].patient
    assert patient is not None
    assert (patient.name, patient.phone, patient.nhs_number) == (name, "+447700900202", nhs_number)


HEADERS = [
    "Name,Mobile,NHS Number,Date of Birth,Consultation Date,Protocol",
    "NAME,MOBILE,NHS_NUMBER,DATE_OF_BIRTH,CONSULTATION_DATE,PROTOCOL",
    "Patient Name,Mobile Number,NHS No.,DOB,Appointment Date,Follow-up",
    "Full name, Mobile phone , NHS no, D.O.B., Date seen, Protocol",
    "\ufeffname,mobile,nhs number,birth date,consultation date,protocol",
]


@pytest.mark.parametrize("header", HEADERS)
def test_header_names_in_any_case_and_common_aliases(header: str):
    row = f"Jo Smith,07700900203,{nhs('400000002')},21/04/1980,01/03/2026,depression_review"
    parsed = parse(lines(row, header=header))
    assert set(parsed.columns) >= {"name", "mobile", "nhs_number", "date_of_birth"}
    assert outcomes(parsed) == [("enrol", None)]
    (only,) = parsed.rows
    assert only.patient is not None and only.patient.date_of_birth == date(1980, 4, 21)
    assert only.consultation_at == datetime(2026, 3, 1) and only.protocol == "depression_review"


def test_columns_in_another_order_with_others_between_them():
    header = "Practice ID,Surname,First name,Address,Mobile,DOB"
    parsed = parse(lines("A81001,Smith,Jo,1 High St,07700900204,1980-04-21", header=header))
    assert outcomes(parsed) == [("enrol", None)]
    patient = parsed.rows[0].patient
    assert patient is not None and patient.name == "Jo Smith"


FILE_REFUSALS = [
    # the file                                                       what the refusal says
    (b"", "empty"),
    (b"\r\n\r\n", "empty"),
    (b"name,nhs_number\r\nJo,\r\n", "no column for mobile"),
    (b"surname,mobile\r\nSmith,07700900205\r\n", "no column for name"),
    (b"mobile,phone,mobile\r\n", "Two columns give the mobile"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "spreadsheet workbook"),
    (bytes(range(256)) * 8, "binary data"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary data"),
]


@pytest.mark.parametrize(("data", "says"), FILE_REFUSALS)
def test_a_file_that_cannot_be_read_is_refused_with_a_clear_sentence(data: bytes, says: str):
    with pytest.raises(ImportRefused, match=says):
        parse(data)


def test_a_file_over_the_limit_is_refused_naming_the_limit():
    data = lines(*[f"Jo Smith,0770090{n:04d}" for n in range(100)]).encode()
    with pytest.raises(ImportRefused, match=r"largest that can be imported is 1 KB"):
        parse(data, max_bytes=1_000)
    assert len(parse(data, max_bytes=len(data)).rows) == 100


def test_more_rows_than_the_page_can_show_are_refused():
    data = lines(*["Jo,07700900206"] * (patient_import.MAX_ROWS + 1)).encode()
    with pytest.raises(ImportRefused, match="more than 10,000 rows"):
        parse(data, max_bytes=len(data))


# -- each row's own errors ------------------------------------------------------------------

FUTURE = "03/03/2026"
ROW_ERRORS = [
    # the row                                                      reason             says
    (",07700900210", "missing_field", "name is required"),
    ("Jo Smith,", "missing_field", "mobile is required"),
    ("Jo Smith,01632 960000", "bad_mobile", "mobile"),  # a landline
    ("Jo Smith,020 7946 0000", "bad_mobile", "mobile"),
    ("Jo Smith,not a number", "bad_mobile", "mobile"),
    ("Jo Smith,07700 900210 ext 4", "bad_mobile", "extension"),
    ("Jo Smith,+33 6 12 34 56 78", "bad_mobile", "UK mobile"),
    ("Jo Smith,7.7009E+09", "bad_mobile", "mobile"),
    ("Jo Smith,07700900210,9434765910", "bad_nhs_number", "check digit"),
    ("Jo Smith,07700900210,94347659", "bad_nhs_number", "10 digits"),
    ("Jo Smith,07700900210,,31/02/1980", "bad_date", "not a day in the calendar"),
    ("Jo Smith,07700900210,,21/04/80", "bad_date", "four-digit year"),
    ("Jo Smith,07700900210,,yesterday", "bad_date", "not a date"),
    ("Jo Smith,07700900210,,1980-13-01", "bad_date", "not a day"),
    (f"Jo Smith,07700900210,,{FUTURE}", "bad_date", "in the future"),
    (f"Jo Smith,07700900210,,,{FUTURE},depression_review", "bad_date", "in the future"),
    ("Jo Smith,07700900210,,,01/03/2026 25:00,depression_review", "bad_date", "time"),
    ("Jo Smith,07700900210,,,01/03/2026", "missing_field", "protocol is required"),
    ("Jo\x00Smith,07700900210", "bad_text", "control characters"),
    ("Jo\x07Smith,07700900210", "bad_text", "control characters"),
    ("Jo \u202eSmith,07700900210", "bad_text", "bidirectional"),
    ("J" * 121 + ",07700900210", "bad_text", "at most 120"),
    ('"Jo\r\nSmith",07700900210', "bad_row", "several lines"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "reason", "says"), ROW_ERRORS)
def test_each_bad_row_says_why_and_the_rest_still_import(row: str, reason: str, says: str):
    parsed = parse(lines("Good Row,07700900299", row, "Also Good,07700900298"))
    assert [r.action for r in parsed.rows] == ["enrol", "error", "enrol"]
    bad = parsed.rows[1]
    assert (bad.number, bad.reason) == (3, reason), bad.message
    assert says in bad.message


def test_a_lone_surrogate_is_a_row_error_not_a_crash():
    data = lines("Good Row,07700900299", "Jo \ud800 Smith,07700900211").encode(
        "utf-8", "surrogatepass"
    )
    parsed = parse(data)
    assert outcomes(parsed) == [("enrol", None), ("error", "bad_text")]
    assert "not text" in parsed.rows[1].message


def test_bytes_that_are_not_utf8_in_a_utf8_file_blame_their_row():
    data = lines("Zoë Good,07700900299", "Jo Smith,07700900212").encode()
    data = data.replace(b"Jo Smith", b"Jo \xff\xfe Smith")
    parsed = parse(data)
    assert parsed.encoding == "UTF-8"
    assert outcomes(parsed) == [("enrol", None), ("error", "bad_text")]


def test_a_one_megabyte_cell_is_a_row_error():
    data = lines("Good Row,07700900299", f'"{"x" * 1_048_576}",07700900213').encode()
    parsed = parse(data, max_bytes=len(data))
    assert outcomes(parsed)[0] == ("enrol", None)
    assert parsed.rows[1].action == "error"
    assert parsed.rows[1].reason in ("bad_row", "bad_text")


# -- against the practice's records --------------------------------------------------------


def preview(runtime: Runtime, demo: Demo, text: str, clock: Clock):
    return patient_import.preview(runtime, demo.practice, text.encode(), now=clock.now)


def apply(runtime: Runtime, demo: Demo, text: str, clock: Clock, **kw):
    return patient_import.apply(
        runtime, demo.practice, text.encode(), "user:test", now=clock.now, **kw
    )


AGAINST_RECORDS = [
    # rows                                                           outcome of each row
    (["Jo New,07700900220"], [("enrol", None)]),
    (["Jo New,07700900220,,,01/03/2026,depression_review"], [("enrol_schedule", None)]),
    (["Jo New,07700900220,,,,Depression Review"], [("enrol_schedule", None)]),
    (["Jo New,07700900220,,,,no_such_protocol"], [("error", "unknown_protocol")]),
    ([",".join(ALEX)], [("duplicate", None)]),
    (["ALEX EXAMPLE,+447700900101"], [("duplicate", None)]),
    (["Example, Alex,07700900101"], [("error", "bad_mobile")]),  # unquoted comma: 3 cells
    (['"Example, Alex",07700900101'], [("duplicate", None)]),
    ([",".join(ALEX) + ",,01/03/2026,depression_review"], [("schedule", None)]),
    (["Sam Other,07700900101"], [("error", "different_patient")]),
    (["Alex Example,07700900101,4000000012"], [("error", "different_patient")]),
    (["Alex Example,07700900221,9434765919"], [("error", "different_patient")]),
    (["Jo New,07700900220", "Jo New,07700900220"], [("enrol", None), ("duplicate", None)]),
    (["Jo New,07700900220", "Jo Else,07700900220"],
     [("enrol", None), ("error", "different_patient")]),
    ([f"Jo New,07700900220,{nhs('400000003')}", f"Jo Else,07700900222,{nhs('400000003')}"],
     [("enrol", None), ("error", "different_patient")]),
    (["Jo New,07700900220,,,01/03/2026,depression_review",
      "Jo New,07700900220,,,01/03/2026,depression_review"],
     [("enrol_schedule", None), ("duplicate", None)]),
    (["Jo New,07700900220,,,01/03/2026,depression_review",
      "Jo New,07700900220,,,01/03/2026,anxiety_review"],
     [("enrol_schedule", None), ("schedule", None)]),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "expected"), AGAINST_RECORDS)
def test_each_rows_outcome_against_the_practices_records(
    runtime: Runtime, demo: Demo, clock: Clock, rows: list[str], expected: list
):
    result = preview(runtime, demo, lines(*rows), clock)
    assert outcomes(result) == expected, [r.message for r in result.rows]


def test_an_opted_out_patient_is_matched_but_never_scheduled(
    runtime: Runtime, demo: Demo, clock: Clock
):
    with transaction(runtime.engine) as session:
        alex = session.exec(select(Patient).where(Patient.phone == "+447700900101")).one()
        alex.opted_out = True
    result = preview(runtime, demo, lines(",".join(ALEX) + ",,,depression_review"), clock)
    assert outcomes(result) == [("error", "opted_out")]


def test_confirming_imports_what_was_previewed_and_audits_who_did_it(
    runtime: Runtime, demo: Demo, clock: Clock
):
    text = lines(
        f"Jo New,07700900230,{nhs('400000004')},21/04/1980,01/03/2026,depression_review",
        "Kim New,07700900231",
        ",".join(ALEX) + ",,02/03/2026,anxiety_review",
        "Bad Mobile,01632960000",
    )
    before = count(runtime, Patient)
    shown = preview(runtime, demo, text, clock)
    done = apply(runtime, demo, text, clock, expected=shown.digest)
    assert (done.enrolled, done.consultations, done.invitations) == (2, 2, 6)
    assert count(runtime, Patient) == before + 2
    with transaction(runtime.engine, read_only=True) as session:
        jo = session.exec(select(Patient).where(Patient.phone == "+447700900230")).one()
        assert (jo.name, jo.nhs_number, jo.date_of_birth) == ("Jo New", nhs("400000004"),
                                                               date(1980, 4, 21))  # fmt: skip
        (visit,) = session.exec(select(Consultation).where(Consultation.patient_id == jo.id)).all()
        assert visit.protocol == "depression_review"
        # the practice's midnight (GMT in March) on the consultation date
        assert visit.occurred_at.replace(tzinfo=UTC) == datetime(2026, 3, 1, tzinfo=UTC)
        actions = session.exec(
            select(AuditEvent.action, AuditEvent.actor).where(
                col(AuditEvent.action).in_(
                    ["patient.created", "consultation.created", "patients.imported"]
                )
            )
        ).all()
    assert sorted(a for a, actor in actions if actor == "user:test") == [
        "consultation.created", "consultation.created", "patient.created", "patient.created",
        "patients.imported",
    ]  # fmt: skip


def test_importing_the_same_file_again_creates_nothing_twice(
    runtime: Runtime, demo: Demo, clock: Clock
):
    text = lines(
        "Jo New,07700900240,,,01/03/2026,depression_review",
        "Jo New,07700900240,,,,anxiety_review",
        "Kim New,07700900241",
        ",".join(ALEX) + ",,01/03/2026,wellbeing",
    )
    first = apply(runtime, demo, text, clock)
    assert (first.enrolled, first.consultations) == (2, 3)
    totals = [count(runtime, m) for m in (Patient, Consultation, Invitation)]
    clock.advance(hours=3)
    again = preview(runtime, demo, text, clock)
    assert [r.action for r in again.rows] == ["duplicate"] * 4
    second = apply(runtime, demo, text, clock)
    assert (second.enrolled, second.consultations) == (0, 0)
    assert [count(runtime, m) for m in (Patient, Consultation, Invitation)] == totals


def test_a_consultation_registered_through_the_api_that_day_is_not_scheduled_again(
    runtime: Runtime, demo: Demo, clock: Clock, client: FlaskClient, api_headers
):
    alex = next(p for p in demo.patients if p.name == "Alex Example")
    made = client.post(
        "/api/v1/consultations",
        json={"patient_id": alex.id, "occurred_at": "2026-03-01T15:30:00",
              "protocol": "depression_review"},
        headers=api_headers,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    result = preview(runtime, demo, lines(",".join(ALEX) + ",,01/03/2026,depression_review"), clock)
    assert outcomes(result) == [("duplicate", None)]


def test_a_plan_that_changed_since_the_preview_imports_nothing(
    runtime: Runtime, demo: Demo, clock: Clock
):
    text = lines("Jo New,07700900250", "Kim New,07700900251")
    shown = preview(runtime, demo, text, clock)
    apply(runtime, demo, lines("Jo New,07700900250"), clock)  # someone else, meanwhile
    before = count(runtime, Patient)
    with pytest.raises(PlanChanged) as changed:
        apply(runtime, demo, text, clock, expected=shown.digest)
    assert [r.action for r in changed.value.preview.rows] == ["duplicate", "enrol"]
    assert count(runtime, Patient) == before


def test_another_practice_with_the_same_mobile_is_not_a_duplicate(
    runtime: Runtime, demo: Demo, clock: Clock
):
    other = other_practice(runtime, clock.now)
    result = preview(runtime, demo, lines("Dana Otherplace,07700900991"), clock)
    assert outcomes(result) == [("enrol", None)]
    assert result.rows[0].patient_id is None
    assert other.patient.id not in {r.patient_id for r in result.rows}


DRAMA = [n for n in range(1000) if n not in (101, 102, 103)]  # not the demo's patients


def five_thousand_rows() -> str:
    """5,000 rows over Ofcom's 997 free drama numbers: each patient seen on several days."""
    rows = []
    for k in range(5000):
        n, day = DRAMA[k % len(DRAMA)], 1 + k // len(DRAMA)
        rows.append(
            f"Patient {n},07700{900000 + n},,01/01/1970,{day:02d}/02/2026,depression_review"
        )
    return lines(*rows)


def test_five_thousand_rows_preview_and_import(runtime: Runtime, demo: Demo, clock: Clock):
    text = five_thousand_rows()
    shown = preview(runtime, demo, text, clock)
    assert len(shown.rows) == 5000
    assert shown.counts == {"enrol": 0, "enrol_schedule": 997, "schedule": 4003,
                            "duplicate": 0, "error": 0}  # fmt: skip
    done = apply(runtime, demo, text, clock, expected=shown.digest)
    assert (done.enrolled, done.consultations, done.invitations) == (997, 5000, 15000)
    assert [r.action for r in preview(runtime, demo, text, clock).rows] == ["duplicate"] * 5000


def test_an_import_is_a_few_statements_per_thousand_rows_not_one_per_row(
    runtime: Runtime, demo: Demo, clock: Clock
):
    """5,000 rows: 997 patients, 5,000 consultations, 15,000 follow-ups and 5,998 audit
    events, each table written 1,000 rows to a statement (the bench times it)."""
    text = five_thousand_rows()
    with counting(runtime.engine) as statements:
        done = apply(runtime, demo, text, clock)
    assert (done.enrolled, done.consultations, done.invitations) == (997, 5000, 15000)
    inserts = [s for s in statements if s == "INSERT"]
    # patients 1, consultations 5, follow-ups 15, audit events 6 (+ "patients.imported")
    assert len(inserts) == 1 + 5 + 15 + 6 + 1, len(inserts)
    assert len(statements) < 60, statements  # and the plan's set-based reads


def test_a_mobile_enrolled_meanwhile_is_caught_by_the_database_and_nothing_is_written(
    runtime: Runtime, demo: Demo, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    """The API and the pages do not wait for the import's lock: a mobile enrolled
    between the plan and the bulk insert breaks the unique rule, the whole import is
    undone and the page is shown the outcome again (here, in the import's own unit
    of work, which SQLite's single writer needs)."""
    text = lines("Jo New,07700900260", "Kim New,07700900261")
    planned = patient_import.plan
    calls = []

    def plan_then_someone_enrols_kim(session, practice, catalogue, parsed):
        result = planned(session, practice, catalogue, parsed)
        if not calls:
            calls.append(1)
            session.add(Patient(practice_id=demo.practice.id, name="Kim New",
                                phone="+447700900261", created_at=clock.now))  # fmt: skip
            session.flush()
        return result

    monkeypatch.setattr(patient_import, "plan", plan_then_someone_enrols_kim)
    before = count(runtime, Patient)
    with pytest.raises(PlanChanged) as changed:
        apply(runtime, demo, text, clock)
    assert [r.action for r in changed.value.preview.rows] == ["enrol", "enrol"]
    assert count(runtime, Patient) == before


def test_the_failures_file_lists_each_failed_row_with_its_reason_as_uploaded(
    runtime: Runtime, demo: Demo, clock: Clock
):
    text = lines(
        "Good Row,07700900260",
        '=HYPERLINK("x"),01632960000',
        "Jo Smith,07700900261,9434765910",
        "Jo Smith,07700900262,,,,nope",
    )
    result = preview(runtime, demo, text, clock)
    data = patient_import.failures_csv(result)
    assert data.startswith(codecs.BOM_UTF8) and b"\r\n" in data
    table = list(csv.reader(io.StringIO(data[3:].decode())))
    assert table[0] == ["row", "reason", "problem", *HEADER.split(",")]
    assert [(r[0], r[1]) for r in table[1:]] == [
        ("3", "bad mobile"), ("4", "bad NHS number"), ("5", "unknown protocol"),
    ]  # fmt: skip
    assert table[1][3] == '\'=HYPERLINK("x")'  # a spreadsheet shows it, never runs it
    assert table[2][4] == "07700900261" and table[2][5] == "9434765910"


# -- through the staff pages ---------------------------------------------------------------


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]+)"', html) or re.search(
        rf'value="([^"]+)"[^>]*name="{name}"', html
    )
    assert match, html
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str) -> None:
    page = client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
    )
    assert response.status_code == 302, response.text


def member(runtime: Runtime, practice: Practice, role: str, now: datetime) -> str:
    email = f"{role}.{practice.id[:6]}@practice.prombot.test"
    with transaction(runtime.engine) as session:
        session.add(
            StaffUser(
                practice_id=practice.id, email=email, name=f"A {role}", role=role,
                password_hash=generate_password_hash(STAFF_PASSWORD), created_at=now,
            )
        )  # fmt: skip
    return email


def upload(client: FlaskClient, data: bytes, name: str = "patients.csv"):
    page = client.get("/staff/import")
    assert page.status_code == 200
    # encoded here, in memory: a large body the app refuses unread is then never a temp file
    boundary, body = encode_multipart(
        {"csrf_token": csrf_token(page.text), "file": FileStorage(io.BytesIO(data), name)}
    )
    return client.post(
        "/staff/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def carried(client: FlaskClient, page_html: str, path: str, token: str | None = None):
    return client.post(
        path,
        data={
            "csrf_token": csrf_token(page_html),
            "token": token if token is not None else hidden(page_html, "token"),
        },
        content_type="multipart/form-data",
    )


PAGE_FILE = codecs.BOM_UTF8 + lines(
    "Jo New,07700900270,,,01/03/2026,depression_review",
    ",".join(ALEX),
    "Bad Mobile,01632960000",
).encode("utf-8")


@pytest.mark.parametrize("role", ["admin", "clinician", "reception"])
def test_each_role_uploads_previews_confirms_and_downloads_the_failures(
    client: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock, role: str
):
    sign_in(client, member(runtime, demo.practice, role, clock.now), STAFF_PASSWORD)
    shown = upload(client, PAGE_FILE)
    assert shown.status_code == 200, shown.text
    assert re.findall(r'data-outcome="(\w+)"', shown.text) == ["enrol_schedule", "duplicate",
                                                                 "error"]  # fmt: skip
    assert "Bad mobile" in shown.text and "nhsuk-table" in shown.text
    assert count(runtime, Patient, phone="+447700900270") == 0  # nothing yet
    assert shown.headers["Cache-Control"] == "no-store"

    done = carried(client, shown.text, "/staff/import/confirm")
    assert done.status_code == 200, done.text
    assert re.search(r'id="enrolled">1<', done.text) and re.search(r'id="scheduled">1<', done.text)
    assert count(runtime, Patient, phone="+447700900270") == 1
    with transaction(runtime.engine, read_only=True) as session:
        actors = set(session.exec(select(AuditEvent.actor).where(
            AuditEvent.action == "patients.imported")).all())  # fmt: skip
    assert len(actors) == 1 and actors.pop().startswith("user:")

    failures = carried(client, done.text, "/staff/import/failures.csv")
    assert failures.status_code == 200
    assert failures.mimetype == "text/csv"
    assert "attachment" in failures.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(failures.data.decode("utf-8-sig"))))
    assert [r[:2] for r in table[1:]] == [["4", "bad mobile"]]

    again = upload(client, PAGE_FILE)
    assert re.findall(r'data-outcome="(\w+)"', again.text) == ["duplicate", "duplicate", "error"]


def test_signed_out_the_import_pages_send_you_to_sign_in(client: FlaskClient, demo: Demo):
    paths = ["/staff/import", "/staff/import/confirm", "/staff/import/failures.csv"]
    for method, path in [("get", paths[0])] + [("post", p) for p in paths]:
        response = getattr(client, method)(path)
        if method == "post":
            assert response.status_code in (302, 400), path  # no CSRF token: refused first
        else:
            assert response.status_code == 302
            assert "/staff/login" in response.headers["Location"]


def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, runtime: Runtime, demo: Demo
):
    sign_in(client, "admin@demo.prombot.test", DEMO_PASSWORD)
    response = client.post(
        "/staff/import",
        data={"file": (io.BytesIO(PAGE_FILE), "p.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert count(runtime, Patient, phone="+447700900270") == 0


def test_another_practice_cannot_confirm_or_download_a_preview_that_is_not_theirs(
    app, runtime: Runtime, demo: Demo, clock: Clock
):
    ours, theirs = app.test_client(), app.test_client()
    sign_in(ours, "admin@demo.prombot.test", DEMO_PASSWORD)
    other = other_practice(runtime, clock.now)
    sign_in(theirs, member(runtime, other.practice, "admin", clock.now), STAFF_PASSWORD)
    shown = upload(ours, PAGE_FILE)
    token = hidden(shown.text, "token")
    page = theirs.get("/staff/import")
    for path in ("/staff/import/confirm", "/staff/import/failures.csv"):
        response = carried(theirs, page.text, path, token=token)
        assert response.status_code == 422
        assert "expired or was changed" in response.text
        assert "Alex Example" not in response.text and "Jo New" not in response.text
    assert count(runtime, Patient, phone="+447700900270") == 0


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.replace(".", "x", 1),
        lambda t: "",
        lambda t: "a" * 5000,
        lambda t: t + "\x00",
    ],
)
def test_a_changed_or_forged_preview_is_refused(client: FlaskClient, runtime: Runtime,
                                                demo: Demo, tamper):  # fmt: skip
    sign_in(client, "admin@demo.prombot.test", DEMO_PASSWORD)
    shown = upload(client, PAGE_FILE)
    response = carried(client, shown.text, "/staff/import/confirm",
                       token=tamper(hidden(shown.text, "token")))  # fmt: skip
    assert response.status_code in (400, 422)
    assert count(runtime, Patient, phone="+447700900270") == 0


HOSTILE_UPLOADS = [
    # the upload                                          status  the page says
    (b"", 422, "empty"),
    (bytes(range(256)) * 40, 422, "binary data"),
    (b"PK\x03\x04" + bytes(100), 422, "spreadsheet workbook"),
    (lines("Jo \ud800,07700900280").encode("utf-8", "surrogatepass"), 200, "not text"),
    (lines("Jo\x00Smith,07700900280").encode(), 200, "control characters"),
    (lines(f'"{"x" * 1_048_576}",07700900280').encode(), 413, "too large"),
]


@pytest.mark.parametrize(("data", "status", "says"), HOSTILE_UPLOADS)
def test_hostile_uploads_get_a_clear_answer_never_a_500(
    client: FlaskClient, demo: Demo, data: bytes, status: int, says: str
):
    sign_in(client, "admin@demo.prombot.test", DEMO_PASSWORD)
    response = upload(client, data)
    assert response.status_code == status, response.text[:500]
    assert says in response.text


def test_the_size_limit_is_a_setting_stated_on_the_page(
    app, client: FlaskClient, runtime: Runtime, demo: Demo
):
    small = replace(runtime, settings=runtime.settings.model_copy(
        update={"prombot_import_max_bytes": 2_000}))  # fmt: skip
    app.extensions["prombot.runtime"] = small
    sign_in(client, "admin@demo.prombot.test", DEMO_PASSWORD)
    assert "Files up to 2 KB" in client.get("/staff/import").text
    data = lines(*[f"Jo Smith,0770090{n:04d}" for n in range(200)]).encode()
    response = upload(client, data)
    assert response.status_code == 422
    assert "largest that can be imported is 2 KB" in response.text
    assert "nhsuk-error-summary" in response.text


def test_no_upload_chosen_is_a_clear_error(client: FlaskClient, demo: Demo):
    sign_in(client, "admin@demo.prombot.test", DEMO_PASSWORD)
    page = client.get("/staff/import")
    response = client.post("/staff/import", data={"csrf_token": csrf_token(page.text)},
                           content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 400
    assert "Choose a CSV file" in response.text
