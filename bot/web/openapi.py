"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


UNAUTHORISED = {
    "401": {
        **_json(_ref("Error"), "No valid bearer token"),
        "headers": {
            "WWW-Authenticate": {
                "description": "How to authenticate: `Bearer`",
                "schema": {"type": "string"},
            }
        },
    }
}
ERRORS = {
    **UNAUTHORISED,
    "404": _json(_ref("Error"), "No such record in this practice"),
}
UNPROCESSABLE = {"422": _json(_ref("Error"), "Bad input; `field` names what to fix")}
ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
WHEN = {"type": ["string", "null"], "format": "date-time"}
MAYBE_ID = {"type": ["string", "null"], "pattern": "^[0-9a-f]{32}$"}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "prombot API",
        "version": "1",
        "description": "Enrol patients, schedule questionnaires, read results and alerts. "
        "Every call needs `Authorization: Bearer <practice API token>` and sees only "
        "that practice's records.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}, "The OpenAPI 3.1 description of the API")
                },
            }
        },
        "/api/v1/patients": {
            "post": {
                "summary": "Register a patient",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PatientCreate")}},
                },
                "responses": {
                    "201": _json(_ref("Patient"), "Created"),
                    **ERRORS,
                    **UNPROCESSABLE,
                },
            }
        },
        "/api/v1/patients/{patient_id}": {
            "get": {
                "summary": "A patient",
                "parameters": [_path_id("patient_id")],
                "responses": {"200": _json(_ref("Patient"), "The patient"), **ERRORS},
            }
        },
        "/api/v1/consultations": {
            "post": {
                "summary": "Register a consultation and schedule its questionnaires",
                "description": "Due times keep the practice's local wall-clock time: a "
                "consultation at 10:00 with `after: P2W` is due at 10:00 local two weeks "
                "later, across a change to or from summer time.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ConsultationCreate")}},
                },
                "responses": {
                    "201": _json(_ref("Consultation"), "Created with its invitations"),
                    **UNAUTHORISED,
                    "404": _json(_ref("Error"), "patient_id is not a patient of this practice"),
                    **UNPROCESSABLE,
                },
            }
        },
        "/api/v1/patients/{patient_id}/invitations": {
            "get": {
                "summary": "A patient's invitations",
                "parameters": [_path_id("patient_id")],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Invitation")}, "Invitations"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/patients/{patient_id}/results": {
            "get": {
                "summary": "A patient's scored results, oldest first",
                "parameters": [_path_id("patient_id")],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Result")}, "Results"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/alerts": {
            "get": {
                "summary": "The practice's alerts, newest first",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["open", "acknowledged"]},
                    }
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Alert")}, "Alerts"),
                    **ERRORS,
                    **UNPROCESSABLE,
                },
            }
        },
        "/api/v1/alerts/{alert_id}/acknowledge": {
            "post": {
                "summary": "Acknowledge an alert (repeating it changes nothing)",
                "parameters": [_path_id("alert_id")],
                "responses": {"200": _json(_ref("Alert"), "The alert"), **ERRORS},
            }
        },
        "/api/v1/messages": {
            "get": {
                "summary": "The message log, oldest first (the latest 500)",
                "parameters": [{"name": "patient_id", "in": "query", "schema": ID}],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Message")}, "Messages"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/fhir/QuestionnaireResponse/{invitation_id}": {
            "get": {
                "summary": "An invitation's answers as a FHIR R4 QuestionnaireResponse",
                "parameters": [_path_id("invitation_id")],
                "responses": {
                    "200": {
                        "description": "QuestionnaireResponse",
                        "content": {"application/fhir+json": {"schema": {"type": "object"}}},
                    },
                    **ERRORS,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
            },
            "PatientCreate": {
                "type": "object",
                "required": ["name", "phone"],
                "properties": {
                    "name": {"type": "string", "maxLength": 120},
                    "phone": {
                        "type": "string",
                        "maxLength": 30,
                        "description": "a UK mobile number in any common form, e.g. "
                        "07700 900123; stored in E.164. Landlines are refused.",
                    },
                    "nhs_number": {
                        "type": "string",
                        "pattern": "^[0-9 -]{10,14}$",
                        "description": "10 digits with a valid check digit; spaces allowed",
                    },
                    "date_of_birth": {"type": "string", "format": "date"},
                    "language": {"type": "string", "enum": ["en"]},
                },
            },
            "Patient": {
                "type": "object",
                "required": ["id", "name", "phone"],
                "properties": {
                    "id": ID,
                    "name": {"type": "string"},
                    "phone": {"type": "string", "description": "E.164"},
                    "nhs_number": {"type": ["string", "null"]},
                    "date_of_birth": {"type": ["string", "null"], "format": "date"},
                    "language": {"type": "string"},
                    "opted_out": {"type": "boolean"},
                    "created_at": WHEN,
                },
            },
            "ConsultationCreate": {
                "type": "object",
                "required": ["patient_id", "occurred_at"],
                "properties": {
                    "patient_id": ID,
                    "occurred_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "without a zone, the practice's local time",
                    },
                    "protocol": {
                        "type": "string",
                        "examples": [
                            "depression_review",
                            "anxiety_review",
                            "alcohol_brief_intervention",
                            "wellbeing",
                        ],
                    },
                    "schedule": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["instrument", "after"],
                            "properties": {
                                "instrument": {
                                    "type": "string",
                                    "enum": ["phq9", "phq2", "gad7", "gad2", "auditc", "who5"],
                                },
                                "after": {
                                    "type": "string",
                                    "description": "ISO-8601 duration from occurred_at; "
                                    "P0D is as soon as possible",
                                    "examples": ["P14D", "P2W", "P1M", "P0D"],
                                },
                            },
                        },
                    },
                    "continue_if_positive": {"type": "boolean"},
                },
                "description": "Give protocol or schedule, not both.",
            },
            "Invitation": {
                "type": "object",
                "required": ["id", "instrument", "due_at", "status"],
                "properties": {
                    "id": ID,
                    "patient_id": ID,
                    "consultation_id": MAYBE_ID,
                    "instrument": {"type": "string"},
                    "due_at": WHEN,
                    "status": {
                        "type": "string",
                        "enum": [
                            "pending",
                            "active",
                            "completed",
                            "incomplete",
                            "opted_out",
                            "expired",
                            "cancelled",
                        ],
                    },
                    "started_at": WHEN,
                    "finished_at": WHEN,
                },
            },
            "Consultation": {
                "type": "object",
                "required": ["id", "invitations"],
                "properties": {
                    "id": ID,
                    "patient_id": ID,
                    "occurred_at": WHEN,
                    "protocol": {"type": ["string", "null"]},
                    "invitations": {"type": "array", "items": _ref("Invitation")},
                },
            },
            "Result": {
                "type": "object",
                "required": [
                    "invitation_id",
                    "instrument",
                    "status",
                    "completed_at",
                    "total",
                    "band",
                    "answers",
                    "flags",
                ],
                "properties": {
                    "invitation_id": ID,
                    "instrument": {"type": "string"},
                    "instrument_version": {"type": "string"},
                    "status": {"type": "string", "enum": ["completed", "incomplete", "opted_out"]},
                    "completed_at": {**WHEN, "description": "null unless completed"},
                    "finished_at": WHEN,
                    "total": {"type": ["integer", "null"]},
                    "band": {"type": ["string", "null"]},
                    "percentage": {"type": ["integer", "null"]},
                    "prorated": {"type": "boolean"},
                    "answers": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "flags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Alert": {
                "type": "object",
                "required": ["id", "patient_id", "flag", "severity", "status"],
                "properties": {
                    "id": ID,
                    "patient_id": ID,
                    "invitation_id": MAYBE_ID,
                    "flag": {"type": "string", "examples": ["self_harm_risk", "severe_score"]},
                    "severity": {"type": "string", "enum": ["urgent", "routine", "information"]},
                    "reason": {"type": "string"},
                    "status": {"type": "string", "enum": ["open", "acknowledged"]},
                    "created_at": WHEN,
                    "acknowledged_at": WHEN,
                    "acknowledged_by": {"type": ["string", "null"]},
                },
            },
            "Message": {
                "type": "object",
                "required": ["direction", "body", "status", "created_at"],
                "properties": {
                    "id": ID,
                    "patient_id": MAYBE_ID,
                    "direction": {"type": "string", "enum": ["inbound", "outbound"]},
                    "body": {"type": "string"},
                    "status": {"type": "string"},
                    "error_code": {"type": ["integer", "null"]},
                    "created_at": WHEN,
                },
            },
        },
    },
}
