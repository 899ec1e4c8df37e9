"""A practice's settings: when texts may go out, reminders, expiry, escalation, contacts."""

from __future__ import annotations

from pydantic import model_validator

from bot.schemas.common import Answer, Request, request_config
from bot.schemas.fields import (
    ClockTime,
    ClockTimeOrMidnight,
    ContactPhone,
    Nation,
    OptionalEmail,
    TimeZoneName,
    WorkingDays,
    field_problem,
    strict_int,
)
from bot.store.models import Practice

NOT_EDITABLE = ("id", "name", "sms_number", "created_at")


class PracticeSettingsUpdate(Request):
    """Some of the settings; each is checked before any is stored.

    Timers already set keep their times; the send window, working days,
    nation and zone apply to whatever is sent from now on.
    """

    model_config = request_config(minProperties=1)

    timezone: TimeZoneName = None  # type: ignore[assignment]
    nation: Nation = None  # type: ignore[assignment]
    send_window_start: ClockTime = None  # type: ignore[assignment]
    send_window_end: ClockTimeOrMidnight = None  # type: ignore[assignment]
    working_days: WorkingDays = None  # type: ignore[assignment]
    reminder_after_hours: strict_int(1, 168) = None  # type: ignore[valid-type,assignment]
    max_reminders: strict_int(0, 5) = None  # type: ignore[valid-type,assignment]
    expire_after_days: strict_int(1, 60) = None  # type: ignore[valid-type,assignment]
    invitation_valid_days: strict_int(1, 90) = None  # type: ignore[valid-type,assignment]
    escalate_after_minutes: strict_int(5, 1440) = None  # type: ignore[valid-type,assignment]
    escalate_every_minutes: strict_int(5, 1440) = None  # type: ignore[valid-type,assignment]
    contact_phone: ContactPhone = None
    contact_email: OptionalEmail = None

    @model_validator(mode="after")
    def _something(self) -> PracticeSettingsUpdate:
        if not self.model_fields_set:
            names = ", ".join(type(self).model_fields)
            raise field_problem(
                "body", f"the body must give one or more settings to change: {names}"
            )
        return self

    def changes(self) -> dict[str, object]:
        """The settings given, as the practice's columns hold them."""
        values = self.model_dump(include=self.model_fields_set)
        if "working_days" in values:
            values["working_days"] = " ".join(values["working_days"])
        return values


class PracticeWarning(Answer):
    """Something the practice must put right, e.g. that no one could be told of an urgent alert."""

    code: str
    message: str


class PracticeOut(Answer):
    """The practice as its API token sees it: who it is, and the settings it may change."""

    id: str
    name: str
    sms_number: str
    timezone: str
    nation: str
    send_window_start: str
    send_window_end: str
    working_days: list[str]
    reminder_after_hours: int
    max_reminders: int
    expire_after_days: int
    invitation_valid_days: int
    escalate_after_minutes: int
    escalate_every_minutes: int
    contact_phone: str | None
    contact_email: str | None
    warnings: list[PracticeWarning]
    """While the practice could not be told of an urgent alert, what is missing."""

    @classmethod
    def of(cls, practice: Practice, warnings: list[dict[str, str]]) -> PracticeOut:
        own = set(cls.model_fields) - {"working_days", "warnings"}
        return cls(
            **{name: getattr(practice, name) for name in own},
            working_days=practice.working_days.split(),
            warnings=[PracticeWarning(**w) for w in warnings],
        )
