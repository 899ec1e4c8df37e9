"""FHIR a GP system can file: /api/v1/fhir, as a practice's system reads it.

Patients answer by text through the same service the webhook calls; the
practice's system then reads what a GP record files: QuestionnaireResponses
whose ``questionnaire`` canonical resolves (on this server) to a Questionnaire
carrying the LOINC codes, answers as LOINC answer codes where LOINC has them,
and each total as a score Observation with its LOINC and SNOMED CT codes,
derived from its response. Every document fetched here is checked by three
independent validators (tests/fhir_checks.py: fhir.resources, the official R4
JSON schema, the R4 invariants), and every response against its Questionnaire.

Every name and number is invented; phones are Ofcom drama numbers.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot.services.clinical_record import clinical_record
from bot.services.demo import Demo
from bot.services.dispatch import dispatch_due
from bot.services.enrolment import create_practice, new_api_token
from bot.services.runtime import Runtime
from bot.services.timers import expire_due
from bot.store.db import transaction
from bot.store.models import Patient, ResultRecord
from tests.fhir_checks import assert_valid_fhir, response_fits_questionnaire
from tests.service.conftest import PUBLIC_BASE_URL, Clock
from tests.service.edited_instruments import edit_instrument_file
from tests.service.test_api import PHQ9_ITEMS, answer_phq9, bearer, start_now, text, zulu

BASE = f"{PUBLIC_BASE_URL}/api/v1/fhir"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SCORES = f"{BASE}/CodeSystem/scores"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
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
}
FREQUENCY = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}


# -- reading FHIR as a practice's system does -------------------------------------------


def fetch(client: FlaskClient, headers: dict[str, str], path: str) -> dict[str, Any]:
    """GET a FHIR path (relative to the FHIR base): 200, FHIR JSON, valid by every validator."""
    response = client.get(f"/api/v1/fhir/{path}", headers=headers)
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/fhir+json"
    document = response.json
    assert_valid_fhir(document)
    return document


def questionnaire_response(
    client: FlaskClient, headers: dict[str, str], response_id: str
) -> dict[str, Any]:
    """The response, checked against the Questionnaire its canonical resolves to here."""
    document = fetch(client, headers, f"QuestionnaireResponse/{response_id}")
    assert document["id"] == response_id
    canonical = document["questionnaire"].split("|")[0]
    assert canonical.startswith(f"{BASE}/Questionnaire/")
    questionnaire = fetch(client, headers, canonical.removeprefix(f"{BASE}/"))
    assert response_fits_questionnaire(document, questionnaire) == []
    assert "definition" not in json.dumps(document)  # LOINC codes live on Questionnaire.item.code
    return document


def search(client: FlaskClient, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    """A searchset Bundle's entries, each fullUrl resolving to the resource it holds."""
    bundle = fetch(client, headers, query)
    assert bundle["type"] == "searchset"
    assert bundle["link"] == [{"relation": "self", "url": f"{BASE}/{query}"}]
    entries = bundle.get("entry", [])
    assert bundle["total"] == sum(e["search"]["mode"] == "match" for e in entries)
    for entry in entries:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{BASE}/{resource['resourceType']}/{resource['id']}"
        assert fetch(client, headers, entry["fullUrl"].removeprefix(f"{BASE}/")) == resource
    return entries


def observations(client: FlaskClient, headers: dict[str, str], patient_id: str) -> list[dict]:
    entries = search(client, headers, f"Observation?patient={patient_id}")
    assert {e["search"]["mode"] for e in entries} <= {"match"}
    for entry in entries:  # each score's response is one we serve, for this patient
        score = entry["resource"]
        [derived] = score["derivedFrom"]
        response = questionnaire_response(
            client, headers, derived["reference"].removeprefix("QuestionnaireResponse/")
        )
        assert response["subject"] == score["subject"]
    return [e["resource"] for e in entries]


def answered(document: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
    """linkId -> (system, code, value) of each coded answer."""
    found = {}
    for item in document.get("item", []):
        [answer] = item["answer"]
        if "valueCoding" in answer:
            coding = answer["valueCoding"]
            [ordinal] = coding["extension"]
            assert ordinal["url"] == ORDINAL
            found[item["linkId"]] = (coding["system"], coding["code"], ordinal["valueDecimal"])
    return found


def total_of(document: dict[str, Any]) -> int | None:
    totals = [
        i["answer"][0]["valueInteger"] for i in document.get("item", []) if i["linkId"] == "total"
    ]
    return totals[0] if totals else None


def codings(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


def results(client: FlaskClient, headers: dict[str, str], patient_id: str) -> list[dict]:
    return client.get(f"/api/v1/patients/{patient_id}/results", headers=headers).json


def answer_all(
    client: FlaskClient,
    headers: dict[str, str],
    runtime: Runtime,
    clock: Clock,
    demo: Demo,
    patient: Patient,
    instrument: str,
    replies: list[str],
) -> str:
    invitation_id = start_now(client, headers, runtime, clock, patient.id, instrument)
    text(runtime, clock, demo.practice.sms_number, patient.phone, *replies)
    return invitation_id


# -- PHQ-9 -----------------------------------------------------------------------------------


def test_a_completed_phq9_files_loinc_answers_and_a_coded_score_derived_from_them(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]  # has NHS number 943 476 5919
    replies = ["1"] * 8 + ["2", "1"]
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, replies)
    finished = zulu(clock.now)
    document = questionnaire_response(client, api_headers, invitation_id)

    assert document["status"] == "completed"
    assert document["authored"] == finished
    assert document["questionnaire"] == f"{BASE}/Questionnaire/phq9|1.0"
    assert document["subject"] == {
        "reference": f"Patient/{alex.id}",
        "identifier": {"system": NHS_NUMBER, "value": "9434765919"},
    }
    assert document["source"] == {"reference": f"Patient/{alex.id}"}
    assert [item["linkId"] for item in document["item"]] == [*PHQ9_ITEMS, "difficulty", "total"]
    assert answered(document) == {
        **{item: (LOINC, FREQUENCY[1], 1) for item in PHQ9_ITEMS},
        "self_harm": (LOINC, FREQUENCY[2], 2),
        "difficulty": (LOINC, "LA6573-5", 1),  # Somewhat difficult
    }
    assert total_of(document) == 10
    questionnaire = fetch(client, api_headers, "Questionnaire/phq9")
    assert {
        item["linkId"]: item["code"][0]["code"]
        for item in questionnaire["item"]
        if item["linkId"] in PHQ9_LOINC
    } == PHQ9_LOINC

    [score] = observations(client, api_headers, alex.id)
    [result] = results(client, api_headers, alex.id)
    assert score["id"] == result["id"]
    assert score["status"] == "final"
    assert score["category"][0]["coding"][0]["code"] == "survey"
    assert codings(score["code"]) == [(SNOMED, "720433000"), (LOINC, "44261-6"), (SCORES, "phq9")]
    assert score["valueQuantity"] == {
        "value": 10,
        "unit": "score",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    [band] = score["interpretation"]
    assert band["text"] == "Moderate"
    assert codings(band) == [(f"{BASE}/CodeSystem/phq9.bands", "moderate")]
    assert score["effectiveDateTime"] == finished
    assert score["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{invitation_id}"}]
    assert score["subject"] == document["subject"]


def test_a_patient_without_an_nhs_number_is_named_by_reference_only(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    bo = demo.patients[1]  # no NHS number
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, bo, ["0"] * 9)
    document = questionnaire_response(client, api_headers, invitation_id)
    assert document["subject"] == {"reference": f"Patient/{bo.id}"}
    assert document["status"] == "completed"
    assert [i["linkId"] for i in document["item"]] == [*PHQ9_ITEMS, "total"]  # no difficulty
    assert total_of(document) == 0
    [score] = observations(client, api_headers, bo.id)
    assert score["valueQuantity"]["value"] == 0
    assert score["interpretation"][0]["text"] == "None-minimal"


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
    document = questionnaire_response(client, api_headers, invitation_id)
    assert document["status"] == "in-progress"
    assert document["authored"] == "2026-03-02T10:00:00Z"  # when it was sent
    assert answered(document) == {
        item: (LOINC, FREQUENCY[value], value) for item, value in answers.items()
    }
    assert total_of(document) is None
    assert observations(client, api_headers, alex.id) == []


def stop_after_three(runtime: Runtime, clock: Clock, demo: Demo, patient: Patient) -> None:
    text(runtime, clock, demo.practice.sms_number, patient.phone, "STOP")


def expire_after_three(runtime: Runtime, clock: Clock, demo: Demo, patient: Patient) -> None:
    assert expire_due(runtime, clock.advance(days=8))["expired_conversations"] == 1


@pytest.mark.parametrize("end", [stop_after_three, expire_after_three], ids=["stopped", "expired"])
def test_missing_answers_are_absent_never_zero_and_there_is_no_score(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    end,
) -> None:
    alex = demo.patients[0]
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, alex, ["2", "0", "3"]
    )
    end(runtime, clock, demo, alex)
    document = questionnaire_response(client, api_headers, invitation_id)
    assert document["status"] == "stopped"
    assert answered(document) == {
        "interest": (LOINC, FREQUENCY[2], 2),
        "mood": (LOINC, FREQUENCY[0], 0),
        "sleep": (LOINC, FREQUENCY[3], 3),
    }
    assert total_of(document) is None
    assert observations(client, api_headers, alex.id) == []
    [result] = results(client, api_headers, alex.id)
    missing = client.get(f"/api/v1/fhir/Observation/{result['id']}", headers=api_headers)
    assert (missing.status_code, missing.json) == (404, {"error": "not found"})


# -- the other instruments --------------------------------------------------------------------


def test_gad7_item_2_is_coded_with_loincs_own_answers_to_it(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    replies = ["1", "2", "2", "3", "0", "1", "2"]
    invitation_id = answer_all(client, api_headers, runtime, clock, demo, alex, "gad7", replies)
    document = questionnaire_response(client, api_headers, invitation_id)
    assert document["status"] == "completed"
    assert answered(document) == {
        "nervous": (LOINC, "LA6569-3", 1),
        "control_worry": (LOINC, "LA18938-3", 2),  # LOINC's "More days than not" for 68509-9
        "worry_too_much": (LOINC, "LA6570-1", 2),
        "relaxing": (LOINC, "LA6571-9", 3),
        "restless": (LOINC, "LA6568-5", 0),
        "irritable": (LOINC, "LA6569-3", 1),
        "afraid": (LOINC, "LA6570-1", 2),
    }
    assert total_of(document) == 11
    [score] = observations(client, api_headers, alex.id)
    assert codings(score["code"]) == [(SNOMED, "445455005"), (LOINC, "70274-6"), (SCORES, "gad7")]
    assert score["valueQuantity"]["value"] == 11
    assert score["interpretation"][0]["text"] == "Moderate"


def test_auditc_in_uk_units_carries_loinc_codes_only_where_it_asks_loincs_question(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    # 2 to 3 times a week (3), 5 to 6 units (2), monthly 6+/8+ units (2)
    invitation_id = answer_all(
        client, api_headers, runtime, clock, demo, alex, "auditc", ["D", "5", "C"]
    )
    document = questionnaire_response(client, api_headers, invitation_id)
    assert answered(document) == {
        "frequency": (LOINC, "LA18928-4", 3),  # 2-3 times a week
        "typical_units": (f"{BASE}/CodeSystem/auditc.answers.units", "2", 2),
        "heavy_episodes": (f"{BASE}/CodeSystem/auditc.answers.heavy", "2", 2),
    }
    assert total_of(document) == 7
    [score] = observations(client, api_headers, alex.id)
    assert codings(score["code"]) == [(SNOMED, "763256006"), (SCORES, "auditc")]
    assert score["interpretation"][0]["text"] == "Positive screen"
    everything = json.dumps([document, score, fetch(client, api_headers, "Questionnaire/auditc")])
    for us_code in ["68519-8", "68520-6", "72109-2", "75626-2"]:  # standard drinks, not units
        assert us_code not in everything
    for system in ["auditc.answers.units", "auditc.answers.heavy", "auditc.bands", "scores"]:
        fetch(client, api_headers, f"CodeSystem/{system}")


def test_who5_is_coded_in_our_own_systems_with_its_percentage(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    invitation_id = answer_all(
        client, api_headers, runtime, clock, demo, alex, "who5", ["3", "4", "2", "1", "5"]
    )
    document = questionnaire_response(client, api_headers, invitation_id)
    time = f"{BASE}/CodeSystem/who5.answers.time"
    assert answered(document) == {
        "cheerful": (time, "3", 3),
        "calm": (time, "4", 4),
        "active": (time, "2", 2),
        "rested": (time, "1", 1),
        "interested": (time, "5", 5),
    }
    [score] = observations(client, api_headers, alex.id)
    assert codings(score["code"]) == [(SCORES, "who5")]  # no LOINC or SNOMED code checked
    assert score["code"]["text"] == "WHO-5 total score"
    assert score["valueQuantity"]["value"] == 15
    assert score["interpretation"][0]["text"] == "Adequate wellbeing"
    percentage, change = score["component"]  # WHO-5 has no risk question
    assert codings(percentage["code"]) == [(SCORES, "who5.percentage")]
    assert codings(change["code"]) == [(SCORES, "who5.change")]
    assert change["dataAbsentReason"]["text"] == "First score (baseline)"
    assert percentage["valueQuantity"] == {
        "value": 60,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    concepts = fetch(client, api_headers, "CodeSystem/who5.answers.time")["concept"]
    assert concepts[0] == {"code": "5", "display": "All of the time"}


INSTRUMENTS = ["phq9", "phq2", "gad7", "gad2", "auditc", "who5"]


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_every_instrument_exports_a_valid_response_and_score(
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
    [result] = results(client, api_headers, alex.id)

    document = questionnaire_response(client, api_headers, invitation_id)
    assert document["status"] == "completed"
    assert {i["linkId"] for i in document["item"]} == {*result["answers"], "total"}
    assert total_of(document) == result["total"]
    [score] = observations(client, api_headers, alex.id)
    assert score["id"] == result["id"]
    assert score["valueQuantity"]["value"] == result["total"]
    assert score["interpretation"][0]["coding"][0]["code"] == result["band"]
    codes = questionnaire.codes
    expected = [(SNOMED, codes.snomed_total), (LOINC, codes.loinc_total)]
    assert codings(score["code"]) == [c for c in expected if c[1]] + [(SCORES, instrument)]


# -- a screen that went on to the full questionnaire ----------------------------------------


def start_screen(client: FlaskClient, headers: dict[str, str], runtime, clock, patient) -> str:
    body = {
        "patient_id": patient.id,
        "occurred_at": clock.now.isoformat(),
        "continue_if_positive": True,
        "schedule": [{"instrument": "phq2", "after": "P0D"}],
    }
    created = client.post("/api/v1/consultations", headers=headers, json=body)
    assert created.status_code == 201, created.json
    dispatch_due(runtime, clock.now)
    return created.json["invitations"][0]["id"]


def test_a_positive_phq2_that_went_on_to_a_stopped_phq9_keeps_its_own_result_and_export(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    invitation_id = start_screen(client, api_headers, runtime, clock, alex)
    text(runtime, clock, demo.practice.sms_number, alex.phone, "3", "3")  # PHQ-2 of 6: go on
    screened = zulu(clock.now)
    text(runtime, clock, demo.practice.sms_number, alex.phone, "1", "STOP")  # then stop

    screen, full = results(client, api_headers, alex.id)
    assert (screen["instrument"], screen["status"], screen["total"]) == ("phq2", "completed", 6)
    assert (full["instrument"], full["status"], full["total"]) == ("phq9", "opted_out", None)
    assert screen["invitation_id"] == full["invitation_id"] == invitation_id

    # the invitation's own response is where it ended: the stopped PHQ-9, answers carried
    stopped = questionnaire_response(client, api_headers, invitation_id)
    assert stopped["questionnaire"] == f"{BASE}/Questionnaire/phq9|1.0"
    assert stopped["status"] == "stopped"
    assert answered(stopped) == {
        "interest": (LOINC, FREQUENCY[3], 3),
        "mood": (LOINC, FREQUENCY[3], 3),
        "sleep": (LOINC, FREQUENCY[1], 1),
    }
    assert total_of(stopped) is None

    # the screen keeps its own, completed, with its total
    positive = questionnaire_response(client, api_headers, screen["id"])
    assert positive["questionnaire"] == f"{BASE}/Questionnaire/phq2|1.0"
    assert positive["status"] == "completed"
    assert positive["authored"] == screened
    assert positive["identifier"]["value"] == screen["id"]
    assert answered(positive) == {
        "interest": (LOINC, FREQUENCY[3], 3),
        "mood": (LOINC, FREQUENCY[3], 3),
    }
    assert total_of(positive) == 6

    [score] = observations(client, api_headers, alex.id)
    assert score["id"] == screen["id"]
    assert codings(score["code"]) == [
        (SNOMED, "836541000000100"),
        (LOINC, "55758-7"),
        (SCORES, "phq2"),
    ]
    assert score["interpretation"][0]["text"] == "Positive screen"
    assert score["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{screen['id']}"}]

    # both responses, and the score, in one Bundle for the patient
    entries = search(
        client,
        api_headers,
        f"QuestionnaireResponse?patient={alex.id}&_revinclude=Observation:derived-from",
    )
    assert [(e["resource"]["id"], e["search"]["mode"]) for e in entries] == [
        (screen["id"], "match"),
        (invitation_id, "match"),
        (screen["id"], "include"),  # the Observation, which has the result's id
    ]
    assert entries[2]["resource"]["resourceType"] == "Observation"
    included = search(
        client, api_headers, f"Observation?patient={alex.id}&_include=Observation:derived-from"
    )
    assert [(e["resource"]["resourceType"], e["search"]["mode"]) for e in included] == [
        ("Observation", "match"),
        ("QuestionnaireResponse", "include"),
    ]

    # the stopped PHQ-9's own result is read by the invitation's id, and has no score
    for path in [f"QuestionnaireResponse/{full['id']}", f"Observation/{full['id']}"]:
        response = client.get(f"/api/v1/fhir/{path}", headers=api_headers)
        assert (response.status_code, response.json) == (404, {"error": "not found"}), path


def test_a_positive_screen_that_goes_on_exports_the_full_instrument_and_both_scores(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    invitation_id = start_screen(client, api_headers, runtime, clock, alex)
    text(runtime, clock, demo.practice.sms_number, alex.phone, "3", "3", "1")  # PHQ-2 of 6
    under_way = questionnaire_response(client, api_headers, invitation_id)
    assert under_way["status"] == "in-progress"
    assert under_way["questionnaire"] == f"{BASE}/Questionnaire/phq9|1.0"
    assert list(answered(under_way)) == ["interest", "mood", "sleep"]  # the screen's two carried
    [screen_score] = observations(client, api_headers, alex.id)
    assert screen_score["valueQuantity"]["value"] == 6

    text(runtime, clock, demo.practice.sms_number, alex.phone, *["1"] * 6, "2")
    finished = questionnaire_response(client, api_headers, invitation_id)
    assert finished["status"] == "completed"
    assert [i["linkId"] for i in finished["item"]] == [*PHQ9_ITEMS, "difficulty", "total"]
    assert total_of(finished) == 13
    scores = observations(client, api_headers, alex.id)
    assert [(s["code"]["text"], s["valueQuantity"]["value"]) for s in scores] == [
        ("PHQ-2 total score", 6),
        ("PHQ-9 total score", 13),
    ]


# -- the same values as the "copy to record" block -----------------------------------------

CHANGE = f"{BASE}/CodeSystem/reliable-change"
RISK_QUESTION = "Q9 (Thoughts that you would be better off dead or of hurting yourself in some way)"


def component(score: dict[str, Any], system: str, code: str) -> dict[str, Any]:
    [found] = [c for c in score["component"] if (system, code) in codings(c["code"])]
    return found


def change_of(score: dict[str, Any]) -> tuple[int | None, list[tuple[str, str]]]:
    """The change component: its value, and its meaning as (code system, code)."""
    instrument = score["code"]["coding"][-1]["code"]
    change = component(score, SCORES, f"{instrument}.change")
    value = change.get("valueQuantity", {}).get("value")
    return value, [
        pair for meaning in change.get("interpretation", []) for pair in codings(meaning)
    ]


def agrees_with_the_record_summary(
    runtime: Runtime, demo: Demo, patient: Patient, scores: list[dict[str, Any]]
) -> None:
    """Each Observation says what the patient page's copy-to-record block says, value by value."""
    record = clinical_record(runtime, demo.practice.id, patient.id, runtime.catalogue)
    views = {r.id: r for trend in record.trends for r in trend.results if r.total is not None}
    assert sorted(views) == sorted(s["id"] for s in scores)
    for score in scores:
        view = views[score["id"]]
        assert score["note"][0]["text"] == view.record_text
        assert score["valueQuantity"]["value"] == view.total
        [band] = score["interpretation"]
        assert (band["coding"][0]["code"], band["text"]) == (view.band, view.band_label)
        value, meaning = change_of(score)
        if view.previous is None:
            assert (value, meaning) == (None, [])
        elif view.change is None:
            assert value == view.total - view.previous.total and meaning == []
        else:
            expected = [view.change.direction] + (
                [view.change.recovery] if view.change.recovery else []
            )
            assert (value, meaning) == (view.change.difference, [(CHANGE, c) for c in expected])


def test_each_phq9_score_carries_its_band_risk_answer_and_change_as_the_record_says(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    first = ["2"] * 8 + ["0", "1"]  # 16, moderately severe; Q9 "not at all"
    second = ["1"] * 8 + ["1", "1"]  # 9: 7 better and below caseness; Q9 "several days"
    third = ["2"] * 6 + ["1", "1", "1", "1"]  # 15: 6 worse, from below caseness
    for replies in (first, second, third):
        answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, replies)
        clock.advance(days=14)
    scores = observations(client, api_headers, alex.id)

    assert [s["valueQuantity"]["value"] for s in scores] == [16, 9, 15]
    assert [s["interpretation"][0]["text"] for s in scores] == [
        "Moderately severe",
        "Mild",
        "Moderately severe",
    ]
    risk = [component(s, LOINC, "44260-8") for s in scores]
    assert [r["code"]["text"] for r in risk] == [RISK_QUESTION] * 3
    assert [
        (r["valueCodeableConcept"]["text"], codings(r["valueCodeableConcept"])) for r in risk
    ] == [
        ("Not at all (0)", [(LOINC, FREQUENCY[0])]),
        ("Several days (1)", [(LOINC, FREQUENCY[1])]),
        ("Several days (1)", [(LOINC, FREQUENCY[1])]),
    ]
    assert [change_of(s) for s in scores] == [
        (None, []),
        (-7, [(CHANGE, "reliable_improvement"), (CHANGE, "reliable_recovery")]),
        (6, [(CHANGE, "reliable_deterioration"), (CHANGE, "not_a_case")]),
    ]
    baseline = component(scores[0], SCORES, "phq9.change")
    assert baseline["dataAbsentReason"]["text"] == "First score (baseline)"
    assert (
        "Change since 16 on 2 Mar 2026: Reliable improvement, reliable recovery"
        in (scores[1]["note"][0]["text"])
    )
    agrees_with_the_record_summary(runtime, demo, alex, scores)
    # every code of ours resolves, on this server, to a concept with the same words
    meanings = fetch(client, api_headers, "CodeSystem/reliable-change")["concept"]
    for score in scores:
        for meaning in component(score, SCORES, "phq9.change").get("interpretation", []):
            [coding] = meaning["coding"]
            assert coding["system"] == CHANGE
            assert {"code": coding["code"], "display": coding["display"]} in meanings
    kinds = fetch(client, api_headers, "CodeSystem/scores")["concept"]
    assert {"code": "phq9.change", "display": "PHQ-9 change since the previous score"} in kinds


def test_who5_change_is_in_percentage_points_and_gad7_is_its_own_series(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    for instrument, replies in [
        ("who5", ["3", "4", "2", "1", "5"]),  # 15, 60%
        ("gad7", ["2"] * 7 + ["1"]),  # 14: a first GAD-7 is a baseline, whatever came before
        ("who5", ["4", "4", "3", "2", "5"]),  # 18, 72%: 12 percentage points better
        ("gad7", ["1"] * 7 + ["1"]),  # 7: 7 better and below caseness (8)
    ]:
        answer_all(client, api_headers, runtime, clock, demo, alex, instrument, replies)
        clock.advance(days=14)
    scores = observations(client, api_headers, alex.id)
    assert [(s["code"]["text"], change_of(s)) for s in scores] == [
        ("WHO-5 total score", (None, [])),
        ("GAD-7 total score", (None, [])),
        ("WHO-5 total score", (12, [(CHANGE, "reliable_improvement")])),
        (
            "GAD-7 total score",
            (-7, [(CHANGE, "reliable_improvement"), (CHANGE, "reliable_recovery")]),
        ),
    ]
    assert component(scores[2], SCORES, "who5.change")["valueQuantity"]["unit"] == "%"
    assert all(
        c["code"].get("coding", [{}])[0].get("code") != "44260-8"
        for s in scores
        for c in s["component"]
    )  # no risk question in either
    agrees_with_the_record_summary(runtime, demo, alex, scores)


def test_the_change_rests_on_the_thresholds_in_the_instrument_file(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A threshold changed in the instrument data changes the Observation and the record alike."""
    alex = demo.patients[0]
    for replies in (["2"] * 8 + ["0", "1"], ["2"] * 5 + ["1"] * 3 + ["0", "1"]):  # 16, then 13
        answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, replies)
        clock.advance(days=14)
    assert change_of(observations(client, api_headers, alex.id)[1]) == (
        -3,
        [(CHANGE, "no_reliable_change"), (CHANGE, "not_recovered")],
    )
    edit_instrument_file(
        runtime, monkeypatch, tmp_path, "phq9", "reliable_change: 6", "reliable_change: 3"
    )
    scores = observations(client, api_headers, alex.id)
    assert change_of(scores[1]) == (
        -3,
        [(CHANGE, "reliable_improvement"), (CHANGE, "not_recovered")],
    )
    agrees_with_the_record_summary(runtime, demo, alex, scores)


# -- what is not there, or not theirs ------------------------------------------------------


def test_an_invitation_not_yet_sent_has_no_response_yet(
    client: FlaskClient, clock: Clock, api_headers: dict[str, str], demo: Demo
) -> None:
    alex = demo.patients[0]
    body = {
        "patient_id": alex.id,
        "occurred_at": clock.now.isoformat(),
        "schedule": [{"instrument": "phq9", "after": "P14D"}],
    }
    [invitation] = client.post("/api/v1/consultations", headers=api_headers, json=body).json[
        "invitations"
    ]
    url = f"/api/v1/fhir/QuestionnaireResponse/{invitation['id']}"
    pending = client.get(url, headers=api_headers)
    assert pending.status_code == 404
    assert pending.json == {
        "error": "no response yet: the invitation has not been sent to the patient"
    }
    client.post(f"/api/v1/invitations/{invitation['id']}/cancel", headers=api_headers)
    assert client.get(url, headers=api_headers).status_code == 404  # cancelled unsent: none
    assert search(client, api_headers, f"QuestionnaireResponse?patient={alex.id}") == []


def test_a_patient_with_no_answers_yet_has_an_empty_searchset(
    client: FlaskClient, api_headers: dict[str, str], demo: Demo
) -> None:
    bundle = fetch(client, api_headers, f"Observation?patient={demo.patients[2].id}")
    assert bundle["total"] == 0
    assert "entry" not in bundle  # FHIR JSON has no empty arrays


def test_another_practices_records_answer_404_like_records_that_never_existed(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    invitation_id = start_screen(client, api_headers, runtime, clock, alex)
    text(runtime, clock, demo.practice.sms_number, alex.phone, "3", "3", "1", "STOP")
    screen, _ = results(client, api_headers, alex.id)
    with transaction(runtime.engine) as session:
        elsewhere = create_practice(
            session, name="Elsewhere Medical Centre", sms_number="+447700900999", now=clock.now
        )
        theirs = bearer(new_api_token(session, elsewhere, now=clock.now))
    ours = {
        f"QuestionnaireResponse/{invitation_id}": {"error": "not found"},
        f"QuestionnaireResponse/{screen['id']}": {"error": "not found"},
        f"Observation/{screen['id']}": {"error": "not found"},
        f"Observation?patient={alex.id}": {
            "error": "patient is not a record of this practice",
            "field": "patient",
        },
        f"QuestionnaireResponse?patient={alex.id}": {
            "error": "patient is not a record of this practice",
            "field": "patient",
        },
    }
    for path, error in ours.items():
        assert client.get(f"/api/v1/fhir/{path}", headers=api_headers).status_code == 200, path
        response = client.get(f"/api/v1/fhir/{path}", headers=theirs)
        assert (response.status_code, response.json) == (404, error), path
        never = path.replace(invitation_id, uuid.uuid4().hex).replace(
            screen["id"], uuid.uuid4().hex
        )
        never = never.replace(alex.id, uuid.uuid4().hex)
        response = client.get(f"/api/v1/fhir/{never}", headers=api_headers)
        assert (response.status_code, response.json) == (404, error), never


FHIR_ROUTES = [
    "Questionnaire/phq9",
    "CodeSystem/scores",
    "QuestionnaireResponse/" + "0" * 32,  # a fixed id: xdist workers must collect the same tests
    "QuestionnaireResponse?patient=x",
    "Observation/" + "0" * 32,
    "Observation?patient=x",
]


@pytest.mark.parametrize("path", FHIR_ROUTES)
def test_every_fhir_route_needs_the_practices_token(client: FlaskClient, path: str) -> None:
    for headers in [{}, bearer("pb_not_a_real_token")]:
        response = client.get(f"/api/v1/fhir/{path}", headers=headers)
        assert response.status_code == 401
        assert response.json == {"error": "a valid bearer token is required"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "path",
    [
        "Questionnaire/gad9",
        "Questionnaire/PHQ9",
        "Questionnaire/phq_9",
        "CodeSystem/phq9.answers.frequency",
    ],
)
def test_an_unknown_questionnaire_or_code_system_is_404_json(
    client: FlaskClient, api_headers: dict[str, str], path: str
) -> None:
    response = client.get(f"/api/v1/fhir/{path}", headers=api_headers)
    assert (response.status_code, response.json) == (404, {"error": "not found"})


# query, the field the 422 names
BAD_SEARCHES = [
    ("Observation", "patient"),
    ("Observation?patient=", "patient"),
    ("Observation?patient={id}&patient={id}", "patient"),
    ("Observation?patient={id}&_count=5", "_count"),
    ("Observation?subject=Patient/{id}", "subject"),
    ("Observation?patient={id}&_include=Observation:subject", "_include"),
    ("Observation?patient={id}&_revinclude=Observation:derived-from", "_revinclude"),
    ("QuestionnaireResponse?patient={id}&_include=Observation:derived-from", "_include"),
    ("QuestionnaireResponse?patient={id}&_format=xml", "_format"),
]


@pytest.mark.parametrize(("query", "field"), BAD_SEARCHES)
def test_a_search_the_server_cannot_honour_answers_422_naming_the_parameter(
    client: FlaskClient, api_headers: dict[str, str], demo: Demo, query: str, field: str
) -> None:
    url = f"/api/v1/fhir/{query.format(id=demo.patients[0].id)}"
    response = client.get(url, headers=api_headers)
    assert response.status_code == 422
    assert response.json["field"] == field
    assert response.json["error"]


def test_a_patient_can_be_searched_for_as_a_reference_and_json_asked_for(
    client: FlaskClient, api_headers: dict[str, str], demo: Demo
) -> None:
    alex = demo.patients[0]
    for query in [f"Patient/{alex.id}&_format=json", f"{alex.id}&_format=application/fhir%2Bjson"]:
        response = client.get(f"/api/v1/fhir/Observation?patient={query}", headers=api_headers)
        assert response.status_code == 200
        assert response.json["link"] == [
            {"relation": "self", "url": f"{BASE}/Observation?patient={alex.id}"}
        ]


def test_every_fhir_answer_is_documented_in_the_openapi_document(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
) -> None:
    alex = demo.patients[0]
    invitation_id = answer_phq9(client, api_headers, runtime, clock, demo.practice, alex, ["0"] * 9)
    [result] = results(client, api_headers, alex.id)
    document = client.get("/api/v1/openapi.json").json
    calls = [
        ("QuestionnaireResponse/{invitation_id}", f"QuestionnaireResponse/{invitation_id}", 200),
        ("QuestionnaireResponse/{invitation_id}", f"QuestionnaireResponse/{uuid.uuid4().hex}", 404),
        ("QuestionnaireResponse", f"QuestionnaireResponse?patient={alex.id}", 200),
        ("QuestionnaireResponse", "QuestionnaireResponse", 422),
        ("Observation", f"Observation?patient={alex.id}", 200),
        ("Observation", f"Observation?patient={uuid.uuid4().hex}", 404),
        ("Observation/{observation_id}", f"Observation/{result['id']}", 200),
        ("Questionnaire/{questionnaire_id}", "Questionnaire/who5", 200),
        ("Questionnaire/{questionnaire_id}", "Questionnaire/nope", 404),
        ("CodeSystem/{code_system_id}", "CodeSystem/phq9.bands", 200),
    ]
    for template, path, status in calls:
        response = client.get(f"/api/v1/fhir/{path}", headers=api_headers)
        assert response.status_code == status, path
        operation = document["paths"][f"/api/v1/fhir/{template}"]["get"]
        [media_type] = operation["responses"][str(status)]["content"]
        expected = "application/fhir+json" if status == 200 else "application/json"
        assert (response.mimetype, media_type) == (expected, expected), path
    for template in {template for template, _, _ in calls}:
        assert "401" in document["paths"][f"/api/v1/fhir/{template}"]["get"]["responses"]


def _edit_result(runtime: Runtime, result_id: str, **changes: Any) -> None:
    with transaction(runtime.engine) as session:
        result = session.get(ResultRecord, result_id)
        for name, value in changes.items():
            setattr(result, name, value)


# what changed under the stored result (a questionnaire file edited in place), what reads it,
# the fault
EDITED = [
    ({"answers_json": json.dumps({"interest": 7})}, "QuestionnaireResponse", "has no option 7"),
    ({"band": "catastrophic"}, "Observation", "has no band 'catastrophic'"),
    ({"instrument": "phq9_old"}, "QuestionnaireResponse", "'phq9_old' is no longer loaded"),
    ({"instrument": "phq9_old"}, "Observation", "'phq9_old' is no longer loaded"),
]


@pytest.mark.parametrize(("changes", "reader", "fault"), EDITED)
def test_answers_that_no_longer_fit_the_questionnaire_are_refused_not_guessed(
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    api_headers: dict[str, str],
    demo: Demo,
    changes: dict[str, Any],
    reader: str,
    fault: str,
) -> None:
    alex = demo.patients[0]
    invitation_id = answer_phq9(
        client, api_headers, runtime, clock, demo.practice, alex, ["1"] * 10
    )
    [result] = results(client, api_headers, alex.id)
    _edit_result(runtime, result["id"], **changes)
    read = {"QuestionnaireResponse": invitation_id, "Observation": result["id"]}[reader]
    for path in [
        f"{reader}/{read}",
        f"QuestionnaireResponse?patient={alex.id}&_revinclude=Observation:derived-from",
    ]:
        response = client.get(f"/api/v1/fhir/{path}", headers=api_headers)
        assert response.status_code == 409, path
        assert fault in response.json["error"]
