"""What can move a conversation on: a patient's text, or a timer the shell runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientText(_Inbound):
    """An SMS from the patient (any text at all, including empty)."""

    type: Literal["text"] = "text"
    text: str


class ReminderDue(_Inbound):
    """The patient has not replied for a while: nudge them, once."""

    type: Literal["reminder"] = "reminder"


class ExpiryDue(_Inbound):
    """The questionnaire's time is up: close it, keeping what was answered."""

    type: Literal["expiry"] = "expiry"


Inbound = Annotated[PatientText | ReminderDue | ExpiryDue, Field(discriminator="type")]
