"""The clinician's record of a patient (SQLite and PostgreSQL): words, change, transcript.

A patient answers a whole PHQ-9 by SMS (one reply in words), then starts
another and stops part-way. The record shows every question with the
patient's own words and the option they were read as; the unfinished
questionnaire's unanswered questions are "missing", never 0, and it has no
total, no change and a record block that says it was not scored. The
transcript lists every text with its delivery state; another practice's
patient is a 404 on both pages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from bot.services import clinical_record
from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.store.models import Patient
from tests.service.alerting import other_practice
from tests.service.conftest import Clock
from tests.service.test_api import answer_phq9, bearer, start_now, text
from tests.service.test_staff_views import sign_in

COMPLETE = ["2", "more than half", "2", "2", "2", "2", "2", "1", "0", "1"]  # total 15


@pytest.fixture
def alex(demo: Demo) -> Patient:
    return next(p for p in demo.patients if p.name == "Alex Example")


@pytest.fixture
def answered(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo, alex: Patient):
    headers = bearer(demo.api_token)
    answer_phq9(client, headers, runtime, clock, demo.practice, alex, COMPLETE)
    clock.advance(days=14)
    start_now(client, headers, runtime, clock, alex.id)
    text(runtime, clock, demo.practice.sms_number, alex.phone, "1", "1", "1", "STOP")
    return clinical_record.clinical_record(runtime, demo.practice.id, alex.id, runtime.catalogue)


def test_every_question_shows_the_patients_words_and_the_option_read(answered) -> None:
    (trend,) = answered.trends
    first = trend.results[0]
    assert (first.total, first.band_label, first.prorated) == (15, "Moderately severe", False)
    mood = next(a for a in first.answers if a.item_id == "mood")
    assert (mood.number, mood.reply, mood.option, mood.value) == (
        2,
        "more than half",
        "More than half the days",
        2,
    )
    assert [a.text for a in first.answers] == [i.text for i in trend.instrument.items]


def test_unanswered_questions_are_missing_never_zero_and_nothing_is_classified(answered) -> None:
    (trend,) = answered.trends
    unfinished = trend.results[1]
    assert unfinished.total is None and unfinished.change is None
    assert [a.value for a in unfinished.answers[:3]] == [1, 1, 1]
    assert all(a.missing and a.option is None for a in unfinished.answers[3:9])
    assert unfinished.missing_count == 6
    assert unfinished.record_text.startswith("PHQ-9: not scored (6 of 9 questions unanswered")
    assert "missing (not answered)" in unfinished.record_text
    assert trend.change is None  # one scored result only: no change from baseline


def test_the_page_shows_missing_answers_and_the_copy_block(
    client: FlaskClient, demo: Demo, alex: Patient, answered
) -> None:
    sign_in(client)
    page = client.get(f"/staff/patients/{alex.id}")
    assert page.status_code == 200
    assert (
        page.text.count('class="nhsuk-tag nhsuk-tag--grey answer-missing">missing<') == 7
    )  # 6 + difficulty
    assert "SNOMED CT 720433000 |Patient Health Questionnaire Nine Item score| = 15" in page.text
    assert "&ldquo;more than half&rdquo;" in page.text
    assert 'src="/static/copy.js"' in page.text
    # Without JavaScript: the block is read-only selectable text and the button stays hidden.
    assert "readonly>SNOMED CT 720433000" in page.text
    assert page.text.count("hidden>Copy</button>") == 2
    assert "style=" not in page.text.split("</head>")[1]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_transcript_lists_every_text_with_its_delivery_state(
    client: FlaskClient, runtime: Runtime, demo: Demo, alex: Patient, answered
) -> None:
    found = clinical_record.transcript(runtime, demo.practice.id, alex.id)
    inbound = [line for line in found.lines if line.direction == "inbound"]
    assert [line.body for line in inbound] == [*COMPLETE, "1", "1", "1", "STOP"]
    assert {line.state for line in inbound} == {"received"}
    outbound = {line.state for line in found.lines if line.direction == "outbound"}
    assert outbound and outbound <= {"queued", "sent", "delivered", "failed"}
    sign_in(client)
    page = client.get(f"/staff/patients/{alex.id}/transcript")
    assert page.status_code == 200
    assert page.text.count('class="nhsuk-table__row transcript-inbound"') == len(inbound)


def test_another_practices_patient_is_not_found_on_either_page(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    other = other_practice(runtime, clock.now)
    sign_in(client)
    for path in [
        f"/staff/patients/{other.patient.id}",
        f"/staff/patients/{other.patient.id}/transcript",
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert other.patient.name not in response.text


def test_a_result_is_dated_in_the_practices_time_zone() -> None:
    # 23:30 UTC on 1 June is 00:30 on 2 June in London: the GP record must say 2 June.
    moment = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert clinical_record._day(moment, ZoneInfo("Europe/London")) == date(2026, 6, 2)
    assert clinical_record._day(moment, ZoneInfo("UTC")) == date(2026, 6, 1)
