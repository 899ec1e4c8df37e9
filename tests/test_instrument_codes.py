"""Codes in a questionnaire file are checked when it loads (hazard H23).

A typo in a LOINC code, an answer code for a value the question does not
have, or a LOINC answer on a question LOINC does not ask would put wrong
codes in GP records; each stops the file at start-up, naming it. A
practice's own questionnaire gets FHIR coding with no code of its own.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.fhir import Urls, questionnaire
from bot.instruments import InstrumentFileError, load_file
from bot.instruments.schema import loinc_check_digit
from tests.fhir_checks import assert_valid_fhir
from tests.test_instrument_files import VALID, _write

LL358_3 = {
    0: {"code": "LA6568-5", "display": "Not at all"},
    1: {"code": "LA6569-3", "display": "Several days"},
    2: {"code": "LA6570-1", "display": "More than half the days"},
    3: {"code": "LA6571-9", "display": "Nearly every day"},
}

# code, check digit right
CHECK_DIGITS = [
    ("44249-1", True),
    ("44261-6", True),
    ("69737-5", True),
    ("68518-0", True),
    ("55758-7", True),
    ("44261-7", False),
    ("44216-6", False),  # two digits swapped
    ("68581-0", False),
]


@pytest.mark.parametrize(("code", "right"), CHECK_DIGITS)
def test_loinc_check_digits(code: str, right: bool) -> None:
    digits, check = code.split("-")
    assert (loinc_check_digit(digits) == int(check)) is right


def coded(**changes: Any) -> dict[str, Any]:
    """The valid practice file, its items coded with LOINC (codes real, meaning made up)."""
    data = copy.deepcopy(VALID)
    data["items"][0]["loinc"] = "44255-8"
    data["items"][1]["loinc"] = "44254-1"
    data["option_sets"]["freq"]["loinc_answers"] = copy.deepcopy(LL358_3)
    for path, value in changes.items():
        target: Any = data
        *parents, last = path.split(".")
        for key in parents:
            target = target[_key(target, key)]
        if value is None:
            target.pop(_key(target, last))
        else:
            target[_key(target, last)] = value
    return data


def _key(target: Any, key: str) -> Any:
    """List positions, and the option values that key LOINC answers, are numbers."""
    numeric = isinstance(target, list) or any(isinstance(k, int) for k in target)
    return int(key) if numeric and key.isdigit() else key


# what is wrong, the file, words the fault must contain
BAD_CODES = [
    ("a LOINC code with a typo", coded(**{"items.0.loinc": "44255-9"}), "check digit"),
    ("a LOINC code of another shape", coded(**{"items.0.loinc": "LA6568-5"}), "not a LOINC"),
    ("a panel code with a typo", coded(codes={"loinc_panel": "44249-2"}), "check digit"),
    ("a SNOMED code with letters", coded(codes={"snomed_total": "72O433000"}), "snomed_total"),
    (
        "an answer code that is not an LA code",
        coded(**{"option_sets.freq.loinc_answers.0.code": "44250-9"}),
        "loinc_answers",
    ),
    (
        "LOINC answers missing a value",
        coded(**{"option_sets.freq.loinc_answers.3": None}),
        "has LOINC answers for other values",
    ),
    (
        "LOINC answers for a value the set lacks",
        coded(**{"option_sets.freq.loinc_answers.7": {"code": "LA6568-5", "display": "x"}}),
        "has LOINC answers for other values",
    ),
    (
        "LOINC answers on a set no LOINC-coded item uses",
        coded(**{"items.0.loinc": None, "items.1.loinc": None}),
        "no LOINC-coded item",
    ),
    (
        "an item's own LOINC answers without its LOINC code",
        coded(**{"items.2.loinc_answers": copy.deepcopy(LL358_3)}),
        "item 'impact' has LOINC answers but no LOINC code",
    ),
    (
        "an item id the FHIR export uses for the total",
        coded(**{"items.2.id": "total", "items.2.ask_when": None}),
        "reserved",
    ),
]


@pytest.mark.parametrize(
    ("data", "fault"), [row[1:] for row in BAD_CODES], ids=[row[0] for row in BAD_CODES]
)
def test_a_file_with_wrong_codes_is_refused_naming_the_fault(tmp_path, data, fault) -> None:
    path = _write(tmp_path, data, name="practice_form")
    with pytest.raises(InstrumentFileError) as caught:
        load_file(path)
    assert caught.value.path == str(path)
    assert fault in caught.value.fault


def test_the_coded_base_of_the_table_loads(tmp_path) -> None:
    instrument = load_file(_write(tmp_path, coded()))
    assert instrument.item("low").loinc == "44255-8"


def test_a_practice_questionnaire_is_coded_in_its_own_code_systems(tmp_path) -> None:
    instrument = load_file(_write(tmp_path, VALID))
    document = questionnaire(instrument, Urls.for_service("https://gp.example"))
    assert_valid_fhir(document)
    assert document["id"] == "mood-check"  # FHIR ids have no underscores
    assert document["url"] == "https://gp.example/api/v1/fhir/Questionnaire/mood-check"
    assert "code" not in document
    low, _tired, impact = document["item"][1:4]
    assert "code" not in low
    assert low["answerOption"][2]["valueCoding"] == {
        "system": "https://gp.example/api/v1/fhir/CodeSystem/mood-check.answers.freq",
        "code": "2",
        "display": "Often",
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 2}
        ],
    }
    # asked only when "low" is above 0: enabled by any of its answers above 0
    assert impact["required"] is True
    assert [(w["question"], w["answerCoding"]["code"]) for w in impact["enableWhen"]] == [
        ("low", "1"),
        ("low", "2"),
        ("low", "3"),
    ]


def test_a_rule_fhir_cannot_state_exactly_is_left_out_and_the_item_is_not_required(tmp_path):
    data = copy.deepcopy(VALID)
    data["items"][2]["ask_when"] = {"any_scored_item_at_most": 1}
    instrument = load_file(_write(tmp_path, data))
    impact = questionnaire(instrument, Urls.for_service("https://gp.example"))["item"][3]
    assert impact["linkId"] == "impact"
    assert "enableWhen" not in impact
    assert impact["required"] is False
