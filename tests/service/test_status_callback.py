"""POST /sms/status: Twilio's delivery status callbacks, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import col, select

from bot.services.demo import DEMO_SMS_NUMBER, Demo
from bot.services.dispatch import dispatch_due
from bot.services.runtime import Runtime
from bot.sms.gateway import Sent
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
