"""Questionnaire and CodeSystem resources, made from the instrument files alone.

The Questionnaire is what a QuestionnaireResponse's ``questionnaire`` canonical
resolves to: the items with their LOINC codes on ``item.code`` (never on a
response's ``item.definition``, which must point to an ElementDefinition), the
answer options as Codings carrying their values, the branching as
``enableWhen`` where FHIR can say it exactly, and the total as a read-only
item. Our own code systems are served the same way so that every code we emit
can be looked up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.questionnaire import Questionnaire

from bot.fhir.terms import (
    CHANGE,
    LOINC,
    SCORES,
    Urls,
    answer_coding,
    answers_code_system_id,
    bands_code_system_id,
    change_meanings,
    change_title,
    fhir_id,
    item_codes,
    loinc_answers,
    percentage_title,
    score_title,
)
from bot.instruments import rules
from bot.instruments.schema import Instrument, Item

STEM_LINK_ID = "stem"
TOTAL_LINK_ID = "total"


def questionnaire(instrument: Instrument, urls: Urls) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"linkId": STEM_LINK_ID, "text": instrument.stem, "type": "display"}
    ]
    items += [_item(instrument, item, urls) for item in instrument.items]
    total: dict[str, Any] = {
        "linkId": TOTAL_LINK_ID,
        "text": score_title(instrument),
        "type": "integer",
        "readOnly": True,
    }
    if instrument.codes.loinc_total:
        total["code"] = [{"system": LOINC, "code": instrument.codes.loinc_total}]
    items.append(total)
    document: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": fhir_id(instrument.id),
        "url": urls.questionnaire(instrument),
        "version": instrument.version,
        "name": _computable_name(instrument.short_title),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "description": f"Source: {instrument.source}",
        "copyright": instrument.licence,
        "item": items,
    }
    if instrument.codes.loinc_panel:
        document["code"] = [{"system": LOINC, "code": instrument.codes.loinc_panel}]
    Questionnaire.model_validate(document)  # raises if we built it wrong
    return document


def _item(instrument: Instrument, item: Item, urls: Urls) -> dict[str, Any]:
    entry: dict[str, Any] = {"linkId": item.id}
    if item.loinc:
        entry["code"] = item_codes(item)
    entry |= {"text": item.text, "type": "choice"}
    enable_when = _enable_when(instrument, item, urls) if item.ask_when is not None else None
    if enable_when:
        entry["enableWhen"] = enable_when
        if len(enable_when) > 1:
            entry["enableBehavior"] = "any"
    # Asked items must be answered; one asked only sometimes, on a rule FHIR cannot
    # state, cannot be required.
    entry["required"] = item.ask_when is None or enable_when is not None
    entry["answerOption"] = [
        {"valueCoding": answer_coding(instrument, item, option, urls)}
        for option in instrument.options_for(item.id)
    ]
    return entry


def _enable_when(instrument: Instrument, item: Item, urls: Urls) -> list[dict[str, Any]] | None:
    """The item's ``ask_when`` as enableWhen ("any" of answer = option), or None.

    Only rules that name answers can be said exactly this way: "any scored
    item above N" becomes "any earlier scored item answered with an option
    above N". A rule on something else is left out, never approximated.
    """
    wanted = _answers_enabling(instrument, item, item.ask_when)
    if wanted is None:
        return None
    return [
        {
            "question": question.id,
            "operator": "=",
            "answerCoding": answer_coding(instrument, question, option, urls, ordinal=False),
        }
        for question, option in wanted
    ]


def _answers_enabling(instrument: Instrument, item: Item, rule: Any) -> list | None:
    earlier = instrument.items[: instrument.item_ids.index(item.id)]
    match rule:
        case rules.AnyScoredItemAbove(any_scored_item_above=threshold):
            questions = [q for q in earlier if q.scored]
        case rules.ItemAbove(item_above=condition):
            questions = [q for q in earlier if q.id == condition.item]
            threshold = condition.value
        case rules.AnyOf(any=alternatives):
            parts = [_answers_enabling(instrument, item, alt) for alt in alternatives]
            if any(part is None for part in parts):
                return None
            return [pair for part in parts for pair in part or []]
        case _:
            return None
    return [
        (question, option)
        for question in questions
        for option in instrument.options_for(question.id)
        if option.value > threshold
    ]


def _computable_name(title: str) -> str:
    """A name as FHIR wants one (que-0: a capital, then letters, digits, underscores)."""
    name = re.sub(r"[^A-Za-z0-9_]", "", title)
    return name if re.match(r"[A-Z]", name) else f"Q{name}"


# -- our own code systems -----------------------------------------------------------------


def code_system(catalogue: Mapping[str, Instrument], code_system_id: str, urls: Urls):
    """The CodeSystem with this id, made from the instruments, or None if there is none."""
    for instrument in catalogue.values():
        if code_system_id == bands_code_system_id(instrument):
            concepts = [(b.id, b.label) for b in instrument.bands]
            title = f"{instrument.short_title} bands"
            return _code_system(code_system_id, title, concepts, urls, instrument.version)
        for name, option_set in instrument.option_sets.items():
            if code_system_id != answers_code_system_id(instrument, name):
                continue
            if not any(
                loinc_answers(instrument, item) is None
                for item in instrument.items
                if item.options == name
            ):
                return None  # every item using this set is answered in LOINC's codes
            concepts = [(str(o.value), o.label) for o in option_set.options]
            title = f"{instrument.short_title} answers: {name.replace('_', ' ')}"
            return _code_system(code_system_id, title, concepts, urls, instrument.version)
    if code_system_id == SCORES:
        concepts = []
        for instrument in catalogue.values():
            concepts.append((fhir_id(instrument.id), score_title(instrument)))
            if instrument.scoring.percentage_multiplier:
                concepts.append(
                    (f"{fhir_id(instrument.id)}.percentage", percentage_title(instrument))
                )
            concepts.append((f"{fhir_id(instrument.id)}.change", change_title(instrument)))
        return _code_system(SCORES, "Questionnaire scores", concepts, urls, None)
    if code_system_id == CHANGE:
        title = "What a change between two scores means"
        return _code_system(CHANGE, title, change_meanings(), urls, None)
    return None


def _code_system(
    code_system_id: str,
    title: str,
    concepts: list[tuple[str, str]],
    urls: Urls,
    version: str | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": code_system_id,
        "url": urls.code_system(code_system_id),
        "name": _computable_name(title.title()),
        "title": title,
        "status": "active",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": [{"code": code, "display": display} for code, display in concepts],
    }
    if version:
        document["version"] = version
    CodeSystem.model_validate(document)
    return document
