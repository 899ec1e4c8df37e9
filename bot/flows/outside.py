"""What a patient hears when no questionnaire is open: finished, never started, or opted out.

The same rules whether the engine holds a finished conversation or the shell
has none at all for a known patient: a risk phrase raises the flag and gets
the crisis message (a text only if they have not opted out); an opted-out
patient hears nothing but START's answer; STOP, START, HELP and CALL work;
anything else gets a short "nothing to answer" with where to get help. A
stranger (a number we do not know) hears only that this number cannot reply,
and where to get help.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.flows import messages
from bot.flows.commands import Command, command_in
from bot.flows.events import (
    CallbackRequested,
    Event,
    FlagRaised,
    OptedIn,
    OptedOut,
    Reply,
)
from bot.flows.risk import SELF_HARM_RISK, mentions_risk
from bot.flows.state import Context
from bot.flows.stimuli import PatientText


def respond_without_conversation(
    context: Context, inbound: PatientText, *, opted_out: bool
) -> list[Event]:
    """A known patient's text when they have no questionnaire open, or have opted out."""
    return outside_questionnaire(
        context,
        inbound,
        opted_out=opted_out,
        help_text=messages.help_nothing_open,
        nothing_to_answer=messages.nothing_open,
    )


def respond_to_stranger() -> list[Event]:
    """A text from a number that is not a patient of the practice texted (or of any).

    The same words whatever was texted and whichever number it was sent to.
    """
    return [Reply(kind="closed", text=messages.stranger())]


def outside_questionnaire(
    context: Context,
    inbound: PatientText,
    *,
    opted_out: bool,
    help_text: Callable[[Context], str],
    nothing_to_answer: Callable[[Context], str],
) -> list[Event]:
    """The events for a text that no open questionnaire will read."""
    text = inbound.text
    command = command_in(text)
    events: list[Event] = []
    if command is None and mentions_risk(text):
        events.append(
            FlagRaised(
                flag=SELF_HARM_RISK, severity="urgent", reason="risk_phrase", patient_words=text
            )
        )
        if not opted_out:
            events.append(Reply(kind="safety", text=messages.safety(context)))
    if opted_out:
        if command == Command.START:
            events += [OptedIn(), Reply(kind="confirmation", text=messages.opted_in(context))]
        return events  # an opted-out patient hears nothing but START's answer
    if command == Command.STOP:
        events += [OptedOut(), Reply(kind="confirmation", text=messages.opted_out(context))]
    elif command == Command.START:
        events.append(Reply(kind="confirmation", text=messages.already_opted_in()))
    elif command == Command.HELP:
        events.append(Reply(kind="help", text=help_text(context)))
    elif command == Command.CALL:
        events += [
            CallbackRequested(),
            Reply(kind="confirmation", text=messages.callback(context, question_open=False)),
        ]
    elif not events:  # after a risk phrase the crisis message says all that needs saying
        events.append(Reply(kind="closed", text=nothing_to_answer(context)))
    return with_media_notice(events, inbound)


def with_media_notice(events: list[Event], inbound: PatientText) -> list[Event]:
    """Say we cannot read attachments, after any crisis message and before anything else."""
    if not inbound.media:
        return events
    notice = Reply(kind="reprompt", text=messages.media_only())
    for position, event in enumerate(events):
        if isinstance(event, Reply) and event.kind != "safety":
            return [*events[:position], notice, *events[position:]]
    return [*events, notice]
