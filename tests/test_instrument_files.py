"""The questionnaire files: the six shipped ones as the issue lists them, and bad files refused.

A bad file must stop the service at start-up with an ``InstrumentFileError``
that names the file and says what is wrong with it, never fail later at a
patient's third answer. A practice's own valid file in a configured folder
loads and can be chatted through with no code.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.flows import Context, ConversationState, PatientText, outcome, resume, start
from bot.flows.events import Reply
from bot.instruments import (
    InstrumentFileError,
    builtin_catalogue,
    load_catalogue,
    load_file,
)
from bot.instruments.gsm7 import is_gsm7
from bot.instruments.loader import BUILTIN_DIR

CATALOGUE = builtin_catalogue()
NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

# -- the six shipped instruments -----------------------------------------------------

# id, items, scored items, option values, total range
SHAPES = [
    ("phq9", 10, 9, (0, 3), (0, 27)),
    ("phq2", 2, 2, (0, 3), (0, 6)),
    ("gad7", 7, 7, (0, 3), (0, 21)),
    ("gad2", 2, 2, (0, 3), (0, 6)),
    ("auditc", 3, 3, (0, 4), (0, 12)),
    ("who5", 5, 5, (0, 5), (0, 25)),
]

# id, bands as (id, min, max)
BANDS = [
    (
        "phq9",
        [
            ("none_minimal", 0, 4),
            ("mild", 5, 9),
            ("moderate", 10, 14),
            ("moderately_severe", 15, 19),
            ("severe", 20, 27),
        ],
    ),
    ("phq2", [("negative", 0, 2), ("positive", 3, 6)]),
    ("gad7", [("none_minimal", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("severe", 15, 21)]),
    ("gad2", [("negative", 0, 2), ("positive", 3, 6)]),
    ("auditc", [("lower_risk", 0, 4), ("positive", 5, 12)]),
    ("who5", [("poor_wellbeing", 0, 12), ("adequate_wellbeing", 13, 25)]),
]

# id, flag ids
FLAGS = [
    ("phq9", ["self_harm_risk", "severe_score"]),
    ("phq2", ["positive_screen"]),
    ("gad7", ["severe_score"]),
    ("gad2", ["positive_screen"]),
    ("auditc", ["positive_screen"]),
    ("who5", ["depression_screen"]),
]

# id, LOINC panel, LOINC total, SNOMED CT total, minimal important change
CODES = [
    ("phq9", "44249-1", "44261-6", "720433000", 5),
    ("phq2", "55757-9", "55758-7", "836541000000100", None),
    ("gad7", "69737-5", "70274-6", "445455005", 4),
    ("gad2", None, None, None, None),
    # UK units: LOINC's AUDIT-C panel and total are the US standard-drinks version's
    ("auditc", None, None, "763256006", None),
    ("who5", None, None, None, None),
]

# id, item LOINC codes in order
ITEM_LOINC = [
    (
        "phq9",
        [
            "44250-9",
            "44255-8",
            "44259-0",
            "44254-1",
            "44251-7",
            "44258-2",
            "44252-5",
            "44253-3",
            "44260-8",
            "69722-7",
        ],
    ),
    ("gad7", ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]),
    ("auditc", ["68518-0", None, None]),  # only the first question is LOINC's question
]


def test_exactly_the_six_instruments_ship():
    assert set(CATALOGUE) == {"phq9", "phq2", "gad7", "gad2", "auditc", "who5"}


@pytest.mark.parametrize("instrument_id", [row[0] for row in SHAPES])
def test_each_shipped_file_is_named_by_its_id(instrument_id):
    assert Path(CATALOGUE.path_of(instrument_id)) == BUILTIN_DIR / f"{instrument_id}.yaml"


@pytest.mark.parametrize(("instrument_id", "items", "scored", "values", "total_range"), SHAPES)
def test_shipped_instruments_have_their_published_items_and_range(
    instrument_id, items, scored, values, total_range
):
    instrument = CATALOGUE[instrument_id]
    assert len(instrument.items) == items
    assert len(instrument.scored_item_ids) == scored
    for item in instrument.scored_item_ids:
        offered = sorted(o.value for o in instrument.options_for(item))
        assert offered == list(range(values[0], values[1] + 1)), item
    assert instrument.total_range == total_range


@pytest.mark.parametrize(("instrument_id", "bands"), BANDS)
def test_shipped_bands_are_the_published_cut_offs(instrument_id, bands):
    assert [(b.id, b.min, b.max) for b in CATALOGUE[instrument_id].bands] == bands


@pytest.mark.parametrize(("instrument_id", "flags"), FLAGS)
def test_shipped_flags_are_the_ones_the_issue_lists(instrument_id, flags):
    assert [f.id for f in CATALOGUE[instrument_id].flags] == flags


@pytest.mark.parametrize(("instrument_id", "panel", "total", "snomed", "mic"), CODES)
def test_shipped_codes_and_minimal_important_change(instrument_id, panel, total, snomed, mic):
    instrument = CATALOGUE[instrument_id]
    assert instrument.codes.loinc_panel == panel
    assert instrument.codes.loinc_total == total
    assert instrument.codes.snomed_total == snomed
    assert instrument.minimal_important_change == mic
    if mic is not None:
        assert instrument.minimal_important_change_source


@pytest.mark.parametrize(("instrument_id", "codes"), ITEM_LOINC)
def test_shipped_item_loinc_codes(instrument_id, codes):
    assert [item.loinc for item in CATALOGUE[instrument_id].items] == codes


@pytest.mark.parametrize("instrument_id", [row[0] for row in SHAPES])
def test_every_shipped_file_states_its_licence_source_version_and_wording(instrument_id):
    instrument = CATALOGUE[instrument_id]
    assert instrument.version
    assert instrument.title
    assert len(instrument.licence) > 20
    assert len(instrument.source) > 20
    assert instrument.stem
    assert "en" in instrument.languages
    for item in instrument.items:
        assert item.text and is_gsm7(item.text)
        assert all(o.label for o in instrument.options_for(item.id))


@pytest.mark.parametrize(("screen", "full"), [("phq2", "phq9"), ("gad2", "gad7")])
def test_screens_are_the_first_items_of_the_full_instrument_and_continue_into_it(screen, full):
    screen_items = CATALOGUE[screen].items
    full_items = CATALOGUE[full].items[: len(screen_items)]
    assert [(i.id, i.text, i.loinc) for i in screen_items] == [
        (i.id, i.text, i.loinc) for i in full_items
    ]
    assert CATALOGUE[screen].continuation is not None
    assert CATALOGUE[screen].continuation.instrument == full


def test_phq9_asks_the_difficulty_question_only_when_any_item_is_above_zero():
    difficulty = CATALOGUE["phq9"].item("difficulty")
    assert not difficulty.scored
    assert difficulty.ask_when is not None
    assert difficulty.ask_when.model_dump() == {"any_scored_item_above": 0}


def test_phq9_self_harm_flag_is_raised_at_once_with_crisis_signposting():
    flag = next(f for f in CATALOGUE["phq9"].flags if f.id == "self_harm_risk")
    assert (flag.severity, flag.immediate, flag.crisis_signposting) == ("urgent", True, True)
    assert flag.when.model_dump() == {"item_above": {"item": "self_harm", "value": 0}}


def test_the_only_shipped_safety_critical_item_is_phq9_item_9_and_0_is_its_safe_answer():
    critical = [
        (instrument.id, item.id)
        for instrument in CATALOGUE.values()
        for item in instrument.items
        if item.safety_critical
    ]
    assert critical == [("phq9", "self_harm")]
    phq9 = CATALOGUE["phq9"]
    assert phq9.safe_values("self_harm") == {0}
    assert phq9.crisis_flag_for("self_harm").id == "self_harm_risk"


def test_auditc_options_are_picked_by_letter_because_their_words_are_numbers():
    instrument = CATALOGUE["auditc"]
    assert {instrument.option_set_for(i).keys for i in instrument.item_ids} == {"letters"}


def test_who5_reports_a_percentage_of_raw_times_four():
    assert CATALOGUE["who5"].scoring.percentage_multiplier == 4


# -- bad files -----------------------------------------------------------------------

VALID: dict[str, Any] = {
    "id": "mood_check",
    "version": "1",
    "title": "Mood check",
    "short_title": "Mood check",
    "licence": "Written by the practice, free to use",
    "source": "Practice protocol 2024",
    "stem": "Over the last week:",
    "option_sets": {
        "freq": {
            "options": [
                {"value": 0, "label": "Never"},
                {"value": 1, "label": "Sometimes"},
                {"value": 2, "label": "Often"},
                {"value": 3, "label": "Always"},
            ]
        }
    },
    "items": [
        {"id": "low", "text": "I felt low", "options": "freq"},
        {"id": "tired", "text": "I felt tired", "options": "freq"},
        {
            "id": "impact",
            "text": "Did this stop you working?",
            "options": "freq",
            "scored": False,
            "ask_when": {"item_above": {"item": "low", "value": 0}},
        },
    ],
    "bands": [
        {"id": "fine", "label": "Fine", "min": 0, "max": 2},
        {"id": "struggling", "label": "Struggling", "min": 3, "max": 6},
    ],
    "flags": [
        {"id": "struggling_flag", "severity": "routine", "when": {"band_in": ["struggling"]}},
        {
            "id": "always_low",
            "severity": "routine",
            "when": {"item_above": {"item": "low", "value": 2}},
        },
    ],
}


def _set(path: str, value: Any):
    """A mutation that sets one field, e.g. _set('items.0.text', 'x')."""

    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _append(path: str, value: Any):
    def mutate(data: dict) -> None:
        target: Any = data
        for key in path.split("."):
            target = target[int(key)] if isinstance(target, list) else target[key]
        target.append(value)

    return mutate


def _write(folder: Path, data: dict, name: str | None = None) -> Path:
    path = folder / f"{name or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _band(band_id: str, low: int, high: int) -> dict:
    return {"id": band_id, "label": band_id.title(), "min": low, "max": high}


def _both(*mutations):
    def mutate(data: dict) -> None:
        for mutation in mutations:
            mutation(data)

    return mutate


def _crisis_flag(item: str, severity: str = "routine", above: int = 0) -> dict:
    return {
        "id": "risk",
        "severity": severity,
        "immediate": True,
        "crisis_signposting": True,
        "when": {"item_above": {"item": item, "value": above}},
    }


# name, mutation, words the fault must contain
BAD_FILES = [
    (
        "band gap",
        _set("bands", [_band("fine", 0, 2), _band("struggling", 4, 6)]),
        "gap at total 3",
    ),
    (
        "band overlap",
        _set("bands", [_band("fine", 0, 3), _band("struggling", 3, 6)]),
        "overlap at total 3",
    ),
    (
        "bands not reaching the maximum",
        _set("bands", [_band("fine", 0, 2), _band("struggling", 3, 5)]),
        "bands end at 5 but totals reach 6",
    ),
    (
        "bands not starting at the minimum",
        _set("bands", [_band("fine", 1, 2), _band("struggling", 3, 6)]),
        "gap at total 0",
    ),
    (
        "band with min above max",
        _set("bands", [_band("fine", 0, 6), _band("struggling", 7, 6)]),
        "min above max",
    ),
    (
        "branch on a later item",
        _set("items.0.ask_when", {"item_above": {"item": "tired", "value": 0}}),
        "item 'low' branches on 'tired', which is not an earlier item",
    ),
    (
        "branch on an unknown item",
        _set("items.2.ask_when", {"item_above": {"item": "sleep", "value": 0}}),
        "item 'impact' branches on 'sleep', which is not an earlier item",
    ),
    (
        "branch on a band",
        _set("items.2.ask_when", {"band_in": ["fine"]}),
        "branches on a band",
    ),
    (
        "flag on an unknown item",
        _set("flags.1.when", {"item_above": {"item": "sleep", "value": 0}}),
        "flag 'always_low' refers to unknown item 'sleep'",
    ),
    (
        "flag on an unknown band",
        _set("flags.0.when", {"band_in": ["severe"]}),
        "flag 'struggling_flag' refers to unknown band 'severe'",
    ),
    (
        "immediate flag that needs the total",
        _append(
            "flags",
            {"id": "now", "severity": "urgent", "immediate": True, "when": {"total_at_least": 5}},
        ),
        "flag 'now' is immediate but needs the total",
    ),
    (
        "unknown rule name",
        _set("flags.1.when", {"item_is": {"item": "low", "value": 3}}),
        "item_is",
    ),
    (
        "unknown option set",
        _set("items.1.options", "frequency"),
        "item 'tired' uses unknown option set 'frequency'",
    ),
    (
        "duplicate item id",
        _append("items", {"id": "low", "text": "Low again", "options": "freq"}),
        "item ids are not unique",
    ),
    (
        "repeated option value",
        _set("option_sets.freq.options.3.value", 2),
        "repeats a value",
    ),
    (
        "same words for two options",
        _set("option_sets.freq.options.3.synonyms", ["often"]),
        "same words to two options",
    ),
    (
        "curly quote in an item",
        _set("items.0.text", "I felt \u2018low\u2019"),
        "item 'low' has characters SMS cannot send plainly",
    ),
    (
        "emoji in an option",
        _set("option_sets.freq.options.0.label", "Never \U0001f600"),
        "option 'Never \U0001f600' has characters SMS cannot send plainly",
    ),
    (
        "en dash in the stem",
        _set("stem", "Over the last week \u2013 how often:"),
        "stem has characters SMS cannot send plainly",
    ),
    (
        "GSM-7 extension characters in an item",
        _set("items.1.text", "I felt tired [most days]"),
        "extension characters",
    ),
    (
        "unknown vocabulary",
        _set("option_sets.freq.vocabulary", "how_often_words"),
        "option set 'freq' uses unknown vocabulary 'how_often_words'",
    ),
    (
        "vocabulary for other options",
        _set("option_sets.freq.vocabulary", "frequency"),
        "vocabulary 'frequency' has words for 'Not at all', which is not one of its options",
    ),
    (
        "safety-critical item without a crisis flag",
        _set("items.0.safety_critical", True),
        "item 'low' is safety_critical but no immediate flag with crisis_signposting",
    ),
    (
        "crisis flag on an item not marked safety-critical",
        _append("flags", _crisis_flag("tired", "urgent")),
        "sends the crisis message on an answer to item 'tired': mark the item safety_critical",
    ),
    (
        "safety-critical item whose crisis flag is not urgent",
        _both(_set("items.1.safety_critical", True), _append("flags", _crisis_flag("tired"))),
        "item 'tired' is safety_critical but its crisis flag 'risk' is not urgent",
    ),
    (
        "safety-critical item with no safe answer",
        _both(
            _set("items.1.safety_critical", True),
            _append("flags", _crisis_flag("tired", "urgent", above=-1)),
        ),
        "every answer raises its crisis flag",
    ),
    ("misspelt field", _set("flagz", []), "flagz"),
    ("missing items", lambda data: data.pop("items"), "items: Field required"),
    ("no items", _set("items", []), "items"),
    ("id that is not lower case", _set("id", "Mood-Check"), "id"),
    ("option value above 9", _set("option_sets.freq.options.3.value", 10), "value"),
    ("short title too long", _set("short_title", "x" * 21), "short_title"),
    (
        "prorating without a source",
        _set("scoring", {"prorating": {"max_missing": 1}}),
        "prorating.source",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "fault"), [row[1:] for row in BAD_FILES], ids=[row[0] for row in BAD_FILES]
)
def test_a_bad_file_is_an_error_naming_the_file_and_the_fault(tmp_path, mutate, fault):
    data = copy.deepcopy(VALID)
    mutate(data)
    path = _write(tmp_path, data, name="practice_form")
    with pytest.raises(InstrumentFileError) as caught:
        load_file(path)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert fault in caught.value.fault


def test_the_valid_base_of_the_bad_file_table_loads(tmp_path):
    assert load_file(_write(tmp_path, VALID)).id == "mood_check"


# name, file text, words the fault must contain
UNREADABLE = [
    ("not YAML", "id: [unclosed\nitems: {", "cannot be read"),
    ("a YAML list", "- id: mood_check\n", "is not a mapping"),
    ("a YAML string", "just some words\n", "is not a mapping"),
    ("empty", "", "is not a mapping"),
]


@pytest.mark.parametrize(
    ("text", "fault"), [row[1:] for row in UNREADABLE], ids=[row[0] for row in UNREADABLE]
)
def test_a_file_that_is_not_an_instrument_mapping_is_an_error_naming_the_file(
    tmp_path, text, fault
):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(InstrumentFileError) as caught:
        load_file(path)
    assert caught.value.path == str(path)
    assert fault in caught.value.fault


def test_a_file_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InstrumentFileError, match=re.escape(str(path))):
        load_file(path)


# -- catalogues: folders, duplicates, continuations ----------------------------------


def test_a_practice_folder_adds_its_questionnaire_to_the_six(tmp_path):
    _write(tmp_path, VALID)
    catalogue = load_catalogue([tmp_path])
    assert set(catalogue) == set(CATALOGUE) | {"mood_check"}
    assert catalogue.path_of("mood_check") == str(tmp_path / "mood_check.yaml")


def test_a_practice_folder_is_also_accepted_as_a_string(tmp_path):
    _write(tmp_path, VALID)
    assert "mood_check" in load_catalogue([str(tmp_path)])


def test_files_that_are_not_yaml_in_a_practice_folder_are_ignored(tmp_path):
    _write(tmp_path, VALID)
    (tmp_path / "README.txt").write_text("not a questionnaire: [")
    (tmp_path / "notes.json").write_text("{")
    assert set(load_catalogue([tmp_path])) == set(CATALOGUE) | {"mood_check"}


def test_a_yml_suffix_is_loaded_too(tmp_path):
    (tmp_path / "mood_check.yml").write_text(yaml.safe_dump(VALID))
    assert "mood_check" in load_catalogue([tmp_path])


def test_a_bad_file_in_a_practice_folder_stops_the_whole_catalogue(tmp_path):
    _write(tmp_path, VALID)
    data = copy.deepcopy(VALID)
    data["id"] = "broken_form"
    data["bands"] = [_band("fine", 0, 2)]
    bad = _write(tmp_path, data)
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([tmp_path])
    assert caught.value.path == str(bad)
    assert "bands end at 2 but totals reach 6" in caught.value.fault


def test_a_folder_that_does_not_exist_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([missing])
    assert caught.value.path == str(missing)
    assert "not a folder" in caught.value.fault


def test_reusing_a_shipped_id_in_a_practice_folder_is_an_error(tmp_path):
    data = copy.deepcopy(VALID)
    data["id"] = "phq9"
    path = _write(tmp_path, data, name="my_phq9")
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([tmp_path])
    assert caught.value.path == str(path)
    assert "'phq9' is already used by" in caught.value.fault
    assert str(BUILTIN_DIR / "phq9.yaml") in caught.value.fault


def test_the_same_id_in_two_practice_folders_is_an_error_naming_both(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    one = _write(first, VALID)
    two = _write(second, VALID, name="copy_of_mood_check")
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([first, second])
    assert caught.value.path == str(two)
    assert str(one) in caught.value.fault


def test_a_continuation_to_an_unknown_instrument_is_an_error(tmp_path):
    data = copy.deepcopy(VALID)
    data["continuation"] = {"instrument": "mood_check_full", "when": {"band_in": ["struggling"]}}
    path = _write(tmp_path, data)
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([tmp_path])
    assert caught.value.path == str(path)
    assert "continues to unknown instrument 'mood_check_full'" in caught.value.fault


def test_a_continuation_on_an_unknown_band_is_an_error(tmp_path):
    data = copy.deepcopy(VALID)
    data["continuation"] = {"instrument": "phq9", "when": {"band_in": ["positive"]}}
    with pytest.raises(InstrumentFileError, match="continuation refers to unknown band"):
        load_file(_write(tmp_path, data))


def test_a_continuation_carrying_an_item_with_other_options_is_an_error(tmp_path):
    data = copy.deepcopy(VALID)
    data["items"][0]["id"] = "interest"  # a PHQ-9 item id, but a 0-3 set of other values
    data["flags"][1]["when"] = {"item_above": {"item": "interest", "value": 2}}
    data["items"][2]["ask_when"] = {"item_above": {"item": "interest", "value": 0}}
    data["option_sets"]["freq"]["options"][3]["value"] = 4
    data["bands"] = [_band("fine", 0, 2), _band("struggling", 3, 8)]
    data["continuation"] = {"instrument": "phq9", "when": {"band_in": ["struggling"]}}
    path = _write(tmp_path, data)
    with pytest.raises(InstrumentFileError) as caught:
        load_catalogue([tmp_path])
    assert caught.value.path == str(path)
    assert "'interest' is carried to phq9 with other options" in caught.value.fault


# -- a practice's own questionnaire works with no code ---------------------------------


def _chat(catalogue, instrument_id: str, lines: list[str]) -> tuple[ConversationState, list]:
    context = Context(practice_name="Riverside Surgery", practice_phone="01632 960123")
    state, events = start(instrument_id, catalogue, context, NOW)
    replies = [e for e in events if isinstance(e, Reply)]
    for line in lines:
        state = ConversationState.from_json(state.to_json())
        state, events = resume(state, catalogue, PatientText(text=line), NOW)
        replies += [e for e in events if isinstance(e, Reply)]
    return state, replies


def test_a_practice_questionnaire_can_be_chatted_through_with_its_branch(tmp_path):
    _write(tmp_path, VALID)
    catalogue = load_catalogue([tmp_path])
    state, replies = _chat(catalogue, "mood_check", ["often", "no idea", "3", "Sometimes."])
    assert [r.kind for r in replies] == [
        "intro",
        "question",
        "question",
        "reprompt",
        "question",
        "thanks",
    ]
    assert "2 questions" in replies[0].text
    assert "Q1/2: I felt low" in replies[1].text
    assert "Over the last week:" in replies[1].text
    assert "One more question: Did this stop you working?" in replies[4].text
    result = outcome(state, catalogue, NOW)
    assert result.status == "completed"
    assert result.answers == {"low": 2, "tired": 3, "impact": 1}
    assert (result.total, result.band) == (5, "struggling")
    assert result.flags == ["struggling_flag"]


def test_a_practice_questionnaire_skips_its_branch_when_the_rule_is_false(tmp_path):
    _write(tmp_path, VALID)
    catalogue = load_catalogue([tmp_path])
    state, replies = _chat(catalogue, "mood_check", ["never", "never"])
    assert replies[-1].kind == "thanks"
    result = outcome(state, catalogue, NOW)
    assert result.answers == {"low": 0, "tired": 0}
    assert (result.total, result.band, result.flags) == (0, "fine", [])
