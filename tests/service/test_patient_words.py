"""The self-harm item, signposting by nation and opt-out words, through the whole shell.

On SQLite and PostgreSQL, from the signed webhook to the stored alert: a
worded reply at PHQ-9 item 9 raises an urgent alert that keeps the patient's
own words (alert page and API, never a notification); conflicting replies keep
the alert and show both; the practice's nation decides the crisis lines, even
mid-questionnaire; a plain "please stop messaging me" cancels everything like
STOP; a questionnaire that expires at item 9 raises the alert too.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from bot.flows.signposting import crisis_lines
from bot.services.alert_notices import notify_due
from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.services.timers import expire_due
from bot.store.db import transaction
from bot.store.models import Invitation, Message, ResultRecord
from tests.service.alerting import Mailbox, smtp_server
from tests.service.conftest import Clock
from tests.service.test_staff_views import sign_in
from tests.service.test_webhook import Questionnaire, start_questionnaire
from tests.support import use_settings

EIGHT_ANSWERS = ["1", "0", "1", "0", "1", "0", "1", "0"]
WORDS = "yes I think about it"


@pytest.fixture
def phq9(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo) -> Questionnaire:
    questionnaire = start_questionnaire(client, runtime, clock, demo)
    for value in EIGHT_ANSWERS:
        questionnaire.send(value)
    return questionnaire


@pytest.fixture
def mailbox(app: Flask) -> Iterator[Mailbox]:
    with smtp_server() as box:
        use_settings(app, smtp_url=box.url)
        yield box


def _api_alerts(client: FlaskClient, demo: Demo) -> list[dict]:
    response = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {demo.api_token}"})
    assert response.status_code == 200
    return response.get_json()


def _set_nation(client: FlaskClient, demo: Demo, nation: str) -> None:
    response = client.patch(
        "/api/v1/practice",
        json={"nation": nation},
        headers={"Authorization": f"Bearer {demo.api_token}"},
    )
    assert response.status_code == 200, response.get_json()


def test_yes_at_item_9_gets_the_crisis_text_and_an_urgent_alert_with_the_words(
    phq9: Questionnaire,
) -> None:
    safety, again = phq9.send("yes")
    assert crisis_lines("ENG") in safety
    assert again.startswith("Q9/9")
    (alert,) = phq9.alerts()
    assert (alert.flag, alert.severity, alert.status) == ("self_harm_risk", "urgent", "open")
    assert (alert.reason, alert.item, alert.patient_words) == ("unclear_answer", "self_harm", "yes")
    assert alert.invitation_id == phq9.invitation_id
    # a second unclear reply adds its words to the same open alert
    phq9.send("a bit")
    (alert,) = phq9.alerts()
    assert alert.patient_words == "yes\na bit"


def test_yes_then_zero_keeps_the_alert_and_the_clinician_sees_both_replies(
    phq9: Questionnaire, client: FlaskClient, demo: Demo
) -> None:
    phq9.send("yes")
    phq9.send("0")  # a clear zero now: recorded, but the alert stands
    phq9.send("0")  # the difficulty question: the end
    recorded = {a.item: (a.value, a.raw_text) for a in phq9.answers()}
    assert recorded["self_harm"] == (0, "0")
    (alert,) = phq9.alerts()
    assert alert.status == "open" and alert.patient_words == "yes"

    (shown,) = _api_alerts(client, demo)
    assert shown["patient_words"] == "yes"
    assert shown["item"] == "self_harm" and shown["reason"] == "unclear_answer"
    results = client.get(
        f"/api/v1/patients/{phq9.patient_id}/results",
        headers={"Authorization": f"Bearer {demo.api_token}"},
    ).get_json()
    assert results[0]["answers"]["self_harm"] == 0
    assert results[0]["flags"] == ["self_harm_risk"]

    assert sign_in(client).status_code == 302
    page = html.unescape(client.get(f"/staff/alerts/{alert.id}").text)
    assert "Thoughts that you would be better off dead" in page
    assert "Patient's words" in page and "yes" in page
    assert "0 (Not at all), from the reply \u201c0\u201d" in page


def test_the_patients_words_are_never_in_a_notification(
    phq9: Questionnaire, runtime: Runtime, clock: Clock, mailbox: Mailbox
) -> None:
    phq9.send(WORDS)
    (alert,) = phq9.alerts()
    assert alert.patient_words == WORDS
    assert notify_due(runtime, clock.now)["sent"] >= 1
    assert mailbox.received
    for mail in mailbox.received:
        assert "think about it" not in mail.text
    with transaction(runtime.engine, read_only=True) as session:
        staff_texts = session.exec(
            select(Message).where(Message.patient_id == None)  # noqa: E711
        ).all()
    assert staff_texts
    for text in staff_texts:
        assert "think about it" not in text.body


def test_a_practice_in_northern_ireland_signposts_to_lifeline_not_111(
    phq9: Questionnaire, client: FlaskClient, demo: Demo
) -> None:
    # The conversation started in England; the practice's nation is corrected
    # mid-questionnaire, and the very next crisis text follows it.
    _set_nation(client, demo, "NIR")
    safety, _ = phq9.send("sometimes")
    assert crisis_lines("NIR") in safety
    assert "Lifeline 0808 808 8000" in safety and "111" not in safety
    help_text = phq9.send("HELP")[0]
    assert "Lifeline 0808 808 8000" in help_text and "111" not in help_text


@pytest.mark.parametrize(("nation", "words"), [("WLS", "NHS 111 Wales"), ("SCT", "NHS 24")])
def test_a_known_patient_with_nothing_open_gets_their_nations_lines(
    client: FlaskClient, demo: Demo, nation: str, words: str
) -> None:
    _set_nation(client, demo, nation)
    questionnaire = Questionnaire(
        client=client,
        runtime=None,  # type: ignore[arg-type]
        patient_id=demo.patients[1].id,
        phone=demo.patients[1].phone,
        invitation_id="",
        opening=[],
    )
    (reply,) = questionnaire.send("hello")
    assert crisis_lines(nation) in reply and words in reply


def test_a_plain_request_to_stop_cancels_everything_pending_like_stop(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    gad7 = start_questionnaire(
        client,
        runtime,
        clock,
        demo,
        schedule=[
            {"instrument": "gad7", "after": "P0D"},
            {"instrument": "gad7", "after": "P14D"},
            {"instrument": "phq9", "after": "P28D"},
        ],
    )
    assert gad7.send("i can't stop worrying")[0].startswith("Sorry")  # not an opt-out
    replies = gad7.send("Please stop messaging me, thank you")
    assert len(replies) == 1 and "opted out" in replies[0]
    assert gad7.patient().opted_out
    with transaction(runtime.engine, read_only=True) as session:
        statuses = {
            i.id: i.status
            for i in session.exec(
                select(Invitation).where(Invitation.patient_id == gad7.patient_id)
            ).all()
        }
    assert statuses.pop(gad7.invitation_id) == "opted_out"
    assert sorted(statuses.values()) == ["cancelled", "cancelled"]
    assert gad7.send("yes") == []  # only START opts back in
    assert "opted back in" in gad7.send("START")[0]


def test_a_questionnaire_that_expires_at_item_9_raises_an_urgent_alert(
    phq9: Questionnaire, runtime: Runtime, clock: Clock
) -> None:
    assert phq9.alerts() == []
    expire_due(runtime, clock.advance(days=8))
    (alert,) = phq9.alerts()
    assert (alert.flag, alert.severity, alert.reason, alert.item) == (
        "self_harm_risk",
        "urgent",
        "left_unanswered",
        "self_harm",
    )
    assert alert.patient_words is None
    assert phq9.invitation().status == "incomplete"
    with transaction(runtime.engine, read_only=True) as session:
        (result,) = session.exec(
            select(ResultRecord).where(ResultRecord.invitation_id == phq9.invitation_id)
        ).all()
    assert result.total is None and "self_harm_risk" in result.flags_json
