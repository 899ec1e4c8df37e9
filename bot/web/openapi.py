"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "401": _json(_ref("Error"), "No valid bearer token"),
    "404": _json(_ref("Error"), "No such record in this practice"),
}
UNPROCESSABLE = {"422": _json(_ref("Error"), "Bad input; `field` names what to fix")}
ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
WHEN = {"type": ["string", "null"], "format": "date-time"}


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
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ConsultationCreate")}},
                },
                "responses": {
                    "201": _json(_ref("Consultation"), "Created with its invitations"),
                    **ERRORS,
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
                "summary": "The message log, oldest first",
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
                    "phone": {"type": "string", "description": "a UK mobile number"},
                    "nhs_number": {"type": "string", "pattern": "^[0-9 ]{10,12}$"},
                    "date_of_birth": {"type": "string", "format": "date"},
                    "language": {"type": "string", "enum": ["en"]},
                },
            },
            "Patient": {
                "type": "object",
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
                    "protocol": {"type": "string", "example": "depression_review"},
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
                                "after": {"type": "string", "example": "P14D"},
                            },
                        },
                    },
                    "continue_if_positive": {"type": "boolean"},
                },
                "description": "Give protocol or schedule, not both.",
            },
            "Invitation": {
                "type": "object",
                "properties": {
                    "id": ID,
                    "patient_id": ID,
                    "consultation_id": {"type": ["string", "null"]},
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
                "properties": {
                    "invitation_id": ID,
                    "instrument": {"type": "string"},
                    "status": {"type": "string", "enum": ["completed", "incomplete", "opted_out"]},
                    "completed_at": WHEN,
                    "total": {"type": ["integer", "null"]},
                    "band": {"type": ["string", "null"]},
                    "answers": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "flags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Alert": {
                "type": "object",
                "properties": {
                    "id": ID,
                    "patient_id": ID,
                    "invitation_id": {"type": ["string", "null"]},
                    "flag": {"type": "string"},
                    "severity": {"type": "string", "enum": ["urgent", "routine", "information"]},
                    "status": {"type": "string", "enum": ["open", "acknowledged"]},
                    "created_at": WHEN,
                    "acknowledged_at": WHEN,
                },
            },
            "Message": {
                "type": "object",
                "properties": {
                    "id": ID,
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
