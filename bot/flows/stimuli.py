"""What can move a conversation on: a patient's text, or a timer the shell runs.

(Named for what they are to the engine, stimuli, so that it is not confused
with ``bot/services/inbound.py``, the shell's use case for an inbound SMS.)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientText(_Inbound):
    """An SMS from the patient (any text at all, including empty).

    ``media`` counts the pictures or other attachments it came with (an MMS):
    the engine cannot read them and says so.
    """

    type: Literal["text"] = "text"
    text: str
    media: int = Field(default=0, ge=0)


class ReminderDue(_Inbound):
    """The patient has not replied for a while: nudge them, once."""

    type: Literal["reminder"] = "reminder"


class ExpiryDue(_Inbound):
    """The questionnaire's time is up: close it, keeping what was answered."""

    type: Literal["expiry"] = "expiry"


Inbound = Annotated[PatientText | ReminderDue | ExpiryDue, Field(discriminator="type")]
