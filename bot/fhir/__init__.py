"""FHIR R4 for the GP record: questionnaires, responses and scores, as a GP system files them.

- ``terms``: where every code comes from (LOINC and SNOMED CT only from the
  instrument files, where each was checked against a source; the rest in code
  systems of our own under the service's base URL).
- ``definitions``: Questionnaire and CodeSystem resources made from the
  instrument files, served at their canonical URLs.
- ``responses``: an invitation's stages (a screen, and the instrument it went
  on to) as QuestionnaireResponses and score Observations.
- ``search``: a patient's responses and scores as searchset Bundles.

Every resource is validated with ``fhir.resources`` (R4B, whose resources used
here are R4's) before it leaves, so a malformed document is our error, not
the receiving system's. See docs/fhir.md.
"""

from bot.fhir.definitions import code_system, questionnaire
from bot.fhir.responses import (
    NoResponseYet,
    observation_by_id,
    questionnaire_response_by_id,
)
from bot.fhir.search import patient_observations, patient_responses
from bot.fhir.terms import Urls

__all__ = [
    "NoResponseYet",
    "Urls",
    "code_system",
    "observation_by_id",
    "patient_observations",
    "patient_responses",
    "questionnaire",
    "questionnaire_response_by_id",
]
