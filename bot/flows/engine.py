"""The conversation state machine.

``start`` opens a questionnaire; ``resume`` moves it on by one inbound (a
patient's text, a reminder or an expiry). Both return the new state and the
events that say what happened; they never act, read a clock or raise on bad
input. Safety comes first in every path: a risk phrase gets the crisis
message and a flag before anything else is considered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.flows import messages
from bot.flows.answers import read_answer
from bot.flows.commands import Command, command_in
from bot.flows.events import (
    AnswerRecorded,
    AnswerRejected,
    CallbackRequested,
    ContinuedTo,
    ConversationEnded,
    Event,
    FlagRaised,
    OptedIn,
    OptedOut,
    Paused,
    Reply,
    ResultRecorded,
    Resumed,
)
from bot.flows.outside import outside_questionnaire, with_media_notice
from bot.flows.risk import SELF_HARM_RISK, mentions_risk
from bot.flows.state import Context, ConversationState, Result, Status
from bot.flows.stimuli import ExpiryDue, Inbound, PatientText, ReminderDue
from bot.instruments.rules import Facts
from bot.instruments.schema import Instrument
from bot.instruments.scoring import applicable, immediate_flags, score

Catalogue = Mapping[str, Instrument]


def start(
    instrument_id: str, catalogue: Catalogue, context: Context, now: datetime
) -> tuple[ConversationState, list[Event]]:
    """Open a questionnaire: the introduction and the first question."""
    instrument = catalogue[instrument_id]
    first = _next_item(instrument, {}, [])
    assert first is not None, "an instrument always has an unconditional first item"
    state = ConversationState(
        instrument=instrument_id,
        stage=instrument_id,
        context=context,
        current_item=first,
        started_at=now,
        updated_at=now,
    )
    follow_on = (
        catalogue[instrument.continuation.instrument]
        if context.continue_if_positive and instrument.continuation
        else None
    )
    events: list[Event] = [
        Reply(kind="intro", text=messages.intro(instrument, context, follow_on)),
        *(Reply(kind="question", text=t) for t in messages.first_question(instrument, first)),
    ]
    return state, events


def resume(
    state: ConversationState, catalogue: Catalogue, inbound: Inbound, now: datetime
) -> tuple[ConversationState, list[Event]]:
    """Move a conversation on by one inbound; the given state is not modified."""
    state = state.model_copy(deep=True)
    state.updated_at = now
    instrument = catalogue[state.stage]
    if isinstance(inbound, ReminderDue):
        return state, _remind(state, instrument)
    if isinstance(inbound, ExpiryDue):
        return state, _expire(state, catalogue, now)
    assert isinstance(inbound, PatientText)
    return state, _on_text(state, catalogue, instrument, inbound, now)


# -- patient texts ---------------------------------------------------------------


def _on_text(
    state: ConversationState,
    catalogue: Catalogue,
    instrument: Instrument,
    inbound: PatientText,
    now: datetime,
) -> list[Event]:
    if not state.is_open:
        return _on_text_when_closed(state, inbound)
    text = inbound.text
    command = command_in(text)
    events: list[Event] = []
    if command is None and mentions_risk(text):
        events += _raise_flag(state, SELF_HARM_RISK, "urgent", "risk_phrase", words=text)
        events.append(Reply(kind="safety", text=messages.safety(state.context)))
    safety_item = _safety_item(state, instrument)

    if not text.strip() and inbound.media:
        # a picture with no words: nothing to read, nothing to resume
        if safety_item and not events:
            events += _unclear_at_safety_item(state, instrument, _words(inbound))
            events.append(_reply("question", messages.question(instrument, safety_item)))
        return with_media_notice(events, inbound)

    if command is not None:
        if safety_item and command not in SHOWS_THE_QUESTION:
            events += _unclear_at_safety_item(state, instrument, text)
        events += _on_command(state, catalogue, instrument, command, now)
        return with_media_notice(events, inbound)

    if state.status == Status.PAUSED:
        state.status = Status.ACTIVE
        events.append(Resumed())
        item = _current(state)
        if read_answer(text, instrument.option_set_for(item)) is None and not safety_item:
            # a "hello again" rather than an answer: show where they were
            events.append(_reply("question", messages.welcome_back(instrument, item)))
            return with_media_notice(events, inbound)

    risk_seen = any(isinstance(e, Reply) and e.kind == "safety" for e in events)
    events += _on_answer(state, catalogue, instrument, text, now, risk_seen=risk_seen)
    return with_media_notice(events, inbound)


# Commands that only show the question again (or go back to the one before):
# at a safety-critical item they are not a reply to it, so they raise nothing.
SHOWS_THE_QUESTION = frozenset({Command.BACK, Command.REPEAT, Command.START})


def _safety_item(state: ConversationState, instrument: Instrument) -> str | None:
    """The current item when it is safety-critical (PHQ-9 item 9), else None."""
    item = state.current_item
    if state.is_open and item is not None and instrument.item(item).safety_critical:
        return item
    return None


def _words(inbound: PatientText) -> str:
    return inbound.text if inbound.text.strip() else "(no words: a picture or other attachment)"


def _unclear_at_safety_item(
    state: ConversationState, instrument: Instrument, words: str
) -> list[Event]:
    """Any reply at a safety-critical item that is not a clear safe answer: flag, crisis text.

    "yes", "a bit", "not really", a picture, LATER, STOP, HELP, CALL: whatever
    the words, the crisis message goes at once and a clinician is told, with
    the patient's own words. The caller then does what the reply asked (asks
    the question again, pauses, opts out...).
    """
    item = _current(state)
    flag = instrument.crisis_flag_for(item)
    assert flag is not None, "the loader checks every safety-critical item has a crisis flag"
    words = words if words.strip() else "(an empty message)"
    return [
        *_raise_flag(state, flag.id, flag.severity, "unclear_answer", item=item, words=words),
        Reply(kind="safety", text=messages.safety(state.context)),
    ]


def _on_text_when_closed(state: ConversationState, inbound: PatientText) -> list[Event]:
    events = outside_questionnaire(
        state.context,
        inbound,
        opted_out=state.opted_out,
        help_text=messages.help_when_closed,
        nothing_to_answer=messages.closed,
    )
    for event in events:
        if isinstance(event, OptedOut):
            state.opted_out = True
        elif isinstance(event, OptedIn):
            state.opted_out = False
        elif isinstance(event, CallbackRequested):
            state.callback_requested = True
        elif isinstance(event, FlagRaised) and event.flag not in state.raised_flags:
            state.raised_flags.append(event.flag)
    return events


def _on_command(
    state: ConversationState,
    catalogue: Catalogue,
    instrument: Instrument,
    command: Command,
    now: datetime,
) -> list[Event]:
    context = state.context
    item = _current(state)
    if command == Command.STOP:
        state.opted_out = True
        events: list[Event] = [OptedOut()]
        events += _finish(state, catalogue, instrument, now, status="opted_out")
        events.append(_reply("confirmation", messages.opted_out(context)))
        return events
    if command == Command.HELP:
        return [_reply("help", messages.help_text(context))]
    if command == Command.CALL:
        state.callback_requested = True
        return [
            CallbackRequested(),
            _reply("confirmation", messages.callback(context, question_open=True)),
        ]
    if command == Command.LATER:
        if state.status == Status.PAUSED:
            return [_reply("confirmation", messages.already_paused())]
        state.status = Status.PAUSED
        return [Paused(), _reply("confirmation", messages.paused(context))]

    events = []
    if state.status == Status.PAUSED:
        state.status = Status.ACTIVE
        events.append(Resumed())
    if command == Command.START:
        return [
            *events,
            _reply("confirmation", messages.already_opted_in()),
            _reply("question", messages.question(instrument, item)),
        ]
    if command == Command.REPEAT:
        return [
            *events,
            _reply("question", messages.question(instrument, item, with_stem=True)),
        ]
    assert command == Command.BACK
    state.invalid_streak = 0
    previous = _previous_item(instrument, item, state.answers, state.carried)
    if previous is None:
        text = (
            messages.carried_over_boundary(instrument, item)
            if state.carried
            else messages.first_question_again(instrument, item)
        )
        return [*events, _reply("question", text)]
    state.current_item = previous
    label = _label(instrument, previous, state.answers.get(previous))
    return [*events, _reply("question", messages.going_back(instrument, previous, label))]


def _on_answer(
    state: ConversationState,
    catalogue: Catalogue,
    instrument: Instrument,
    text: str,
    now: datetime,
    *,
    risk_seen: bool,
) -> list[Event]:
    item = _current(state)
    value = read_answer(text, instrument.option_set_for(item))
    if value is None:
        if risk_seen:
            # The crisis message has just gone; ask again gently, without "sorry".
            return [_reply("question", messages.question(instrument, item))]
        state.invalid_streak += 1
        rejected = AnswerRejected(
            instrument=instrument.id, item=item, raw_text=text, attempts=state.invalid_streak
        )
        if _safety_item(state, instrument):
            # Not a clear "not at all": crisis message and flag first, then ask again.
            return [
                rejected,
                *_unclear_at_safety_item(state, instrument, text),
                _reply("question", messages.question(instrument, item)),
            ]
        return [
            rejected,
            _reply(
                "reprompt",
                messages.reprompt(
                    instrument,
                    item,
                    state.invalid_streak,
                    state.context,
                    offer_call=not state.callback_requested,
                ),
            ),
        ]

    state.invalid_streak = 0
    replaced = item in state.answers
    state.answers[item] = value
    events: list[Event] = [
        AnswerRecorded(
            instrument=instrument.id, item=item, value=value, raw_text=text, replaced=replaced
        )
    ]
    for flag_id in immediate_flags(instrument, {item: value}):
        flag = next(f for f in instrument.flags if f.id == flag_id)
        events += _raise_flag(state, flag.id, flag.severity, "item_answer", item=item, words=text)
        if flag.crisis_signposting and not risk_seen:
            events.append(Reply(kind="safety", text=messages.safety(state.context)))
            risk_seen = True
    return events + _advance(state, catalogue, instrument, now)


def _advance(
    state: ConversationState, catalogue: Catalogue, instrument: Instrument, now: datetime
) -> list[Event]:
    following = _next_item(instrument, state.answers, state.carried)
    if following is not None:
        state.current_item = following
        return [_reply("question", messages.question(instrument, following))]

    result = _result(state, instrument, "completed", now)
    continuation = instrument.continuation
    if (
        state.context.continue_if_positive
        and continuation is not None
        and continuation.when.evaluate(_facts(instrument, state.answers, result))
    ):
        target = catalogue[continuation.instrument]
        carried = {k: v for k, v in state.answers.items() if k in target.item_ids}
        state.results.append(result)
        screen_flags: list[Event] = []
        for flag_id in result.flags:
            if flag_id not in state.raised_flags:
                flag = next(f for f in instrument.flags if f.id == flag_id)
                screen_flags.append(
                    FlagRaised(flag=flag.id, severity=flag.severity, reason="score")
                )
        state.stage = target.id
        state.answers = dict(carried)
        state.carried = list(carried)
        first = _next_item(target, state.answers, state.carried)
        if first is not None:
            state.current_item = first
            return [
                ResultRecorded(result=result),
                *screen_flags,
                ContinuedTo(instrument=target.id),
                _reply("question", messages.continuing(target, first)),
            ]
        return [
            ResultRecorded(result=result),
            *screen_flags,
            *_advance(state, catalogue, target, now),
        ]

    events = _finish(state, catalogue, instrument, now, status="completed")
    events.append(_reply("thanks", messages.thanks(state.context, instrument, result.total)))
    return events


# -- timers ----------------------------------------------------------------------


def _remind(state: ConversationState, instrument: Instrument) -> list[Event]:
    if state.status != Status.ACTIVE:
        return []  # paused on the patient's word, or finished: say nothing
    state.reminders_sent += 1
    return [
        _reply("reminder", messages.reminder(state.context)),
        _reply("question", messages.question(instrument, _current(state), with_stem=True)),
    ]


def _expire(state: ConversationState, catalogue: Catalogue, now: datetime) -> list[Event]:
    if not state.is_open:
        return []
    instrument = catalogue[state.stage]
    events: list[Event] = []
    item = _safety_item(state, instrument)
    flag = instrument.crisis_flag_for(item) if item else None
    if flag is not None and flag.id not in state.raised_flags:
        # They left at the self-harm question and never came back: a clinician should know.
        events += _raise_flag(state, flag.id, flag.severity, "left_unanswered", item=item)
    return events + _finish(state, catalogue, instrument, now, status="expired")


# -- helpers ---------------------------------------------------------------------


def _finish(
    state: ConversationState,
    catalogue: Catalogue,
    instrument: Instrument,
    now: datetime,
    *,
    status: str,
) -> list[Event]:
    """Close the conversation with a result for the stage in progress."""
    complete = _next_item(instrument, state.answers, state.carried) is None
    result_status = (
        "completed" if complete else ("opted_out" if status == "opted_out" else "incomplete")
    )
    result = _result(state, instrument, result_status, now)
    state.results.append(result)
    state.status = {
        "completed": Status.COMPLETED,
        "opted_out": Status.OPTED_OUT,
        "expired": Status.EXPIRED,
    }[status]
    state.current_item = None
    events: list[Event] = [ResultRecorded(result=result)]
    for flag_id in result.flags:
        if flag_id not in state.raised_flags:
            flag = next(f for f in instrument.flags if f.id == flag_id)
            events.append(FlagRaised(flag=flag.id, severity=flag.severity, reason="score"))
    events.append(ConversationEnded(status=status))  # type: ignore[arg-type]
    return events


def _result(state: ConversationState, instrument: Instrument, status: str, now: datetime) -> Result:
    asked = {
        k: v
        for k, v in state.answers.items()
        if k in instrument.item_ids and applicable(instrument, k, state.answers)
    }
    scored = score(instrument, asked)
    flags = list(scored.flags)
    flags += [f for f in state.raised_flags if f not in flags]
    return Result(
        instrument=instrument.id,
        version=instrument.version,
        status=status,  # type: ignore[arg-type]
        total=scored.total,
        band=scored.band,
        percentage=scored.percentage,
        prorated=scored.prorated,
        answers=asked,
        flags=flags,
        finished_at=now,
    )


def _facts(instrument: Instrument, answers: Mapping[str, int], result: Result) -> Facts:
    return Facts(
        answers=answers,
        scored_items=instrument.scored_item_ids,
        total=result.total,
        band=result.band,
    )


def _raise_flag(
    state: ConversationState,
    flag: str,
    severity: str,
    reason: str,
    *,
    item: str | None = None,
    words: str | None = None,
) -> list[Event]:
    if flag not in state.raised_flags:
        state.raised_flags.append(flag)
    return [
        FlagRaised(
            flag=flag,
            severity=severity,  # type: ignore[arg-type]
            reason=reason,  # type: ignore[arg-type]
            item=item,
            patient_words=words,
        )
    ]


def _next_item(
    instrument: Instrument, answers: Mapping[str, int], carried: list[str]
) -> str | None:
    for item in instrument.items:
        if item.id in answers or item.id in carried:
            continue
        if applicable(instrument, item.id, answers):
            return item.id
    return None


def _previous_item(
    instrument: Instrument, current: str, answers: Mapping[str, int], carried: list[str]
) -> str | None:
    """The item before ``current`` that the patient was asked in this stage, if any."""
    before = instrument.item_ids[: instrument.item_ids.index(current)]
    for item_id in reversed(before):
        if item_id in carried:
            return None
        if item_id in answers and applicable(instrument, item_id, answers):
            return item_id
    return None


def _current(state: ConversationState) -> str:
    assert state.current_item is not None, "an open conversation always has a current item"
    return state.current_item


def _label(instrument: Instrument, item_id: str, value: int | None) -> str | None:
    if value is None:
        return None
    return next(o.label for o in instrument.options_for(item_id) if o.value == value)


def _reply(kind: str, text: str) -> Reply:
    return Reply(kind=kind, text=text)  # type: ignore[arg-type]


__all__ = ["SELF_HARM_RISK", "Context", "outcome", "resume", "start"]


def outcome(state: ConversationState, catalogue: Catalogue, now: datetime) -> Result:
    """The result as it stands: the final one if finished, else what is answered so far.

    After a screen continued into the full instrument, this is the full
    instrument's result; the screen's own is in ``state.results``.
    """
    if not state.is_open and state.results:
        return state.results[-1]
    return _result(state, catalogue[state.stage], "incomplete", now)
