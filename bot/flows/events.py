"""Events: what the engine decided, for the shell to carry out.

The engine never acts. A ``Reply`` is a text to send; the rest are facts to
store (answers, results) or to act on (flags become alerts, opt-outs cancel
invitations, callback requests go to the practice).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.flows.state import Result


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ReplyKind = Literal[
    "intro",
    "question",
    "reprompt",
    "safety",
    "help",
    "confirmation",
    "reminder",
    "thanks",
    "closed",
]


class Reply(_Event):
    type: Literal["reply"] = "reply"
    kind: ReplyKind
    text: str


class AnswerRecorded(_Event):
    type: Literal["answer_recorded"] = "answer_recorded"
    instrument: str
    item: str
    value: int
    raw_text: str
    replaced: bool = False


class AnswerRejected(_Event):
    type: Literal["answer_rejected"] = "answer_rejected"
    instrument: str
    item: str
    raw_text: str
    attempts: int


FlagReason = Literal[
    "item_answer",  # an answer to an item made the flag's rule true
    "risk_phrase",  # words of suicide or self-harm, anywhere
    "score",  # the total or band at the end
    "unclear_answer",  # a reply at a safety-critical item that was not a clear safe answer
    "left_unanswered",  # the questionnaire expired waiting at a safety-critical item
]


class FlagRaised(_Event):
    """A concern a clinician must see.

    ``reason`` says why, without health detail. ``patient_words`` is the text
    that raised it, word for word, for the clinician's alert page and the API
    only: the shell never puts it in a notification.
    """

    type: Literal["flag_raised"] = "flag_raised"
    flag: str
    severity: Literal["urgent", "routine", "information"]
    reason: FlagReason
    item: str | None = None
    patient_words: str | None = None


class ResultRecorded(_Event):
    type: Literal["result_recorded"] = "result_recorded"
    result: Result


class ConversationEnded(_Event):
    type: Literal["conversation_ended"] = "conversation_ended"
    status: Literal["completed", "opted_out", "expired"]


class OptedOut(_Event):
    type: Literal["opted_out"] = "opted_out"


class OptedIn(_Event):
    type: Literal["opted_in"] = "opted_in"


class Paused(_Event):
    type: Literal["paused"] = "paused"


class Resumed(_Event):
    type: Literal["resumed"] = "resumed"


class CallbackRequested(_Event):
    type: Literal["callback_requested"] = "callback_requested"


class ContinuedTo(_Event):
    """A positive screen went straight on to the fuller instrument."""

    type: Literal["continued_to"] = "continued_to"
    instrument: str


Event = Annotated[
    Reply
    | AnswerRecorded
    | AnswerRejected
    | FlagRaised
    | ResultRecorded
    | ConversationEnded
    | OptedOut
    | OptedIn
    | Paused
    | Resumed
    | CallbackRequested
    | ContinuedTo,
    Field(discriminator="type"),
]
