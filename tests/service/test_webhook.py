"""POST /sms/inbound: Twilio's signed webhook, on SQLite and PostgreSQL.

Requests are signed exactly as Twilio signs them, with twilio's own
``RequestValidator``, over PUBLIC_BASE_URL + path and every posted parameter.
The helpers at the top are shared with the status-callback and concurrency
tests.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlmodel import col, select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from bot.flows import messages
from bot.flows.signposting import crisis_lines
from bot.instruments.gsm7 import segments
from bot.services.demo import DEMO_SMS_NUMBER, Demo
from bot.services.dispatch import dispatch_due
from bot.services.inbound import InboundSms, handle_inbound
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import (
    Alert,
    Answer,
    Conversation,
    Invitation,
    Message,
    Patient,
    ResultRecord,
)
from tests import support
from tests.dbs import TABLES_IN_DELETE_ORDER
from tests.service.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, Clock

INBOUND = "/sms/inbound"
STATUS = "/sms/status"
ACCOUNT_SID = "AC" + "0" * 32
STRANGER = "+447700900999"  # a drama number nobody is registered with
NOBODYS_NUMBER = "+447700900998"  # a drama number no practice uses
# Every reply comes from the engine (bot/flows/messages.py).
UNKNOWN_SENDER_REPLY = messages.stranger()
MEDIA_REPLY = messages.media_only()


# -- helpers (also used by test_status_callback.py and test_concurrency.py) ------------


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-shaped message SID: two letters and 32 hex digits."""
    return support.new_sid(prefix)


def sign(path: str, params: Mapping[str, str], *, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(PUBLIC_BASE_URL + path, dict(params))


def post_signed(
    client: FlaskClient,
    path: str,
    params: Mapping[str, str],
    *,
    signature: str | None = None,
) -> TestResponse:
    """POST form parameters with Twilio's signature (or the one given)."""
    headers = {"X-Twilio-Signature": sign(path, params) if signature is None else signature}
    return client.post(path, data=dict(params), headers=headers)


def sms_params(
    body: str,
    *,
    from_: str,
    to: str = DEMO_SMS_NUMBER,
    sid: str | None = None,
    num_media: int = 0,
) -> dict[str, str]:
    """The parameters Twilio posts for an inbound SMS."""
    return support.sms_params(
        body,
        from_=from_,
        to=to,
        account_sid=ACCOUNT_SID,
        sid=sid,
        num_media=num_media,
        media_type="image/jpeg",
    )


def twiml(response: TestResponse) -> list[str]:
    """The texts of a TwiML reply, one per <Message>, after checking its shape."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    assert all(child.tag == "Message" for child in root), response.data
    return [child.text or "" for child in root]


def table_counts(rt: Runtime) -> dict[str, int]:
    with rt.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in TABLES_IN_DELETE_ORDER
        }


def snapshot(rt: Runtime) -> dict[str, Any]:
    """Everything a webhook could change: row counts, conversations, answers, patients."""
    with transaction(rt.engine, read_only=True) as session:
        conversations = [
            (c.id, c.version, c.active, c.status, c.state_json)
            for c in session.exec(select(Conversation).order_by(col(Conversation.id)))
        ]
        answers = [
            (a.id, a.item, a.value, a.superseded)
            for a in session.exec(select(Answer).order_by(col(Answer.id)))
        ]
        patients = [
            (p.id, p.opted_out) for p in session.exec(select(Patient).order_by(col(Patient.id)))
        ]
        invitations = [
            (i.id, i.status) for i in session.exec(select(Invitation).order_by(col(Invitation.id)))
        ]
        messages = [
            (m.id, m.status, m.error_code)
            for m in session.exec(select(Message).order_by(col(Message.id)))
        ]
    return {
        "counts": table_counts(rt),
        "conversations": conversations,
        "answers": answers,
        "patients": patients,
        "invitations": invitations,
        "messages": messages,
    }


@dataclass
class Questionnaire:
    """A questionnaire started for a patient, and how to text into it."""

    client: FlaskClient
    runtime: Runtime
    patient_id: str
    phone: str
    invitation_id: str
    opening: list[str]

    def send(self, body: str, **kwargs: Any) -> list[str]:
        return twiml(self.post(body, **kwargs))

    def post(self, body: str, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("from_", self.phone)
        return post_signed(self.client, INBOUND, sms_params(body, **kwargs))

    def conversation(self) -> Conversation:
        with transaction(self.runtime.engine, read_only=True) as session:
            found = session.exec(
                select(Conversation).where(Conversation.invitation_id == self.invitation_id)
            ).one()
            return found

    def invitation(self) -> Invitation:
        with transaction(self.runtime.engine, read_only=True) as session:
            found = session.get(Invitation, self.invitation_id)
            assert found is not None
            return found

    def patient(self) -> Patient:
        with transaction(self.runtime.engine, read_only=True) as session:
            found = session.get(Patient, self.patient_id)
            assert found is not None
            return found

    def answers(self, *, live_only: bool = False) -> list[Answer]:
        with transaction(self.runtime.engine, read_only=True) as session:
            query = select(Answer).where(Answer.invitation_id == self.invitation_id)
            if live_only:
                query = query.where(Answer.superseded == False)  # noqa: E712
            return list(session.exec(query.order_by(col(Answer.answered_at), col(Answer.id))))

    def alerts(self) -> list[Alert]:
        with transaction(self.runtime.engine, read_only=True) as session:
            return list(
                session.exec(select(Alert).where(Alert.patient_id == self.patient_id)).all()
            )


def start_questionnaire(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    demo: Demo,
    *,
    patient: int = 0,
    schedule: list[dict[str, str]] | None = None,
) -> Questionnaire:
    """Schedule through the API (P0D), then dispatch as the scheduler would."""
    headers = {"Authorization": f"Bearer {demo.api_token}"}
    chosen = demo.patients[patient]
    response = client.post(
        "/api/v1/consultations",
        json={
            "patient_id": chosen.id,
            "occurred_at": clock.now.isoformat(),
            "schedule": schedule or [{"instrument": "phq9", "after": "P0D"}],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    invitation_id = response.get_json()["invitations"][0]["id"]
    summary = dispatch_due(runtime, clock.now)
    assert summary["started"] == 1, summary
    with transaction(runtime.engine, read_only=True) as session:
        opening = session.exec(
            select(Message)
            .where(Message.patient_id == chosen.id)
            .where(Message.direction == "outbound")
            .order_by(col(Message.created_at), col(Message.position))
        ).all()
        texts = [m.body for m in opening]
    return Questionnaire(
        client=client,
        runtime=runtime,
        patient_id=chosen.id,
        phone=chosen.phone,
        invitation_id=invitation_id,
        opening=texts,
    )


@pytest.fixture
def phq9(client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo) -> Questionnaire:
    return start_questionnaire(client, runtime, clock, demo)


def inbound_message(rt: Runtime, sid: str) -> Message:
    with transaction(rt.engine, read_only=True) as session:
        return session.exec(select(Message).where(Message.provider_sid == sid)).one()


PHQ9_ITEMS = [
    "interest",
    "mood",
    "sleep",
    "energy",
    "appetite",
    "self_worth",
    "concentration",
    "psychomotor",
    "self_harm",
]


# -- signatures ---------------------------------------------------------------------


def _missing(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    return params, ""


def _forged(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    return params, "bm90IGEgcmVhbCBzaWduYXR1cmUgYXQgYWxsIQ=="


def _wrong_token(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    return params, sign(INBOUND, params, token="not-our-auth-token")


def _tampered_body(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    signature = sign(INBOUND, params)
    return {**params, "Body": "3"}, signature


def _tampered_from(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    signature = sign(INBOUND, params)
    return {**params, "From": "+447700900102"}, signature


def _parameter_added(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    signature = sign(INBOUND, params)
    return {**params, "NumMedia": "1", "MediaUrl0": "https://example.invalid/x.jpg"}, signature


def _parameter_dropped(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    signature = sign(INBOUND, params)
    return {k: v for k, v in params.items() if k != "FromCountry"}, signature


def _for_another_path(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    return params, sign(STATUS, params)


def _for_another_host(params: dict[str, str]) -> tuple[dict[str, str], str | None]:
    url = "https://attacker.invalid" + INBOUND
    return params, RequestValidator(AUTH_TOKEN).compute_signature(url, params)


BAD_SIGNATURES = {
    "missing": _missing,
    "forged": _forged,
    "wrong_token": _wrong_token,
    "tampered_body": _tampered_body,
    "tampered_from": _tampered_from,
    "parameter_added": _parameter_added,
    "parameter_dropped": _parameter_dropped,
    "another_path": _for_another_path,
    "another_host": _for_another_host,
}


@pytest.mark.parametrize("how", list(BAD_SIGNATURES))
def test_a_request_without_twilios_signature_is_refused_and_nothing_stored(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime, how: str
) -> None:
    params = sms_params("2", from_=phq9.phone)
    before = snapshot(runtime)

    sent, signature = BAD_SIGNATURES[how](params)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = client.post(INBOUND, data=sent, headers=headers)

    assert response.status_code == 403
    assert b"<Message" not in response.data
    assert snapshot(runtime) == before
    # The genuine request, signed, would have been stored: the refusal is what kept it out.
    assert phq9.send("2", sid=params["MessageSid"])[0].startswith("Q2/9")
    assert snapshot(runtime)["counts"]["message"] > before["counts"]["message"]


def test_an_empty_post_or_a_get_is_refused(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    """A GET, or a POST with no form at all, is refused just the same."""
    before = snapshot(runtime)
    assert client.post(INBOUND, headers={"X-Twilio-Signature": "x"}).status_code == 403
    assert client.get(INBOUND).status_code == 405
    assert snapshot(runtime) == before


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To"])
def test_a_signed_request_missing_what_we_need_is_a_400_and_nothing_stored(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime, missing: str
) -> None:
    params = sms_params("2", from_=phq9.phone)
    del params[missing]
    if missing == "MessageSid":
        del params["SmsSid"], params["SmsMessageSid"]
    before = snapshot(runtime)
    response = post_signed(client, INBOUND, params)
    assert response.status_code == 400
    assert snapshot(runtime) == before


def test_a_signed_request_with_an_absurd_message_sid_is_a_400(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    before = snapshot(runtime)
    response = post_signed(client, INBOUND, sms_params("2", from_=phq9.phone, sid="SM" + "9" * 90))
    assert response.status_code == 400
    assert snapshot(runtime) == before


# -- idempotency --------------------------------------------------------------------


def test_a_replayed_message_sid_gets_the_same_twiml_and_changes_nothing(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    params = sms_params("2", from_=phq9.phone)
    first = post_signed(client, INBOUND, params)
    assert twiml(first)[0].startswith("Q2/9")
    after_first = snapshot(runtime)

    for _ in range(3):
        again = post_signed(client, INBOUND, params)
        assert again.status_code == 200
        assert again.mimetype == "application/xml"
        assert again.data == first.data
    assert snapshot(runtime) == after_first

    # Even a replay carrying a different body (re-signed) is answered as the first was.
    altered = post_signed(client, INBOUND, {**params, "Body": "STOP"})
    assert altered.data == first.data
    assert snapshot(runtime) == after_first
    assert not phq9.patient().opted_out


def test_replays_of_multi_message_replies_keep_their_order(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    for value in ["1", "1", "1", "1", "1", "1", "1", "1"]:
        phq9.send(value)
    params = sms_params("2", from_=phq9.phone)  # item 9 above 0: safety text, then a question
    first = post_signed(client, INBOUND, params)
    assert len(twiml(first)) == 2
    counts = table_counts(runtime)
    assert post_signed(client, INBOUND, params).data == first.data
    assert table_counts(runtime) == counts


def test_a_replayed_final_answer_does_not_score_twice(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime
) -> None:
    for value in ["0"] * 8:
        phq9.send(value)
    params = sms_params("0", from_=phq9.phone)
    first = post_signed(client, INBOUND, params)
    assert twiml(first)[0].startswith("Thank you")
    before = snapshot(runtime)
    assert post_signed(client, INBOUND, params).data == first.data
    assert snapshot(runtime) == before
    assert before["counts"]["result"] == 1


def test_a_replay_from_a_stranger_is_answered_once(client: FlaskClient, runtime: Runtime) -> None:
    params = sms_params("hello?", from_=STRANGER)
    first = post_signed(client, INBOUND, params)
    counts = table_counts(runtime)
    assert post_signed(client, INBOUND, params).data == first.data
    assert table_counts(runtime) == counts


# -- who is texting -----------------------------------------------------------------


def _reveals(text: str, demo: Demo) -> list[str]:
    secrets = [demo.practice.name, demo.practice.contact_phone or "", "Demo", "Surgery"]
    for patient in demo.patients:
        secrets += [patient.name, *patient.name.split(), patient.phone]
    return [s for s in secrets if s and s.casefold() in text.casefold()]


def test_an_unknown_sender_gets_a_short_generic_reply_that_reveals_nothing(
    client: FlaskClient, runtime: Runtime, demo: Demo
) -> None:
    before = snapshot(runtime)
    replies = twiml(post_signed(client, INBOUND, sms_params("Hi, is that Alex?", from_=STRANGER)))
    assert replies == [UNKNOWN_SENDER_REPLY]
    assert segments(replies[0]) <= 2
    assert crisis_lines("UK") in replies[0]
    assert _reveals(replies[0], demo) == []
    after = snapshot(runtime)
    assert after["conversations"] == before["conversations"]
    assert after["answers"] == before["answers"] == []
    assert after["counts"]["alert"] == 0


def test_an_unknown_practice_number_gets_the_same_generic_reply(
    phq9: Questionnaire, client: FlaskClient, runtime: Runtime, demo: Demo
) -> None:
    before = snapshot(runtime)
    to_nobody = twiml(
        post_signed(client, INBOUND, sms_params("2", from_=phq9.phone, to=NOBODYS_NUMBER))
    )
    from_nobody = twiml(post_signed(client, INBOUND, sms_params("2", from_=STRANGER)))
    # The same words either way: a stranger cannot tell a practice's number from any other.
    assert to_nobody == from_nobody == [UNKNOWN_SENDER_REPLY]
    assert _reveals(to_nobody[0], demo) == []
    after = snapshot(runtime)
    assert after["conversations"] == before["conversations"]
    assert after["answers"] == before["answers"]


def test_a_known_patient_texting_in_a_national_format_is_recognised(
    phq9: Questionnaire,
) -> None:
    national = "0" + phq9.phone.removeprefix("+44")
    assert "Q2/9" in phq9.send("2", from_=national)[0]
    assert "Q2/9" in phq9.send("REPEAT", from_="+44 (0)7700 900101")[-1]
    assert [a.item for a in phq9.answers()] == ["interest"]


def test_a_stranger_with_an_unparseable_sender_id_is_answered_and_stored(
    client: FlaskClient, runtime: Runtime
) -> None:
    """Alphanumeric or over-long senders are no one we know, and do not break the webhook."""
    for sender in ["PROMBOTTEST", "+4477009001019999999999", "whatsapp:+447700900101"]:
        assert twiml(post_signed(client, INBOUND, sms_params("hi", from_=sender))) == [
            UNKNOWN_SENDER_REPLY
        ]
    assert table_counts(runtime)["answer"] == 0


def test_a_body_with_a_nul_character_is_read_not_a_500(phq9: Questionnaire) -> None:
    assert phq9.send("2\x00")[0].startswith("Q2/9")
    assert [(a.item, a.value) for a in phq9.answers()] == [("interest", 2)]
    assert phq9.send("hi", from_="\x00PROMBOT") == [UNKNOWN_SENDER_REPLY]


# -- opted out ----------------------------------------------------------------------


def test_an_opted_out_patient_hears_nothing_but_starts_answer(
    phq9: Questionnaire, runtime: Runtime
) -> None:
    stop = phq9.send("STOP")
    assert len(stop) == 1 and "START" in stop[0]
    assert phq9.patient().opted_out

    for body in ["2", "hello", "HELP", "REPEAT", "STOP", "I want to end it all"]:
        assert phq9.send(body) == [], body
    assert phq9.send("", num_media=1) == []
    assert phq9.send("2", num_media=2) == []
    assert phq9.patient().opted_out
    # A risk phrase is heard even so: a clinician is told, the patient is not texted.
    assert [a.flag for a in phq9.alerts()] == ["self_harm_risk"]

    start = phq9.send("START")
    assert len(start) == 1 and "opted back in" in start[0]
    assert not phq9.patient().opted_out
    assert len(phq9.send("hello")) == 1  # heard again


# -- pictures -----------------------------------------------------------------------


def test_a_picture_without_text_gets_we_can_only_read_text_and_the_item_waits(
    phq9: Questionnaire,
) -> None:
    assert phq9.send("", num_media=1) == [MEDIA_REPLY]
    assert "only read text" in MEDIA_REPLY
    after = phq9.conversation()
    assert after.active
    assert json.loads(after.state_json)["current_item"] == "interest"
    assert phq9.answers() == []
    assert phq9.send("1")[0].startswith("Q2/9")  # the first item was still waiting


def test_a_picture_with_text_reads_the_text_too(phq9: Questionnaire) -> None:
    replies = phq9.send("1", num_media=1)
    assert replies[0] == MEDIA_REPLY
    assert replies[1].startswith("Q2/9")
    assert [(a.item, a.value) for a in phq9.answers()] == [("interest", 1)]


def test_a_picture_with_nothing_open_is_answered(
    client: FlaskClient, demo: Demo, runtime: Runtime
) -> None:
    replies = twiml(
        post_signed(client, INBOUND, sms_params("", from_=demo.patients[1].phone, num_media=1))
    )
    assert replies[0] == MEDIA_REPLY
    assert table_counts(runtime)["answer"] == 0


# -- TwiML --------------------------------------------------------------------------


def test_replies_are_twiml_with_one_message_per_engine_reply(
    phq9: Questionnaire, client: FlaskClient
) -> None:
    assert len(phq9.opening) == 2  # the introduction, then the first question
    for value in ["1"] * 8:
        response = phq9.post(value)
        assert response.headers["Content-Type"].startswith("application/xml")
        assert len(twiml(response)) == 1
    replies = phq9.send("1")  # item 9 above 0: the safety text, then the next question
    assert len(replies) == 2
    assert "A&E" in replies[0] and "999" in replies[0]  # escaped in XML, intact once parsed
    assert replies[1].startswith("One more question")


def test_every_reply_is_in_the_message_log_in_reply_to_its_text(
    phq9: Questionnaire, runtime: Runtime
) -> None:
    sid = new_sid()
    replies = phq9.send("I don't know", sid=sid)
    inbound = inbound_message(runtime, sid)
    assert inbound.direction == "inbound"
    assert inbound.body == "I don't know"
    assert inbound.patient_id == phq9.patient_id
    assert inbound.conversation_id == phq9.conversation().id
    with transaction(runtime.engine, read_only=True) as session:
        stored = session.exec(
            select(Message).where(Message.in_reply_to == inbound.id).order_by(col(Message.position))
        ).all()
    assert [m.body for m in stored] == replies
    assert all(m.direction == "outbound" and m.patient_id == phq9.patient_id for m in stored)


# -- events carried out ---------------------------------------------------------------


def test_an_answer_is_stored_with_its_raw_text_and_source_message(
    phq9: Questionnaire, runtime: Runtime
) -> None:
    sid = new_sid()
    phq9.send(" 2.", sid=sid)
    (answer,) = phq9.answers()
    assert (answer.item, answer.value, answer.raw_text) == ("interest", 2, " 2.")
    assert answer.message_id == inbound_message(runtime, sid).id
    assert not answer.superseded
    assert answer.conversation_id == phq9.conversation().id


def test_back_supersedes_the_earlier_answer(phq9: Questionnaire) -> None:
    phq9.send("1")
    phq9.send("several days")
    assert phq9.send("BACK")[0].startswith("OK, going back")
    phq9.send("nearly every day")

    mood = sorted((a for a in phq9.answers() if a.item == "mood"), key=lambda a: not a.superseded)
    assert [(a.value, a.raw_text, a.superseded) for a in mood] == [
        (1, "several days", True),
        (3, "nearly every day", False),
    ]
    live = {a.item: a.value for a in phq9.answers(live_only=True)}
    assert live == {"interest": 1, "mood": 3}
    assert json.loads(phq9.conversation().state_json)["answers"] == {"interest": 1, "mood": 3}


def test_completing_stores_the_result_and_closes_the_invitation(
    phq9: Questionnaire, client: FlaskClient, demo: Demo
) -> None:
    values = ["2", "2", "2", "1", "3", "1", "0", "2", "0"]
    for value in values:
        phq9.send(value)
    thanks = phq9.send("Somewhat difficult")
    assert len(thanks) == 1 and thanks[0].startswith("Thank you")

    conversation = phq9.conversation()
    assert not conversation.active and conversation.status == "completed"
    assert phq9.invitation().status == "completed"
    with transaction(phq9.runtime.engine, read_only=True) as session:
        (result,) = session.exec(
            select(ResultRecord).where(ResultRecord.invitation_id == phq9.invitation_id)
        ).all()
    assert (result.status, result.total, result.band) == ("completed", 13, "moderate")

    response = client.get(
        f"/api/v1/patients/{phq9.patient_id}/results",
        headers={"Authorization": f"Bearer {demo.api_token}"},
    )
    (shown,) = response.get_json()
    assert shown["total"] == 13 and shown["band"] == "moderate"
    assert shown["answers"] == {
        **dict(zip(PHQ9_ITEMS, map(int, values), strict=True)),
        "difficulty": 1,
    }
    assert shown["flags"] == []
    # After the end, a text gets the "finished" reply and changes nothing.
    assert len(phq9.send("2")) == 1
    assert len(phq9.answers()) == 10


def test_item_9_above_zero_raises_an_urgent_self_harm_alert(phq9: Questionnaire) -> None:
    for value in ["0"] * 8:
        phq9.send(value)
    assert phq9.alerts() == []
    safety, _next = phq9.send("1")
    assert "999" in safety
    (alert,) = phq9.alerts()
    assert (alert.flag, alert.severity, alert.status) == ("self_harm_risk", "urgent", "open")
    assert alert.invitation_id == phq9.invitation_id
    assert alert.reason == "item_answer"


def test_a_risk_phrase_mid_questionnaire_raises_an_urgent_alert(phq9: Questionnaire) -> None:
    phq9.send("1")
    safety, again = phq9.send("honestly I want to end it all")
    assert "Samaritans" in safety
    assert again.startswith("Q2/9")
    (alert,) = phq9.alerts()
    assert (alert.flag, alert.severity, alert.reason) == ("self_harm_risk", "urgent", "risk_phrase")
    # A second risk phrase in the same questionnaire does not open a second alert.
    phq9.send("I want to die")
    assert len(phq9.alerts()) == 1


def test_a_risk_phrase_with_nothing_open_still_reaches_a_clinician(
    client: FlaskClient, demo: Demo, runtime: Runtime
) -> None:
    patient = demo.patients[2]
    replies = twiml(
        post_signed(
            client, INBOUND, sms_params("I keep thinking about suicide", from_=patient.phone)
        )
    )
    assert "999" in replies[0]
    with transaction(runtime.engine, read_only=True) as session:
        (alert,) = session.exec(select(Alert).where(Alert.patient_id == patient.id)).all()
    assert (alert.flag, alert.severity, alert.invitation_id) == ("self_harm_risk", "urgent", None)


def test_stop_opts_out_and_cancels_pending_invitations(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    phq9 = start_questionnaire(
        client,
        runtime,
        clock,
        demo,
        schedule=[
            {"instrument": "phq9", "after": "P0D"},
            {"instrument": "phq9", "after": "P14D"},
            {"instrument": "gad7", "after": "P28D"},
        ],
    )
    phq9.send("1")
    replies = phq9.send("Stop")
    assert len(replies) == 1 and "opted out" in replies[0]

    assert phq9.patient().opted_out
    conversation = phq9.conversation()
    assert not conversation.active
    with transaction(runtime.engine, read_only=True) as session:
        invitations = session.exec(
            select(Invitation).where(Invitation.patient_id == phq9.patient_id)
        ).all()
        results = session.exec(
            select(ResultRecord).where(ResultRecord.invitation_id == phq9.invitation_id)
        ).all()
    statuses = {i.id: i.status for i in invitations}
    assert statuses.pop(phq9.invitation_id) == "opted_out"
    assert sorted(statuses.values()) == ["cancelled", "cancelled"]
    assert [r.status for r in results] == ["opted_out"]
    # Later dispatch sends nothing to them.
    clock.advance(days=30)
    assert dispatch_due(runtime, clock.now)["started"] == 0


def test_stop_with_nothing_open_opts_out_and_cancels_pending_invitations(
    client: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    patient = demo.patients[1]
    response = client.post(
        "/api/v1/consultations",
        json={
            "patient_id": patient.id,
            "occurred_at": clock.now.isoformat(),
            "schedule": [{"instrument": "gad7", "after": "P14D"}],
        },
        headers={"Authorization": f"Bearer {demo.api_token}"},
    )
    assert response.status_code == 201
    replies = twiml(post_signed(client, INBOUND, sms_params("unsubscribe", from_=patient.phone)))
    assert len(replies) == 1 and "START" in replies[0]
    with transaction(runtime.engine, read_only=True) as session:
        stored = session.get(Patient, patient.id)
        assert stored is not None and stored.opted_out
        statuses = session.exec(
            select(Invitation.status).where(Invitation.patient_id == patient.id)
        ).all()
    assert statuses == ["cancelled"]


def test_the_text_and_everything_it_caused_are_stored_together_or_not_at_all(
    phq9: Questionnaire, runtime: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the events were carried out leaves no trace; Twilio's retry then works."""
    import bot.services.inbound as inbound_service

    real = inbound_service.carry_out

    def carry_out_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("the database went away")

    for _ in range(8):
        phq9.send("0")
    before = snapshot(runtime)
    sms = InboundSms(sid=new_sid(), from_=phq9.phone, to=DEMO_SMS_NUMBER, body="3")
    monkeypatch.setattr(inbound_service, "carry_out", carry_out_then_fail)
    with pytest.raises(RuntimeError):
        handle_inbound(runtime, sms, clock.now)
    assert snapshot(runtime) == before  # no text, answer, alert or state change

    monkeypatch.setattr(inbound_service, "carry_out", real)
    outcome = handle_inbound(runtime, sms, clock.now)
    assert not outcome.replayed and len(outcome.replies) == 2
    assert [a.flag for a in phq9.alerts()] == ["self_harm_risk"]
    assert table_counts(runtime)["answer"] == before["counts"]["answer"] + 1
