"""An invitation's answers as QuestionnaireResponses, and its totals as score Observations.

An invitation can hold more than one questionnaire: a positive PHQ-2 screen
that went straight on to the PHQ-9 is two stages, each with its own stored
result. Each stage is its own QuestionnaireResponse, so a completed screen
keeps its own record even when the full questionnaire after it was stopped:

- the stage the invitation ended on (or is on now) is
  ``QuestionnaireResponse/{invitation_id}``, as it always was;
- an earlier stage (the screen) is ``QuestionnaireResponse/{result_id}``.

Every scored stage has an ``Observation/{result_id}`` for its total, derived
from its response. Only answers given are exported: a missing answer is
absent, never a zero, and an unscored stage has no total and no Observation.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlmodel import Session, and_, col, or_, select

from bot.fhir.definitions import TOTAL_LINK_ID
from bot.fhir.terms import (
    NHS_NUMBER,
    OBSERVATION_CATEGORY,
    Urls,
    answer_coding,
    band_concept,
    change_component,
    percentage_concept,
    safety_item_component,
    score_concept,
    score_quantity,
    score_title,
)
from bot.flows import ConversationState, outcome
from bot.instruments import Catalogue, Instrument
from bot.instruments.change import Scored, classify
from bot.instruments.record_summary import Previous, record_text
from bot.services.enrolment import NotFound, looks_like_id
from bot.services.queries import iso
from bot.store.models import (
    Answer,
    Conversation,
    Invitation,
    Patient,
    Practice,
    ResultRecord,
)

FHIR_STATUS = {
    "completed": "completed",
    "in_progress": "in-progress",
    "incomplete": "stopped",
    "opted_out": "stopped",
    "expired": "stopped",
    "cancelled": "stopped",
}


class NoResponseYet(LookupError):
    """The invitation has not been sent, so the patient has given no response to export."""


class InstrumentChanged(RuntimeError):
    """Stored answers no longer fit the loaded questionnaire file (it was edited in place)."""


@dataclass(frozen=True)
class Stage:
    """One questionnaire within an invitation, as far as the patient got with it."""

    invitation: Invitation
    instrument: Instrument
    resource_id: str
    status: str
    """completed, incomplete or opted_out from the stored result; in_progress while under way."""
    answers: Mapping[str, int]
    authored: datetime | None
    result: ResultRecord | None

    @property
    def version(self) -> str:
        """The version of the questionnaire the patient answered."""
        return self.result.instrument_version if self.result else self.instrument.version


# -- reading stages ----------------------------------------------------------------------


def stages_of_invitation(
    session: Session, catalogue: Catalogue, invitation: Invitation
) -> list[Stage]:
    results = session.exec(
        select(ResultRecord).where(ResultRecord.invitation_id == invitation.id)
    ).all()
    active = session.exec(
        select(Conversation)
        .where(Conversation.invitation_id == invitation.id)
        .where(Conversation.active == True)  # noqa: E712
    ).first()
    return _stages(session, catalogue, invitation, list(results), active)


def stages_of_patient(session: Session, catalogue: Catalogue, patient: Patient) -> list[Stage]:
    """Every stage of every invitation sent to the patient, oldest first: three queries."""
    invitations = session.exec(
        select(Invitation)
        .where(Invitation.patient_id == patient.id)
        .where(Invitation.started_at != None)  # noqa: E711
        .order_by(col(Invitation.started_at), col(Invitation.id))
    ).all()
    results: dict[str, list[ResultRecord]] = defaultdict(list)
    for result in session.exec(
        select(ResultRecord).where(ResultRecord.patient_id == patient.id)
    ).all():
        results[result.invitation_id].append(result)
    active = {
        conversation.invitation_id: conversation
        for conversation in session.exec(
            select(Conversation)
            .where(Conversation.patient_id == patient.id)
            .where(Conversation.active == True)  # noqa: E712
        ).all()
    }
    return [
        stage
        for invitation in invitations
        for stage in _stages(
            session, catalogue, invitation, results[invitation.id], active.get(invitation.id)
        )
    ]


def _stages(
    session: Session,
    catalogue: Catalogue,
    invitation: Invitation,
    results: list[ResultRecord],
    active: Conversation | None,
) -> list[Stage]:
    if invitation.started_at is None:
        return []  # never sent: no response exists
    # The order the patient answered them in; at one instant, the screen comes first.
    results = sorted(
        results, key=lambda r: (r.finished_at, r.instrument != invitation.instrument, r.id)
    )
    stages = [
        Stage(
            invitation=invitation,
            instrument=_instrument(catalogue, r.instrument),
            resource_id=r.id,
            status=r.status,
            answers=json.loads(r.answers_json),
            authored=r.finished_at,
            result=r,
        )
        for r in results
    ]
    if active is not None:
        state = ConversationState.from_json(active.state_json)
        _instrument(catalogue, state.stage)
        so_far = outcome(state, catalogue, state.updated_at)
        stages.append(
            Stage(
                invitation=invitation,
                instrument=_instrument(catalogue, so_far.instrument),
                resource_id=invitation.id,
                status="in_progress",
                answers=so_far.answers,
                authored=invitation.started_at,
                result=None,
            )
        )
    elif not stages:
        # Finished without a stored result (kept for records older than results):
        # the last accepted answer to each item.
        instrument = _instrument(catalogue, invitation.instrument)
        rows = session.exec(
            select(Answer)
            .where(Answer.invitation_id == invitation.id)
            .where(Answer.superseded == False)  # noqa: E712
        ).all()
        stages.append(
            Stage(
                invitation=invitation,
                instrument=instrument,
                resource_id=invitation.id,
                status=invitation.status,
                answers={a.item: a.value for a in rows if a.item in instrument.item_ids},
                authored=invitation.finished_at or invitation.started_at,
                result=None,
            )
        )
    # The stage the invitation ended on (or is on) is read by the invitation's id.
    stages[-1] = replace(stages[-1], resource_id=invitation.id)
    return stages


def _instrument(catalogue: Catalogue, instrument_id: str) -> Instrument:
    try:
        return catalogue[instrument_id]
    except KeyError:
        raise InstrumentChanged(f"questionnaire {instrument_id!r} is no longer loaded") from None


# -- building resources ------------------------------------------------------------------


def subject(patient: Patient) -> dict[str, Any]:
    """The patient by id, and by NHS number where we have one (what a GP system matches on)."""
    reference: dict[str, Any] = {"reference": f"Patient/{patient.id}"}
    if patient.nhs_number:
        reference["identifier"] = {"system": NHS_NUMBER, "value": patient.nhs_number}
    return reference


def questionnaire_response(stage: Stage, patient: Patient, urls: Urls) -> dict[str, Any]:
    instrument = stage.instrument
    items: list[dict[str, Any]] = []
    for item in instrument.items:
        if item.id not in stage.answers:
            continue  # not answered: absent, never a zero
        value = stage.answers[item.id]
        option = next((o for o in instrument.options_for(item.id) if o.value == value), None)
        if option is None:
            raise InstrumentChanged(
                f"{instrument.id} item {item.id!r} has no option {value} any more"
            )
        coding = answer_coding(instrument, item, option, urls)
        items.append({"linkId": item.id, "text": item.text, "answer": [{"valueCoding": coding}]})
    total = stage.result.total if stage.result else None
    if total is not None:
        items.append(
            {
                "linkId": TOTAL_LINK_ID,
                "text": score_title(instrument),
                "answer": [{"valueInteger": total}],
            }
        )
    kind = "invitation" if stage.resource_id == stage.invitation.id else "result"
    document: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": stage.resource_id,
        "identifier": {"system": urls.identifier_system(kind), "value": stage.resource_id},
        "questionnaire": f"{urls.questionnaire(instrument)}|{stage.version}",
        "status": FHIR_STATUS.get(stage.status, "stopped"),
        "subject": subject(patient),
        "source": {"reference": f"Patient/{patient.id}"},  # the patient answered themselves
    }
    if stage.authored is not None:
        document["authored"] = iso(stage.authored)
    if items:
        document["item"] = items
    QuestionnaireResponse.model_validate(document)  # raises if we built it wrong
    return document


def observation(
    stage: Stage,
    patient: Patient,
    urls: Urls,
    *,
    previous: ResultRecord | None,
    zone: ZoneInfo,
) -> dict[str, Any] | None:
    """The stage's total as a score Observation, or None when it has no total.

    It carries what the "copy to record" block says (``record_summary``), in
    FHIR's own places: the SNOMED CT concept (``code``), value, date, band
    (``interpretation``), the risk question's answer and the change since
    ``previous`` (the patient's previous scored result on the same instrument)
    with its meaning (``component``, classified by ``bot.instruments.change``),
    and the block itself as the ``note`` a GP system files with it.
    """
    result = stage.result
    if result is None or result.total is None:
        return None
    instrument = stage.instrument
    document: dict[str, Any] = {
        "resourceType": "Observation",
        "id": result.id,
        "identifier": [{"system": urls.identifier_system("result"), "value": result.id}],
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ],
        "code": score_concept(instrument, urls),
        "subject": subject(patient),
        "effectiveDateTime": iso(result.finished_at),
        "issued": iso(result.finished_at),
        "performer": [{"reference": f"Patient/{patient.id}"}],
        "valueQuantity": score_quantity(result.total),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{stage.resource_id}"}],
    }
    if result.band is not None:
        band = next((b for b in instrument.bands if b.id == result.band), None)
        if band is None:
            raise InstrumentChanged(f"{instrument.id} has no band {result.band!r} any more")
        document["interpretation"] = [band_concept(instrument, band, urls)]
    answers = dict(stage.answers)
    change = (
        classify(
            instrument,
            Scored(previous.total, previous.prorated),
            Scored(result.total, result.prorated),
        )
        if previous is not None
        else None
    )
    notes = [
        record_text(
            instrument,
            on=_day(result.finished_at, zone),
            total=result.total,
            band=result.band,
            answers=answers,
            prorated=result.prorated,
            previous=Previous(previous.total, _day(previous.finished_at, zone))
            if previous is not None and previous.total is not None
            else None,
            change=change,
        )
    ]
    if result.prorated:
        notes.append("The total is prorated from the answered items (see scoring rules).")
    document["note"] = [{"text": text} for text in notes]
    components = []
    if result.percentage is not None:
        components.append(
            {
                "code": percentage_concept(instrument, urls),
                "valueQuantity": score_quantity(result.percentage, percentage=True),
            }
        )
    for item in instrument.items:
        if item.safety_critical:
            if item.id in answers and not any(
                o.value == answers[item.id] for o in instrument.options_for(item.id)
            ):
                raise InstrumentChanged(
                    f"{instrument.id} item {item.id!r} has no option {answers[item.id]} any more"
                )
            components.append(safety_item_component(instrument, item, answers, urls))
    components.append(
        change_component(
            instrument,
            result.total,
            previous.total if previous is not None else None,
            change,
            urls,
        )
    )
    document["component"] = components
    Observation.model_validate(document)
    return document


def _day(moment: datetime, zone: ZoneInfo) -> date:
    """The date in the practice's time zone, as the record summary on the page gives it."""
    return moment.astimezone(zone).date()


def previous_scored(session: Session, result: ResultRecord) -> ResultRecord | None:
    """The patient's scored result on the same instrument just before ``result``.

    "Before" is the order the patient's page uses (finished, then id), so the
    change here is the change there.
    """
    r = ResultRecord
    return session.exec(
        select(r)
        .where(r.patient_id == result.patient_id)
        .where(r.instrument == result.instrument)
        .where(col(r.total).is_not(None))
        .where(
            or_(
                col(r.finished_at) < result.finished_at,
                and_(col(r.finished_at) == result.finished_at, col(r.id) < result.id),
            )
        )
        .order_by(col(r.finished_at).desc(), col(r.id).desc())
        .limit(1)
    ).first()


def previous_of_each(stages: Iterable[Stage]) -> dict[str, ResultRecord | None]:
    """For each stage's result (by id), its previous scored result, as ``previous_scored``."""
    results = sorted(
        (s.result for s in stages if s.result is not None), key=lambda r: (r.finished_at, r.id)
    )
    last: dict[str, ResultRecord] = {}
    previous: dict[str, ResultRecord | None] = {}
    for result in results:
        previous[result.id] = last.get(result.instrument)
        if result.total is not None:
            last[result.instrument] = result
    return previous


# -- reads by id, scoped to the practice ----------------------------------------------------


def questionnaire_response_by_id(
    session: Session, catalogue: Catalogue, practice: Practice, resource_id: str, urls: Urls
) -> dict[str, Any]:
    """``QuestionnaireResponse/{invitation_id}`` or, for an earlier stage, ``/{result_id}``."""
    invitation = _own(session, Invitation, practice, resource_id)
    if invitation is not None:
        stages = stages_of_invitation(session, catalogue, invitation)
        if not stages:
            raise NoResponseYet(resource_id)
        stage = stages[-1]
    else:
        result = _own(session, ResultRecord, practice, resource_id)
        if result is None:
            raise NotFound(resource_id)
        stage = _stage_of(session, catalogue, result, lambda s: s.resource_id == resource_id)
    return questionnaire_response(stage, _patient(session, stage), urls)


def observation_by_id(
    session: Session, catalogue: Catalogue, practice: Practice, result_id: str, urls: Urls
) -> dict[str, Any]:
    result = _own(session, ResultRecord, practice, result_id)
    if result is None or result.total is None:
        raise NotFound(result_id)
    stage = _stage_of(
        session, catalogue, result, lambda s: s.result is not None and s.result.id == result_id
    )
    document = observation(
        stage,
        _patient(session, stage),
        urls,
        previous=previous_scored(session, result),
        zone=ZoneInfo(practice.timezone),
    )
    assert document is not None
    return document


def _stage_of(session: Session, catalogue: Catalogue, result: ResultRecord, wanted) -> Stage:
    invitation = session.get(Invitation, result.invitation_id)
    assert invitation is not None
    stage = next(
        (s for s in stages_of_invitation(session, catalogue, invitation) if wanted(s)), None
    )
    if stage is None:
        raise NotFound(result.id)  # the invitation's own stage is read by the invitation's id
    return stage


def _own(session: Session, model: type, practice: Practice, record_id: str) -> Any:
    record = session.get(model, record_id) if looks_like_id(record_id) else None
    return record if record is not None and record.practice_id == practice.id else None


def _patient(session: Session, stage: Stage) -> Patient:
    patient = session.get(Patient, stage.invitation.patient_id)
    assert patient is not None
    return patient


def resources_of(
    stages: list[Stage], patient: Patient, urls: Urls, zone: ZoneInfo
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The patient's QuestionnaireResponses and score Observations, in answering order."""
    responses, observations = [], []
    previous = previous_of_each(stages)
    for stage in stages:
        responses.append(questionnaire_response(stage, patient, urls))
        made = observation(
            stage,
            patient,
            urls,
            previous=previous.get(stage.result.id) if stage.result is not None else None,
            zone=zone,
        )
        if made is not None:
            observations.append(made)
    return responses, observations
