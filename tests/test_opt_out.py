"""Opting out in the patient's own words: honoured at once, never read into a sentence.

A clear request to stop is honoured at once, confirmed, and ends the
questionnaire exactly like STOP (the shell then cancels everything pending,
tests/service/test_webhook.py). A sentence that merely contains "stop", "end"
or "cancel" is not a request to stop: "I can't stop worrying" is an answer to
GAD-7's second question, and "I want to end it all" is a risk phrase.
Opting back in stays explicit: START or UNSTOP.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.flows import Context, PatientText, resume, start
from bot.flows.commands import CARRIER_OPT_OUT, Command, command_in, is_opt_out_request
from bot.flows.events import ConversationEnded, FlagRaised, OptedIn, OptedOut, Reply
from bot.flows.risk import mentions_risk
from bot.instruments import builtin_catalogue

CATALOGUE = builtin_catalogue()
NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
CONTEXT = Context(practice_name="Oakfield Health Centre", practice_phone="01632 960321")

# Twilio's default opt-out keywords, as its Advanced Opt-Out guide lists them
# (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out, checked 2026-12-02).
TWILIO_KEYWORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"]

MUST_OPT_OUT = [
    *TWILIO_KEYWORDS,
    *(k.lower() for k in TWILIO_KEYWORDS),
    "STOP ALL",
    "Stop all",
    "stop!!",
    "Stop.",
    "STOP STOP STOP",
    "stop stop",
    "stop it",
    "stop it now",
    "stop now",
    "please stop",
    "please stop now",
    "I said please stop",
    "I said stop",
    "pls stop",
    "stop pls",
    "stop texting me",
    "Stop texting me!",
    "stop texting me please",
    "please stop texting me",
    "please stop messaging me",
    "Please stop messaging me, thank you",
    "can you stop texting me",
    "could you please stop sending me these texts",
    "stop sending me messages",
    "stop sending me these messages please",
    "stop contacting me",
    "stop bothering me",
    "stop the texts",
    "stop these texts",
    "stop all texts",
    "no more texts",
    "no more messages please",
    "No more text messages thanks",
    "no more questionnaires",
    "unsubscribe me",
    "Unsubscribe me please",
    "opt out",
    "opt-out",
    "opt me out",
    "I want to opt out",
    "i would like to unsubscribe",
    "I'd like to opt out please",
    "i don't want these texts",
    "I don't want these texts anymore",
    "I do not want any more messages",
    "dont text me",
    "don't text me again",
    "do not contact me",
    "never text me again",
    "take me off your list",
    "remove me from your list",
    "remove me",
    "remove my number",
    "leave me alone",
    "cancel these texts",
    "i quit",
]

MUST_NOT_OPT_OUT = [
    "I can't stop worrying",
    "i cant stop worrying",
    "can't stop crying",
    "stop worrying",
    "I stopped taking my tablets",
    "stopped",
    "don't stop",
    "nonstop",
    "non stop",
    "stop and start",
    "the bus stop",
    "I need to stop drinking",
    "trying to stop smoking",
    "I want it all to stop",
    "make it stop",
    "please stop the pain",
    "the end",
    "end of",
    "I want to end it all",
    "end it",
    "end my life",
    "cancel my appointment",
    "can I cancel my appointment",
    "quit smoking",
    "I quit my job",
    "no more",
    "no more pain",
    "not at all",
    "nope",
    "never",
    "no",
    "s t o p",
    "stop texting me I want to die",
    "2",
    "",
]


@pytest.mark.parametrize("text", MUST_OPT_OUT)
def test_a_clear_request_to_stop_opts_out(text):
    assert command_in(text) == Command.STOP


@pytest.mark.parametrize("text", MUST_NOT_OPT_OUT)
def test_a_sentence_that_merely_contains_stop_is_not_an_opt_out(text):
    assert command_in(text) != Command.STOP
    assert not is_opt_out_request(text)


def test_the_carrier_keywords_are_twilios_default_list():
    assert set(CARRIER_OPT_OUT) == {k.lower() for k in TWILIO_KEYWORDS}


@pytest.mark.parametrize("text", ["I want to end it all", "stop texting me I want to die"])
def test_a_risk_phrase_that_mentions_stopping_is_a_risk_not_an_opt_out(text):
    assert mentions_risk(text)
    state, _ = start("gad7", CATALOGUE, CONTEXT, NOW)
    state, events = resume(state, CATALOGUE, PatientText(text=text), NOW)
    assert not state.opted_out
    assert [e.flag for e in events if isinstance(e, FlagRaised)] == ["self_harm_risk"]


@pytest.mark.parametrize("text", ["no more texts", "please stop messaging me", "OPTOUT", "REVOKE"])
def test_a_worded_opt_out_ends_the_questionnaire_exactly_like_stop(text):
    state, _ = start("gad7", CATALOGUE, CONTEXT, NOW)
    state, _ = resume(state, CATALOGUE, PatientText(text="1"), NOW)
    by_stop, stop_events = resume(state, CATALOGUE, PatientText(text="STOP"), NOW)
    by_words, word_events = resume(state, CATALOGUE, PatientText(text=text), NOW)
    assert by_words == by_stop
    assert word_events == stop_events
    assert by_words.opted_out and not by_words.is_open
    assert any(isinstance(e, OptedOut) for e in word_events)
    assert any(isinstance(e, ConversationEnded) for e in word_events)
    replies = [e.text for e in word_events if isinstance(e, Reply)]
    assert replies == [
        "You have opted out and will get no more questionnaires from Oakfield Health Centre "
        "by text. Reply START to opt back in."
    ]


@pytest.mark.parametrize("text", ["yes", "start please", "subscribe", "opt in", "resume", "go"])
def test_only_start_or_unstop_opt_back_in(text):
    state, _ = start("gad7", CATALOGUE, CONTEXT, NOW)
    state, _ = resume(state, CATALOGUE, PatientText(text="stop texting me"), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text=text), NOW)
    assert state.opted_out
    assert events == []  # an opted-out patient hears nothing but START's answer


@pytest.mark.parametrize("text", ["START", "start", "Unstop", " UNSTOP. "])
def test_start_or_unstop_opts_back_in(text):
    state, _ = start("gad7", CATALOGUE, CONTEXT, NOW)
    state, _ = resume(state, CATALOGUE, PatientText(text="no more texts"), NOW)
    state, events = resume(state, CATALOGUE, PatientText(text=text), NOW)
    assert not state.opted_out
    assert any(isinstance(e, OptedIn) for e in events)
