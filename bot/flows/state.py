"""A conversation's state: a plain value that round-trips through JSON.

The shell stores it as JSON between messages; tests re-serialise it between
every step to prove nothing lives outside it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.flows.signposting import Nation
from bot.instruments.gsm7 import is_gsm7


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    OPTED_OUT = "opted_out"
    EXPIRED = "expired"


OPEN_STATUSES = frozenset({Status.ACTIVE, Status.PAUSED})


class Context(BaseModel):
    """What the engine is told about the practice and the invitation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    practice_name: str = Field(min_length=1, max_length=60)
    practice_phone: str | None = Field(default=None, max_length=20)
    continue_if_positive: bool = Field(
        default=False, description="a positive screen goes straight on to the full instrument"
    )
    show_score: bool = Field(default=False, description="tell the patient their total at the end")
    nation: Nation = Field(
        default="ENG",
        description="where the practice is, for crisis signposting (UK: not known, UK-wide lines)",
    )

    def model_post_init(self, _: object) -> None:
        for name in ("practice_name", "practice_phone"):
            value = getattr(self, name)
            if value is not None and not is_gsm7(value):
                raise ValueError(f"{name} must be plain GSM-7 text")


class Result(BaseModel):
    """A scored (or unscorable) questionnaire, as the shell stores and the CLI prints it."""

    model_config = ConfigDict(extra="forbid")

    instrument: str
    version: str
    status: Literal["completed", "incomplete", "opted_out"]
    total: int | None
    band: str | None
    percentage: int | None = None
    prorated: bool = False
    answers: dict[str, int]
    flags: list[str]
    finished_at: datetime


class ConversationState(BaseModel):
    """Everything the engine needs to carry on a conversation, and nothing else."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    instrument: str = Field(description="the instrument the invitation asked for")
    stage: str = Field(description="the instrument being asked now (differs after continuation)")
    context: Context
    status: Status = Status.ACTIVE
    opted_out: bool = Field(default=False, description="the patient texted STOP and not START")
    current_item: str | None = None
    answers: dict[str, int] = Field(default_factory=dict)
    carried: list[str] = Field(
        default_factory=list, description="answers carried from the screening stage"
    )
    invalid_streak: int = 0
    callback_requested: bool = False
    raised_flags: list[str] = Field(default_factory=list)
    reminders_sent: int = 0
    started_at: datetime
    updated_at: datetime
    results: list[Result] = Field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> ConversationState:
        return cls.model_validate_json(data)
