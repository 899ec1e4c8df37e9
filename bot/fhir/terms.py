"""Where every code in the FHIR export comes from: systems, canonical URLs and codings.

A code filed in a GP record is read by people and searched by machines for
years, so a wrong one is worse than none (hazard H23). Standard codes come only
from the instrument files, where each was checked against a source
(docs/fhir.md): LOINC on items, answers, panel and total; SNOMED CT on the
total. Everything else (answers LOINC has no code for, bands, our own score
key) is coded in a code system of ours under the service's own base URL,
which ``GET /api/v1/fhir/CodeSystem/{id}`` serves, so every system a GP system
meets resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.instruments.change import DIRECTION_LABELS, RECOVERY_LABELS, Change
from bot.instruments.schema import Band, Instrument, Item, LoincAnswer, Option
from bot.instruments.wording import option_words, question_number

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
FHIR_PATH = "/api/v1/fhir"
SCORES = "scores"
"""Our code system of score kinds, one code per instrument (its percentage, its change)."""
CHANGE = "reliable-change"
"""Our code system of what a change means: ``bot/instruments/change.py``'s own ids and labels."""


def fhir_id(name: str) -> str:
    """Our ids (lower case and underscores) as FHIR ids, which allow no underscore."""
    return name.replace("_", "-")


@dataclass(frozen=True)
class Urls:
    """The service's FHIR base (``PUBLIC_BASE_URL`` + /api/v1/fhir) and what lives under it."""

    base: str

    @classmethod
    def for_service(cls, public_base_url: str) -> Urls:
        return cls(public_base_url.rstrip("/") + FHIR_PATH)

    def resource(self, resource_type: str, resource_id: str) -> str:
        return f"{self.base}/{resource_type}/{resource_id}"

    def questionnaire(self, instrument: Instrument) -> str:
        return self.resource("Questionnaire", fhir_id(instrument.id))

    def code_system(self, code_system_id: str) -> str:
        return self.resource("CodeSystem", code_system_id)

    def identifier_system(self, kind: str) -> str:
        """The namespace of our ids of one kind (invitation, result), for Identifier.system."""
        return f"{self.base}/identifier/{kind}"


def answers_code_system_id(instrument: Instrument, option_set: str) -> str:
    return f"{fhir_id(instrument.id)}.answers.{fhir_id(option_set)}"


def bands_code_system_id(instrument: Instrument) -> str:
    return f"{fhir_id(instrument.id)}.bands"


def loinc_answers(instrument: Instrument, item: Item) -> dict[int, LoincAnswer] | None:
    """LOINC's answers to this item, or None: only an item with a LOINC code has them."""
    if item.loinc is None:
        return None
    return item.loinc_answers or instrument.option_sets[item.options].loinc_answers


def item_codes(item: Item) -> list[dict[str, Any]]:
    return [{"system": LOINC, "code": item.loinc}] if item.loinc else []


def answer_coding(
    instrument: Instrument, item: Item, option: Option, urls: Urls, *, ordinal: bool = True
) -> dict[str, Any]:
    """The option as a Coding: LOINC's answer where LOINC defines one for this item, else ours.

    The option's value goes with it as an ordinalValue, so the score can be
    recomputed from the response alone.
    """
    answers = loinc_answers(instrument, item)
    coding: dict[str, Any]
    if answers is not None:
        answer = answers[option.value]
        coding = {"system": LOINC, "code": answer.code, "display": answer.display}
    else:
        coding = {
            "system": urls.code_system(answers_code_system_id(instrument, item.options)),
            "code": str(option.value),
            "display": option.label,
        }
    if ordinal:
        coding["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": option.value}]
    return coding


def score_title(instrument: Instrument) -> str:
    return f"{instrument.short_title} total score"


def percentage_title(instrument: Instrument) -> str:
    return f"{instrument.short_title} percentage score"


def score_concept(instrument: Instrument, urls: Urls) -> dict[str, Any]:
    """What the total is: SNOMED CT first (what UK GP systems file), LOINC, then our own key."""
    codes = instrument.codes
    codings: list[dict[str, Any]] = []
    if codes.snomed_total:
        snomed: dict[str, Any] = {"system": SNOMED, "code": codes.snomed_total}
        if codes.snomed_total_display:
            snomed["display"] = codes.snomed_total_display
        codings.append(snomed)
    if codes.loinc_total:
        codings.append({"system": LOINC, "code": codes.loinc_total})
    codings.append(
        {
            "system": urls.code_system(SCORES),
            "code": fhir_id(instrument.id),
            "display": score_title(instrument),
        }
    )
    return {"coding": codings, "text": score_title(instrument)}


def change_title(instrument: Instrument) -> str:
    return f"{instrument.short_title} change since the previous score"


def change_meanings() -> list[tuple[str, str]]:
    """The CHANGE code system's concepts: one table, ``bot/instruments/change.py``'s."""
    return [*DIRECTION_LABELS.items(), *RECOVERY_LABELS.items()]


def percentage_concept(instrument: Instrument, urls: Urls) -> dict[str, Any]:
    code = f"{fhir_id(instrument.id)}.percentage"
    title = percentage_title(instrument)
    return {
        "coding": [{"system": urls.code_system(SCORES), "code": code, "display": title}],
        "text": title,
    }


def band_concept(instrument: Instrument, band: Band, urls: Urls) -> dict[str, Any]:
    """The band as a code of ours, with its label as text for a person reading the record."""
    system = urls.code_system(bands_code_system_id(instrument))
    return {
        "coding": [{"system": system, "code": band.id, "display": band.label}],
        "text": band.label,
    }


def score_quantity(value: int, *, percentage: bool = False) -> dict[str, Any]:
    """A score as UCUM's {score} (LOINC's example unit for these totals), or a percentage."""
    if percentage:
        return {"value": value, "unit": "%", "system": UCUM, "code": "%"}
    return {"value": value, "unit": "score", "system": UCUM, "code": "{score}"}


def _absent(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": DATA_ABSENT_REASON, "code": code}], "text": text}


def safety_item_component(
    instrument: Instrument, item: Item, answers: dict[str, int], urls: Urls
) -> dict[str, Any]:
    """The risk question's answer (PHQ-9 Q9), as the record summary gives it; missing if so."""
    label = f"Q{question_number(instrument, item.id)} ({item.text})"
    code: dict[str, Any] = {"text": label}
    if item.loinc:
        code["coding"] = item_codes(item)
    component: dict[str, Any] = {"code": code}
    if item.id not in answers:
        component["dataAbsentReason"] = _absent("unknown", "missing (not answered)")
        return component
    value = answers[item.id]
    option = next(o for o in instrument.options_for(item.id) if o.value == value)
    component["valueCodeableConcept"] = {
        "coding": [answer_coding(instrument, item, option, urls)],
        "text": f"{option_words(instrument, item.id, value)} ({value})",
    }
    return component


def change_component(
    instrument: Instrument,
    total: int,
    previous_total: int | None,
    change: Change | None,
    urls: Urls,
) -> dict[str, Any]:
    """The change since the previous score on the same instrument, and what it means.

    The value is the difference on the thresholds' scale (points, or percentage
    points for WHO-5); the interpretation is ``change.classify``'s direction and,
    where the instrument has caseness, recovery, in our CHANGE code system.
    """
    title = change_title(instrument)
    component: dict[str, Any] = {
        "code": {
            "coding": [
                {
                    "system": urls.code_system(SCORES),
                    "code": f"{fhir_id(instrument.id)}.change",
                    "display": title,
                }
            ],
            "text": title,
        }
    }
    if previous_total is None:
        component["dataAbsentReason"] = _absent("not-applicable", "First score (baseline)")
        return component
    if change is None:
        component["valueQuantity"] = score_quantity(total - previous_total)
        component["interpretation"] = [
            {
                "text": "No published threshold for a reliable change in the "
                f"{instrument.short_title}"
            }
        ]
        return component
    component["valueQuantity"] = score_quantity(
        change.difference, percentage=change.scale == "percentage"
    )
    meanings = [(change.direction, DIRECTION_LABELS[change.direction])]
    if change.recovery is not None:
        meanings.append((change.recovery, RECOVERY_LABELS[change.recovery]))
    system = urls.code_system(CHANGE)
    component["interpretation"] = [
        {"coding": [{"system": system, "code": code, "display": label}], "text": label}
        for code, label in meanings
    ]
    return component
