"""Every text the engine can send, in every state, for every instrument and item.

Each must be plain GSM-7 (no curly quotes, dashes or emoji, which would force
the whole SMS into UCS-2) and at most two SMS segments (306 septets), with the
longest practice name allowed (60 characters) and a practice phone number.
The introduction, the only text before the first question, names no condition.

Two walks: one calls each message builder with every argument the engine can
pass it; the other drives the engine itself into every state and collects
every reply it actually sends, so a message added later is walked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.flows import (
    Context,
    ConversationState,
    ExpiryDue,
    PatientText,
    ReminderDue,
    resume,
    start,
)
from bot.flows import messages as m
from bot.flows.events import Reply, ReplyKind
from bot.instruments import builtin_catalogue
from bot.instruments.gsm7 import MAX_SEPTETS, is_gsm7, non_gsm7_characters, segments, septets
from bot.instruments.schema import Instrument

CATALOGUE = builtin_catalogue()
INSTRUMENTS = sorted(CATALOGUE)
NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

LONGEST_NAME = "The Riverside and Hillview Medical Practice, Northampton Rd."
LONGEST_PHONE = "+44 (0)1632 960 1234"
assert len(LONGEST_NAME) == 60 and len(LONGEST_PHONE) == 20

CONTEXTS = {
    # Scotland has the longest crisis lines (tests/test_signposting.py checks every nation)
    "longest name and phone, score shown": Context(
        practice_name=LONGEST_NAME,
        practice_phone=LONGEST_PHONE,
        show_score=True,
        continue_if_positive=True,
        nation="SCT",
    ),
    "longest name, no phone": Context(practice_name=LONGEST_NAME),
    "short name": Context(practice_name="Dr Ali", practice_phone="01632 960123"),
}

CONDITION_WORDS = ("depress", "anxi", "alcohol", "drink", "suicid", "self harm", "self-harm")


def assert_sendable(text: str, what: str = "") -> None:
    assert is_gsm7(text), f"{what}: not GSM-7: {non_gsm7_characters(text)}"
    assert septets(text) <= MAX_SEPTETS, f"{what}: {septets(text)} septets: {text!r}"
    assert segments(text) <= 2, what


def test_the_limit_is_two_sms_segments():
    assert MAX_SEPTETS == 306
    assert segments("x" * 306) == 2
    assert segments("x" * 307) == 3


# -- walk 1: every message builder with every argument the engine can pass --------------


def _first_item(instrument: Instrument) -> str:
    return next(i.id for i in instrument.items if i.ask_when is None)


def _continuations() -> list[tuple[str, str]]:
    """(full instrument, first item asked after a screen's answers are carried into it)."""
    pairs = []
    for screen in CATALOGUE.values():
        if screen.continuation:
            full = CATALOGUE[screen.continuation.instrument]
            first = next(i for i in full.item_ids if i not in screen.item_ids)
            pairs.append((full.id, first))
    return pairs


def _all_items() -> list[tuple[str, str]]:
    return [(i, item) for i in INSTRUMENTS for item in CATALOGUE[i].item_ids]


def _back_targets() -> list[tuple[str, str]]:
    """Items BACK can return to: any item that has one after it."""
    return [(i, item) for i in INSTRUMENTS for item in CATALOGUE[i].item_ids[:-1]]


def _messages_for(context: Context) -> Iterator[tuple[str, str]]:
    """(what, text) for every message the engine (or the shell) can build with this context."""
    for instrument_id in INSTRUMENTS:
        instrument = CATALOGUE[instrument_id]
        first = _first_item(instrument)
        yield f"{instrument_id} intro", m.intro(instrument, context)
        if instrument.continuation:
            follow_on = CATALOGUE[instrument.continuation.instrument]
            yield f"{instrument_id} intro, may continue", m.intro(instrument, context, follow_on)
        for n, text in enumerate(m.first_question(instrument, first)):
            yield f"{instrument_id} first question, text {n + 1}", text
        yield f"{instrument_id} first question again", m.first_question_again(instrument, first)
        low, high = instrument.total_range
        for total in (low, high, None):
            yield f"{instrument_id} thanks {total}", m.thanks(context, instrument, total)
    for instrument_id, item in _all_items():
        instrument = CATALOGUE[instrument_id]
        where = f"{instrument_id}.{item}"
        yield f"{where} question", m.question(instrument, item)
        yield f"{where} question with stem", m.question(instrument, item, with_stem=True)
        yield f"{where} welcome back", m.welcome_back(instrument, item)
        for attempts in (1, 2, 3, 4):
            for offer_call in (True, False):
                yield (
                    f"{where} reprompt {attempts}{'' if offer_call else ' after CALL'}",
                    m.reprompt(instrument, item, attempts, context, offer_call=offer_call),
                )
    for instrument_id, item in _back_targets():
        instrument = CATALOGUE[instrument_id]
        for label in [None, *(o.label for o in instrument.options_for(item))]:
            yield (
                f"{instrument_id}.{item} going back from {label}",
                m.going_back(instrument, item, label),
            )
    for instrument_id, item in _continuations():
        instrument = CATALOGUE[instrument_id]
        yield f"{instrument_id}.{item} continuing", m.continuing(instrument, item)
        yield f"{instrument_id}.{item} carried boundary", m.carried_over_boundary(instrument, item)
    yield "safety", m.safety(context)
    yield "help", m.help_text(context)
    yield "help when closed", m.help_when_closed(context)
    yield "help with nothing open", m.help_nothing_open(context)
    yield "media only", m.media_only()
    yield "stranger", m.stranger()
    yield "paused", m.paused(context)
    yield "already paused", m.already_paused()
    yield "callback, question open", m.callback(context, question_open=True)
    yield "callback, questionnaire closed", m.callback(context, question_open=False)
    yield "opted out", m.opted_out(context)
    yield "opted in", m.opted_in(context)
    yield "already opted in", m.already_opted_in()
    yield "reminder", m.reminder(context)
    yield "closed", m.closed(context)
    yield "nothing open", m.nothing_open(context)


BUILT = [
    (f"{name}: {what}", text)
    for name, context in CONTEXTS.items()
    for what, text in _messages_for(context)
]


@pytest.mark.parametrize(("what", "text"), BUILT, ids=[what for what, _ in BUILT])
def test_every_message_built_is_gsm7_and_at_most_two_segments(what, text):
    assert_sendable(text, what)


CONTEXT_BUILDERS = [
    m.safety,
    m.help_text,
    m.help_when_closed,
    m.help_nothing_open,
    m.callback,
    m.opted_out,
    m.opted_in,
    m.reminder,
    m.closed,
    m.nothing_open,
]


@pytest.mark.parametrize("context_name", sorted(CONTEXTS))
@pytest.mark.parametrize("builder", CONTEXT_BUILDERS, ids=lambda f: f.__name__)
def test_context_messages_name_the_practice(builder, context_name):
    context = CONTEXTS[context_name]
    assert context.practice_name in builder(context)


HELPFUL_BUILDERS = [m.help_text, m.help_when_closed, m.help_nothing_open, m.closed, m.nothing_open]


@pytest.mark.parametrize("builder", HELPFUL_BUILDERS, ids=lambda f: f.__name__)
def test_help_and_closed_give_the_practice_phone_when_known(builder):
    assert LONGEST_PHONE in builder(CONTEXTS["longest name and phone, score shown"])


@pytest.mark.parametrize("builder", [m.safety, *HELPFUL_BUILDERS], ids=lambda f: f.__name__)
def test_help_safety_and_closed_give_the_crisis_numbers(builder):
    text = builder(CONTEXTS["short name"])  # England by default
    for words in ("999", "A&E", "NHS 111 (mental health option)", "Samaritans 116 123"):
        assert words in text


@pytest.mark.parametrize(("instrument_id", "item"), _all_items())
def test_each_question_shows_its_wording_and_every_option(instrument_id, item):
    instrument = CATALOGUE[instrument_id]
    option_set = instrument.option_set_for(item)
    for text in (m.question(instrument, item), m.question(instrument, item, with_stem=True)):
        assert instrument.item(item).text in text
        for option in option_set.options:
            assert f"{option_set.key_of(option)} {option.label}" in text
        kind = "number" if option_set.keys == "numbers" else "letter"
        assert f"a {kind} from" in text  # how to answer


@pytest.mark.parametrize(("instrument_id", "item"), _all_items())
def test_reprompts_say_what_is_valid_and_offer_a_call_from_the_third(instrument_id, item):
    instrument = CATALOGUE[instrument_id]
    context = CONTEXTS["short name"]
    assert "CALL" not in m.reprompt(instrument, item, 1, context)
    assert "CALL" not in m.reprompt(instrument, item, 2, context)
    third = m.reprompt(instrument, item, 3, context)
    assert "CALL" in third and context.practice_name in third
    kind = "number" if instrument.option_set_for(item).keys == "numbers" else "letter"
    assert f"a {kind} from" in third
    after_call = m.reprompt(instrument, item, 3, context, offer_call=False)
    assert "CALL" not in after_call  # a call is already asked for


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_the_first_question_comes_with_the_stem_in_one_text_or_just_before(instrument_id):
    instrument = CATALOGUE[instrument_id]
    texts = m.first_question(instrument, _first_item(instrument))
    assert texts[0].startswith(instrument.stem)
    assert instrument.item(_first_item(instrument)).text in texts[-1]
    assert len(texts) <= 2


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_the_score_is_shown_only_when_the_invitation_asks(instrument_id):
    instrument = CATALOGUE[instrument_id]
    shown = CONTEXTS["longest name and phone, score shown"]
    hidden = CONTEXTS["longest name, no phone"]
    assert f"{instrument.short_title} score is 17" in m.thanks(shown, instrument, 17)
    assert "score" not in m.thanks(hidden, instrument, 17)
    assert "score" not in m.thanks(shown, instrument, None)


# -- the introduction ----------------------------------------------------------------


@pytest.mark.parametrize("context_name", sorted(CONTEXTS))
@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_the_intro_names_the_practice_the_count_and_how_to_opt_out(instrument_id, context_name):
    context = CONTEXTS[context_name]
    instrument = CATALOGUE[instrument_id]
    _, events = start(instrument_id, CATALOGUE, context, NOW)
    replies = [e for e in events if isinstance(e, Reply)]
    assert replies[0].kind == "intro"
    assert {r.kind for r in replies[1:]} == {"question"}
    intro = replies[0].text
    assert context.practice_name in intro
    asked_always = sum(1 for i in instrument.items if i.ask_when is None)
    assert f"{asked_always} questions" in intro
    assert "STOP" in intro
    assert_sendable(intro, "intro")


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_no_message_before_the_first_question_names_a_condition(instrument_id):
    instrument = CATALOGUE[instrument_id]
    context = Context(practice_name="Riverside Surgery")
    _, events = start(instrument_id, CATALOGUE, context, NOW)
    before_first_question = []
    for event in events:
        if isinstance(event, Reply):
            if event.kind == "question":
                break
            before_first_question.append(event.text.lower())
    assert before_first_question
    for text in before_first_question:
        for word in CONDITION_WORDS:
            assert word not in text
        assert instrument.title.lower() not in text
        assert instrument.short_title.lower() not in text


# -- walk 2: drive the engine into every state and collect what it sends ---------------

R, X = ReminderDue(), ExpiryDue()
PROBES = [
    ["HELP"],
    ["info"],
    ["REPEAT"],
    ["BACK"],
    ["BACK", "BACK"],
    ["BACK", "REPEAT"],
    ["LATER"],
    ["LATER", "LATER"],
    ["LATER", "hello again"],
    ["LATER", "REPEAT"],
    ["LATER", R],
    ["CALL"],
    ["CALL", "nonsense", "nonsense", "nonsense"],
    ["START"],
    ["STOP"],
    ["STOP", "START"],
    ["STOP", "HELP"],
    ["STOP", "hello"],
    ["STOP", "STOP"],
    ["nonsense"],
    ["nonsense", "nonsense", "nonsense", "nonsense"],
    ["\U0001f600", "22", "x" * 1600],
    [PatientText(text="", media=1)],
    [PatientText(text="2", media=2)],
    ["I want to die"],
    ["I want to die", "nonsense"],
    [R],
    [R, R],
    [X],
    [X, "hello"],
    [X, "HELP"],
    [X, "CALL"],
    [X, "START"],
    [X, "STOP", "START"],
    [X, "end it all"],
    [X, R],
]


def _key(instrument: Instrument, item: str, pick: str) -> str:
    option_set = instrument.option_set_for(item)
    values = [o.value for o in option_set.options]
    chosen = max(values) if pick == "high" else min(values)
    return option_set.key_of(next(o for o in option_set.options if o.value == chosen))


def _send(state: ConversationState, inbound, minute: int):
    if isinstance(inbound, str):
        inbound = PatientText(text=inbound)
    state = ConversationState.from_json(state.to_json())
    return resume(state, CATALOGUE, inbound, NOW + timedelta(minutes=minute))


def walk(instrument_id: str, context: Context) -> list[tuple[str, Reply]]:
    """Every reply sent along the highest and lowest answer paths, with every probe at every item.

    Returns (where, reply) pairs; 'where' says how the reply was reached.
    """
    sent: list[tuple[str, Reply]] = []
    for pick in ("high", "low"):
        state, events = start(instrument_id, CATALOGUE, context, NOW)
        sent += [(f"{pick} start", e) for e in events if isinstance(e, Reply)]
        minute = 0
        while True:
            for probe in PROBES:
                probed = state
                for step, inbound in enumerate(probe):
                    probed, events = _send(probed, inbound, minute + step + 1)
                    where = f"{pick} at {state.stage}.{state.current_item}: {probe[: step + 1]}"
                    sent += [(where, e) for e in events if isinstance(e, Reply)]
            if not state.is_open:
                break
            minute += 1
            answer = _key(CATALOGUE[state.stage], state.current_item, pick)
            where = f"{pick} answer {state.stage}.{state.current_item}"
            state, events = _send(state, answer, minute)
            sent += [(where, e) for e in events if isinstance(e, Reply)]
    return sent


WALKS = {
    (instrument_id, context_name): walk(instrument_id, context)
    for instrument_id in INSTRUMENTS
    for context_name, context in CONTEXTS.items()
}


@pytest.mark.parametrize("context_name", sorted(CONTEXTS))
@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_every_reply_the_engine_sends_in_every_state_is_gsm7_and_at_most_two_segments(
    instrument_id, context_name
):
    bad = sorted(
        {
            f"{reply.kind}, {septets(reply.text)} septets"
            f"{', not GSM-7' if not is_gsm7(reply.text) else ''}: "
            f"{reply.text[:48]!r}... ({where})"
            for where, reply in WALKS[instrument_id, context_name]
            if not is_gsm7(reply.text) or septets(reply.text) > MAX_SEPTETS
        }
    )
    assert not bad, "replies that cannot go as at most 2 GSM-7 segments:\n" + "\n".join(bad[:12])


def test_the_engine_walk_reaches_every_kind_of_reply():
    seen = {reply.kind for sent in WALKS.values() for _, reply in sent}
    assert seen == set(ReplyKind.__args__)


# The opening words of each message builder's text, as the walk must meet them.
OPENINGS = {
    "intro": "Hello from ",
    "first_question_again": "This is the first question.",
    "going_back": "OK, going back.",
    "carried_over_boundary": "Your earlier answers are saved",
    "continuing": "Thank you. A few more questions.",
    "welcome_back": "Welcome back.",
    "paused": "No problem, we have paused.",
    "already_paused": "We are paused.",
    "callback": "Thank you. We have asked ",
    "opted_out": "You have opted out",
    "opted_in": "You have opted back in",
    "already_opted_in": "You are already receiving texts",
    "reminder": "A reminder from ",
    "thanks": "Thank you, that is the end",
    "closed": "This questionnaire has finished",
    "reprompt": "Sorry, I didn't understand.",
    "reprompt offering a call": "Or reply CALL",
    "help_when_closed": "Your questionnaire has finished",
    "safety": "If you are thinking of harming yourself",
    "help": "Answer with a number or letter",
    "media_only": "we can only read text",
    "score shown": " score is ",
}


@pytest.mark.parametrize("message", sorted(OPENINGS))
def test_the_engine_walk_reaches_every_message(message):
    words = OPENINGS[message]
    assert any(words in reply.text for sent in WALKS.values() for _, reply in sent)
