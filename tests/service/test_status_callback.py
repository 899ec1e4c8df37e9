"""POST /sms/status: Twilio's delivery status callbacks, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import structlog
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.demo import DEMO_SMS_NUMBER, Demo
from bot.services.dispatch import dispatch_due
from bot.services.outbox import send_outbox
from bot.services.runtime import Runtime
from bot.sms.gateway import SendError, Sent
from bot.store.db import transaction
from bot.store.models import Invitation, Message, Patient, ResultRecord
from tests.service.conftest import Clock
from tests.service.test_webhook import (
    ACCOUNT_SID,
    INBOUND,
    STATUS,
    Questionnaire,
    new_sid,
    post_signed,
    sign,
    sms_params,
    snapshot,
    start_questionnaire,
    twiml,
)


class TwilioLikeGateway:
    """Hands texts over the way Twilio does: a fresh SM sid, status "queued"."""

    name = "twilio-like"

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        return Sent(provider_sid=new_sid(), status="queued")


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    """The app's runtime with a gateway whose messages wait for status callbacks."""
    rt = dataclasses.replace(app.extensions["prombot.runtime"], gateway=TwilioLikeGateway())
    app.extensions["prombot.runtime"] = rt
    return rt


@pytest.fixture
def started(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo) -> Questionnaire:
    return start_questionnaire(
        client,
        runtime,
        clock,
        demo,
        schedule=[
            {"instrument": "phq9", "after": "P0D"},
            {"instrument": "gad7", "after": "P14D"},
        ],
    )


def sent_messages(rt: Runtime, patient_id: str) -> list[Message]:
    with transaction(rt.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.patient_id == patient_id)
                .where(Message.direction == "outbound")
                .where(Message.provider_sid != None)  # noqa: E711
                .order_by(col(Message.created_at), col(Message.position))
            ).all()
        )


def message_by_sid(rt: Runtime, sid: str) -> Message:
    with transaction(rt.engine, read_only=True) as session:
        return session.exec(select(Message).where(Message.provider_sid == sid)).one()


def status_params(sid: str, status: str, *, error_code: int | str | None = None) -> dict[str, str]:
    """The parameters Twilio posts to a status callback."""
    params = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": "+447700900101",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": DEMO_SMS_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


def callback(client: FlaskClient, sid: str, status: str, **kwargs: int | str) -> None:
    response = post_signed(client, STATUS, status_params(sid, status, **kwargs))
    assert response.status_code in (200, 204), response.data


@pytest.mark.parametrize("how", ["missing", "forged", "tampered", "inbound_url"])
def test_a_status_callback_without_twilios_signature_is_refused(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, how: str
) -> None:
    intro = sent_messages(runtime, started.patient_id)[0]
    params = status_params(intro.provider_sid or "", "failed", error_code=21610)
    signature = {
        "missing": "",
        "forged": "c2lnbmVkIGJ5IG5vYm9keSBhdCBhbGwh",
        "tampered": sign(STATUS, {**params, "MessageStatus": "delivered"}),
        "inbound_url": sign(INBOUND, params),
    }[how]
    before = snapshot(runtime)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = client.post(STATUS, data=params, headers=headers)
    assert response.status_code == 403
    assert snapshot(runtime) == before
    assert not started.patient().opted_out


def test_status_moves_forwards_and_never_back(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    intro = sent_messages(runtime, started.patient_id)[0]
    sid = intro.provider_sid or ""
    assert intro.status == "queued"

    for status, expected in [
        ("sending", "sending"),
        ("queued", "sending"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),  # a late "sent" after "delivered": stays delivered
        ("queued", "delivered"),
        ("failed", "delivered"),  # a final status is not replaced by another final one
        ("read", "read"),
        ("delivered", "read"),
    ]:
        callback(client, sid, status)
        assert message_by_sid(runtime, sid).status == expected, status


def test_an_error_code_is_stored(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    question = sent_messages(runtime, started.patient_id)[1]
    sid = question.provider_sid or ""
    callback(client, sid, "sent")
    callback(client, sid, "undelivered", error_code=30003)
    stored = message_by_sid(runtime, sid)
    assert (stored.status, stored.error_code) == ("undelivered", 30003)
    assert not started.patient().opted_out
    # An out-of-order "sent" arriving afterwards changes neither.
    callback(client, sid, "sent")
    stored = message_by_sid(runtime, sid)
    assert (stored.status, stored.error_code) == ("undelivered", 30003)


def test_a_replayed_status_callback_changes_nothing(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    sid = sent_messages(runtime, started.patient_id)[0].provider_sid or ""
    callback(client, sid, "delivered")
    before = snapshot(runtime)
    callback(client, sid, "delivered")
    assert snapshot(runtime) == before


def test_unknown_sids_and_statuses_are_acknowledged_and_change_nothing(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    before = snapshot(runtime)
    callback(client, new_sid(), "delivered")
    callback(client, new_sid(), "failed", error_code=21610)
    sid = sent_messages(runtime, started.patient_id)[0].provider_sid or ""
    callback(client, sid, "exploded")
    assert snapshot(runtime) == before


@pytest.mark.parametrize("code", ["\u00b2", "99999999999999999999", "-1", "30003x"])
def test_an_error_code_that_is_not_a_number_is_ignored(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, code: str
) -> None:
    sid = sent_messages(runtime, started.patient_id)[0].provider_sid or ""
    callback(client, sid, "undelivered", error_code=code)
    stored = message_by_sid(runtime, sid)
    assert (stored.status, stored.error_code) == ("undelivered", None)


@pytest.mark.parametrize("sid", ["", "SM\x00", "SM" + "0" * 90, "<script>"])
def test_a_status_callback_with_a_malformed_sid_is_a_400(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, sid: str
) -> None:
    before = snapshot(runtime)
    response = post_signed(client, STATUS, status_params(sid, "failed", error_code=21610))
    assert response.status_code == 400
    assert snapshot(runtime) == before


def test_a_callback_naming_an_inbound_message_changes_nothing(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    sid = new_sid()
    started.send("1", sid=sid)
    before = snapshot(runtime)
    callback(client, sid, "failed", error_code=21610)
    assert snapshot(runtime) == before
    assert message_by_sid(runtime, sid).status == "received"


def test_error_21610_opts_the_patient_out_and_cancels_what_is_pending(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, clock: Clock
) -> None:
    started.send("2")
    question = sent_messages(runtime, started.patient_id)[1]
    callback(client, question.provider_sid or "", "failed", error_code=21610)

    stored = message_by_sid(runtime, question.provider_sid or "")
    assert (stored.status, stored.error_code) == ("failed", 21610)
    patient = started.patient()
    assert patient.opted_out and patient.opted_out_at == clock.now
    with transaction(runtime.engine, read_only=True) as session:
        statuses = {
            i.instrument: i.status
            for i in session.exec(
                select(Invitation).where(Invitation.patient_id == started.patient_id)
            )
        }
        results = session.exec(
            select(ResultRecord).where(ResultRecord.invitation_id == started.invitation_id)
        ).all()
    # The later invitation is cancelled; the open questionnaire ends as opted out,
    # keeping the answer given, and nobody is texted about it.
    assert statuses == {"phq9": "opted_out", "gad7": "cancelled"}
    assert not started.conversation().active
    assert [(r.status, r.answers_json) for r in results] == [("opted_out", '{"interest": 2}')]
    assert len(sent_messages(runtime, started.patient_id)) == 2
    with transaction(runtime.engine, read_only=True) as session:
        queued = session.exec(
            select(Message).where(Message.status == "queued").where(Message.provider_sid == None)  # noqa: E711
        ).all()
    assert queued == []

    # From now on the patient hears nothing but START's answer, and nothing is sent.
    assert started.send("3") == []
    clock.advance(days=15)
    assert dispatch_due(runtime, clock.now)["started"] == 0
    assert len(started.send("START")) == 1
    assert not started.patient().opted_out


def test_error_21610_with_nothing_open_opts_out_too(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo, started: Questionnaire
) -> None:
    for value in ["0"] * 9:
        started.send(value)
    assert not started.conversation().active
    intro = sent_messages(runtime, started.patient_id)[0]
    callback(client, intro.provider_sid or "", "undelivered", error_code=21610)
    assert started.patient().opted_out
    assert started.invitation().status == "completed"  # a finished questionnaire stays finished


def test_opting_out_cancels_texts_still_waiting_in_the_outbox(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    """A STOP that arrives before the outbox is sent: the opening texts never go."""
    patient = demo.patients[1]
    with transaction(runtime.engine) as session:
        session.add(
            Invitation(
                practice_id=patient.practice_id,
                patient_id=patient.id,
                instrument="gad7",
                due_at=clock.now,
                created_at=clock.now,
            )
        )
    # Start the conversation without sending: what dispatch_due does before send_outbox.
    from bot.services import dispatch

    with transaction(runtime.engine) as session:
        invitation = session.exec(
            select(Invitation).where(Invitation.patient_id == patient.id)
        ).one()
        assert dispatch._start_one(session, runtime, invitation, clock.now) == "started"
    replies = twiml(post_signed(client, INBOUND, sms_params("STOP", from_=patient.phone)))
    assert len(replies) == 1
    assert dispatch.send_outbox(runtime, clock.now) == {"sent": 0, "failed": 0}
    with transaction(runtime.engine, read_only=True) as session:
        opening = session.exec(
            select(Message)
            .where(Message.patient_id == patient.id)
            .where(Message.direction == "outbound")
            .where(Message.in_reply_to == None)  # noqa: E711
        ).all()
        stored = session.get(Patient, patient.id)
    assert [m.status for m in opening] == ["canceled", "canceled"]
    assert stored is not None and stored.opted_out


# -- reports that arrive before the SID is recorded ----------------------------------------


def report_path(message_id: str) -> str:
    """The status callback URL the Twilio gateway gives each text: it names the text."""
    return f"{STATUS}?message_id={message_id}"


def report(client: FlaskClient, message_id: str, sid: str, status: str, **kwargs: Any) -> None:
    response = post_signed(client, report_path(message_id), status_params(sid, status, **kwargs))
    assert response.status_code == 204, response.data


@dataclasses.dataclass
class ReportsFirstGateway:
    """Twilio as fake-twilio plays it: every report reaches us before the create answers."""

    client: FlaskClient
    statuses: tuple[str, ...] = ("queued", "sent", "delivered")
    name: str = "reports-first"

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        sid = new_sid()
        for status in self.statuses:
            report(self.client, message_id, sid, status)
        return Sent(provider_sid=sid, status="queued")


def outbound_texts(rt: Runtime, patient_id: str) -> list[Message]:
    with transaction(rt.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.patient_id == patient_id)
                .where(Message.direction == "outbound")
                .order_by(col(Message.created_at), col(Message.position))
            ).all()
        )


def test_reports_that_arrive_before_the_sid_is_recorded_still_reach_their_text(
    app: Flask, client: FlaskClient, clock: Clock, demo: Demo
) -> None:
    """The issue's dropped reports: each is matched by the text's id in its callback URL,
    and the create's later "queued" never pulls a delivered text back."""
    rt = dataclasses.replace(app.extensions["prombot.runtime"], gateway=ReportsFirstGateway(client))
    app.extensions["prombot.runtime"] = rt
    questionnaire = start_questionnaire(client, rt, clock, demo)
    texts = outbound_texts(rt, questionnaire.patient_id)
    assert len(texts) == 2
    for text in texts:
        assert text.provider_sid is not None
        assert (text.status, text.claim_token, text.handed_over_at) == ("delivered", None, None)
        assert text.attempts == 1


def test_a_report_for_a_text_in_doubt_records_its_sid_so_it_is_never_sent_again(
    app: Flask, client: FlaskClient, clock: Clock, demo: Demo
) -> None:
    class NoAnswer:
        """Twilio took the text but the answer never came."""

        name = "no-answer"

        def send(self, **kwargs: Any) -> Sent:
            raise SendError(None, "read timed out", permanent=False, in_doubt=True)

    rt = dataclasses.replace(app.extensions["prombot.runtime"], gateway=NoAnswer())
    app.extensions["prombot.runtime"] = rt
    patient = demo.patients[0]
    with transaction(rt.engine) as session:
        message = Message(
            practice_id=patient.practice_id,
            patient_id=patient.id,
            direction="outbound",
            phone=patient.phone,
            body="Q1/9 Little interest?",
            status="queued",
            created_at=clock.now,
            updated_at=clock.now,
        )
        session.add(message)
        session.flush()
        message_id = message.id
    assert send_outbox(rt, clock.now)["in_doubt"] == 1

    sid = new_sid()
    report(client, message_id, sid, "sent")
    clock.advance(hours=1)
    assert send_outbox(rt, clock.now) == {"sent": 0, "failed": 0}  # nothing left to settle
    (text,) = outbound_texts(rt, patient.id)
    assert (text.provider_sid, text.status, text.attempts) == (sid, "sent", 1)
    assert (text.claim_token, text.handed_over_at, text.next_attempt_at) == (None, None, None)


def test_a_report_for_a_text_another_scheduler_holds_stops_it_being_handed_over(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    """A claim is revoked by the SID: the holder's hand-over finds its token gone."""
    patient = demo.patients[1]
    with transaction(runtime.engine) as session:
        message = Message(
            practice_id=patient.practice_id,
            patient_id=patient.id,
            direction="outbound",
            phone=patient.phone,
            body="Hello again",
            status="sending",
            claim_token="f" * 32,
            claimed_until=clock.now + timedelta(minutes=1),
            created_at=clock.now,
            updated_at=clock.now,
        )
        session.add(message)
        session.flush()
        message_id = message.id
    sid = new_sid()
    report(client, message_id, sid, "delivered")
    (text,) = outbound_texts(runtime, patient.id)
    assert (text.provider_sid, text.status, text.claim_token) == (sid, "delivered", None)


@pytest.mark.parametrize("how", ["altered", "added", "removed", "another_texts"])
def test_a_report_whose_message_id_was_changed_fails_the_signature(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, how: str
) -> None:
    """The id is in the URL Twilio signs: changing it, adding or removing it breaks the
    signature, so nobody can attach a report (or a 21610 opt-out) to another text."""
    intro, question = sent_messages(runtime, started.patient_id)[:2]
    params = status_params(intro.provider_sid or "", "failed", error_code=21610)
    signed_for, posted_to = {
        "altered": (report_path(intro.id), report_path("0" * 32)),
        "added": (STATUS, report_path(intro.id)),
        "removed": (report_path(intro.id), STATUS),
        "another_texts": (report_path(intro.id), report_path(question.id)),
    }[how]
    before = snapshot(runtime)
    response = client.post(
        posted_to, data=params, headers={"X-Twilio-Signature": sign(signed_for, params)}
    )
    assert response.status_code == 403
    assert snapshot(runtime) == before
    assert not started.patient().opted_out


@pytest.mark.parametrize("message_id", ["", "not-an-id", "A" * 32, "0" * 31, "0" * 33])
def test_a_report_with_a_malformed_message_id_is_a_400(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, message_id: str
) -> None:
    intro = sent_messages(runtime, started.patient_id)[0]
    before = snapshot(runtime)
    path = f"{STATUS}?message_id={message_id}"
    response = post_signed(client, path, status_params(intro.provider_sid or "", "delivered"))
    assert response.status_code == 400
    assert snapshot(runtime) == before


def test_a_report_about_a_second_copy_of_a_text_changes_nothing_and_is_logged(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    intro = sent_messages(runtime, started.patient_id)[0]
    report(client, intro.id, intro.provider_sid or "", "delivered")
    before = snapshot(runtime)
    second = new_sid()
    with structlog.testing.capture_logs() as logs:
        report(client, intro.id, second, "delivered")
    assert snapshot(runtime) == before
    assert message_by_sid(runtime, intro.provider_sid or "").status == "delivered"
    (event,) = [e for e in logs if e["event"] == "status.second_copy"]
    assert (event["message_id"], event["message_sid"], event["recorded_sid"]) == (
        intro.id,
        second,
        intro.provider_sid,
    )


@pytest.mark.parametrize(
    ("history", "final"),
    [
        (["queued", "sent", "delivered"], "delivered"),
        (["delivered", "sent", "queued"], "delivered"),  # out of order: never backwards
        (["sent", "undelivered", "delivered"], "undelivered"),  # a final status stays
        (["sent", "failed", "sent"], "failed"),
        (["delivered", "read", "sent"], "read"),
        (["failed", "read"], "failed"),  # only a delivered text can be read
        (["sent", "read"], "read"),
    ],
)
def test_reports_in_any_order_end_in_the_final_status(
    started: Questionnaire, client: FlaskClient, runtime: Runtime, history: list[str], final: str
) -> None:
    intro = sent_messages(runtime, started.patient_id)[0]
    for status in history:
        report(client, intro.id, intro.provider_sid or "", status)
    assert message_by_sid(runtime, intro.provider_sid or "").status == final


def test_a_late_error_code_does_not_land_on_a_text_in_another_state(
    started: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    intro = sent_messages(runtime, started.patient_id)[0]
    sid = intro.provider_sid or ""
    report(client, intro.id, sid, "delivered")
    report(client, intro.id, sid, "undelivered", error_code=30003)
    stored = message_by_sid(runtime, sid)
    assert (stored.status, stored.error_code) == ("delivered", None)
