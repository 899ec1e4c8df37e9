"""The webhook benchmark's pieces that decide what it measures (no timing is asserted)."""

from __future__ import annotations

import itertools
import urllib.parse

from twilio.request_validator import RequestValidator

from bench import webhook


def parse(raw: bytes) -> tuple[dict[str, str], dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /sms/inbound HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body)
    return headers, dict(urllib.parse.parse_qsl(body.decode()))


def test_every_request_is_signed_as_twilio_signs_it_with_a_new_message_sid() -> None:
    patients = ["+447700900201", "+447700900202", "+447700900203"]
    requests = [parse(r) for r in webhook.signed_answers(8123, "+447700900000", patients)]
    validator = RequestValidator(webhook.AUTH_TOKEN)
    for headers, params in requests:
        url = "http://127.0.0.1:8123/sms/inbound"
        assert validator.validate(url, params, headers["X-Twilio-Signature"])
    assert len({params["MessageSid"] for _, params in requests}) == len(requests)


def test_patients_answer_in_turn_one_whole_phq9_each() -> None:
    patients = ["+447700900201", "+447700900202"]
    requests = [parse(r)[1] for r in webhook.signed_answers(8123, "+447700900000", patients)]
    assert [p["From"] for p in requests] == patients * len(webhook.ANSWERS)
    for phone in patients:
        assert [p["Body"] for p in requests if p["From"] == phone] == webhook.ANSWERS
    assert len(webhook.ANSWERS) == 9  # the nine PHQ-9 items; item 9 answered 0, no alert
    assert webhook.ANSWERS[-1] == "0"


def test_the_bare_endpoint_gets_requests_for_as_long_as_it_is_driven() -> None:
    many = list(itertools.islice(webhook.bare_requests(8123), 9 * 800 + 5))
    assert len(many) == 9 * 800 + 5


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert webhook.percentile(values, 50) == 50.0
    assert webhook.percentile(values, 99) == 99.0
    assert webhook.percentile(values, 100) == 100.0
    assert webhook.percentile([7.0], 99) == 7.0
