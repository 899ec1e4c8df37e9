"""No personal data in the logs: not the phone number, the name, the NHS number, or any text.

The end-to-end half runs a whole conversation against the real server (JSON
logs on stderr) and searches everything it and the ``prombot`` commands
logged. The unit half feeds ``scrub_personal_data`` crafted events.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from bot.logging import REMOVED, configure, scrub_personal_data
from tests.e2e.conftest import Server, new_sid, sms_params

NAME = "Morgan Fictional"
PHONE = "+447700900321"
NATIONAL = ["07700 900321", "07700900321", "447700900321", "7700900321"]
NHS_NUMBER = "4010232137"
STRANGER = "+447700900654"

# What the patient texts; each must be missing from the logs (short answers such as
# "2" cannot be told apart from any other number, so distinctive replies are used).
CONVERSATION = [
    "Hello, is this the surgery?",
    "sevral days",
    "I feel rather flat today",
    "HELP",
    "More than half the days",
    "I want to end it all",
    "NEARLY EVERY DAY",
    "not at all",
    "two",
    "Several days",
    "more than half",
    "2",
    "0",
    "Very difficult",
]


def _request_id(n: int) -> str:
    return f"privacy-check-{n:03d}"


def test_a_whole_conversation_leaves_no_personal_data_in_the_logs(server: Server) -> None:
    seen_ids: list[str] = []

    def headers() -> dict[str, str]:
        seen_ids.append(_request_id(len(seen_ids)))
        return {"X-Request-Id": seen_ids[-1]}

    created = server.api(
        "POST",
        "/patients",
        {
            "name": NAME,
            "phone": NATIONAL[0],
            "nhs_number": NHS_NUMBER[:3] + " " + NHS_NUMBER[3:6] + " " + NHS_NUMBER[6:],
            "date_of_birth": "1979-05-17",
        },
        headers=headers(),
    )
    assert created.status == 201, created.body
    patient = created.json()
    assert patient["phone"] == PHONE
    assert created.headers["X-Request-Id"] == seen_ids[-1]
    # A refused enrolment repeats the number in its error; the logs must not.
    duplicate = server.api("POST", "/patients", {"name": NAME, "phone": PHONE}, headers=headers())
    assert duplicate.status == 422

    consultation = server.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient["id"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": "phq9", "after": "P0D"}],
        },
        headers=headers(),
    )
    assert consultation.status == 201
    assert server.tick()["dispatch"]["started"] == 1

    replies: list[str] = []
    for body in CONVERSATION:
        replies += server.text(body, from_=PHONE, headers=headers()).messages()
    assert any("Thank you" in r for r in replies), replies
    # A picture, a forged request, a replay and a stranger: every path that logs.
    replies += server.text("", from_=PHONE, num_media=1, headers=headers()).messages()
    forged = sms_params("My NHS number is " + NHS_NUMBER, from_=PHONE, to=server.demo["sms_number"])
    assert server.post_form("/sms/inbound", forged, signature="bm9wZQ==").status == 403
    replay = sms_params("still here", from_=PHONE, to=server.demo["sms_number"], sid=new_sid())
    server.post_form("/sms/inbound", replay, headers=headers())
    server.post_form("/sms/inbound", replay, headers=headers())
    replies += server.text("Who is this? Morgan", from_=STRANGER, headers=headers()).messages()
    status = {"MessageSid": new_sid(), "MessageStatus": "delivered", "To": PHONE}
    server.post_form("/sms/status", status, headers=headers())

    for path in [
        f"/patients/{patient['id']}",
        f"/patients/{patient['id']}/results",
        f"/messages?patient_id={patient['id']}",
        "/alerts?status=open",
    ]:
        assert server.api("GET", path, headers=headers()).status == 200
    log_of_texts = server.api("GET", f"/messages?patient_id={patient['id']}").json()
    bot_texts = [m["body"] for m in log_of_texts if m["direction"] == "outbound"]
    assert len(bot_texts) >= len(CONVERSATION)

    server.stop()  # everything it will ever write is on disk now
    server_log = server.stderr()
    command_logs = "\n".join(server.command_stderr)
    everything = server_log + "\n" + command_logs

    # -- nothing personal ------------------------------------------------------------
    forbidden = {
        "name": NAME,
        "first name": NAME.split()[0],
        "family name": NAME.split()[1],
        "phone": PHONE,
        "stranger's phone": STRANGER,
        "date of birth": "1979-05-17",
        "NHS number": NHS_NUMBER,
        "NHS number, spaced": f"{NHS_NUMBER[:3]} {NHS_NUMBER[3:6]} {NHS_NUMBER[6:]}",
        **{f"national form {n}": form for n, form in enumerate(NATIONAL)},
        **{f"patient text {body!r}": body for body in CONVERSATION if len(body) > 3},
        "forged text": "My NHS number is",
        "replayed text": "still here",
    }
    for n, text in enumerate(bot_texts + replies):
        forbidden[f"bot text {n}"] = text
        for m, line in enumerate(text.splitlines()):
            if len(line) >= 20:
                forbidden[f"bot text {n} line {m}"] = line
    leaks = {what: value for what, value in forbidden.items() if value in everything}
    leaks.update(
        {
            f"{what} (JSON-escaped)": value
            for what, value in forbidden.items()
            if json.dumps(value)[1:-1] in everything and value not in everything
        }
    )
    assert leaks == {}, f"personal data in the logs: {sorted(leaks)}"

    # -- but useful: JSON lines, each request's lines carrying its id ----------------
    lines = [json.loads(line) for line in server_log.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    ours = [line for line in lines if str(line.get("logger", "")).startswith("bot.")]
    assert ours, "the app logged nothing of its own"
    assert all(line.get("request_id") for line in ours), [
        line for line in ours if not line.get("request_id")
    ]
    logged_ids = {line.get("request_id") for line in lines}
    handled = [line for line in ours if line["event"] == "inbound.handled"]
    assert len(handled) >= len(CONVERSATION)
    assert {line["request_id"] for line in handled} <= set(seen_ids)
    assert set(seen_ids) & logged_ids, "none of the request ids sent reached the logs"
    assert any(line["event"] == "webhook.bad_signature" for line in ours)
    assert all(
        "\x1b[" not in json.dumps(line) and "\\u001b" not in json.dumps(line) for line in lines
    )


# -- the scrubber on its own ---------------------------------------------------------------


def scrub(**event: Any) -> dict[str, Any]:
    return dict(scrub_personal_data(None, "info", dict(event)))


@pytest.mark.parametrize(
    "key",
    [
        "body",
        "Body",
        "text",
        "raw_text",
        "name",
        "patient_name",
        "Name",
        "phone",
        "phone_number",
        "From",
        "from_",
        "to",
        "To",
        "nhs_number",
        "NHS",
        "date_of_birth",
        "email",
        "contact_email",
        "mobile",
        "password",
        "api_token",
        "Authorization",
    ],
)
def test_personal_fields_are_removed_by_name(key: str) -> None:
    assert scrub(event="x", **{key: "Morgan Fictional +447700900321"})[key] == REMOVED


def test_personal_fields_inside_nested_values_are_removed() -> None:
    event = scrub(
        event="inbound",
        form={"From": PHONE, "Body": "I feel low", "MessageSid": "SM" + "a" * 32},
        patients=[{"id": "p1", "name": NAME}],
    )
    assert event["form"] == {"From": REMOVED, "Body": REMOVED, "MessageSid": "SM" + "a" * 32}
    assert event["patients"] == [{"id": "p1", "name": REMOVED}]


@pytest.mark.parametrize(
    "number",
    [
        "+447700900321",
        "+44 7700 900321",
        "+44 (0)7700 900321",
        "07700 900321",
        "07700900321",
        "07700-900-321",
        "447700900321",
        "01632 960000",
        "4010232137",
        "401 023 2137",
        "401-023-2137",
    ],
)
def test_phone_and_nhs_numbers_inside_other_strings_are_masked(number: str) -> None:
    event = scrub(event=f"could not text {number} today", detail=f"({number})", note=[number])
    assert number not in json.dumps(event)
    assert "[number]" in event["event"] and "[number]" in event["detail"]
    assert event["event"].startswith("could not text ") and event["event"].endswith(" today")


def test_email_addresses_are_masked() -> None:
    event = scrub(event="sent to morgan.fictional@example.invalid")
    assert event["event"] == "sent to [email]"


def test_timestamps_ids_and_counts_are_untouched() -> None:
    untouched = {
        "timestamp": "2026-03-02T10:00:00.123456Z",
        "at": "2026-03-02T10:00:00+00:00",
        "due_at": "2026-11-27 13:36:44.200740+00:00",
        "request_id": "0f5c2a8e-7b41-4c3e-9a51-2d6f1e0b9c77",
        "conversation_id": "3f2a9c1e0b7d4e6fa1c2b3d4e5f60718",
        "invitation_id": "12345678901234567890123456789012",
        "message_sid": "SM0123456789abcdef0123456789abcdef",
        "uuid": "123e4567-e89b-12d3-a456-426614174000",
        "events": ["answer_recorded", "reply"],
        "error_code": 21610,
        "count": 12,
        "version": 3,
        "path": "/api/v1/patients/3f2a9c1e0b7d4e6fa1c2b3d4e5f60718/results",
        "level": "info",
        "logger": "bot.services.inbound",
    }
    assert scrub(event="inbound.handled", **untouched) == {"event": "inbound.handled", **untouched}


def test_database_errors_lose_the_values_they_quote() -> None:
    error = (
        "(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "
        '"uq_patient_practice_phone"\n'
        "DETAIL:  Key (practice_id, phone)=(8b69b0875bed406f810938a0fe0639c6, "
        "+447700900321) already exists.\n"
        "[SQL: INSERT INTO patient (id, name, phone) VALUES (%(id)s, %(name)s, %(phone)s)]\n"
        "[parameters: {'id': 'abc', 'name': 'Morgan Fictional', 'phone': '+447700900321', "
        "'body': 'I want to end it all'}]\n"
        "(Background on this error at: https://sqlalche.me/e/21/gkpj)"
    )
    not_null = "DETAIL:  Failing row contains (abc, null, Morgan Fictional, I feel low)."
    event = scrub(event="request failed", exception=error, other=not_null)
    rendered = json.dumps(event)
    for secret in ["Morgan", "+447700900321", "end it all", "I feel low"]:
        assert secret not in rendered
    assert "UniqueViolation" in event["exception"]
    assert "[SQL: INSERT INTO patient" in event["exception"]


def test_log_lines_through_the_standard_library_are_scrubbed_too() -> None:
    """Werkzeug, Flask and SQLAlchemy log through ``logging``, not structlog."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure(json_lines=True, stream=stream)
        logging.getLogger("werkzeug").info(
            '\x1b[31m127.0.0.1 - - "POST /sms/inbound?From=%s HTTP/1.1" 200 -\x1b[0m', PHONE
        )
        structlog.get_logger("bot.test").info("inbound.handled", body="I feel low", to=PHONE)
        try:
            raise RuntimeError(
                "(psycopg.DataError) value too long\n"
                "[parameters: {'name': 'Morgan Fictional', 'body': 'I feel low'}]"
            )
        except RuntimeError:
            logging.getLogger("bot").exception("Exception on /sms/inbound [POST]")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 3
    for secret in [PHONE, "I feel low", "Morgan"]:
        assert secret not in output
    assert "\\u001b" not in output
    assert lines[0]["event"].startswith('127.0.0.1 - - "POST /sms/inbound?From=[number]')
    assert lines[1]["body"] == REMOVED and lines[1]["to"] == REMOVED
    assert "RuntimeError" in lines[2]["exception"] and "Traceback" in lines[2]["exception"]
