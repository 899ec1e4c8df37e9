"""Natural replies, as patients really text them, across all six questionnaires.

Each row is a reply to one question of one instrument, written the way people
write (lower case, typos, extra words, politeness, emoji), with the value it
must give, or ``ASK_AGAIN`` when it must be re-prompted because it names no
option, could mean two, or negates ("not every day"). The issue's examples are
all here.

Two rules, two kinds of test:
- never misread: a reply gives its value or nothing, never another option's
  value, and an ``ASK_AGAIN`` reply gives nothing (every row, one test each);
- understood: at least 95% of the replies that have a value give it. The
  figure is in the README's safety section, and a test keeps it true.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.flows.answers import read_answer
from bot.instruments import builtin_catalogue

CATALOGUE = builtin_catalogue()
README = Path(__file__).parent.parent / "README.md"
ASK_AGAIN = None
TARGET = 0.95

# instrument, item, reply, value (or ASK_AGAIN)
REPLIES: list[tuple[str, str, str, int | None]] = [
    # -- PHQ-9: the examples --------------------------------------------------
    ("phq9", "interest", "sometimes", 1),
    ("phq9", "interest", "occasionally", 1),
    ("phq9", "mood", "once or twice", 1),
    ("phq9", "mood", "now and then", 1),
    ("phq9", "sleep", "often", 2),
    ("phq9", "sleep", "quite often", 2),
    ("phq9", "energy", "a lot", 2),
    ("phq9", "energy", "most of the time", 2),
    ("phq9", "appetite", "all the time", 3),
    ("phq9", "appetite", "constantly", 3),
    ("phq9", "self_worth", "every single day", 3),
    ("phq9", "self_worth", "nope", 0),
    ("phq9", "concentration", "nah", 0),
    ("phq9", "concentration", "not once", 0),
    ("phq9", "psychomotor", "no never", 0),
    ("phq9", "psychomotor", "not at all thanks", 0),
    ("phq9", "interest", "two", 2),
    ("phq9", "mood", "three", 3),
    ("phq9", "mood", "zero", 0),
    ("phq9", "sleep", "2 please", 2),
    ("phq9", "sleep", "sometimes :)", 1),
    ("phq9", "energy", "Not at all.", 0),
    ("phq9", "energy", "every day!!", 3),
    ("phq9", "appetite", "not every day", ASK_AGAIN),
    ("phq9", "appetite", "not often", ASK_AGAIN),
    ("phq9", "self_worth", "not all the time", ASK_AGAIN),
    # -- PHQ-9: as people write --------------------------------------------------------
    ("phq9", "interest", "somtimes", 1),
    ("phq9", "interest", "some days yeah", 1),
    ("phq9", "interest", "yeah some days", 1),
    ("phq9", "interest", "1", 1),
    ("phq9", "interest", "1.", 1),
    ("phq9", "interest", "one", 1),
    ("phq9", "mood", "most days tbh", 2),
    ("phq9", "mood", "more often than not", 2),
    ("phq9", "mood", "every day pretty much", 3),
    ("phq9", "mood", "pretty much every day", 3),
    ("phq9", "mood", "nearly everyday", 3),
    ("phq9", "mood", "evryday", 3),
    ("phq9", "sleep", "all the time sadly", 3),
    ("phq9", "sleep", "constantly x", 3),
    ("phq9", "sleep", "now and again", 1),
    ("phq9", "sleep", "every now and then", 1),
    ("phq9", "energy", "a few days", 1),
    ("phq9", "energy", "couple of days", 1),
    ("phq9", "energy", "alot", 2),
    ("phq9", "energy", "quite a lot", 2),
    ("phq9", "appetite", "never", 0),
    ("phq9", "appetite", "none", 0),
    ("phq9", "appetite", "no", 0),
    ("phq9", "appetite", "nevr", 0),
    ("phq9", "self_worth", "occasionaly", 1),
    ("phq9", "self_worth", "from time to time", 1),
    ("phq9", "self_worth", "once in a while", 1),
    ("phq9", "concentration", "um most of the time", 2),
    ("phq9", "concentration", "frequently", 2),
    ("phq9", "concentration", "quite ofen", 2),
    ("phq9", "psychomotor", "not really", ASK_AGAIN),
    ("phq9", "psychomotor", "a bit", ASK_AGAIN),
    ("phq9", "psychomotor", "half the time", ASK_AGAIN),
    ("phq9", "psychomotor", "every other day", ASK_AGAIN),
    ("phq9", "interest", "2 days", ASK_AGAIN),
    ("phq9", "interest", "2 or 3", ASK_AGAIN),
    ("phq9", "interest", "sometimes or often", ASK_AGAIN),
    ("phq9", "mood", "no thanks", ASK_AGAIN),
    ("phq9", "mood", "I don't know", ASK_AGAIN),
    ("phq9", "mood", "maybe", ASK_AGAIN),
    ("phq9", "mood", "very often", ASK_AGAIN),
    ("phq9", "sleep", "hardly ever", ASK_AGAIN),
    ("phq9", "sleep", "not much", ASK_AGAIN),
    ("phq9", "energy", "i think 2", 2),
    ("phq9", "energy", "its a 3", 3),
    ("phq9", "energy", "its 3", 3),
    ("phq9", "appetite", "2\ufe0f\u20e3", 2),
    ("phq9", "appetite", "Several days \U0001f44d", 1),
    ("phq9", "appetite", "sevral days", 1),
    ("phq9", "self_worth", "more than half the days", 2),
    ("phq9", "self_worth", "more than half", 2),
    ("phq9", "self_worth", "over half the days", 2),
    ("phq9", "concentration", "nearly every day", 3),
    ("phq9", "concentration", "almost every day", 3),
    ("phq9", "concentration", "daily", 3),
    ("phq9", "psychomotor", "0 thanks", 0),
    ("phq9", "psychomotor", "nope not at all", 0),
    ("phq9", "psychomotor", "no not at all", 0),
    # item 9: the reader is the same; the engine adds crisis signposting when it reads nothing
    ("phq9", "self_harm", "not at all", 0),
    ("phq9", "self_harm", "0", 0),
    ("phq9", "self_harm", "never", 0),
    ("phq9", "self_harm", "sometimes", 1),
    ("phq9", "self_harm", "all the time", 3),
    ("phq9", "self_harm", "yes", ASK_AGAIN),
    ("phq9", "self_harm", "a bit", ASK_AGAIN),
    ("phq9", "self_harm", "not really", ASK_AGAIN),
    ("phq9", "self_harm", "no not really", ASK_AGAIN),
    ("phq9", "self_harm", "yes sometimes", 1),
    # the difficulty question
    ("phq9", "difficulty", "somewhat", 1),
    ("phq9", "difficulty", "a bit", 1),
    ("phq9", "difficulty", "a little bit", 1),
    ("phq9", "difficulty", "very", 2),
    ("phq9", "difficulty", "very hard", 2),
    ("phq9", "difficulty", "really difficult tbh", 2),
    ("phq9", "difficulty", "extremely", 3),
    ("phq9", "difficulty", "impossible", 3),
    ("phq9", "difficulty", "not at all", 0),
    ("phq9", "difficulty", "not difficult", 0),
    ("phq9", "difficulty", "no problems", 0),
    ("phq9", "difficulty", "difficult", ASK_AGAIN),
    ("phq9", "difficulty", "hard", ASK_AGAIN),
    ("phq9", "difficulty", "quite difficult", ASK_AGAIN),
    ("phq9", "difficulty", "somewhat dificult", 1),
    # -- PHQ-2 ---------------------------------------------------------------------------
    ("phq2", "interest", "most days", 2),
    ("phq2", "interest", "some days", 1),
    ("phq2", "interest", "nope thanks", 0),
    ("phq2", "interest", "every day", 3),
    ("phq2", "interest", "several", 1),
    ("phq2", "mood", "on and off", 1),
    ("phq2", "mood", "all of the time", 3),
    ("phq2", "mood", "not at all thank you", 0),
    ("phq2", "mood", "lots", 2),
    ("phq2", "mood", "not everyday", ASK_AGAIN),
    # -- GAD-7 ---------------------------------------------------------------------------
    ("gad7", "nervous", "all the time tbh", 3),
    ("gad7", "nervous", "often", 2),
    ("gad7", "nervous", "sometimes.", 1),
    ("gad7", "control_worry", "constantly", 3),
    ("gad7", "control_worry", "every single day", 3),
    ("gad7", "control_worry", "i cant stop worrying", ASK_AGAIN),
    ("gad7", "worry_too_much", "a lot", 2),
    ("gad7", "worry_too_much", "once or twice", 1),
    ("gad7", "relaxing", "most of the time", 2),
    ("gad7", "relaxing", "nah not really", ASK_AGAIN),
    ("gad7", "restless", "nope", 0),
    ("gad7", "restless", "now and then", 1),
    ("gad7", "irritable", "quite often", 2),
    ("gad7", "irritable", "not often", ASK_AGAIN),
    ("gad7", "afraid", "never thank god", 0),
    ("gad7", "afraid", "never thanks", 0),
    ("gad7", "afraid", "3 - nearly every day", 3),
    ("gad7", "afraid", "2 most days", 2),
    ("gad7", "afraid", "1 every day", ASK_AGAIN),
    # -- GAD-2 ---------------------------------------------------------------------------
    ("gad2", "nervous", "sometimes x", 1),
    ("gad2", "nervous", "all the tim", 3),
    ("gad2", "nervous", "no never", 0),
    ("gad2", "control_worry", "often", 2),
    ("gad2", "control_worry", "every day basically", 3),
    ("gad2", "control_worry", "half and half", ASK_AGAIN),
    # -- AUDIT-C: how often, units, heavy episodes ----------------------------------------
    ("auditc", "frequency", "never", 0),
    ("auditc", "frequency", "i don't drink", 0),
    ("auditc", "frequency", "teetotal", 0),
    ("auditc", "frequency", "once a month", 1),
    ("auditc", "frequency", "rarely", 1),
    ("auditc", "frequency", "only on special occasions", 1),
    ("auditc", "frequency", "a few times a month", 2),
    ("auditc", "frequency", "once a week", 2),
    ("auditc", "frequency", "twice a week", 3),
    ("auditc", "frequency", "2 or 3 times a week", 3),
    ("auditc", "frequency", "every day", 4),
    ("auditc", "frequency", "most nights", 4),
    ("auditc", "frequency", "b", 1),
    ("auditc", "frequency", "C please", 2),
    ("auditc", "frequency", "weekends", ASK_AGAIN),
    ("auditc", "frequency", "occasionally", ASK_AGAIN),
    ("auditc", "frequency", "3", ASK_AGAIN),
    ("auditc", "typical_units", "3 units", 1),
    ("auditc", "typical_units", "about 6", 2),
    ("auditc", "typical_units", "2", 0),
    ("auditc", "typical_units", "none", 0),
    ("auditc", "typical_units", "3 or 4", 1),
    ("auditc", "typical_units", "12", 4),
    ("auditc", "typical_units", "more than 10", 4),
    ("auditc", "typical_units", "8 units a day", 3),
    ("auditc", "typical_units", "five", 2),
    ("auditc", "typical_units", "2 pints", ASK_AGAIN),
    ("auditc", "typical_units", "a bottle of wine", ASK_AGAIN),
    ("auditc", "typical_units", "4 or 5", ASK_AGAIN),
    ("auditc", "typical_units", "e", 4),
    ("auditc", "heavy_episodes", "never", 0),
    ("auditc", "heavy_episodes", "not in the last year", 0),
    ("auditc", "heavy_episodes", "once or twice", 1),
    ("auditc", "heavy_episodes", "a few times a year", 1),
    ("auditc", "heavy_episodes", "once a month", 2),
    ("auditc", "heavy_episodes", "every weekend", 3),
    ("auditc", "heavy_episodes", "weekly", 3),
    ("auditc", "heavy_episodes", "most days", 4),
    ("auditc", "heavy_episodes", "daily", 4),
    ("auditc", "heavy_episodes", "sometimes", ASK_AGAIN),
    # -- WHO-5 ---------------------------------------------------------------------------
    ("who5", "cheerful", "most of the time", 4),
    ("who5", "cheerful", "mostly", 4),
    ("who5", "cheerful", "all the time", 5),
    ("who5", "cheerful", "sometimes", 1),
    ("who5", "cheerful", "not at all", 0),
    ("who5", "calm", "more often than not", 3),
    ("who5", "calm", "less than half", 2),
    ("who5", "calm", "usually", 4),
    ("who5", "calm", "now and then", 1),
    ("who5", "active", "never", 0),
    ("who5", "active", "nope", 0),
    ("who5", "active", "rarely", 1),
    ("who5", "active", "half the time", ASK_AGAIN),
    ("who5", "rested", "often", ASK_AGAIN),
    ("who5", "rested", "5 all of the time", 5),
    ("who5", "rested", "at no time", 0),
    ("who5", "rested", "not often", ASK_AGAIN),
    ("who5", "interested", "some of the time", 1),
    ("who5", "interested", "most days", 4),
    ("who5", "interested", "4", 4),
    ("who5", "interested", "six", ASK_AGAIN),
    # -- more, written without looking at the vocabulary files ------------------------
    ("phq9", "interest", "Several days I'd say", 1),
    ("phq9", "interest", "most days to be fair", 2),
    ("phq9", "mood", "every day unfortunately", 3),
    ("phq9", "mood", "nearly every day :(", 3),
    ("phq9", "sleep", "Nearly evey day", 3),
    ("phq9", "sleep", "None at all", 0),
    ("phq9", "energy", "0 - not at all", 0),
    ("phq9", "energy", "3.", 3),
    ("phq9", "appetite", "i'd say 1", 1),
    ("phq9", "appetite", "probably 2", 2),
    ("phq9", "self_worth", "umm 1", 1),
    ("phq9", "self_worth", "loads", 2),
    ("phq9", "concentration", "all day everyday", 3),
    ("phq9", "concentration", "sometimes i guess", 1),
    ("phq9", "psychomotor", "Nope.", 0),
    ("phq9", "psychomotor", "nah mate", 0),
    ("phq9", "interest", "a couple days", 1),
    ("phq9", "mood", "twice maybe", ASK_AGAIN),
    ("phq9", "mood", "occasionally yes", 1),
    ("phq9", "sleep", "sometimes, not often", 1),
    ("phq9", "difficulty", "somewhat difficult i guess", 1),
    ("gad7", "nervous", "most days yeah", 2),
    ("gad7", "relaxing", "ALL THE TIME", 3),
    ("gad7", "restless", "more or less every day", 3),
    ("gad7", "irritable", "constant", 3),
    ("who5", "cheerful", "most of the time i think", 4),
    ("who5", "calm", "some of the time x", 1),
    ("who5", "active", "hardly ever", 1),
    ("who5", "rested", "all day every day", 5),
    ("auditc", "frequency", "every weekend", ASK_AGAIN),
    ("auditc", "frequency", "a couple of times a week", 3),
    ("auditc", "frequency", "4 times a week", 4),
    ("auditc", "typical_units", "about 4 units", 1),
    ("auditc", "typical_units", "2 or 3", ASK_AGAIN),
    ("auditc", "typical_units", "10+", 4),
    ("auditc", "heavy_episodes", "never thankfully", 0),
    ("auditc", "heavy_episodes", "christmas and birthdays", 1),
]

VALUED = [row for row in REPLIES if row[3] is not ASK_AGAIN]


def _read(instrument: str, item: str, reply: str) -> int | None:
    return read_answer(reply, CATALOGUE[instrument].option_set_for(item))


def test_the_table_is_big_enough_and_covers_every_instrument():
    assert len(REPLIES) >= 150
    assert {row[0] for row in REPLIES} == set(CATALOGUE)
    for instrument, item, _, _ in REPLIES:
        assert item in CATALOGUE[instrument].item_ids, (instrument, item)


def test_the_table_has_no_duplicate_rows():
    keys = [(i, item, r) for i, item, r, _ in REPLIES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("instrument", "item", "reply", "value"),
    REPLIES,
    ids=[f"{i}.{item}-{r!r}" for i, item, r, _ in REPLIES],
)
def test_a_reply_gives_its_value_or_nothing_never_another_value(instrument, item, reply, value):
    got = _read(instrument, item, reply)
    if value is ASK_AGAIN:
        assert got is None, f"{reply!r} must be asked again, but was read as {got}"
    else:
        assert got in (value, None), f"{reply!r} misread as {got} (it means {value})"


def understood() -> tuple[int, int]:
    """(replies with a value that are read as that value, replies with a value)."""
    return sum(_read(i, item, r) == v for i, item, r, v in VALUED), len(VALUED)


def test_at_least_95_percent_of_the_replies_with_a_value_are_understood():
    hits, total = understood()
    missed = [(i, item, r) for i, item, r, v in VALUED if _read(i, item, r) != v]
    assert hits / total >= TARGET, f"understood {hits}/{total}; missed: {missed}"


def test_the_readme_gives_the_figure_the_table_measures():
    hits, total = understood()
    figure = f"{hits} of {total} ({100 * hits / total:.0f}%)"
    text = re.sub(r"\s+", " ", README.read_text(encoding="utf-8"))
    assert f"understood {figure}" in text, f"README should say 'understood {figure}'"
