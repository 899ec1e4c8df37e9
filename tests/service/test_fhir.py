"""The FHIR export: GET /api/v1/fhir/QuestionnaireResponse/{invitation_id}.

A GP system files what this returns, so every document must validate as a FHIR
R4 QuestionnaireResponse (``fhir.resources``' R4B model, whose
QuestionnaireResponse is R4's), carry the instrument's LOINC codes and the
SNOMED CT score concept, and name the patient by NHS number when we have one.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from flask.testing import FlaskClient

from bot.services.demo import Demo
from bot.services.dispatch import dispatch_due
from bot.services.enrolment import create_practice, new_api_token
from bot.services.runtime import Runtime
from bot.store.db import transaction
from tests.service.conftest import Clock
from tests.service.test_api import PHQ9_ITEMS, answer_phq9, bearer, start_now, text, zulu

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
PHQ9_LOINC = {
    "interest": "44250-9",
    "mood": "44255-8",
    "sleep": "44259-0",
    "energy": "44254-1",
    "appetite": "44251-7",
    "self_worth": "44258-2",
    "concentration": "44252-5",
    "psychomotor": "44253-3",
    "self_harm": "44260-8",
    "difficulty": "69722-7",
    "total": "44261-6",
}


def fetch(client: FlaskClient, headers: dict[str, str], invitation_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/fhir/QuestionnaireResponse/{invitation_id}", headers=headers)
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/fhir+json"
    document = response.json
    QuestionnaireResponse.model_validate(document)  # raises if it is not valid FHIR
    assert empty_values(document) == []
    return document


def empty_values(node: Any, where: str = "$") -> list[str]:
    """FHIR JSON has no empty arrays, objects or strings (the model does not check this)."""
    if node in ([], {}, "", None):
        return [where]
    if isinstance(node, dict):
        return [e for key, value in node.items() for e in empty_values(value, f"{where}.{key}")]
    if isinstance(node, list):
        return [e for i, value in enumerate(node) for e in empty_values(value, f"{where}[{i}]")]
    return []


def items(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["linkId"]: item for item in document.get("item", [])}


def codings(document: dict[str, Any]) -> list[tuple[str, str]]:
    [extension] = document["extension"]
    concept = next(e for e in extension["extension"] if e["url"] == "code")
    return [(c["system"], c["code"]) for c in concept["valueCodeableConcept"].get("coding", [])]


def test_a_completed_phq9_is_a_valid_completed_questionnaire_response(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]  # has NHS number 943 476 5919
    replies = ["1"] * 8 + ["2", "1"]
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, replies)
    document = fetch(client, api_headers, invitation_id)

    assert document["resourceType"] == "QuestionnaireResponse"
    assert document["id"] == invitation_id
    assert document["status"] == "completed"
    assert document["authored"] == zulu(clock.now)
    assert document["questionnaire"].split("|")[0].endswith("/phq9")
    assert document["subject"]["reference"] == f"Patient/{alex.id}"
    assert document["subject"]["identifier"] == {"system": NHS_NUMBER, "value": "9434765919"}

    answered = items(document)
    assert list(answered) == [*PHQ9_ITEMS, "difficulty", "total"]
    for link_id, loinc in PHQ9_LOINC.items():
        assert answered[link_id]["definition"] == f"{LOINC}|{loinc}", link_id
    values = {
        link_id: int(item["answer"][0]["valueCoding"]["code"])
        for link_id, item in answered.items()
        if link_id != "total"
    }
    assert values == {**dict.fromkeys(PHQ9_ITEMS, 1), "self_harm": 2, "difficulty": 1}
    assert answered["mood"]["answer"][0]["valueCoding"]["display"] == "Several days"
    assert answered["self_harm"]["answer"][0]["valueCoding"]["display"] == (
        "More than half the days"
    )
    assert answered["total"]["answer"] == [{"valueInteger": 10}]
    assert "moderate" in answered["total"]["text"]

    assert (SNOMED, "720433000") in codings(document)
    assert (LOINC, "44249-1") in codings(document)  # the PHQ-9 panel
    assert (LOINC, "44261-6") in codings(document)  # the PHQ-9 total score
    [extension] = document["extension"]
    assert {"url": "total", "valueInteger": 10} in extension["extension"]


def test_a_patient_without_an_nhs_number_is_named_by_reference_only(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    bo = demo.patients[1]  # no NHS number
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, bo, ["0"] * 9)
    document = fetch(client, api_headers, invitation_id)
    assert document["subject"] == {"reference": f"Patient/{bo.id}"}
    assert document["status"] == "completed"
    assert list(items(document)) == [*PHQ9_ITEMS, "total"]  # "how difficult" was not asked
    assert items(document)["total"]["answer"] == [{"valueInteger": 0}]


IN_PROGRESS = [
    # replies so far                        answers the document holds
    ([], {}),
    (["2"], {"interest": 2}),
    (["2", "3", "0"], {"interest": 2, "mood": 3, "sleep": 0}),
    (["2", "3", "back", "1"], {"interest": 2, "mood": 1}),  # a changed answer replaces the old
    (["2", "not sure"], {"interest": 2}),  # a reply that is not an answer is not one
]


@pytest.mark.parametrize(("replies", "answers"), IN_PROGRESS)
def test_a_questionnaire_under_way_is_in_progress_with_its_answers_so_far(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    replies: list[str],
    answers: dict[str, int],
) -> None:
    alex = demo.patients[0]
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, replies)
    document = fetch(client, api_headers, invitation_id)
    assert document["status"] == "in-progress"
    assert document["authored"] == "2026-03-02T10:00:00Z"  # when it was sent
    held = {
        link_id: int(item["answer"][0]["valueCoding"]["code"])
        for link_id, item in items(document).items()
    }
    assert held == answers
    assert "total" not in items(document)
    assert all(e["url"] != "total" for e in document["extension"][0]["extension"])


def test_a_questionnaire_stopped_part_way_is_stopped_without_a_total(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    replies = ["2", "2", "STOP"]
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, replies)
    document = fetch(client, api_headers, invitation_id)
    assert document["status"] == "stopped"
    assert list(items(document)) == ["interest", "mood"]


def test_a_positive_screen_that_goes_on_exports_the_full_instrument(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    body = {
        "patient_id": alex.id,
        "occurred_at": clock.now.isoformat(),
        "continue_if_positive": True,
        "schedule": [{"instrument": "phq2", "after": "P0D"}],
    }
    created = client.post("/api/v1/consultations", headers=api_headers, json=body)
    invitation_id = created.json["invitations"][0]["id"]
    dispatch_due(runtime, clock.now)

    text(runtime, clock, demo.practice.sms_number, alex.phone, "3", "3", "1")  # PHQ-2 of 6
    under_way = fetch(client, api_headers, invitation_id)
    assert under_way["status"] == "in-progress"
    assert under_way["questionnaire"].split("|")[0].endswith("/phq9")
    assert list(items(under_way)) == ["interest", "mood", "sleep"]  # the screen's two carried

    text(runtime, clock, demo.practice.sms_number, alex.phone, *["1"] * 6, "2")
    finished = fetch(client, api_headers, invitation_id)
    assert finished["status"] == "completed"
    assert finished["questionnaire"].split("|")[0].endswith("/phq9")
    assert list(items(finished)) == [*PHQ9_ITEMS, "difficulty", "total"]
    assert items(finished)["total"]["answer"] == [{"valueInteger": 13}]
    assert (SNOMED, "720433000") in codings(finished)


INSTRUMENTS = ["phq9", "phq2", "gad7", "gad2", "auditc", "who5"]


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_every_instrument_exports_a_valid_document(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    instrument: str,
) -> None:
    alex = demo.patients[0]
    questionnaire = runtime.catalogue[instrument]
    first_options = [  # "0" for numbered options, "A" for lettered ones such as AUDIT-C's
        questionnaire.option_set_for(item.id).key_of(questionnaire.options_for(item.id)[0])
        for item in questionnaire.items
    ]
    invitation_id = start_now(client, api_headers, runtime, clock, alex.id, instrument)
    for reply in first_options:
        text(runtime, clock, demo.practice.sms_number, alex.phone, reply)
        [invitation] = client.get(
            f"/api/v1/patients/{alex.id}/invitations", headers=api_headers
        ).json
        if invitation["status"] != "active":
            break
    assert invitation["status"] == "completed"
    [result] = client.get(f"/api/v1/patients/{alex.id}/results", headers=api_headers).json

    document = fetch(client, api_headers, invitation_id)
    assert document["status"] == "completed"
    answered = items(document)
    assert set(answered) == {*result["answers"], "total"}
    assert answered["total"]["answer"] == [{"valueInteger": result["total"]}]
    instrument_codes = questionnaire.codes
    expected = [
        (system, code)
        for system, code in [
            (LOINC, instrument_codes.loinc_panel),
            (LOINC, instrument_codes.loinc_total),
            (SNOMED, instrument_codes.snomed_total),
        ]
        if code
    ]
    assert codings(document) == expected
    for item in questionnaire.items:
        if item.loinc and item.id in answered:
            assert answered[item.id]["definition"] == f"{LOINC}|{item.loinc}"


def test_another_practices_invitation_is_404(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, demo.patients[0], ["0"] * 9
    )
    with transaction(runtime.engine) as session:
        elsewhere = create_practice(
            session, name="Elsewhere Medical Centre", sms_number="+447700900999", now=clock.now
        )
        token = new_api_token(session, elsewhere, now=clock.now)
    url = f"/api/v1/fhir/QuestionnaireResponse/{invitation_id}"
    theirs = client.get(url, headers=bearer(token))
    assert (theirs.status_code, theirs.json) == (404, {"error": "not found"})
    never = client.get(
        f"/api/v1/fhir/QuestionnaireResponse/{uuid.uuid4().hex}", headers=bearer(token)
    )
    assert (never.status_code, never.json) == (404, {"error": "not found"})
    assert client.get(url).status_code == 401
    assert client.get(url, headers=api_headers).status_code == 200
