"""Crisis signposting by the practice's nation: the right numbers, sourced, and sendable.

Northern Ireland has no NHS 111; Wales's line is NHS 111 Wales, press 2;
Scotland's is NHS 24 on 111; England's is NHS 111's mental health option.
Everywhere: 999 or A&E when life is at risk, and Samaritans 116 123. Every
number comes from ``bot/flows/crisis_lines.yaml`` with its source, and every
message that carries it stays plain GSM-7 in two SMS segments for every
nation, with the longest practice name and phone number allowed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bot.flows import Context, PatientText, resume, start
from bot.flows import messages as m
from bot.flows.events import Reply
from bot.flows.signposting import CRISIS_LINES, DATA_FILE, NATIONS, crisis_lines, load, nation_of
from bot.instruments import builtin_catalogue
from bot.instruments.gsm7 import MAX_SEPTETS, is_gsm7, septets

CATALOGUE = builtin_catalogue()
HAZARD_LOG = Path(__file__).parent.parent / "docs" / "clinical-safety.md"
NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
LONGEST_NAME = "The Riverside and Hillview Medical Practice, Northampton Rd."
LONGEST_PHONE = "+44 (0)1632 960 1234"

# nation, words its crisis lines must have, words they must not have
EXPECTED = [
    ("ENG", ["NHS 111 (mental health option)"], ["Lifeline", "NHS 24", "press 2"]),
    ("WLS", ["NHS 111 Wales (press 2)"], ["Lifeline", "NHS 24"]),
    ("SCT", ["NHS 24 on 111 (mental health option)"], ["Lifeline", "Wales"]),
    ("NIR", ["Lifeline 0808 808 8000"], ["111", "NHS 24"]),
    ("UK", [], ["111", "Lifeline"]),
]


def test_every_nation_has_crisis_lines():
    assert set(NATIONS) == {"ENG", "WLS", "SCT", "NIR", "UK"} == set(CRISIS_LINES.nations)


@pytest.mark.parametrize(("nation", "present", "absent"), EXPECTED)
def test_each_nation_gets_its_own_numbers(nation, present, absent):
    lines = crisis_lines(nation)
    for words in ["call 999 or go to A&E", "Samaritans 116 123", *present]:
        assert words in lines
    for words in absent:
        assert words not in lines


@pytest.mark.parametrize("nation", NATIONS)
def test_the_safety_message_adds_shout_by_text(nation):
    text = m.safety(Context(practice_name="Riverside Surgery", nation=nation))
    assert crisis_lines(nation) in text
    assert "text SHOUT to 85258" in text


# every builder that carries the crisis lines, and how to call it
CRISIS_BUILDERS = [
    m.safety,
    m.help_text,
    m.help_when_closed,
    m.help_nothing_open,
    m.nothing_open,
    m.closed,
]
CONTEXT_BUILDERS = [
    *CRISIS_BUILDERS,
    m.reminder,
    m.opted_out,
    m.opted_in,
    m.paused,
    m.callback,
]


@pytest.mark.parametrize("nation", NATIONS)
@pytest.mark.parametrize("builder", CONTEXT_BUILDERS, ids=lambda f: f.__name__)
def test_every_message_of_every_nation_is_gsm7_in_two_segments(builder, nation):
    for phone in (LONGEST_PHONE, None):
        context = Context(practice_name=LONGEST_NAME, practice_phone=phone, nation=nation)
        text = builder(context)
        assert is_gsm7(text), text
        assert septets(text) <= MAX_SEPTETS, f"{septets(text)} septets: {text}"


@pytest.mark.parametrize("builder", CRISIS_BUILDERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("nation", NATIONS)
def test_every_crisis_message_carries_the_nations_lines(builder, nation):
    assert crisis_lines(nation) in builder(Context(practice_name="Dr Ali", nation=nation))


def test_a_stranger_gets_the_uk_wide_lines_which_say_nothing_of_where_the_number_is():
    text = m.stranger()
    assert crisis_lines("UK") in text
    assert "111" not in text
    assert is_gsm7(text) and septets(text) <= MAX_SEPTETS


@pytest.mark.parametrize(("nation", "present", "absent"), EXPECTED)
def test_the_engine_signposts_by_the_contexts_nation(nation, present, absent):
    context = Context(practice_name="Riverside Surgery", nation=nation)
    state, _ = start("gad7", CATALOGUE, context, NOW)
    _, events = resume(state, CATALOGUE, PatientText(text="I want to end it all"), NOW)
    safety = next(e.text for e in events if isinstance(e, Reply) and e.kind == "safety")
    assert crisis_lines(nation) in safety
    for words in absent:
        assert words not in safety


# practice's recorded nation, the signposting nation
NATION_OF = [
    ("ENG", "ENG"),
    ("WLS", "WLS"),
    ("SCT", "SCT"),
    ("NIR", "NIR"),
    ("nir", "NIR"),
    ("NONE", "UK"),  # a practice that ignores bank holidays: UK-wide lines, never a wrong 111
    ("", "UK"),
    (None, "UK"),
]


@pytest.mark.parametrize(("recorded", "nation"), NATION_OF)
def test_a_practices_recorded_nation_maps_to_its_signposting(recorded, nation):
    assert nation_of(recorded) == nation


# -- the data file: sourced, dated, in the hazard log ------------------------------------


def _urls() -> set[str]:
    sources = [s for n in CRISIS_LINES.nations.values() for s in n.sources]
    sources += list(CRISIS_LINES.text_line.sources)
    return {str(s.url) for s in sources}


def test_every_number_has_a_source_and_the_check_date_is_recorded():
    assert CRISIS_LINES.checked == "2026-12-02"
    for nation in CRISIS_LINES.nations.values():
        numbers = {s.number for s in nation.sources}
        assert set(re.findall(r"(?<!\w)\d{3,}(?: \d{3,})*(?!\w)", nation.lines)) == numbers


def test_the_hazard_log_records_every_source_and_the_date_checked():
    log = HAZARD_LOG.read_text(encoding="utf-8")
    assert "2026-12-02" in log
    for url in _urls():
        assert url.rstrip("/") in log, url


# change to the file, words the error must have
BAD_DATA = [
    (lambda d: d["nations"].pop("NIR"), "no crisis lines for ['NIR']"),
    (
        lambda d: d["nations"]["NIR"].update(
            lines="In an emergency call 999. Call Lifeline 0808 808 8001 or Samaritans 116 123."
        ),
        "numbers without a source ['0808 808 8001']",
    ),
    (
        lambda d: d["nations"]["ENG"].update(lines="Call NHS 111 or Samaritans 116 123."),
        "sources for numbers not in the words ['999']",
    ),
    (lambda d: d["nations"]["ENG"].update(lines=crisis_lines("ENG") + " \u2013"), "GSM-7"),
    (lambda d: d["nations"]["ENG"]["sources"][0].update(url="not a url"), "url"),
]


@pytest.mark.parametrize(("change", "fault"), BAD_DATA)
def test_a_bad_crisis_lines_file_is_refused(tmp_path, change, fault):
    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "crisis_lines.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        load(path)
    assert fault in str(caught.value)
