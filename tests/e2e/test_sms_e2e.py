"""A patient answers questionnaires by SMS through the real server, over real HTTP.

Everything a practice and Twilio would do: schedule through the API with the
demo token, ``prombot tick`` to send, Twilio's signed webhooks for every text,
and the results read back from the API.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from twilio.request_validator import RequestValidator

from tests.e2e.conftest import (
    AUTH_TOKEN,
    HttpResponse,
    Server,
    http,
    new_patient,
    new_sid,
    sms_params,
)

WAIT = 120  # seconds: a bound on waiting for threads, never an expectation of speed
LABEL = re.compile(r"\bQ(\d+)/(\d+)\b")


def schedule(server: Server, patient_id: str, instrument: str) -> str:
    response = server.api(
        "POST",
        "/consultations",
        {
            "patient_id": patient_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "schedule": [{"instrument": instrument, "after": "P0D"}],
        },
    )
    assert response.status == 201, response.body
    (invitation,) = response.json()["invitations"]
    assert invitation["instrument"] == instrument and invitation["status"] == "pending"
    return invitation["id"]


def start(server: Server, patient: dict[str, Any], instrument: str) -> str:
    """Schedule now, then let ``prombot tick`` send the opening texts."""
    invitation_id = schedule(server, patient["id"], instrument)
    summary = server.tick()
    assert summary["dispatch"]["started"] == 1, summary
    return invitation_id


def messages_of(server: Server, patient_id: str) -> list[dict[str, Any]]:
    response = server.api("GET", f"/messages?patient_id={patient_id}")
    assert response.status == 200, response.body
    return response.json()


def results_of(server: Server, patient_id: str) -> list[dict[str, Any]]:
    response = server.api("GET", f"/patients/{patient_id}/results")
    assert response.status == 200, response.body
    return response.json()


def walk(
    server: Server, phone: str, steps: list[tuple[str, str]], of: int, asked: int = 1
) -> list[str]:
    """Text each step's body and check the reply.

    ``expect`` is "next" (the answer was taken: the next question is asked),
    "again" (not taken: no next question), or a phrase the reply must contain.
    ``asked`` is the number of the question waiting for an answer. Returns every
    reply text, in order.
    """
    replies: list[str] = []
    for body, expect in steps:
        texts = server.text(body, from_=phone).messages()
        assert texts, f"no reply to {body!r}"
        said = "\n".join(texts)
        if expect == "next":
            asked += 1
            assert f"Q{asked}/{of}" in texts[-1], (body, texts)
        elif expect == "again":
            assert f"Q{asked + 1}/{of}" not in said, (body, texts)
        else:
            assert expect in said, (body, texts)
        replies += texts
    return replies


PHQ9_MESSY = [
    ("2 or 3", "again"),  # two options at once
    (" 2.", "next"),
    ("22", "again"),  # not an option
    ("2!", "next"),
    ("4", "again"),  # out of range
    ("two", "next"),
    ("\U0001f642", "again"),  # an emoji alone
    ("Several days", "next"),
    ("NEARLY EVERY DAY", "next"),
    ("sevral days", "next"),  # a near-miss spelling
    ("yes", "again"),
    ("not at all", "next"),
    ("1.5", "again"),
    ("more than half", "next"),
    ("0.", "One more question"),
    ("Somewhat difficult", "Thank you"),
]
PHQ9_ANSWERS = {
    "interest": 2,
    "mood": 2,
    "sleep": 2,
    "energy": 1,
    "appetite": 3,
    "self_worth": 1,
    "concentration": 0,
    "psychomotor": 2,
    "self_harm": 0,
    "difficulty": 1,
}
GAD7_STEPS = [
    ("Nearly every day", "next"),
    ("more than half", "next"),
    ("3", "next"),
    ("maybe", "again"),
    ("2", "next"),
    ("several days", "next"),
    ("2", "next"),
    ("2", "Thank you"),
]
GAD7_ANSWERS = {
    "nervous": 3,
    "control_worry": 2,
    "worry_too_much": 3,
    "relaxing": 2,
    "restless": 1,
    "irritable": 2,
    "afraid": 2,
}


def test_the_server_answers_healthz(server: Server) -> None:
    response = http("GET", server.base_url + "/healthz")
    assert response.status == 200
    assert response.json()["status"] == "ok"


def test_a_patient_answers_a_whole_phq9_then_a_gad7_by_sms(server: Server) -> None:
    patient = new_patient(server)
    phq9 = start(server, patient, "phq9")
    opening = [m for m in messages_of(server, patient["id"]) if m["direction"] == "outbound"]
    assert len(opening) == 2 and "Q1/9" in opening[1]["body"]
    assert all(m["status"] == "delivered" for m in opening)  # the local gateway's word

    walk(server, patient["phone"], PHQ9_MESSY, of=9)

    (result,) = results_of(server, patient["id"])
    assert result["invitation_id"] == phq9
    assert (result["instrument"], result["status"]) == ("phq9", "completed")
    assert (result["total"], result["band"]) == (13, "moderate")
    assert result["answers"] == PHQ9_ANSWERS
    assert result["flags"] == []
    assert result["completed_at"]

    # What the patient texted is in the message log as sent, emoji and all.
    inbound = [m["body"] for m in messages_of(server, patient["id"]) if m["direction"] == "inbound"]
    assert inbound == [body for body, _ in PHQ9_MESSY]

    gad7 = start(server, patient, "gad7")
    walk(server, patient["phone"], GAD7_STEPS, of=7)

    first, second = results_of(server, patient["id"])
    assert first["invitation_id"] == phq9
    assert second["invitation_id"] == gad7
    assert (second["instrument"], second["status"]) == ("gad7", "completed")
    assert (second["total"], second["band"]) == (15, "severe")
    assert second["answers"] == GAD7_ANSWERS
    assert "severe_score" in second["flags"]

    invitations = server.api("GET", f"/patients/{patient['id']}/invitations").json()
    assert sorted((i["instrument"], i["status"]) for i in invitations) == [
        ("gad7", "completed"),
        ("phq9", "completed"),
    ]
    alerts = server.api("GET", "/alerts?status=open").json()
    assert [
        (a["flag"], a["invitation_id"]) for a in alerts if a["patient_id"] == patient["id"]
    ] == [("severe_score", gad7)]
    # Nothing is open any more: a further text gets one short reply and changes nothing.
    assert len(server.text("2", from_=patient["phone"]).messages()) == 1
    assert len(results_of(server, patient["id"])) == 2


def test_an_item_9_answer_above_zero_reaches_a_clinician_at_once(server: Server) -> None:
    patient = new_patient(server)
    start(server, patient, "phq9")
    walk(server, patient["phone"], [("0", "next")] * 8, of=9)
    safety, question = server.text("1", from_=patient["phone"]).messages()
    assert "999" in safety and "Samaritans" in safety
    assert "One more question" in question
    alerts = server.api("GET", "/alerts?status=open").json()
    (alert,) = [a for a in alerts if a["patient_id"] == patient["id"]]
    assert (alert["flag"], alert["severity"]) == ("self_harm_risk", "urgent")


def _forgeries(server: Server, params: dict[str, str]) -> dict[str, tuple[dict[str, str], str]]:
    path = "/sms/inbound"
    elsewhere = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://prombot.invalid" + path, params
    )
    return {
        "missing": (params, ""),
        "forged": (params, "Zm9yZ2VkIGJ5IHNvbWVvbmUgZWxzZQ=="),
        "wrong_token": (params, server.sign(path, params, token="someone-elses-token")),
        "tampered": ({**params, "Body": "3"}, server.sign(path, params)),
        "another_url": (params, elsewhere),
        "another_path": (params, server.sign("/sms/status", params)),
    }


def test_forged_requests_are_refused_and_replays_change_nothing(server: Server) -> None:
    patient = new_patient(server)
    start(server, patient, "phq9")
    log_before = messages_of(server, patient["id"])

    params = sms_params("1", from_=patient["phone"], to=server.demo["sms_number"])
    for how, (sent, signature) in _forgeries(server, params).items():
        response = server.post_form("/sms/inbound", sent, signature=signature)
        assert response.status == 403, how
        assert b"<Message" not in response.body, how
    assert messages_of(server, patient["id"]) == log_before

    first = server.post_form("/sms/inbound", params)
    assert "Q2/9" in first.messages()[0]
    log_after = messages_of(server, patient["id"])
    assert len(log_after) == len(log_before) + 2

    for _ in range(3):
        again = server.post_form("/sms/inbound", params)
        assert again.status == 200
        assert again.body == first.body
    assert messages_of(server, patient["id"]) == log_after

    # A replay arriving after later texts still gets its own first reply.
    assert "Q3/9" in server.text("2", from_=patient["phone"]).messages()[0]
    assert server.post_form("/sms/inbound", params).body == first.body
    results = results_of(server, patient["id"])
    assert results == []  # still in progress: nothing scored by the replays


def test_strangers_get_a_generic_reply(server: Server) -> None:
    stranger = server.text("who is this?", from_="+447700900999").messages()
    wrong_number = server.text(
        "2", from_=new_patient(server)["phone"], to="+447700900998"
    ).messages()
    assert stranger == wrong_number
    assert len(stranger) == 1
    revealing = [server.demo["practice_name"], *(p["name"] for p in server.demo["patients"])]
    assert not any(word in stranger[0] for word in revealing)


def _all_at_once(calls: list[Any]) -> list[HttpResponse]:
    barrier = threading.Barrier(len(calls), timeout=WAIT)

    def run(call: Any) -> HttpResponse:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=WAIT) for future in futures]


def test_texts_from_one_patient_at_once_are_each_applied_once(server: Server) -> None:
    patient = new_patient(server)
    phone = patient["phone"]
    start(server, patient, "phq9")
    bodies = ["0", "1", "2", "3", "1"]

    responses = _all_at_once([lambda body=body: server.text(body, from_=phone) for body in bodies])

    replies = [r.messages() for r in responses]
    assert all(len(texts) == 1 for texts in replies), replies
    labels = sorted(int(LABEL.search(texts[0]).group(1)) for texts in replies)  # type: ignore[union-attr]
    assert labels == [2, 3, 4, 5, 6]  # each text answered one item, in some order

    # The same MessageSid five times at once: stored once, the same reply for all.
    params = sms_params("2", from_=phone, to=server.demo["sms_number"], sid=new_sid())
    same = _all_at_once([lambda: server.post_form("/sms/inbound", params)] * 5)
    assert all(r.status == 200 and r.body == same[0].body for r in same)
    assert "Q7/9" in same[0].messages()[0]

    walk(server, phone, [("0", "next"), ("0", "next"), ("0", "One more question")], of=9, asked=7)
    assert "Thank you" in server.text("1", from_=phone).messages()[0]

    (result,) = results_of(server, patient["id"])
    assert result["status"] == "completed"
    scored = {k: v for k, v in result["answers"].items() if k != "difficulty"}
    assert len(scored) == 9
    first_five = ["interest", "mood", "sleep", "energy", "appetite"]
    assert sorted(scored[item] for item in first_five) == sorted(map(int, bodies))
    assert scored["self_worth"] == 2
    assert result["total"] == sum(map(int, bodies)) + 2
    inbound = [m for m in messages_of(server, patient["id"]) if m["direction"] == "inbound"]
    assert len(inbound) == len(bodies) + 1 + 4
