"""Patients: registering one, and how one reads back."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from bot.schemas.common import Answer, Request
from bot.schemas.fields import (
    Instant,
    NhsNumber,
    OptionalDate,
    UkMobile,
    problem,
    text,
)
from bot.store.models import Patient

LANGUAGES = ("en",)  # questionnaires are only sent in languages they were validated in


def _language(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return LANGUAGES[0]
    if value not in LANGUAGES:
        raise problem(
            f"must be {' or '.join(repr(x) for x in LANGUAGES)}: no validated translations "
            "are installed"
        )
    return value


Language = Annotated[
    str,
    PlainValidator(_language),
    WithJsonSchema(
        {"anyOf": [{"enum": list(LANGUAGES)}, {"type": "string", "pattern": r"^ *$"},
                   {"type": "null"}]}
    ),
]  # fmt: skip


class PatientCreate(Request):
    """A patient to register; the phone must be a UK mobile (texts to landlines are read aloud)."""

    name: text(120)  # type: ignore[valid-type]
    phone: UkMobile
    nhs_number: NhsNumber = None
    date_of_birth: OptionalDate = None
    language: Language = "en"


IsoDate = Annotated[
    date | None,
    PlainSerializer(lambda d: d.isoformat() if d else None, return_type=str | None),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}),
]


class PatientOut(Answer):
    id: str
    name: str
    phone: str
    nhs_number: str | None
    date_of_birth: IsoDate
    language: str
    opted_out: bool
    created_at: Instant

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        return cls(
            id=patient.id,
            name=patient.name,
            phone=patient.phone,
            nhs_number=patient.nhs_number,
            date_of_birth=patient.date_of_birth,
            language=patient.language,
            opted_out=patient.opted_out,
            created_at=patient.created_at,
        )
