"""FHIR R4 under /api/v1/fhir: questionnaires, responses and scores for the GP record.

The same bearer token as the rest of /api/v1, scoped to its practice (another
practice's ids answer 404 exactly as ids that never existed), and the same JSON
errors. Resources are ``application/fhir+json``. Reads:

- ``Questionnaire/{id}``: the canonical a response's ``questionnaire`` names;
- ``CodeSystem/{id}``: our own code systems (answers without LOINC codes, bands);
- ``QuestionnaireResponse/{invitation_id}`` (or ``/{result_id}`` for a screen
  that went on to the full questionnaire) and ``Observation/{result_id}``.

Searches, by ``patient`` (an id, or ``Patient/{id}``), return searchset Bundles:
``Observation?patient=`` (``_include=Observation:derived-from`` adds the
responses) and ``QuestionnaireResponse?patient=``
(``_revinclude=Observation:derived-from`` adds the scores). Other search
parameters are refused with 422 rather than silently ignored.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, g, jsonify, request

from bot import fhir
from bot.errors import InputError
from bot.fhir import export as fhir_export
from bot.fhir.responses import InstrumentChanged
from bot.web import context
from bot.web.api import error
from bot.web.openapi import FhirResource, operation

bp = Blueprint("fhir_api", __name__, url_prefix="/api/v1/fhir")

FORMATS = {"json", "application/json", "application/fhir+json"}
DERIVED_FROM = "Observation:derived-from"


def init_app(app: Flask) -> None:
    """The FHIR reads' own errors; the rest are the API's (bot.web.api.init_app)."""

    @app.errorhandler(fhir.NoResponseYet)
    def _no_response_yet(_exc: fhir.NoResponseYet):
        return error(404, "no response yet: the invitation has not been sent to the patient")

    @app.errorhandler(InstrumentChanged)
    def _instrument_changed(exc: InstrumentChanged):
        return error(409, f"the stored answers no longer fit the loaded questionnaire: {exc}")


def _resource(document: dict) -> Response:
    response = jsonify(document)
    response.mimetype = "application/fhir+json"
    return response


@bp.get("/Questionnaire/<questionnaire_id>")
@operation(answers={200: FhirResource}, errors=(404,))
def get_questionnaire(questionnaire_id: str):
    """A questionnaire at its canonical URL, with LOINC codes on items and answers"""
    return _resource(fhir_export.questionnaire(context.runtime(), questionnaire_id))


@bp.get("/CodeSystem/<code_system_id>")
@operation(answers={200: FhirResource}, errors=(404,))
def get_code_system(code_system_id: str):
    """One of our own code systems (answers LOINC has no code for, bands, score keys)"""
    return _resource(fhir_export.code_system(context.runtime(), code_system_id))


@bp.get("/QuestionnaireResponse/<invitation_id>")
@operation(answers={200: FhirResource}, errors=(404, 409))
def get_questionnaire_response(invitation_id: str):
    """An invitation's answers (or, by its result id, a screen that went on to the full form)"""
    return _resource(
        fhir_export.questionnaire_response(context.runtime(), g.practice, invitation_id)
    )


@bp.get("/Observation/<observation_id>")
@operation(answers={200: FhirResource}, errors=(404, 409))
def get_observation(observation_id: str):
    """A score Observation (LOINC total, SNOMED CT score, band), by the result's id"""
    return _resource(fhir_export.observation(context.runtime(), g.practice, observation_id))


@bp.get("/Observation")
@operation(answers={200: FhirResource}, errors=(404, 409, 422))
def search_observations():
    """A patient's score Observations: ?patient={id} (&_include=Observation:derived-from)"""
    patient_id, include = _search("_include")
    rt = context.runtime()
    return _resource(
        fhir_export.patient_observations(
            rt,
            g.practice,
            patient_id,
            include_responses=include,
            self_url=_self_url(rt, "Observation", patient_id, "_include", include),
        )
    )


@bp.get("/QuestionnaireResponse")
@operation(answers={200: FhirResource}, errors=(404, 409, 422))
def search_questionnaire_responses():
    """A patient's responses: ?patient={id} (&_revinclude=Observation:derived-from)"""
    patient_id, include = _search("_revinclude")
    rt = context.runtime()
    return _resource(
        fhir_export.patient_responses(
            rt,
            g.practice,
            patient_id,
            include_observations=include,
            self_url=_self_url(rt, "QuestionnaireResponse", patient_id, "_revinclude", include),
        )
    )


def _search(include_parameter: str) -> tuple[str, bool]:
    """The patient searched for, and whether the other resources are to be included."""
    for name in request.args:
        if name not in ("patient", "_format", include_parameter):
            raise InputError(
                name,
                f"{name} is not a search parameter here; use patient"
                f" (and {include_parameter}={DERIVED_FROM})",
            )
    for value in request.args.getlist("_format"):
        if value not in FORMATS:
            raise InputError("_format", "_format must be json: resources are FHIR JSON")
    patients = request.args.getlist("patient")
    if len(patients) != 1 or not patients[0].strip():
        raise InputError("patient", "patient is required, once: the patient's id or Patient/{id}")
    patient_id = patients[0].strip().removeprefix("Patient/")
    includes = request.args.getlist(include_parameter)
    for value in includes:
        if value != DERIVED_FROM:
            raise InputError(include_parameter, f"{include_parameter} must be {DERIVED_FROM}")
    return patient_id, bool(includes)


def _self_url(rt, resource_type: str, patient_id: str, name: str, include: bool) -> str:
    parameters = [("patient", patient_id)] + ([(name, DERIVED_FROM)] if include else [])
    base = fhir_export.urls(rt).base
    return f"{base}/{resource_type}?{urlencode(parameters, safe=':/')}"
