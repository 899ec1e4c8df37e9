"""Shared vocabularies: everyday words for a scale's options, as data beside the instruments.

A vocabulary file is checked when it is loaded, on its own and against every
option set that names it; a bad one stops the catalogue with an error naming
the file, like a bad questionnaire. A practice's own questionnaire can use the
shipped vocabularies, or its own.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.flows import Context, PatientText, resume, start
from bot.flows.answers import read_answer
from bot.flows.commands import command_in
from bot.flows.events import AnswerRecorded
from bot.instruments import InstrumentFileError, builtin_catalogue, load_catalogue
from bot.instruments.loader import BUILTIN_DIR, builtin_vocabularies, load_vocabulary
from bot.instruments.vocabulary import normalise

CATALOGUE = builtin_catalogue()
VOCABULARIES = builtin_vocabularies()
NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

# vocabulary, the option sets that use it (instrument, option set)
SHIPPED = {
    "frequency": [
        ("phq9", "frequency"),
        ("phq2", "frequency"),
        ("gad7", "frequency"),
        ("gad2", "frequency"),
    ],
    "difficulty": [("phq9", "difficulty")],
    "of_the_time": [("who5", "time")],
    "drinking_frequency": [("auditc", "how_often")],
    "units": [("auditc", "units")],
    "heavy_drinking": [("auditc", "heavy")],
}


def test_the_shipped_vocabularies_are_the_six_scales():
    assert set(VOCABULARIES) == set(SHIPPED)
    for path in (BUILTIN_DIR / "vocabulary").glob("*.yaml"):
        assert load_vocabulary(path).id == path.stem


@pytest.mark.parametrize("vocabulary", sorted(SHIPPED))
def test_every_option_set_of_every_shipped_instrument_names_its_scale(vocabulary):
    for instrument, option_set in SHIPPED[vocabulary]:
        assert CATALOGUE[instrument].option_sets[option_set].vocabulary == vocabulary


@pytest.mark.parametrize(
    ("vocabulary", "instrument", "option_set"),
    [(v, i, o) for v, uses in SHIPPED.items() for i, o in uses],
)
def test_every_phrase_reads_as_the_one_option_it_is_listed_under(
    vocabulary, instrument, option_set
):
    options = CATALOGUE[instrument].option_sets[option_set]
    value_of = {normalise(o.label): o.value for o in options.options}
    for label, phrases in VOCABULARIES[vocabulary].options.items():
        for phrase in phrases:
            assert read_answer(phrase, options) == value_of[normalise(label)], phrase
            assert read_answer(phrase.upper() + "!", options) == value_of[normalise(label)], phrase


@pytest.mark.parametrize("vocabulary", sorted(SHIPPED))
def test_no_phrase_is_a_command_which_would_never_reach_the_reader(vocabulary):
    for phrases in VOCABULARIES[vocabulary].options.values():
        for phrase in phrases:
            assert command_in(phrase) is None, phrase


# -- bad vocabulary files --------------------------------------------------------------

GOOD: dict[str, Any] = {
    "id": "mood_words",
    "scale": "the practice's mood check",
    "options": {"Never": ["not ever"], "Often": ["lots", "loads"]},
}

# name, change to the vocabulary, words the fault must contain
BAD_VOCABULARIES = [
    (
        "a phrase under two options",
        {"options": {"Never": ["nope"], "Often": ["nope"]}},
        "phrase 'nope' is given to both 'Never' and 'Often'",
    ),
    (
        "a phrase listed twice",
        {"options": {"Never": ["nope", "Nope!"]}},
        "listed twice under 'Never'",
    ),
    ("a bare number", {"options": {"Often": ["3"]}}, "is a number or a letter"),
    ("an answer letter", {"options": {"Often": ["b"]}}, "is a number or a letter"),
    ("a phrase of punctuation only", {"options": {"Often": ["!!"]}}, "has no words"),
    ("no options", {"options": {}}, "options"),
    ("an unknown field", {"synonyms": ["x"]}, "synonyms"),
    ("an id that is not its file name", {"id": "other_words"}, "is not the file's name"),
]


def _instrument(vocabulary: str | None, labels=("Never", "Sometimes", "Often", "Always")) -> dict:
    option_set: dict[str, Any] = {
        "options": [{"value": n, "label": label} for n, label in enumerate(labels)]
    }
    if vocabulary:
        option_set["vocabulary"] = vocabulary
    return {
        "id": "mood_check",
        "version": "1",
        "title": "Mood check",
        "short_title": "Mood check",
        "licence": "Written by the practice, free to use",
        "source": "Practice protocol 2024",
        "stem": "Over the last week:",
        "option_sets": {"freq": option_set},
        "items": [{"id": "low", "text": "I felt low", "options": "freq"}],
        "bands": [{"id": "all", "label": "All", "min": 0, "max": 3}],
    }


def _folder(tmp_path: Path, instrument: dict | None, vocabulary: dict | None) -> Path:
    if instrument is not None:
        (tmp_path / "mood_check.yaml").write_text(yaml.safe_dump(instrument), encoding="utf-8")
    if vocabulary is not None:
        (tmp_path / "vocabulary").mkdir()
        (tmp_path / "vocabulary" / "mood_words.yaml").write_text(
            yaml.safe_dump(vocabulary), encoding="utf-8"
        )
    return tmp_path


@pytest.mark.parametrize(
    ("change", "fault"), [r[1:] for r in BAD_VOCABULARIES], ids=[r[0] for r in BAD_VOCABULARIES]
)
def test_a_bad_vocabulary_stops_the_catalogue_with_an_error_naming_the_file(
    tmp_path, change, fault
):
    vocabulary = {**copy.deepcopy(GOOD), **change}
    folder = _folder(tmp_path, None, vocabulary)
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([folder])
    assert caught.value.path == str(folder / "vocabulary" / "mood_words.yaml")
    assert fault in caught.value.fault


def test_a_vocabulary_that_is_not_a_mapping_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "vocabulary").mkdir()
    path = tmp_path / "vocabulary" / "mood_words.yaml"
    path.write_text("- nope\n- nah\n", encoding="utf-8")
    with pytest.raises(InstrumentFileError, match="not a mapping of vocabulary fields"):
        load_catalogue([tmp_path])


def test_a_vocabulary_whose_phrase_clashes_with_the_option_sets_own_words_is_refused(tmp_path):
    instrument = _instrument("mood_words")
    instrument["option_sets"]["freq"]["options"][2]["synonyms"] = ["not ever"]
    folder = _folder(tmp_path, instrument, GOOD)
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([folder])
    assert caught.value.path == str(folder / "mood_check.yaml")
    assert "gives 'not ever' to 'Never' but the option set gives it to 'Often'" in str(caught.value)


def test_the_same_vocabulary_id_twice_is_an_error(tmp_path):
    (tmp_path / "vocabulary").mkdir()
    (tmp_path / "vocabulary" / "frequency.yaml").write_text(
        yaml.safe_dump({"id": "frequency", "scale": "x", "options": {"Not at all": ["nix"]}}),
        encoding="utf-8",
    )
    with pytest.raises(InstrumentFileError, match="already defined"):
        load_catalogue([tmp_path])


# -- a practice's own questionnaire -----------------------------------------------------


def _answer(catalogue, text: str) -> list[int]:
    state, _ = start("mood_check", catalogue, Context(practice_name="Riverside Surgery"), NOW)
    _, events = resume(state, catalogue, PatientText(text=text), NOW)
    return [e.value for e in events if isinstance(e, AnswerRecorded)]


def test_a_practice_questionnaire_can_use_a_shipped_vocabulary(tmp_path):
    labels = ("Not at all", "Several days", "More than half the days", "Nearly every day")
    catalogue = load_catalogue([_folder(tmp_path, _instrument("frequency", labels), None)])
    assert _answer(catalogue, "now and then") == [1]
    assert _answer(catalogue, "nope thanks") == [0]
    assert _answer(catalogue, "not every day") == []


def test_a_practice_questionnaire_can_use_its_own_vocabulary(tmp_path):
    catalogue = load_catalogue([_folder(tmp_path, _instrument("mood_words"), GOOD)])
    assert _answer(catalogue, "loads") == [2]
    assert _answer(catalogue, "not ever") == [0]


def test_without_a_vocabulary_only_the_options_own_words_are_read(tmp_path):
    catalogue = load_catalogue([_folder(tmp_path, _instrument(None), None)])
    assert _answer(catalogue, "often") == [2]
    assert _answer(catalogue, "loads") == []
