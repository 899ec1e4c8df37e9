"""A patient's responses and scores as FHIR searchset Bundles.

- ``GET /fhir/Observation?patient={id}``: the patient's score Observations
  (``search.mode`` match); with ``_include=Observation:derived-from`` also the
  QuestionnaireResponses they were derived from (mode include).
- ``GET /fhir/QuestionnaireResponse?patient={id}``: every response the patient
  has given, finished, stopped or under way; with
  ``_revinclude=Observation:derived-from`` also the score Observations derived
  from them. This is the per-patient Bundle of both: unscored (stopped)
  responses are in it too, which no Observation search can return.

All of a patient's matches come in one page (a patient has few), oldest first.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B.bundle import Bundle
from sqlmodel import Session

from bot.fhir.responses import resources_of, stages_of_patient
from bot.fhir.terms import Urls
from bot.instruments import Catalogue
from bot.services.enrolment import NotFound, get_patient
from bot.store.models import Patient, Practice


def patient_observations(
    session: Session,
    catalogue: Catalogue,
    practice: Practice,
    patient_id: str,
    urls: Urls,
    *,
    include_responses: bool,
    self_url: str,
) -> dict[str, Any]:
    patient = _patient(session, practice, patient_id)
    responses, observations = resources_of(
        stages_of_patient(session, catalogue, patient), patient, urls, ZoneInfo(practice.timezone)
    )
    derived_from = {o["derivedFrom"][0]["reference"] for o in observations}
    included = (
        [r for r in responses if f"QuestionnaireResponse/{r['id']}" in derived_from]
        if include_responses
        else []
    )
    return searchset(observations, included, urls, self_url)


def patient_responses(
    session: Session,
    catalogue: Catalogue,
    practice: Practice,
    patient_id: str,
    urls: Urls,
    *,
    include_observations: bool,
    self_url: str,
) -> dict[str, Any]:
    patient = _patient(session, practice, patient_id)
    responses, observations = resources_of(
        stages_of_patient(session, catalogue, patient), patient, urls, ZoneInfo(practice.timezone)
    )
    return searchset(responses, observations if include_observations else [], urls, self_url)


def searchset(
    matches: list[dict[str, Any]], included: list[dict[str, Any]], urls: Urls, self_url: str
) -> dict[str, Any]:
    entries = [_entry(resource, "match", urls) for resource in matches]
    entries += [_entry(resource, "include", urls) for resource in included]
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),  # matches only: included resources are not counted
        "link": [{"relation": "self", "url": self_url}],
    }
    if entries:  # FHIR JSON has no empty arrays
        document["entry"] = entries
    Bundle.model_validate(document)
    return document


def _entry(resource: dict[str, Any], mode: str, urls: Urls) -> dict[str, Any]:
    return {
        "fullUrl": urls.resource(resource["resourceType"], resource["id"]),
        "resource": resource,
        "search": {"mode": mode},
    }


def _patient(session: Session, practice: Practice, patient_id: str) -> Patient:
    try:
        return get_patient(session, practice, patient_id)
    except NotFound:
        raise NotFound(patient_id, field="patient") from None
