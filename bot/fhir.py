"""FHIR R4 QuestionnaireResponse for an invitation, for the GP record.

Built as a plain dict, then validated by ``fhir.resources`` (R4B, whose
QuestionnaireResponse is the same as R4's) before it leaves, so a malformed
document is our error, not the receiving system's. Items carry the
instrument's LOINC codes; the total is an extra item coded with the LOINC
total and, where one exists, the SNOMED CT score concept.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlmodel import Session, col, select

from bot.flows import ConversationState, outcome
from bot.instruments import Catalogue
from bot.services.queries import iso
from bot.store.models import Answer, Conversation, Invitation, Patient, ResultRecord

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
QUESTIONNAIRE_BASE = "https://prombot.example/fhir/Questionnaire"

FHIR_STATUS = {
    "completed": "completed",
    "incomplete": "stopped",
    "opted_out": "stopped",
    "expired": "stopped",
    "cancelled": "stopped",
    "active": "in-progress",
    "pending": "in-progress",
}


def questionnaire_response(
    session: Session, catalogue: Catalogue, invitation: Invitation
) -> dict[str, Any]:
    patient = session.get(Patient, invitation.patient_id)
    assert patient is not None
    conversation = session.exec(
        select(Conversation).where(Conversation.invitation_id == invitation.id)
    ).first()
    result: ResultRecord | None = None
    answers: dict[str, int]
    if conversation is not None and conversation.active:
        # Under way: the stage the patient is on, with the answers so far. After a
        # positive screen (PHQ-2 going on to PHQ-9) that is the full instrument, not
        # the screen whose result is already stored.
        state = ConversationState.from_json(conversation.state_json)
        so_far = outcome(state, catalogue, state.updated_at)
        instrument = catalogue[so_far.instrument]
        answers = dict(so_far.answers)
    else:
        results = session.exec(
            select(ResultRecord)
            .where(ResultRecord.invitation_id == invitation.id)
            .order_by(col(ResultRecord.finished_at))
        ).all()
        result = results[-1] if results else None
        instrument = catalogue[result.instrument if result else invitation.instrument]
        if result is not None:
            answers = json.loads(result.answers_json)
        else:
            rows = session.exec(
                select(Answer)
                .where(Answer.invitation_id == invitation.id)
                .where(Answer.superseded == False)  # noqa: E712
            ).all()
            answers = {a.item: a.value for a in rows if a.item in instrument.item_ids}

    items: list[dict[str, Any]] = []
    for item in instrument.items:
        if item.id not in answers:
            continue
        option = next(o for o in instrument.options_for(item.id) if o.value == answers[item.id])
        entry: dict[str, Any] = {
            "linkId": item.id,
            "text": item.text,
            "answer": [
                {
                    "valueCoding": {
                        "system": f"{QUESTIONNAIRE_BASE}/{instrument.id}/options",
                        "code": str(option.value),
                        "display": option.label,
                    }
                }
            ],
        }
        if item.loinc:
            entry["definition"] = f"{LOINC}|{item.loinc}"
        items.append(entry)
    if result is not None and result.total is not None:
        total: dict[str, Any] = {
            "linkId": "total",
            "text": f"{instrument.short_title} total score"
            + (f" (band: {result.band})" if result.band else ""),
            "answer": [{"valueInteger": result.total}],
        }
        if instrument.codes.loinc_total:
            total["definition"] = f"{LOINC}|{instrument.codes.loinc_total}"
        items.append(total)

    subject: dict[str, Any] = {"reference": f"Patient/{patient.id}"}
    if patient.nhs_number:
        subject["identifier"] = {"system": NHS_NUMBER, "value": patient.nhs_number}
    document: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": invitation.id,
        "identifier": {"system": "https://prombot.example/invitation", "value": invitation.id},
        "questionnaire": f"{QUESTIONNAIRE_BASE}/{instrument.id}|{instrument.version}",
        "status": FHIR_STATUS.get(result.status if result else invitation.status, "in-progress"),
        "subject": subject,
        "item": items,
        "extension": [_codes_extension(instrument, result)],
    }
    authored = result.finished_at if result else invitation.started_at
    if authored is not None:
        document["authored"] = iso(authored)
    if not items:
        del document["item"]
    QuestionnaireResponse.model_validate(document)  # raises if we built it wrong
    return document


def _codes_extension(instrument: Any, result: ResultRecord | None) -> dict[str, Any]:
    """The instrument's panel and total codes, and the score, for systems that read codes."""
    codings = []
    if instrument.codes.loinc_panel:
        codings.append({"system": LOINC, "code": instrument.codes.loinc_panel})
    if instrument.codes.loinc_total:
        codings.append({"system": LOINC, "code": instrument.codes.loinc_total})
    if instrument.codes.snomed_total:
        coding = {"system": SNOMED, "code": instrument.codes.snomed_total}
        if instrument.codes.snomed_total_display:
            coding["display"] = instrument.codes.snomed_total_display
        codings.append(coding)
    concept: dict[str, Any] = {"text": instrument.title}
    if codings:  # FHIR JSON allows no empty arrays: GAD-2 and WHO-5 have no codes
        concept["coding"] = codings
    extension: dict[str, Any] = {
        "url": "https://prombot.example/fhir/StructureDefinition/score",
        "extension": [{"url": "code", "valueCodeableConcept": concept}],
    }
    if result is not None and result.total is not None:
        extension["extension"].append({"url": "total", "valueInteger": result.total})
    return extension
