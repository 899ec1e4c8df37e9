"""The FHIR export's use cases: each read is its own transaction, for the web layer to call.

The resources are built by the rest of ``bot.fhir`` from rows; this module owns
the unit of work (as ``bot.services`` modules do for the rest of the API), so
the FHIR views only translate the result. It lives here rather than in
``bot.services`` because ``bot.fhir`` reads through ``bot.services``.
"""

from __future__ import annotations

from typing import Any

from bot import fhir
from bot.errors import NotFound
from bot.fhir.terms import fhir_id
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Practice

Resource = dict[str, Any]


def urls(rt: Runtime) -> fhir.Urls:
    return fhir.Urls.for_service(rt.public_base_url)


def questionnaire(rt: Runtime, questionnaire_id: str) -> Resource:
    by_fhir_id = {fhir_id(instrument.id): instrument for instrument in rt.catalogue.values()}
    instrument = by_fhir_id.get(questionnaire_id)
    if instrument is None:
        raise NotFound(questionnaire_id)
    return fhir.questionnaire(instrument, urls(rt))


def code_system(rt: Runtime, code_system_id: str) -> Resource:
    document = fhir.code_system(rt.catalogue, code_system_id, urls(rt))
    if document is None:
        raise NotFound(code_system_id)
    return document


def questionnaire_response(rt: Runtime, practice: Practice, record_id: str) -> Resource:
    """By the invitation's id, or, for a screen that went on, by the screen's result id."""
    with transaction(rt.engine, read_only=True) as session:
        return fhir.questionnaire_response_by_id(
            session, rt.catalogue, practice, record_id, urls(rt)
        )


def observation(rt: Runtime, practice: Practice, result_id: str) -> Resource:
    with transaction(rt.engine, read_only=True) as session:
        return fhir.observation_by_id(session, rt.catalogue, practice, result_id, urls(rt))


def patient_observations(
    rt: Runtime, practice: Practice, patient_id: str, *, include_responses: bool, self_url: str
) -> Resource:
    with transaction(rt.engine, read_only=True) as session:
        return fhir.patient_observations(
            session,
            rt.catalogue,
            practice,
            patient_id,
            urls(rt),
            include_responses=include_responses,
            self_url=self_url,
        )


def patient_responses(
    rt: Runtime, practice: Practice, patient_id: str, *, include_observations: bool, self_url: str
) -> Resource:
    with transaction(rt.engine, read_only=True) as session:
        return fhir.patient_responses(
            session,
            rt.catalogue,
            practice,
            patient_id,
            urls(rt),
            include_observations=include_observations,
            self_url=self_url,
        )
