"""The FHIR Questionnaires and code systems, made from the instrument files (no database).

A GP system looks for codes on ``Questionnaire.item.code`` and on the answers
themselves, so each table here is the coding a practice's record will carry,
checked against the sources in docs/fhir.md. The last part proves that the
independent validators in tests/fhir_checks.py do fail on broken resources:
a check that cannot fail proves nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bot.fhir import Urls, code_system, questionnaire
from bot.fhir.terms import LOINC, ORDINAL_VALUE
from bot.instruments import builtin_catalogue
from tests.fhir_checks import (
    SCHEMA_SHA256,
    _validator,
    assert_valid_fhir,
    fhir_faults,
    response_fits_questionnaire,
)

CATALOGUE = builtin_catalogue()
URLS = Urls.for_service("https://gp-surgery.example/")
BASE = "https://gp-surgery.example/api/v1/fhir"
INSTRUMENTS = ["phq9", "phq2", "gad7", "gad2", "auditc", "who5"]

# LOINC answer list LL358-3: Not at all / Several days / More than half the days / Nearly every day
LL358_3 = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
# LOINC's answers to GAD-7 item 2 (68509-9) call option 2 "More days than not"
WORRY = ["LA6568-5", "LA6569-3", "LA18938-3", "LA6571-9"]
# LOINC answer list LL359-1, in our option order: "Very difficult" is LA6575-0
DIFFICULTY = ["LA6572-7", "LA6573-5", "LA6575-0", "LA6574-3"]
# LOINC's answers to AUDIT-C question 1 (68518-0)
DRINK_FREQUENCY = ["LA6270-8", "LA18926-8", "LA18927-6", "LA18928-4", "LA18929-2"]
OURS = "our own code system"

# instrument, item, its LOINC code (None: no code), its answers' LOINC codes in option order
ITEM_CODING = [
    ("phq9", "interest", "44250-9", LL358_3),
    ("phq9", "mood", "44255-8", LL358_3),
    ("phq9", "sleep", "44259-0", LL358_3),
    ("phq9", "energy", "44254-1", LL358_3),
    ("phq9", "appetite", "44251-7", LL358_3),
    ("phq9", "self_worth", "44258-2", LL358_3),
    ("phq9", "concentration", "44252-5", LL358_3),
    ("phq9", "psychomotor", "44253-3", LL358_3),
    ("phq9", "self_harm", "44260-8", LL358_3),
    ("phq9", "difficulty", "69722-7", DIFFICULTY),
    ("phq2", "interest", "44250-9", LL358_3),
    ("phq2", "mood", "44255-8", LL358_3),
    ("gad7", "nervous", "69725-0", LL358_3),
    ("gad7", "control_worry", "68509-9", WORRY),
    ("gad7", "worry_too_much", "69733-4", LL358_3),
    ("gad7", "relaxing", "69734-2", LL358_3),
    ("gad7", "restless", "69735-9", LL358_3),
    ("gad7", "irritable", "69689-8", LL358_3),
    ("gad7", "afraid", "69736-7", LL358_3),
    ("gad2", "nervous", "69725-0", LL358_3),
    ("gad2", "control_worry", "68509-9", WORRY),
    ("auditc", "frequency", "68518-0", DRINK_FREQUENCY),
    # UK units and "6 or more units if female, or 8 or more if male": not LOINC's questions
    ("auditc", "typical_units", None, OURS),
    ("auditc", "heavy_episodes", None, OURS),
    ("who5", "cheerful", None, OURS),
    ("who5", "interested", None, OURS),
]

# instrument, Questionnaire.code (LOINC panel), the total item's code (LOINC total)
PANELS = [
    ("phq9", "44249-1", "44261-6"),
    ("phq2", "55757-9", "55758-7"),
    ("gad7", "69737-5", "70274-6"),
    ("gad2", None, None),
    ("auditc", None, None),  # 72109-2 and 75626-2 are the US standard-drinks AUDIT-C's
    ("who5", None, None),
]


def items_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["linkId"]: item for item in document["item"]}


def codings_in(node: Any) -> list[dict[str, Any]]:
    """Every Coding in a resource: anything with a system and a code."""
    if isinstance(node, dict):
        found = [node] if "system" in node and "code" in node else []
        return found + [c for value in node.values() for c in codings_in(value)]
    if isinstance(node, list):
        return [c for value in node for c in codings_in(value)]
    return []


# -- the validators themselves ---------------------------------------------------------------


def test_the_schema_is_the_official_fhir_r4_json_schema() -> None:
    schema = _validator().schema
    assert SCHEMA_SHA256.startswith("15b9548a")
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0"
    assert len(schema["discriminator"]["mapping"]) == 146  # R4's resource types
    statuses = schema["definitions"]["QuestionnaireResponse"]["properties"]["status"]["enum"]
    assert statuses == ["in-progress", "completed", "amended", "entered-in-error", "stopped"]


# -- Questionnaires --------------------------------------------------------------------------


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_every_questionnaire_is_valid_r4_at_its_canonical_url(instrument_id: str) -> None:
    instrument = CATALOGUE[instrument_id]
    document = questionnaire(instrument, URLS)
    assert_valid_fhir(document)
    assert document["id"] == instrument_id
    assert document["url"] == f"{BASE}/Questionnaire/{instrument_id}"
    assert document["version"] == instrument.version
    assert document["status"] == "active"
    assert document["title"] == instrument.title
    stem, *questions, total = document["item"]
    assert (stem["linkId"], stem["type"], stem["text"]) == ("stem", "display", instrument.stem)
    assert [q["linkId"] for q in questions] == list(instrument.item_ids)
    assert [q["text"] for q in questions] == [item.text for item in instrument.items]
    assert (total["linkId"], total["type"], total["readOnly"]) == ("total", "integer", True)


@pytest.mark.parametrize(("instrument_id", "item_id", "loinc", "answers"), ITEM_CODING)
def test_items_carry_loinc_codes_and_their_answers_loinc_answer_codes(
    instrument_id: str, item_id: str, loinc: str | None, answers: list[str] | str
) -> None:
    instrument = CATALOGUE[instrument_id]
    item = items_of(questionnaire(instrument, URLS))[item_id]
    assert item.get("code") == ([{"system": LOINC, "code": loinc}] if loinc else None)
    options = instrument.options_for(item_id)
    codings = [option["valueCoding"] for option in item["answerOption"]]
    if answers == OURS:
        system = f"{BASE}/CodeSystem/{instrument_id}.answers.{instrument.item(item_id).options}"
        assert [(c["system"], c["code"], c["display"]) for c in codings] == [
            (system.replace("_", "-"), str(o.value), o.label) for o in options
        ]
    else:
        assert [(c["system"], c["code"]) for c in codings] == [(LOINC, code) for code in answers]
    for coding, option in zip(codings, options, strict=True):
        assert coding["extension"] == [{"url": ORDINAL_VALUE, "valueDecimal": option.value}]


@pytest.mark.parametrize(("instrument_id", "panel", "total"), PANELS)
def test_the_panel_and_total_codes(instrument_id: str, panel: str | None, total: str | None):
    document = questionnaire(CATALOGUE[instrument_id], URLS)
    assert document.get("code") == ([{"system": LOINC, "code": panel}] if panel else None)
    total_item = items_of(document)["total"]
    assert total_item.get("code") == ([{"system": LOINC, "code": total}] if total else None)


def test_loinc_displays_are_loincs_own_words_where_they_differ_from_the_sms() -> None:
    gad7 = items_of(questionnaire(CATALOGUE["gad7"], URLS))
    worry = [o["valueCoding"]["display"] for o in gad7["control_worry"]["answerOption"]]
    assert worry[2] == "More days than not"  # the patient was offered "More than half the days"
    audit = items_of(questionnaire(CATALOGUE["auditc"], URLS))
    shown = [o["valueCoding"]["display"] for o in audit["frequency"]["answerOption"]]
    assert shown[2] == "2-4 times a month"


def test_no_us_standard_drinks_code_appears_in_the_uk_audit_c() -> None:
    text = json.dumps(questionnaire(CATALOGUE["auditc"], URLS))
    for code in ["68519-8", "68520-6", "72109-2", "75626-2"]:
        assert code not in text


def test_the_difficulty_question_is_enabled_by_any_answer_above_not_at_all() -> None:
    difficulty = items_of(questionnaire(CATALOGUE["phq9"], URLS))["difficulty"]
    nine = [item.id for item in CATALOGUE["phq9"].items if item.scored]
    assert difficulty["enableBehavior"] == "any"
    assert difficulty["required"] is True
    assert [(w["question"], w["operator"], w["answerCoding"]["code"]) for w in
            difficulty["enableWhen"]] == [
        (question, "=", code) for question in nine for code in LL358_3[1:]
    ]  # fmt: skip


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_every_code_of_our_own_resolves_to_a_code_system_that_defines_it(instrument_id: str):
    for coding in codings_in(questionnaire(CATALOGUE[instrument_id], URLS)):
        if not coding["system"].startswith(BASE):
            assert coding["system"] == LOINC
            continue
        code_system_id = coding["system"].removeprefix(f"{BASE}/CodeSystem/")
        document = code_system(CATALOGUE, code_system_id, URLS)
        assert document is not None, coding["system"]
        assert_valid_fhir(document)
        assert document["url"] == coding["system"]
        concepts = {c["code"]: c["display"] for c in document["concept"]}
        assert concepts[coding["code"]] == coding["display"]


def test_code_systems_exist_only_where_loinc_has_no_answers() -> None:
    assert code_system(CATALOGUE, "phq9.answers.frequency", URLS) is None  # all LOINC
    assert code_system(CATALOGUE, "auditc.answers.how-often", URLS) is None  # LOINC's 68518-0
    assert code_system(CATALOGUE, "auditc.answers.units", URLS) is not None
    assert code_system(CATALOGUE, "nothing", URLS) is None
    bands = code_system(CATALOGUE, "phq9.bands", URLS)
    assert [(c["code"], c["display"]) for c in bands["concept"]] == [
        ("none_minimal", "None-minimal"),
        ("mild", "Mild"),
        ("moderate", "Moderate"),
        ("moderately_severe", "Moderately severe"),
        ("severe", "Severe"),
    ]
    scores = {c["code"] for c in code_system(CATALOGUE, "scores", URLS)["concept"]}
    assert scores == {
        *INSTRUMENTS,
        "who5.percentage",
        *(f"{instrument}.change" for instrument in INSTRUMENTS),
    }
    meanings = code_system(CATALOGUE, "reliable-change", URLS)
    assert [c["code"] for c in meanings["concept"]] == [
        "reliable_improvement",
        "reliable_deterioration",
        "no_reliable_change",
        "reliable_recovery",
        "recovery",
        "not_recovered",
        "not_a_case",
    ]


# -- the validators fail on what is wrong ---------------------------------------------------

PHQ9 = questionnaire(CATALOGUE["phq9"], URLS)
INTEREST_OPTIONS = [o["valueCoding"] for o in items_of(PHQ9)["interest"]["answerOption"]]


def answered(link_id: str, coding: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    item = items_of(PHQ9)[link_id]
    return {"linkId": link_id, "text": text or item["text"], "answer": [{"valueCoding": coding}]}


RESPONSE = {
    "resourceType": "QuestionnaireResponse",
    "id": "a" * 32,
    "questionnaire": f"{PHQ9['url']}|{PHQ9['version']}",
    "status": "in-progress",
    "item": [answered("interest", INTEREST_OPTIONS[1])],
}


def broken(resource: dict[str, Any], change) -> dict[str, Any]:
    copied = copy.deepcopy(resource)
    change(copied)
    return copied


# what is broken, the resource, words the faults must contain
BROKEN = [
    ("a status R4 does not have", broken(RESPONSE, lambda r: r.update(status="done")), "schema"),
    ("an unknown element", broken(RESPONSE, lambda r: r.update(score=3)), "schema"),
    ("an empty array", broken(RESPONSE, lambda r: r.update(identifier={"type": {}})), "empty"),
    (
        "one question answered twice as two items",
        broken(RESPONSE, lambda r: r["item"].append(answered("interest", INTEREST_OPTIONS[2]))),
        "qrs-2",
    ),
    (
        "an item with both answers and items",
        broken(RESPONSE, lambda r: r["item"][0].update(item=[{"linkId": "x"}])),
        "qrs-1",
    ),
    (
        "an extension with no value",
        broken(RESPONSE, lambda r: r.update(extension=[{"url": "https://x.example"}])),
        "ext-1",
    ),
    (
        "a display item with a code",
        broken(PHQ9, lambda q: q["item"][0].update(code=[{"system": LOINC, "code": "1-8"}])),
        "que-3",
    ),
    (
        "a name that is not computable",
        broken(PHQ9, lambda q: q.update(name="phq 9")),
        "que-0",
    ),
    (
        "two linkIds alike",
        broken(PHQ9, lambda q: q["item"][2].update(linkId="interest")),
        "que-2",
    ),
    (
        "several enableWhen and no behaviour",
        broken(PHQ9, lambda q: q["item"][-2].pop("enableBehavior")),
        "que-12",
    ),
    (
        "a value and a reason for its absence",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "PHQ-9 total score"},
            "valueQuantity": {"value": 3},
            "dataAbsentReason": {"text": "asked too soon"},
        },
        "obs-6",
    ),
    (
        "a total in a collection",
        {"resourceType": "Bundle", "type": "collection", "total": 1},
        "bdl-1",
    ),
    (
        "a search result outside a searchset",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": RESPONSE, "search": {"mode": "match"}}],
        },
        "bdl-2",
    ),
]


@pytest.mark.parametrize(
    ("resource", "fault"), [row[1:] for row in BROKEN], ids=[row[0] for row in BROKEN]
)
def test_the_validators_reject_a_broken_resource(resource: dict[str, Any], fault: str) -> None:
    faults = fhir_faults(resource)
    assert any(fault in f for f in faults), faults


def test_the_unbroken_resources_of_the_table_are_valid() -> None:
    assert fhir_faults(RESPONSE) == []
    assert fhir_faults(PHQ9) == []
    assert response_fits_questionnaire(RESPONSE, PHQ9) == []


# what is wrong, the response, words the faults must contain
MISFITS = [
    (
        "an answer that is not an option",
        broken(RESPONSE, lambda r: r["item"][0]["answer"][0]["valueCoding"].update(code="LA1-1")),
        "not one of its answerOptions",
    ),
    (
        "an item the Questionnaire has not got",
        broken(RESPONSE, lambda r: r["item"][0].update(linkId="sadness")),
        "not an item",
    ),
    (
        "a LOINC code as the item's definition",
        broken(RESPONSE, lambda r: r["item"][0].update(definition="http://loinc.org|44250-9")),
        "ElementDefinition",
    ),
    (
        "the difficulty answered though nothing was above not at all",
        broken(
            RESPONSE,
            lambda r: r.update(
                item=[
                    answered("interest", INTEREST_OPTIONS[0]),
                    answered(
                        "difficulty",
                        items_of(PHQ9)["difficulty"]["answerOption"][0]["valueCoding"],
                    ),
                ]
            ),
        ),
        "not enabled",
    ),
    (
        "completed with questions unanswered",
        broken(RESPONSE, lambda r: r.update(status="completed")),
        "required mood has no answer",
    ),
    (
        "another questionnaire's canonical",
        broken(RESPONSE, lambda r: r.update(questionnaire=f"{BASE}/Questionnaire/gad7|1.0")),
        "is not",
    ),
]


@pytest.mark.parametrize(
    ("response", "fault"), [row[1:] for row in MISFITS], ids=[row[0] for row in MISFITS]
)
def test_a_response_that_does_not_fit_its_questionnaire_is_caught(response, fault) -> None:
    faults = response_fits_questionnaire(response, PHQ9)
    assert any(fault in f for f in faults), faults
