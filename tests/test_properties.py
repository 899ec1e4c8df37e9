"""Properties of the conversation engine that hold for any patient, however they text.

For every instrument, any sequence of any texts (answers, commands, risk
phrases, emoji, very long messages, nonsense) and timers (reminders, expiry):

- the engine never raises;
- the state round-trips through JSON after every step and stays valid;
- the answers recorded by ``AnswerRecorded`` events (the latest per item, reset
  to the carried answers when a screen continues into its full instrument) are
  exactly the state's answers;
- every reply is plain GSM-7 and fits in two SMS segments.

The state is re-serialised between every step, as the shell stores it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from bot.flows import (
    Context,
    ConversationState,
    ExpiryDue,
    PatientText,
    ReminderDue,
    outcome,
    resume,
    start,
)
from bot.flows.commands import WORDS, Command, command_in
from bot.flows.events import AnswerRecorded, ContinuedTo, Event, FlagRaised, Reply
from bot.flows.risk import mentions_risk
from bot.flows.signposting import NATIONS, crisis_lines
from bot.instruments import builtin_catalogue
from bot.instruments.gsm7 import BASIC, MAX_SEPTETS, is_gsm7, non_gsm7_characters, septets

CATALOGUE = builtin_catalogue()
INSTRUMENTS = sorted(CATALOGUE)
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
EVENTS = TypeAdapter(list[Event])

PROPERTY_SETTINGS = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _stages(instrument_id: str) -> list[str]:
    continuation = CATALOGUE[instrument_id].continuation
    return [instrument_id] + ([continuation.instrument] if continuation else [])


def _answer_texts(instrument_id: str) -> list[str]:
    """Every way of naming an option of any item the conversation may ask, and a few messy ones."""
    texts: set[str] = set()
    for stage in _stages(instrument_id):
        instrument = CATALOGUE[stage]
        for item in instrument.item_ids:
            option_set = instrument.option_set_for(item)
            for option in option_set.options:
                key = option_set.key_of(option)
                texts |= {key, f" {key}.", f"{key}!", key.lower(), option.label.upper()}
                texts |= {option.label, *option.synonyms}
    return [*sorted(texts), "two", "sevral days", "2\ufe0f\u20e3", "3", "10"]


COMMAND_TEXTS = [
    *sorted(w for w, c in WORDS.items() if c.value not in ("stop", "start")),
    "HELP",
    " Back! ",
    "REPEAT.",
    "Later",
    "Call me",
]
RISK_TEXTS = ["I want to die", "self-harm", "2 but I want to kill myself", "I can\u2019t go on"]
ODD_TEXTS = [
    "",
    "   ",
    "\n",
    "\U0001f600",
    "\U0001f44d\U0001f3fd",
    "2 or 3",
    "22",
    "-1",
    "I can't stop worrying",
    "stop worrying",
    "x" * 1600,
    "2" * 1600,
    "Several days " * 123,
    "\u202e\u0000\ufeff",
]

GSM7_NAME_CHARS = "".join(sorted(BASIC - {"\n", "\r"}))

contexts = st.builds(
    Context,
    # the longest names and numbers allowed are the ones that push a text past 306
    practice_name=st.text(alphabet=GSM7_NAME_CHARS, min_size=1, max_size=60)
    | st.text(alphabet=GSM7_NAME_CHARS, min_size=56, max_size=60),
    practice_phone=st.none()
    | st.text(alphabet="0123456789 +()", min_size=1, max_size=20)
    | st.text(alphabet="0123456789 +()", min_size=18, max_size=20),
    continue_if_positive=st.booleans(),
    show_score=st.booleans(),
    nation=st.sampled_from(NATIONS),
)


def _texts(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return strategy.map(lambda text: PatientText(text=text))


def answers(instrument_id: str) -> st.SearchStrategy:
    return _texts(st.sampled_from(_answer_texts(instrument_id)))


# Anything else a patient or the shell may send: commands, risk phrases, odd and
# long texts, arbitrary unicode, reminders and (rarely, as it closes) expiry.
other_inbounds = st.one_of(
    _texts(st.sampled_from([*COMMAND_TEXTS, "STOP", "START", "unstop"])),
    _texts(st.sampled_from(RISK_TEXTS)),
    _texts(st.sampled_from(ODD_TEXTS)),
    _texts(st.text(max_size=30)),
    _texts(st.text(min_size=60, max_size=400)),
    st.sampled_from([ReminderDue(), ReminderDue(), ReminderDue(), ExpiryDue()]),
)


def conversations(instrument_id: str) -> st.SearchStrategy:
    """A context and the inbounds: mostly answers, each after a little of anything else.

    Built as (noise, answer) pairs so that long conversations that reach the
    end, the branch and the continuation are common, not rare.
    """
    pair = st.tuples(st.lists(other_inbounds, max_size=2), answers(instrument_id))
    pairs = st.lists(pair, max_size=16) | st.lists(pair, min_size=10, max_size=24)
    tail = st.lists(other_inbounds | answers(instrument_id), max_size=4)
    steps = st.tuples(pairs, tail).map(
        lambda drawn: [x for noise, answer in drawn[0] for x in [*noise, answer]] + drawn[1]
    )
    return st.tuples(contexts, steps)


def play(instrument_id: str, context: Context, steps: list) -> list[tuple]:
    """Start, then resume with each inbound, re-serialising the state in between.

    Returns (state, events) after the start and after every step.
    """
    state, events = start(instrument_id, CATALOGUE, context, T0)
    trace = [(state, events)]
    for minute, inbound in enumerate(steps, start=1):
        state = ConversationState.from_json(state.to_json())
        state, events = resume(state, CATALOGUE, inbound, T0 + timedelta(minutes=minute))
        trace.append((state, events))
    return trace


def assert_valid(state: ConversationState) -> None:
    assert state.instrument in CATALOGUE
    assert state.stage in _stages(state.instrument)
    stage = CATALOGUE[state.stage]
    if state.is_open:
        assert state.current_item in stage.item_ids
        assert state.current_item not in state.carried
    else:
        assert state.current_item is None
    for item, value in state.answers.items():
        assert item in stage.item_ids
        assert value in [o.value for o in stage.options_for(item)]
    assert set(state.carried) <= set(state.answers)
    assert state.invalid_streak >= 0
    assert len(set(state.raised_flags)) == len(state.raised_flags)
    for result in state.results:
        assert result.instrument in _stages(state.instrument)


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_sequence_never_raises_and_the_state_round_trips_through_json_and_stays_valid(
    instrument_id, data
):
    context, steps = data.draw(conversations(instrument_id))
    for minute, (state, events) in enumerate(play(instrument_id, context, steps)):
        assert ConversationState.from_json(state.to_json()) == state
        assert_valid(state)
        assert EVENTS.validate_json(EVENTS.dump_json(events)) == events
        result = outcome(state, CATALOGUE, T0 + timedelta(minutes=minute))
        assert set(result.answers.items()) <= set(state.answers.items())


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_the_answers_recorded_are_exactly_the_last_accepted_answer_per_item(instrument_id, data):
    context, steps = data.draw(conversations(instrument_id))
    recorded: dict[str, int] = {}
    stage = instrument_id
    for state, events in play(instrument_id, context, steps):
        for event in events:
            if isinstance(event, AnswerRecorded):
                assert event.instrument == stage
                assert event.replaced == (event.item in recorded)
                recorded[event.item] = event.value
            elif isinstance(event, ContinuedTo):
                stage = event.instrument
                target = CATALOGUE[stage].item_ids
                recorded = {k: v for k, v in recorded.items() if k in target}
        assert state.stage == stage
        assert recorded == state.answers


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_every_reply_is_gsm7_and_at_most_two_sms_segments(instrument_id, data):
    context, steps = data.draw(conversations(instrument_id))
    for _, events in play(instrument_id, context, steps):
        for reply in (e for e in events if isinstance(e, Reply)):
            assert is_gsm7(reply.text), (reply.kind, non_gsm7_characters(reply.text))
            assert septets(reply.text) <= MAX_SEPTETS, (reply.kind, septets(reply.text))


# -- the self-harm item, whatever the words ----------------------------------------------

SAFETY_ITEM = "self_harm"
ITEM_9_SAMPLES = sorted(
    {
        *_answer_texts("phq9"),
        *WORDS,
        *RISK_TEXTS,
        *ODD_TEXTS,
        "yes",
        "yes please",
        "a bit",
        "a little",
        "not really",
        "no not really",
        "maybe",
        "sometimes",
        "all the time",
        "nope",
        "nah",
        "not once",
        "no never",
        "0 thanks",
        "zero",
        "4",
        "-0",
        "0 or 1",
        "stop texting me",
        "no more texts",
        "I can't stop thinking about it",
        "not at all but I want to die",
    }
)
# Commands that only show a question (this one again, or the one before): not a reply to it.
SHOWS_A_QUESTION = {Command.BACK, Command.REPEAT, Command.START}


def _at_item_9(nation: str, paused: bool) -> ConversationState:
    context = Context(
        practice_name="Riverside Surgery", practice_phone="01632 960123", nation=nation
    )
    state, _ = start("phq9", CATALOGUE, context, T0)
    for minute, answer in enumerate(["1", "0", "2", "0", "1", "0", "3", "0"], start=1):
        state, _ = resume(
            state, CATALOGUE, PatientText(text=answer), T0 + timedelta(minutes=minute)
        )
    assert state.current_item == SAFETY_ITEM
    if paused:
        state, _ = resume(state, CATALOGUE, PatientText(text="LATER"), T0 + timedelta(minutes=9))
    return state


AT_ITEM_9 = {(n, p): _at_item_9(n, p) for n in NATIONS for p in (False, True)}

item_9_texts = st.one_of(
    st.sampled_from(ITEM_9_SAMPLES),
    st.text(max_size=40),
    st.tuples(st.sampled_from(ITEM_9_SAMPLES), st.sampled_from(ITEM_9_SAMPLES)).map(" ".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=item_9_texts,
    nation=st.sampled_from(NATIONS),
    paused=st.booleans(),
    media=st.sampled_from([0, 0, 0, 1]),
)
def test_any_text_at_item_9_not_read_as_zero_gets_the_crisis_text_in_the_very_next_reply(
    text, nation, paused, media
):
    """Safety never depends on the patient's wording.

    At PHQ-9 item 9, every text is one of: a command that only shows a
    question (BACK, REPEAT, START: the patient is still to answer it); read
    as 0 with no risk words (no flag, no crisis text); or anything else at
    all, which gets the crisis lines of the practice's nation in the very
    next reply and raises self_harm_risk, urgent, with the patient's words.
    """
    state = ConversationState.from_json(AT_ITEM_9[nation, paused].to_json())
    _, events = resume(
        state, CATALOGUE, PatientText(text=text, media=media), T0 + timedelta(hours=1)
    )
    replies = [e for e in events if isinstance(e, Reply)]
    flags = [e for e in events if isinstance(e, FlagRaised)]
    read_as_zero = any(
        isinstance(e, AnswerRecorded) and e.item == SAFETY_ITEM and e.value == 0 for e in events
    )
    if command_in(text) in SHOWS_A_QUESTION:
        assert not flags
        return
    if read_as_zero and not mentions_risk(text):
        assert not flags
        assert all(crisis_lines(nation) not in r.text for r in replies)
        return
    assert replies, "a reply at item 9 is never met with silence"
    assert replies[0].kind == "safety"
    assert crisis_lines(nation) in replies[0].text
    assert any(
        f.flag == "self_harm_risk" and f.severity == "urgent" and f.patient_words for f in flags
    )
