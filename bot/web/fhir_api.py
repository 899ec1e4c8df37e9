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

from flask import Blueprint, Response, g, jsonify, request

from bot import fhir
from bot.fhir.responses import InstrumentChanged
from bot.fhir.terms import fhir_id
from bot.services.enrolment import InputError, NotFound
from bot.store.db import transaction
from bot.web import context
from bot.web.api import authenticated

bp = Blueprint("fhir_api", __name__, url_prefix="/api/v1/fhir")

FORMATS = {"json", "application/json", "application/fhir+json"}
DERIVED_FROM = "Observation:derived-from"


def _error(status: int, message: str, field: str | None = None) -> tuple[Response, int]:
    body = {"error": message} | ({"field": field} if field else {})
    return jsonify(body), status


@bp.errorhandler(InputError)
def _input_error(exc: InputError):
    return _error(422, exc.message, exc.field)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    if exc.field:
        return _error(404, f"{exc.field} is not a record of this practice", exc.field)
    return _error(404, "not found")


@bp.errorhandler(fhir.NoResponseYet)
def _no_response_yet(exc: fhir.NoResponseYet):
    return _error(404, "no response yet: the invitation has not been sent to the patient")


@bp.errorhandler(InstrumentChanged)
def _instrument_changed(exc: InstrumentChanged):
    return _error(409, f"the stored answers no longer fit the loaded questionnaire: {exc}")


def _resource(document: dict) -> Response:
    response = jsonify(document)
    response.mimetype = "application/fhir+json"
    return response


def _urls() -> fhir.Urls:
    return fhir.Urls.for_service(context.runtime().public_base_url)


@bp.get("/Questionnaire/<questionnaire_id>")
@authenticated
def get_questionnaire(questionnaire_id: str):
    catalogue = context.runtime().catalogue
    by_fhir_id = {fhir_id(instrument.id): instrument for instrument in catalogue.values()}
    instrument = by_fhir_id.get(questionnaire_id)
    if instrument is None:
        raise NotFound(questionnaire_id)
    return _resource(fhir.questionnaire(instrument, _urls()))


@bp.get("/CodeSystem/<code_system_id>")
@authenticated
def get_code_system(code_system_id: str):
    document = fhir.code_system(context.runtime().catalogue, code_system_id, _urls())
    if document is None:
        raise NotFound(code_system_id)
    return _resource(document)


@bp.get("/QuestionnaireResponse/<invitation_id>")
@authenticated
def get_questionnaire_response(invitation_id: str):
    """By the invitation's id, or, for a screen that went on, by the screen's result id."""
    with transaction(context.runtime().engine, read_only=True) as session:
        document = fhir.questionnaire_response_by_id(
            session, context.runtime().catalogue, g.practice, invitation_id, _urls()
        )
    return _resource(document)


@bp.get("/Observation/<observation_id>")
@authenticated
def get_observation(observation_id: str):
    with transaction(context.runtime().engine, read_only=True) as session:
        document = fhir.observation_by_id(
            session, context.runtime().catalogue, g.practice, observation_id, _urls()
        )
    return _resource(document)


@bp.get("/Observation")
@authenticated
def search_observations():
    patient_id, include = _search("_include")
    urls = _urls()
    with transaction(context.runtime().engine, read_only=True) as session:
        document = fhir.patient_observations(
            session,
            context.runtime().catalogue,
            g.practice,
            patient_id,
            urls,
            include_responses=include,
            self_url=_self_url(urls, "Observation", patient_id, "_include", include),
        )
    return _resource(document)


@bp.get("/QuestionnaireResponse")
@authenticated
def search_questionnaire_responses():
    patient_id, include = _search("_revinclude")
    urls = _urls()
    with transaction(context.runtime().engine, read_only=True) as session:
        document = fhir.patient_responses(
            session,
            context.runtime().catalogue,
            g.practice,
            patient_id,
            urls,
            include_observations=include,
            self_url=_self_url(urls, "QuestionnaireResponse", patient_id, "_revinclude", include),
        )
    return _resource(document)


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


def _self_url(
    urls: fhir.Urls, resource_type: str, patient_id: str, name: str, include: bool
) -> str:
    parameters = [("patient", patient_id)] + ([(name, DERIVED_FROM)] if include else [])
    return f"{urls.base}/{resource_type}?{urlencode(parameters, safe=':/')}"
