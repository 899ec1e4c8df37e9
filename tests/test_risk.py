"""Words of suicide or self-harm, anywhere in any text, get crisis signposting at once.

Matching is on word boundaries: deliberately sensitive (a miss could cost a
life), but everyday words that merely contain a phrase must not trigger.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.flows import Context, ExpiryDue, PatientText, resume, start
from bot.flows.events import AnswerRecorded, FlagRaised, Reply
from bot.flows.risk import mentions_risk
from bot.flows.state import Status
from bot.instruments import builtin_catalogue

CATALOGUE = builtin_catalogue()
NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
CONTEXT = Context(practice_name="Riverside Surgery", practice_phone="01632 960123")

MUST_MATCH = [
    "want to die",
    "I want to die",
    "I WANT TO DIE",
    "i just wanna die",
    "I wanted to die last week",
    "I wish I was dead",
    "kill myself",
    "I will kill myself",
    "thinking of killing myself",
    "kill my self",
    "I might hurt myself",
    "harm myself",
    "cutting myself again",
    "end it all",
    "I want to end it all.",
    "ending it all",
    "end my life",
    "take my own life",
    "suicide",
    "Suicide.",
    "feeling suicidal",
    "suicidal thoughts",
    "self harm",
    "self-harm",
    "Self Harm",
    "selfharm",
    "I have been self-harming",
    "i\u2019ve been self harming",
    "self harmed last night",
    "I can't go on",
    "I can\u2019t go on",  # curly apostrophe, as phones type it
    "I cant go on",
    "I cannot go on",
    "I don't want to live",
    "I don\u2019t want to live any more",
    "I don\u2019t want to be here anymore",
    "no reason to live",
    "no point in living",
    "better off dead",
    "everyone would be better off without me",
    "took an overdose",
    "2 but I want to die",
    "Not at all. Actually I want to kill myself",
]


@pytest.mark.parametrize("text", MUST_MATCH)
def test_phrases_of_suicide_or_self_harm_are_spotted(text):
    assert mentions_risk(text)


MUST_NOT_MATCH = [
    "skill",
    "skills",
    "studied",
    "diet",
    "I am on a diet",
    "self harmony",
    "the battery will die",
    "die hard fan",
    "killjoy",
    "I'm dying to see the film",
    "I\u2019m dying to see the film",
    "I could die for a curry",
    "want to dye my hair",
    "harmless",
    "endless",
    "the end",
    "end it",
    "dead tired",
    "kill time",
    "go on then",
    "I can go on",
    "myself",
    "several days",
    "nearly every day",
    "2",
    "",
    "\U0001f600",
]


@pytest.mark.parametrize("text", MUST_NOT_MATCH)
def test_everyday_words_that_merely_contain_a_phrase_are_not_spotted(text):
    assert not mentions_risk(text)


def test_negations_still_match_on_purpose_a_clinician_decides_what_was_meant():
    assert mentions_risk("I don't want to die")
    assert mentions_risk("I would never kill myself")


def test_very_long_texts_are_searched_too():
    assert mentions_risk("blah " * 400 + "I want to end it all")


# -- what the engine does with them --------------------------------------------------


def _flags(events):
    return [e for e in events if isinstance(e, FlagRaised)]


def _replies(events):
    return [e for e in events if isinstance(e, Reply)]


def test_the_safety_message_gives_englands_crisis_numbers_and_says_the_practice_will_be_told():
    state, _ = start("gad7", CATALOGUE, CONTEXT, NOW)
    _, events = resume(state, CATALOGUE, PatientText(text="I want to die"), NOW)
    safety = [r.text for r in _replies(events) if r.kind == "safety"]
    assert len(safety) == 1
    for words in (
        "999",
        "A&E",
        "NHS 111 (mental health option)",
        "Samaritans 116 123",
        "text SHOUT to 85258",
        "Riverside Surgery",
    ):
        assert words in safety[0]


@pytest.mark.parametrize("instrument_id", sorted(CATALOGUE))
def test_a_risk_phrase_in_any_instrument_raises_the_flag_and_the_conversation_goes_on(
    instrument_id,
):
    state, events = start(instrument_id, CATALOGUE, CONTEXT, NOW)
    first = state.current_item
    state, events = resume(state, CATALOGUE, PatientText(text="I can\u2019t go on"), NOW)
    flags = _flags(events)
    assert [(f.flag, f.severity, f.reason) for f in flags] == [
        ("self_harm_risk", "urgent", "risk_phrase")
    ]
    kinds = [r.kind for r in _replies(events)]
    assert kinds[0] == "safety"
    assert kinds[1:] == ["question"]  # asked again gently: no "sorry, I didn't understand"
    assert state.status == Status.ACTIVE
    assert state.current_item == first
    assert state.invalid_streak == 0
    assert "self_harm_risk" in state.raised_flags


def test_an_answer_with_a_risk_phrase_gets_safety_first_and_the_result_carries_the_flag():
    state, _ = start("gad2", CATALOGUE, CONTEXT, NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="1 - want to die"), NOW)
    assert _replies(events)[0].kind == "safety"
    state, _ = resume(state, CATALOGUE, PatientText(text="0"), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="0"), NOW)
    assert state.status == Status.COMPLETED
    assert "self_harm_risk" in state.results[-1].flags


@pytest.mark.parametrize("value", ["1", "2", "3", "several days"])
def test_phq9_item_9_above_zero_sends_safety_and_raises_the_flag_at_once(value):
    state, _ = start("phq9", CATALOGUE, CONTEXT, NOW)
    for _ in range(8):
        state, _ = resume(state, CATALOGUE, PatientText(text="0"), NOW)
    assert state.current_item == "self_harm"
    state, events = resume(state, CATALOGUE, PatientText(text=value), NOW)
    assert [(f.flag, f.reason, f.item) for f in _flags(events)] == [
        ("self_harm_risk", "item_answer", "self_harm")
    ]
    kinds = [r.kind for r in _replies(events)]
    assert kinds == ["safety", "question"]  # then the difficulty question: it goes on
    assert state.current_item == "difficulty"


def test_phq9_item_9_at_zero_sends_no_safety_message():
    state, _ = start("phq9", CATALOGUE, CONTEXT, NOW)
    for _ in range(9):
        state, events = resume(state, CATALOGUE, PatientText(text="0"), NOW)
    assert not _flags(events)
    assert [r.kind for r in _replies(events)] == ["thanks"]


def test_item_9_with_a_risk_phrase_sends_the_safety_message_once():
    state, _ = start("phq9", CATALOGUE, CONTEXT, NOW)
    for _ in range(8):
        state, _ = resume(state, CATALOGUE, PatientText(text="0"), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="3 I want to die"), NOW)
    assert [r.kind for r in _replies(events)].count("safety") == 1


def test_a_risk_phrase_while_paused_gets_safety_and_resumes():
    state, _ = start("phq9", CATALOGUE, CONTEXT, NOW)
    state, _ = resume(state, CATALOGUE, PatientText(text="later"), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="I want to kill myself"), NOW)
    assert _flags(events)
    assert _replies(events)[0].kind == "safety"
    assert state.status == Status.ACTIVE


def test_a_risk_phrase_after_the_questionnaire_closed_still_gets_safety_and_the_flag():
    state, _ = start("gad2", CATALOGUE, CONTEXT, NOW)
    state, _ = resume(state, CATALOGUE, ExpiryDue(), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="suicide"), NOW)
    assert [f.flag for f in _flags(events)] == ["self_harm_risk"]
    assert _replies(events)[0].kind == "safety"


def test_a_risk_phrase_after_opting_out_raises_the_flag_but_sends_no_text():
    state, _ = start("gad2", CATALOGUE, CONTEXT, NOW)
    state, _ = resume(state, CATALOGUE, PatientText(text="STOP"), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="self harm"), NOW)
    assert [f.flag for f in _flags(events)] == ["self_harm_risk"]
    assert not _replies(events)  # an opted-out number must get no texts


def test_an_ordinary_answer_raises_no_flag():
    state, _ = start("phq9", CATALOGUE, CONTEXT, NOW)
    state, events = resume(state, CATALOGUE, PatientText(text="several days"), NOW)
    assert not _flags(events)
    assert [e.value for e in events if isinstance(e, AnswerRecorded)] == [1]
