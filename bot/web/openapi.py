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
WARNINGS = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/Warning"},
    "description": "Empty unless the practice, as it is now, cannot be told of an urgent "
    "alert: no clinician on duty or escalation contact with a mobile (or an e-mail address "
    "while e-mail alerts are on), and no usable contact_email. Judged with this server's "
    "SMTP_URL.",
}
WHEN = {"type": ["string", "null"], "format": "date-time"}
MAYBE_ID = {"type": ["string", "null"], "pattern": "^[0-9a-f]{32}$"}
CONFLICT = {"409": _json(_ref("Error"), "Only a pending invitation (not yet sent) can be changed")}
PROTOCOL_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,59}$"}
INSTRUMENT_IDS = ["phq9", "phq2", "gad7", "gad2", "auditc", "who5"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
NATIONS = ["ENG", "WLS", "SCT", "NIR", "NONE"]


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _integer(low: int, high: int, description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "description": description}


def _fhir(resource_type: str) -> dict[str, Any]:
    """A FHIR R4 resource (validated against FHIR itself, not described here)."""
    return {
        "description": f"FHIR R4 {resource_type}",
        "content": {"application/fhir+json": {"schema": {"type": "object"}}},
    }


def _search_include(name: str, adds: str) -> dict[str, Any]:
    schema = {"type": "string", "enum": ["Observation:derived-from"]}
    return {"name": name, "in": "query", "description": adds, "schema": schema}


PATIENT_SEARCH = {
    "name": "patient",
    "in": "query",
    "required": True,
    "description": "the patient's id, or Patient/{id}",
    "schema": {"type": "string"},
}
PROTOCOL_PATH = {"name": "name", "in": "path", "required": True, "schema": PROTOCOL_NAME}
PENDING_ONLY = (
    "Only pending invitations (not yet sent) are changed. An active questionnaire has "
    "reached the patient, who may be answering: it is left to finish or expire on its own, "
    "and `outcome` counts what was left alone."
)


STAFF_ROLES = ["clinician", "admin"]
STAFF_PROFILE: dict[str, Any] = {
    "role": {"type": "string", "enum": STAFF_ROLES, "default": "clinician"},
    "on_duty": {
        "type": "boolean",
        "default": False,
        "description": "told of urgent alerts at once",
    },
    "escalation_contact": {
        "type": "boolean",
        "default": False,
        "description": "told of urgent alerts nobody has acknowledged in time",
    },
    "mobile": {
        "type": ["string", "null"],
        "maxLength": 30,
        "description": "a UK mobile in any common form, e.g. 07700 900123, for alert texts; "
        "stored in E.164",
    },
    "password": {
        "type": "string",
        "minLength": 12,
        "maxLength": 1024,
        "writeOnly": True,
        "description": "for the staff pages; never shown",
    },
}


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
                "description": "The questionnaire the invitation ended on, or is on now. A "
                "screen that went on to the full questionnaire is QuestionnaireResponse/"
                "{result_id}. An invitation not yet sent has no response: 404. See docs/fhir.md.",
                "parameters": [_path_id("invitation_id")],
                "responses": {"200": _fhir("QuestionnaireResponse"), **ERRORS},
            }
        },
        "/api/v1/fhir/QuestionnaireResponse": {
            "get": {
                "summary": "A patient's QuestionnaireResponses as a FHIR searchset Bundle",
                "parameters": [
                    PATIENT_SEARCH,
                    _search_include("_revinclude", "adds the score Observations"),
                ],
                "responses": {"200": _fhir("Bundle"), **ERRORS, **UNPROCESSABLE},
            }
        },
        "/api/v1/fhir/Observation": {
            "get": {
                "summary": "A patient's score Observations as a FHIR searchset Bundle",
                "parameters": [
                    PATIENT_SEARCH,
                    _search_include("_include", "adds the QuestionnaireResponses"),
                ],
                "responses": {"200": _fhir("Bundle"), **ERRORS, **UNPROCESSABLE},
            }
        },
        "/api/v1/fhir/Observation/{observation_id}": {
            "get": {
                "summary": "A score (a result's total) as a FHIR Observation",
                "parameters": [_path_id("observation_id")],
                "responses": {"200": _fhir("Observation"), **ERRORS},
            }
        },
        "/api/v1/fhir/Questionnaire/{questionnaire_id}": {
            "get": {
                "summary": "The FHIR Questionnaire a response's canonical names",
                "parameters": [
                    {
                        "name": "questionnaire_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "examples": ["phq9", "auditc"]},
                    }
                ],
                "responses": {"200": _fhir("Questionnaire"), **ERRORS},
            }
        },
        "/api/v1/fhir/CodeSystem/{code_system_id}": {
            "get": {
                "summary": "One of our own FHIR code systems (answers without LOINC codes, bands)",
                "parameters": [
                    {
                        "name": "code_system_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "examples": ["who5.answers.time"]},
                    }
                ],
                "responses": {"200": _fhir("CodeSystem"), **ERRORS},
            }
        },
        "/api/v1/protocols": {
            "get": {
                "summary": "The practice's protocols, by name",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Protocol")}, "Protocols"),
                    **UNAUTHORISED,
                },
            },
            "post": {
                "summary": "Add a protocol: a named schedule of questionnaires",
                "description": "A protocol is a template. A consultation's invitations are "
                "made from it when the consultation is registered, so later edits change "
                "future consultations only.",
                "requestBody": _body("ProtocolCreate"),
                "responses": {
                    "201": _json(_ref("Protocol"), "Created"),
                    **UNAUTHORISED,
                    "422": _json(
                        _ref("Error"),
                        "Bad input (a name already used, an unknown instrument, a bad "
                        "duration, an empty schedule); `field` names what to fix",
                    ),
                },
            },
        },
        "/api/v1/protocols/{name}": {
            "put": {
                "summary": "Change a protocol's title or schedule",
                "description": "Affects consultations registered from now on only: invitations "
                "already made keep their instruments and due times (move or cancel those "
                "through the consultation). A protocol keeps its name.",
                "parameters": [PROTOCOL_PATH],
                "requestBody": _body("ProtocolUpdate"),
                "responses": {
                    "200": _json(_ref("Protocol"), "The protocol as it is now"),
                    **ERRORS,
                    **UNPROCESSABLE,
                },
            },
            "delete": {
                "summary": "Remove a protocol",
                "description": "Consultations already registered with it, and their "
                "invitations, are left as they are.",
                "parameters": [PROTOCOL_PATH],
                "responses": {"204": {"description": "Removed"}, **ERRORS},
            },
        },
        "/api/v1/consultations/{consultation_id}": {
            "get": {
                "summary": "A consultation with its invitations, in due order",
                "parameters": [_path_id("consultation_id")],
                "responses": {
                    "200": _json(_ref("Consultation"), "The consultation"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/consultations/{consultation_id}/cancel": {
            "post": {
                "summary": "Cancel a consultation's pending invitations",
                "description": f"{PENDING_ONLY} Repeating it changes nothing more.",
                "parameters": [_path_id("consultation_id")],
                "responses": {
                    "200": _json(_ref("ConsultationChange"), "The consultation, as it is now"),
                    **ERRORS,
                },
            }
        },
        "/api/v1/consultations/{consultation_id}/reschedule": {
            "post": {
                "summary": "Move a consultation's pending invitations",
                "description": "Give `shift` to move every pending invitation by a duration "
                "(negative for earlier), or `occurred_at` to correct the consultation's time: "
                "each pending invitation then keeps its offset from the old time. Times are "
                "moved on the practice's wall clock, so 10:00 local stays 10:00 local across "
                "the clock change. A due time that would fall in the past becomes now: it "
                f"goes at the next opening of the send window. {PENDING_ONLY}",
                "parameters": [_path_id("consultation_id")],
                "requestBody": _body("Reschedule"),
                "responses": {
                    "200": _json(_ref("ConsultationChange"), "The consultation, as it is now"),
                    **ERRORS,
                    **UNPROCESSABLE,
                },
            }
        },
        "/api/v1/invitations/{invitation_id}": {
            "patch": {
                "summary": "Move one pending invitation",
                "parameters": [_path_id("invitation_id")],
                "requestBody": _body("InvitationUpdate"),
                "responses": {
                    "200": _json(_ref("Invitation"), "The invitation"),
                    **ERRORS,
                    **CONFLICT,
                    **UNPROCESSABLE,
                },
            }
        },
        "/api/v1/invitations/{invitation_id}/cancel": {
            "post": {
                "summary": "Cancel one pending invitation",
                "parameters": [_path_id("invitation_id")],
                "responses": {
                    "200": _json(_ref("Invitation"), "The invitation, now cancelled"),
                    **ERRORS,
                    **CONFLICT,
                },
            }
        },
        "/api/v1/practice": {
            "get": {
                "summary": "The practice and its settings",
                "responses": {"200": _json(_ref("Practice"), "The practice"), **UNAUTHORISED},
            },
            "patch": {
                "summary": "Change some of the practice's settings",
                "description": "Give only the settings to change; every value is checked "
                "before any is stored. `name` and `sms_number` cannot be changed here. New "
                "settings apply to what is sent from now on: due times already set are kept "
                "(stored in UTC), and a reminder already scheduled keeps its time.",
                "requestBody": _body("PracticeUpdate"),
                "responses": {
                    "200": _json(_ref("Practice"), "The practice as it is now"),
                    **UNAUTHORISED,
                    **UNPROCESSABLE,
                },
            },
        },
        "/api/v1/staff": {
            "get": {
                "summary": "The practice's staff, by e-mail address",
                "description": "Who is on duty (told of urgent alerts at once) and who is an "
                "escalation contact (told of urgent alerts nobody has acknowledged). Password "
                "hashes are never shown.",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Staff")}, "Staff"),
                    **UNAUTHORISED,
                },
            },
            "post": {
                "summary": "Add a member of staff",
                "description": "Without `password` the account cannot sign in until one is "
                "set with PATCH. An e-mail address is used once across every practice.",
                "requestBody": _body("StaffCreate"),
                "responses": {
                    "201": _json(_ref("Staff"), "Created"),
                    **UNAUTHORISED,
                    "422": _json(
                        _ref("Error"),
                        "Bad input (an e-mail address already in use, an empty name, an "
                        "unknown role, a mobile that is not a UK mobile, a short password); "
                        "`field` names what to fix",
                    ),
                },
            },
        },
        "/api/v1/staff/{staff_id}": {
            "patch": {
                "summary": "Change a member of staff: duty, escalation, mobile, password",
                "description": "Give only what changes. Setting a password signs them out "
                "of the staff pages everywhere. The e-mail address cannot be changed.",
                "parameters": [_path_id("staff_id")],
                "requestBody": _body("StaffUpdate"),
                "responses": {
                    "200": _json(_ref("Staff"), "The member of staff as they are now"),
                    **ERRORS,
                    **UNPROCESSABLE,
                },
            },
            "delete": {
                "summary": "Remove a member of staff",
                "description": "Someone who has never been sent an alert notice is deleted. "
                "Someone who has is deactivated instead, so the record of who was told "
                "stays: no longer on duty or an escalation contact, mobile cleared, unable "
                "to sign in, their e-mail address free for reuse, and gone from the list. "
                "Either way they answer 404 afterwards.",
                "parameters": [_path_id("staff_id")],
                "responses": {"204": {"description": "Removed"}, **ERRORS},
            },
        },
        "/api/v1/instruments": {
            "get": {
                "summary": "The questionnaires available",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Instrument")}, "Instruments"),
                    **UNAUTHORISED,
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
            "Warning": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": ["urgent_alerts_reach_nobody"]},
                    "message": {"type": "string", "description": "what is missing, in words"},
                },
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
                    "schedule": {"type": "array", "items": _ref("ScheduleStep")},
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
            "ScheduleStep": {
                "type": "object",
                "required": ["instrument", "after"],
                "properties": {
                    "instrument": {"type": "string", "enum": INSTRUMENT_IDS},
                    "after": {
                        "type": "string",
                        "description": "ISO-8601 duration from the consultation; "
                        "P0D is as soon as possible",
                        "examples": ["P14D", "P2W", "P1M", "P0D"],
                    },
                },
            },
            "Protocol": {
                "type": "object",
                "required": ["name", "title", "schedule"],
                "properties": {
                    "name": PROTOCOL_NAME,
                    "title": {"type": "string"},
                    "schedule": {"type": "array", "items": _ref("ScheduleStep")},
                    "created_at": WHEN,
                },
            },
            "ProtocolCreate": {
                "type": "object",
                "required": ["name", "title", "schedule"],
                "properties": {
                    "name": {
                        **PROTOCOL_NAME,
                        "description": "lower_snake_case, unique in the practice; the "
                        "`protocol` of a new consultation",
                        "examples": ["low_mood_review"],
                    },
                    "title": {"type": "string", "maxLength": 120},
                    "schedule": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 52,
                        "items": _ref("ScheduleStep"),
                        "description": "each `after` at most P5Y",
                    },
                },
            },
            "ProtocolUpdate": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "maxLength": 120},
                    "schedule": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 52,
                        "items": _ref("ScheduleStep"),
                    },
                },
                "description": "Give title, schedule or both.",
            },
            "Reschedule": {
                "type": "object",
                "properties": {
                    "shift": {
                        "type": "string",
                        "description": "ISO-8601 duration to move each pending invitation by; "
                        "negative is earlier",
                        "examples": ["P1W", "-P2D", "PT3H"],
                    },
                    "occurred_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "the consultation's corrected time; without a zone, "
                        "the practice's local time",
                    },
                },
                "description": "Give shift or occurred_at, not both.",
            },
            "InvitationUpdate": {
                "type": "object",
                "required": ["due_at"],
                "properties": {
                    "due_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "not in the past; without a zone, the practice's "
                        "local time. It goes at the first opening of the send window from then.",
                    }
                },
            },
            "Outcome": {
                "type": "object",
                "required": ["cancelled", "moved", "left", "left_by_status", "message"],
                "properties": {
                    "cancelled": {"type": "integer", "description": "pending ones cancelled"},
                    "moved": {"type": "integer", "description": "pending ones moved"},
                    "left": {
                        "type": "integer",
                        "description": "invitations left as they were: already sent "
                        "(active) or finished",
                    },
                    "left_by_status": {
                        "type": "object",
                        "additionalProperties": {"type": "integer"},
                        "examples": [{"active": 1, "completed": 1}],
                    },
                    "message": {"type": "string"},
                },
            },
            "ConsultationChange": {
                "type": "object",
                "required": ["id", "invitations", "outcome"],
                "properties": {
                    "id": ID,
                    "patient_id": ID,
                    "occurred_at": WHEN,
                    "protocol": {"type": ["string", "null"]},
                    "invitations": {"type": "array", "items": _ref("Invitation")},
                    "outcome": _ref("Outcome"),
                },
            },
            "Practice": {
                "type": "object",
                "required": ["id", "name", "sms_number", "timezone", "nation"],
                "properties": {
                    "id": ID,
                    "name": {"type": "string"},
                    "sms_number": {"type": "string", "description": "E.164"},
                    "timezone": {"type": "string"},
                    "nation": {"type": "string", "enum": NATIONS},
                    "send_window_start": {"type": "string"},
                    "send_window_end": {"type": "string"},
                    "working_days": {"type": "array", "items": {"type": "string", "enum": DAYS}},
                    "reminder_after_hours": {"type": "integer"},
                    "max_reminders": {"type": "integer"},
                    "expire_after_days": {"type": "integer"},
                    "invitation_valid_days": {"type": "integer"},
                    "escalate_after_minutes": {"type": "integer"},
                    "escalate_every_minutes": {"type": "integer"},
                    "contact_phone": {"type": ["string", "null"]},
                    "contact_email": {"type": ["string", "null"]},
                    "warnings": WARNINGS,
                },
                "description": "The settings are described under PracticeUpdate.",
            },
            "PracticeUpdate": {
                "type": "object",
                "properties": {
                    "timezone": {
                        "type": "string",
                        "description": "an IANA time zone; due times and the send window are "
                        "worked out on its wall clock",
                        "examples": ["Europe/London"],
                    },
                    "nation": {
                        "type": "string",
                        "enum": NATIONS,
                        "description": "whose bank holidays close the send window; NONE for none",
                    },
                    "send_window_start": {
                        "type": "string",
                        "pattern": "^[0-9]{1,2}:[0-9]{2}$",
                        "description": "HH:MM local, before send_window_end",
                        "examples": ["09:00"],
                    },
                    "send_window_end": {
                        "type": "string",
                        "pattern": "^[0-9]{1,2}:[0-9]{2}$",
                        "description": "HH:MM local; 24:00 is midnight",
                        "examples": ["17:00"],
                    },
                    "working_days": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "enum": DAYS},
                        "description": "the days texts may go out (bank holidays excepted); "
                        'a text such as "mon tue wed" is accepted too',
                    },
                    "reminder_after_hours": _integer(
                        1,
                        168,
                        "hours without a reply before a reminder; less than "
                        "expire_after_days in hours",
                    ),
                    "max_reminders": _integer(0, 5, "reminders per questionnaire; 0 for none"),
                    "expire_after_days": _integer(
                        1,
                        60,
                        "days without a reply before a questionnaire is closed, "
                        "incomplete, keeping its answers",
                    ),
                    "invitation_valid_days": _integer(
                        1,
                        90,
                        "an invitation missed (e.g. the scheduler was down) is still "
                        "sent within this many days of its due time, else marked expired",
                    ),
                    "escalate_after_minutes": _integer(
                        5, 1440, "minutes before an unacknowledged urgent alert is escalated"
                    ),
                    "escalate_every_minutes": _integer(
                        5, 1440, "minutes between repeated escalations"
                    ),
                    "contact_phone": {
                        "type": ["string", "null"],
                        "description": "a UK number patients can call; null to clear",
                    },
                    "contact_email": {
                        "type": ["string", "null"],
                        "format": "email",
                        "description": "null to clear",
                    },
                },
            },
            "Staff": {
                "type": "object",
                "required": [
                    "id",
                    "email",
                    "name",
                    "role",
                    "on_duty",
                    "escalation_contact",
                    "mobile",
                    "created_at",
                ],
                "properties": {
                    "id": ID,
                    "email": {"type": "string", "format": "email"},
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": STAFF_ROLES},
                    "on_duty": {"type": "boolean"},
                    "escalation_contact": {"type": "boolean"},
                    "mobile": {"type": ["string", "null"], "description": "E.164"},
                    "created_at": WHEN,
                    "warnings": {
                        **WARNINGS,
                        "description": "In the answer to POST and PATCH only: the practice's "
                        "warnings after the change (see Practice).",
                    },
                },
            },
            "StaffCreate": {
                "type": "object",
                "required": ["email", "name"],
                "properties": {
                    "email": {
                        "type": "string",
                        "format": "email",
                        "maxLength": 254,
                        "description": "signs them in and receives alert e-mails; stored in "
                        "lower case; used once across every practice",
                    },
                    "name": {"type": "string", "minLength": 1, "maxLength": 120},
                    **STAFF_PROFILE,
                },
            },
            "StaffUpdate": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 120},
                    **STAFF_PROFILE,
                    "mobile": {**STAFF_PROFILE["mobile"], "description": "null to clear"},
                },
                "description": "Give one or more fields; `email` cannot be changed.",
            },
            "Instrument": {
                "type": "object",
                "required": ["id", "title", "short_title", "version", "items", "licence"],
                "properties": {
                    "id": {"type": "string", "examples": INSTRUMENT_IDS},
                    "title": {"type": "string"},
                    "short_title": {"type": "string"},
                    "version": {"type": "string"},
                    "items": {"type": "integer", "description": "how many questions"},
                    "scored_items": {"type": "integer"},
                    "languages": {"type": "array", "items": {"type": "string"}},
                    "licence": {"type": "string"},
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
                    "id": {**ID, "description": "the result; its score is FHIR Observation/{id}"},
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
                    "reason": {
                        "type": "string",
                        "examples": ["item_answer", "unclear_answer", "risk_phrase", "score"],
                    },
                    "item": {
                        "type": ["string", "null"],
                        "description": "the question the flag came from, e.g. self_harm",
                    },
                    "patient_words": {
                        "type": ["string", "null"],
                        "description": (
                            "the patient's own words that raised the flag, one reply a line "
                            "(never sent in a notification)"
                        ),
                    },
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
