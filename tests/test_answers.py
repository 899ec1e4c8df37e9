"""Reading a patient's reply as an option, and spotting whole-message commands.

Generous with form, strict with meaning: a reply is accepted when it points at
exactly one option, and refused (so the patient is asked again) when it points
at none or at more than one. A wrong guess would corrupt a clinical score.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.flows import Context, PatientText, resume, start
from bot.flows.answers import answer_hint, read_answer
from bot.flows.commands import WORDS, Command, command_in
from bot.flows.events import AnswerRecorded, AnswerRejected, OptedOut, Reply
from bot.instruments import builtin_catalogue

CATALOGUE = builtin_catalogue()
FREQUENCY = CATALOGUE["phq9"].option_set_for("mood")  # 0 Not at all .. 3 Nearly every day
DIFFICULTY = CATALOGUE["phq9"].option_set_for("difficulty")
WHO5_TIME = CATALOGUE["who5"].option_set_for("cheerful")  # 5 All of the time .. 0 At no time
AUDIT_HOW_OFTEN = CATALOGUE["auditc"].option_set_for("frequency")  # A Never .. E 4+ per week
AUDIT_UNITS = CATALOGUE["auditc"].option_set_for("typical_units")  # A 0-2 .. E 10 or more
AUDIT_HEAVY = CATALOGUE["auditc"].option_set_for("heavy_episodes")


# -- accepted: numbers, number words, words, near misses ------------------------------

# reply, value (PHQ-9 frequency options, 0-3)
ACCEPTED = [
    ("2", 2),
    (" 2.", 2),
    ("2!", 2),
    ("2)", 2),
    ("(2)", 2),
    ("0", 0),
    ("3", 3),
    ("3\n", 3),
    ("two", 2),
    ("Two!", 2),
    ("zero", 0),
    ("THREE", 3),
    ("2\ufe0f\u20e3", 2),  # keycap emoji 2
    ("\uff12", 2),  # full-width digit
    ("Several days", 1),
    ("several", 1),
    ("several days.", 1),
    ("NEARLY EVERY DAY", 3),
    ("Nearly every day", 3),
    ("nearly everyday", 3),
    ("every day", 3),
    ("not at all", 0),
    ("Not at all.", 0),
    ("never", 0),
    ("no", 0),
    ("more than half the days", 2),
    ("More than half", 2),
    ("most days", 2),
    ("some days", 1),
    ("a few days", 1),
    ("sevral days", 1),  # a near miss of one option only
    ("nearly evry day", 3),
    ("more than half the day", 2),
    ("2 more than half the days", 2),  # the number and the same option's words
    ("1 - several days", 1),
]


@pytest.mark.parametrize(("reply", "value"), ACCEPTED)
def test_a_reply_naming_one_option_is_read_as_its_value(reply, value):
    assert read_answer(reply, FREQUENCY) == value


# -- refused: nothing, too much, out of range, ambiguous -------------------------------

REFUSED = [
    "",
    "   ",
    "\n",
    "\U0001f600",  # an emoji
    "\U0001f44d",
    "?",
    "...",
    "2 or 3",
    "2 3",
    "22",
    "4",  # out of range for a 0-3 item
    "10",
    "four",
    "2.5",
    "\u00bd",
    "maybe",
    "yes",
    "I don't know",
    "2" * 1600,
    "x" * 1600,
    "Several days " * 120,  # 1,560 characters of a valid answer, repeated
    "2 several days",  # a number and another option's words: conflict
    "1 nearly every day",
    "0 several days",
    "several days or more than half the days",
    "-1",  # a negative number is not option 1
    "\u22122",  # with a real minus sign
    "1-2",
    "not nearly every day",  # a negation is not the option it resembles
    "not several days",
    "not every day",
    "days",  # the end of several options' words
    "half",
]


@pytest.mark.parametrize("reply", REFUSED, ids=lambda r: repr(r[:24]))
def test_a_reply_naming_no_option_or_several_is_refused(reply):
    assert read_answer(reply, FREQUENCY) is None


# reply, value (PHQ-9 difficulty options, 0-3)
DIFFICULTY_REPLIES = [
    ("somewhat difficult", 1),
    ("Somewhat", 1),
    ("very", 2),
    ("Extremely difficult!", 3),
    ("not difficult at all", 0),
    ("not difficult", 0),
    ("difficult", None),  # every option says difficult
    ("3", 3),
]


@pytest.mark.parametrize(("reply", "value"), DIFFICULTY_REPLIES)
def test_difficulty_question_replies(reply, value):
    assert read_answer(reply, DIFFICULTY) == value


# reply, value (WHO-5, numbered 5 at the top to 0 at the bottom, as published)
WHO5_REPLIES = [
    ("5", 5),
    ("0", 0),
    ("All of the time", 5),
    ("always", 5),
    ("most of the time", 4),
    ("more than half", 3),
    ("less than half of the time", 2),
    ("some of the time", 1),
    ("at no time", 0),
    ("never", 0),
    ("6", None),
    ("of the time", None),
]


@pytest.mark.parametrize(("reply", "value"), WHO5_REPLIES)
def test_who5_replies(reply, value):
    assert read_answer(reply, WHO5_TIME) == value


# -- AUDIT-C: options whose words are numbers are picked by letter ---------------------

# option set, reply, value
AUDITC_REPLIES = [
    (AUDIT_HOW_OFTEN, "a", 0),
    (AUDIT_HOW_OFTEN, "b", 1),
    (AUDIT_HOW_OFTEN, "B)", 1),
    (AUDIT_HOW_OFTEN, "b.", 1),
    (AUDIT_HOW_OFTEN, "E", 4),
    (AUDIT_HOW_OFTEN, "never", 0),
    (AUDIT_HOW_OFTEN, "monthly or less", 1),
    (AUDIT_HOW_OFTEN, "2 to 3 times per week", 3),
    (AUDIT_HOW_OFTEN, "4+ times per week", 4),
    (AUDIT_HOW_OFTEN, "3", None),  # not option 3: these options are lettered
    (AUDIT_HOW_OFTEN, "f", None),
    (AUDIT_UNITS, "b", 1),
    (AUDIT_UNITS, "B)", 1),
    (AUDIT_UNITS, "B 3 to 4", 1),
    (AUDIT_UNITS, "3 to 4", 1),
    (AUDIT_UNITS, "3", 1),  # a bare number of units chooses the range holding it
    (AUDIT_UNITS, "three", 1),
    (AUDIT_UNITS, "4", 1),
    (AUDIT_UNITS, "0", 0),
    (AUDIT_UNITS, "2", 0),
    (AUDIT_UNITS, "5", 2),
    (AUDIT_UNITS, "6", 2),
    (AUDIT_UNITS, "7", 3),
    (AUDIT_UNITS, "9", 3),
    (AUDIT_UNITS, "10", 4),
    (AUDIT_UNITS, "14", 4),
    (AUDIT_UNITS, "10+", 4),
    (AUDIT_UNITS, "10 or more", 4),
    (AUDIT_UNITS, "e", 4),
    (AUDIT_UNITS, "f", None),
    (AUDIT_UNITS, "3 or 4", 1),  # both numbers in the "3 to 4" range: option B
    (AUDIT_UNITS, "4 or 5", None),  # across two ranges
    (AUDIT_HEAVY, "d", 3),
    (AUDIT_HEAVY, "weekly", 3),
    (AUDIT_HEAVY, "daily", 4),
    (AUDIT_HEAVY, "less than monthly", 1),
    (AUDIT_HEAVY, "monthly", 2),
    (AUDIT_HEAVY, "1", None),
]


@pytest.mark.parametrize(
    ("option_set", "reply", "value"),
    AUDITC_REPLIES,
    ids=[f"{s.options[0].label}-{r}" for s, r, _ in AUDITC_REPLIES],
)
def test_auditc_replies_by_letter_words_or_number_of_units(option_set, reply, value):
    assert read_answer(reply, option_set) == value


def test_a_bare_3_for_units_means_three_units_not_the_option_numbered_3():
    option_3 = AUDIT_UNITS.options[3]
    assert option_3.label == "7 to 9"
    assert read_answer("3", AUDIT_UNITS) != option_3.value
    assert read_answer("3", AUDIT_UNITS) == 1


# option set, hint
HINTS = [
    (FREQUENCY, "a number from 0 to 3"),
    (WHO5_TIME, "a number from 0 to 5"),
    (AUDIT_UNITS, "a letter from A to E"),
]


@pytest.mark.parametrize(("option_set", "hint"), HINTS)
def test_the_reprompt_says_which_replies_are_valid(option_set, hint):
    assert answer_hint(option_set) == hint


@pytest.mark.parametrize("instrument_id", sorted(CATALOGUE))
def test_every_option_is_reachable_by_its_key_and_by_its_own_words(instrument_id):
    instrument = CATALOGUE[instrument_id]
    for item in instrument.item_ids:
        option_set = instrument.option_set_for(item)
        for option in option_set.options:
            assert read_answer(option_set.key_of(option), option_set) == option.value
            assert read_answer(option.label, option_set) == option.value
            assert read_answer(option.label.upper(), option_set) == option.value
            for synonym in option.synonyms:
                assert read_answer(synonym, option_set) == option.value


# -- commands: the whole message, any case, trimmed ------------------------------------

# text, command
COMMANDS = [
    ("STOP", Command.STOP),
    ("stop", Command.STOP),
    ("Stop", Command.STOP),
    (" stop ", Command.STOP),
    ("Stop.", Command.STOP),
    ("STOP!", Command.STOP),
    ("stop\n", Command.STOP),
    ('"stop"', Command.STOP),
    ("STOPALL", Command.STOP),
    ("Unsubscribe", Command.STOP),
    ("cancel", Command.STOP),
    ("END", Command.STOP),
    ("Quit", Command.STOP),
    ("START", Command.START),
    ("start", Command.START),
    ("Unstop", Command.START),
    ("HELP", Command.HELP),
    ("help?", Command.HELP),
    ("Info", Command.HELP),
    ("BACK", Command.BACK),
    ("back.", Command.BACK),
    ("Undo", Command.BACK),
    ("REPEAT", Command.REPEAT),
    ("Repeat", Command.REPEAT),
    ("LATER", Command.LATER),
    ("later...", Command.LATER),
    ("Pause", Command.LATER),
    ("CALL", Command.CALL),
    ("call me", Command.CALL),
    ("Call  me!", Command.CALL),
    ("  STOP  " + " " * 40, Command.STOP),  # trimmed, however much space follows
    ("\tHELP\r\n", Command.HELP),
]


@pytest.mark.parametrize(("text", "command"), COMMANDS, ids=[repr(t)[:20] for t, _ in COMMANDS])
def test_a_whole_message_command_is_recognised_in_any_case_and_trimmed(text, command):
    assert command_in(text) == command


@pytest.mark.parametrize(("word", "command"), sorted(WORDS.items()))
def test_every_command_word_and_synonym_works_in_upper_lower_and_title_case(word, command):
    for text in (word, word.upper(), word.title(), f"  {word}. "):
        assert command_in(text) == command, text


def test_the_command_words_are_the_ones_the_issue_lists():
    by_command: dict[Command, set[str]] = {}
    for word, command in WORDS.items():
        by_command.setdefault(command, set()).add(word)
    assert by_command[Command.STOP] >= {
        "stop",
        "stopall",
        "stop all",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "optout",
        "revoke",
    }
    assert by_command[Command.START] >= {"start", "unstop"}
    assert by_command[Command.HELP] >= {"help", "info"}
    assert by_command[Command.BACK] >= {"back", "undo"}
    assert by_command[Command.REPEAT] >= {"repeat"}
    assert by_command[Command.LATER] >= {"later", "pause"}


# Plain-English phrases the code lists as whole-message commands: someone who
# writes "please stop" wants us to stop; "help me" may come from someone in
# distress, and HELP's answer has the crisis numbers.
WHOLE_PHRASES = [
    ("please stop", Command.STOP),
    ("Please stop!", Command.STOP),
    ("stop please", Command.STOP),
    ("STOP TEXTING ME", Command.STOP),
    ("stop messaging me.", Command.STOP),
    ("help me", Command.HELP),
    ("Help me!", Command.HELP),
    ("please help", Command.HELP),
    ("help please", Command.HELP),
]


@pytest.mark.parametrize(("text", "command"), WHOLE_PHRASES)
def test_listed_plain_english_phrases_are_whole_message_commands(text, command):
    assert command_in(text) == command


# A command is the whole message. Command words inside any other text are not
# commands: the text is read as an answer (and re-prompted if it is not one).
NOT_COMMANDS = [
    "don't stop",
    "s t o p",
    "stopped",
    "help me please now",
    "go back",
    "back pain",
    "the end",
    "restart",
    "halt",
    "2",
    "",
    "x" * 50,
]


@pytest.mark.parametrize("text", NOT_COMMANDS)
def test_a_command_word_inside_a_longer_message_is_not_a_command(text):
    assert command_in(text) is None


NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _first_reply_to(text: str):
    context = Context(practice_name="Riverside Surgery")
    state, _ = start("phq9", CATALOGUE, context, NOW)
    return resume(state, CATALOGUE, PatientText(text=text), NOW)


@pytest.mark.parametrize("text", ["I can't stop worrying", "stop worrying"])
def test_stop_inside_a_longer_message_is_re_prompted_not_an_opt_out(text):
    state, events = _first_reply_to(text)
    assert not state.opted_out
    assert not any(isinstance(e, OptedOut) for e in events)
    assert any(isinstance(e, AnswerRejected) for e in events)
    assert [e.kind for e in events if isinstance(e, Reply)] == ["reprompt"]


@pytest.mark.parametrize("text", ["STOP", "please stop", " Unsubscribe. "])
def test_a_whole_message_stop_opts_out_mid_questionnaire(text):
    state, events = _first_reply_to(text)
    assert state.opted_out
    assert any(isinstance(e, OptedOut) for e in events)


def test_an_answer_that_looks_like_a_number_is_never_taken_for_a_command():
    _, events = _first_reply_to("Not at all")
    assert [e.value for e in events if isinstance(e, AnswerRecorded)] == [0]
