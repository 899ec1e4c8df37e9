"""A practice's staff: who is told of urgent alerts, who of those nobody acknowledges."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, model_validator

from bot.schemas.common import Answer, Request, request_config
from bot.schemas.fields import (
    Email,
    Instant,
    OptionalUkMobile,
    StrictBool,
    field_problem,
    problem,
    secret,
    text,
)
from bot.schemas.practice import PracticeWarning
from bot.store.models import StaffUser

Role = Literal["clinician", "admin", "reception"]
ROLES: tuple[str, ...] = get_args(Role)
NAME_LIMIT = 120
PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # a bound on the work one request can ask the hash for
Password = secret(PASSWORD_MIN, PASSWORD_MAX)


def _deliverable(email: str) -> str:
    email = email.lower()
    if email.endswith(".invalid"):  # RFC 2606: removed accounts' addresses live there
        raise problem("must be an address that can receive mail")
    return email


StaffEmail = Annotated[Email, AfterValidator(_deliverable)]
ON_DUTY = "told of urgent alerts at once"
ESCALATION = "told of urgent alerts nobody has acknowledged in time"


class StaffCreate(Request):
    """A member of staff; without a password they cannot sign in until one is set."""

    email: StaffEmail
    name: text(NAME_LIMIT)  # type: ignore[valid-type]
    role: Role = "clinician"
    on_duty: StrictBool = Field(False, description=ON_DUTY)
    escalation_contact: StrictBool = Field(False, description=ESCALATION)
    mobile: OptionalUkMobile = None
    password: Password | None = Field(None, description="for the staff pages; never shown")

    def profile(self) -> dict[str, Any]:
        return self.model_dump(exclude={"password"})


class StaffUpdate(Request):
    """Changes to a member of staff; an e-mail address is used once, so it cannot change."""

    model_config = request_config(minProperties=1)

    name: text(NAME_LIMIT) = None  # type: ignore[valid-type,assignment]
    role: Role = None  # type: ignore[assignment]
    on_duty: StrictBool = Field(None, description=ON_DUTY)  # type: ignore[assignment]
    escalation_contact: StrictBool = Field(None, description=ESCALATION)  # type: ignore[assignment]
    mobile: OptionalUkMobile = None
    password: Password = Field(None, description="a new password; signs them out everywhere")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _something(self) -> StaffUpdate:
        if not self.model_fields_set:
            names = ", ".join(type(self).model_fields)
            raise field_problem("body", f"the body must give one or more of {names}")
        return self

    def profile(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set - {"password"})


class StaffOut(Answer):
    """A member of staff as the API shows them: never the password hash."""

    id: str
    email: str
    name: str
    role: str
    on_duty: bool
    escalation_contact: bool
    mobile: str | None
    created_at: Instant

    @classmethod
    def of(cls, user: StaffUser) -> StaffOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            on_duty=user.on_duty,
            escalation_contact=user.escalation_contact,
            mobile=user.mobile,
            created_at=user.created_at,
        )


class StaffChanged(StaffOut):
    """A member of staff just added or changed, with the practice's warnings after the change."""

    warnings: list[PracticeWarning]

    @classmethod
    def after(cls, user: StaffUser, warnings: list[dict[str, str]]) -> StaffChanged:
        return cls(
            **StaffOut.of(user).model_dump(),
            warnings=[PracticeWarning(**w) for w in warnings],
        )
