"""Scoring as published: totals, bands at every boundary, flags, and missing never as zero.

Answers are written as one character per scored item, in item order: a digit is
the value, "-" is an unanswered item. "333333200" is a PHQ-9 with items 1-6
answered 3, item 7 answered 2 and items 8-9 answered 0.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.instruments import (
    InstrumentFileError,
    InvalidAnswer,
    builtin_catalogue,
    load_file,
    score,
)
from bot.instruments.schema import Instrument

CATALOGUE = builtin_catalogue()
SHIPPED = ("phq9", "phq2", "gad7", "gad2", "auditc", "who5")


def answers_from(instrument: Instrument, values: str) -> dict[str, int]:
    """'31-0' -> {item1: 3, item2: 1, item4: 0}, over the scored items in order."""
    items = instrument.scored_item_ids
    assert len(values) == len(items), f"{instrument.id} has {len(items)} scored items"
    return {item: int(v) for item, v in zip(items, values, strict=True) if v != "-"}


# -- totals and bands at every boundary ------------------------------------------------

# instrument, answers, total, band, flags
BOUNDARIES = [
    # PHQ-9: none_minimal 0-4, mild 5-9, moderate 10-14, moderately_severe 15-19, severe 20-27
    ("phq9", "000000000", 0, "none_minimal", set()),
    ("phq9", "111100000", 4, "none_minimal", set()),
    ("phq9", "111110000", 5, "mild", set()),
    ("phq9", "333000000", 9, "mild", set()),
    ("phq9", "333100000", 10, "moderate", set()),
    ("phq9", "333311000", 14, "moderate", set()),
    ("phq9", "333330000", 15, "moderately_severe", set()),
    ("phq9", "333333100", 19, "moderately_severe", set()),
    ("phq9", "333333200", 20, "severe", {"severe_score"}),
    ("phq9", "333333330", 24, "severe", {"severe_score"}),
    ("phq9", "333333333", 27, "severe", {"severe_score", "self_harm_risk"}),
    # PHQ-2: negative 0-2, positive 3-6
    ("phq2", "00", 0, "negative", set()),
    ("phq2", "20", 2, "negative", set()),
    ("phq2", "21", 3, "positive", {"positive_screen"}),
    ("phq2", "33", 6, "positive", {"positive_screen"}),
    # GAD-7: none_minimal 0-4, mild 5-9, moderate 10-14, severe 15-21
    ("gad7", "0000000", 0, "none_minimal", set()),
    ("gad7", "1111000", 4, "none_minimal", set()),
    ("gad7", "1111100", 5, "mild", set()),
    ("gad7", "3330000", 9, "mild", set()),
    ("gad7", "3331000", 10, "moderate", set()),
    ("gad7", "3333200", 14, "moderate", set()),
    ("gad7", "3333300", 15, "severe", {"severe_score"}),
    ("gad7", "3333333", 21, "severe", {"severe_score"}),
    # GAD-2: negative 0-2, positive 3-6
    ("gad2", "00", 0, "negative", set()),
    ("gad2", "11", 2, "negative", set()),
    ("gad2", "12", 3, "positive", {"positive_screen"}),
    ("gad2", "33", 6, "positive", {"positive_screen"}),
    # AUDIT-C: lower_risk 0-4, positive 5-12
    ("auditc", "000", 0, "lower_risk", set()),
    ("auditc", "220", 4, "lower_risk", set()),
    ("auditc", "221", 5, "positive", {"positive_screen"}),
    ("auditc", "444", 12, "positive", {"positive_screen"}),
    # WHO-5: poor_wellbeing 0-12, adequate_wellbeing 13-25; depression_screen when
    # the raw total is below 13 or any item is 0 or 1
    ("who5", "00000", 0, "poor_wellbeing", {"depression_screen"}),
    ("who5", "33222", 12, "poor_wellbeing", {"depression_screen"}),
    ("who5", "33322", 13, "adequate_wellbeing", set()),
    ("who5", "55555", 25, "adequate_wellbeing", set()),
]


@pytest.mark.parametrize(
    ("instrument_id", "values", "total", "band", "flags"),
    BOUNDARIES,
    ids=[f"{row[0]}-{row[2]}-{row[3]}" for row in BOUNDARIES],
)
def test_total_band_and_flags_at_each_band_boundary(instrument_id, values, total, band, flags):
    instrument = CATALOGUE[instrument_id]
    result = score(instrument, answers_from(instrument, values))
    assert result.total == total
    assert result.band == band
    assert set(result.flags) == flags
    assert result.complete
    assert not result.prorated


@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_boundary_table_covers_both_sides_of_every_band_edge_and_min_and_max(instrument_id):
    instrument = CATALOGUE[instrument_id]
    tested = {total for (i, _, total, _, _) in BOUNDARIES if i == instrument_id}
    low, high = instrument.total_range
    edges = {low, high} | {b.min for b in instrument.bands} | {b.max for b in instrument.bands}
    assert edges <= tested


@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_every_possible_total_has_exactly_one_band(instrument_id):
    instrument = CATALOGUE[instrument_id]
    low, high = instrument.total_range
    for total in range(low, high + 1):
        assert sum(b.min <= total <= b.max for b in instrument.bands) == 1, total


# -- flags ----------------------------------------------------------------------------

# instrument, answers, flags: the rules each flag states, away from band edges
FLAG_RULES = [
    # PHQ-9 self_harm_risk: item 9 above 0, whatever the total
    ("phq9", "000000001", {"self_harm_risk"}),
    ("phq9", "000000002", {"self_harm_risk"}),
    ("phq9", "000000003", {"self_harm_risk"}),
    ("phq9", "333333220", {"severe_score"}),
    ("phq9", "333333221", {"severe_score", "self_harm_risk"}),
    # GAD-7 severe_score from 15
    ("gad7", "3333200", set()),
    ("gad7", "3333210", {"severe_score"}),
    # WHO-5 depression_screen: any item at 0 or 1, even with a high total
    ("who5", "55551", {"depression_screen"}),
    ("who5", "55550", {"depression_screen"}),
    ("who5", "15555", {"depression_screen"}),
    ("who5", "55552", set()),
    ("who5", "22222", {"depression_screen"}),
    ("who5", "32222", {"depression_screen"}),
]


@pytest.mark.parametrize(
    ("instrument_id", "values", "flags"),
    FLAG_RULES,
    ids=[f"{row[0]}-{row[1]}" for row in FLAG_RULES],
)
def test_flags_follow_their_published_rules(instrument_id, values, flags):
    instrument = CATALOGUE[instrument_id]
    assert set(score(instrument, answers_from(instrument, values)).flags) == flags


# raw, percentage
WHO5_PERCENTAGES = [("00000", 0), ("33222", 48), ("33322", 52), ("55551", 84), ("55555", 100)]


@pytest.mark.parametrize(("values", "percentage"), WHO5_PERCENTAGES)
def test_who5_reports_the_percentage_as_raw_times_four(values, percentage):
    instrument = CATALOGUE["who5"]
    result = score(instrument, answers_from(instrument, values))
    assert result.percentage == percentage == result.total * 4


@pytest.mark.parametrize("instrument_id", ["phq9", "phq2", "gad7", "gad2", "auditc"])
def test_instruments_without_a_percentage_scale_report_none(instrument_id):
    instrument = CATALOGUE[instrument_id]
    answers = {item: 1 for item in instrument.scored_item_ids}
    assert score(instrument, answers).percentage is None


def test_who5_incomplete_has_no_percentage():
    instrument = CATALOGUE["who5"]
    assert score(instrument, answers_from(instrument, "5555-")).percentage is None


@pytest.mark.parametrize("difficulty", [0, 1, 2, 3])
def test_phq9_difficulty_question_is_recorded_but_never_scored(difficulty):
    instrument = CATALOGUE["phq9"]
    answers = {**answers_from(instrument, "111110000"), "difficulty": difficulty}
    result = score(instrument, answers)
    assert (result.total, result.band, result.complete) == (5, "mild", True)


def test_phq9_is_complete_without_the_difficulty_question():
    instrument = CATALOGUE["phq9"]
    assert score(instrument, answers_from(instrument, "000000000")).complete


# -- missing answers never count as zero ------------------------------------------------

TOTAL_BASED_FLAGS = {"severe_score", "positive_screen"}
MISSING_ONE = [(i, item) for i in SHIPPED for item in CATALOGUE[i].scored_item_ids]


@pytest.mark.parametrize(
    ("instrument_id", "missing_item"), MISSING_ONE, ids=[f"{i}-{m}" for i, m in MISSING_ONE]
)
def test_one_missing_answer_leaves_no_total_no_band_and_no_total_based_flag(
    instrument_id, missing_item
):
    """Every other item at its maximum: counting the gap as 0 would still reach the top band."""
    instrument = CATALOGUE[instrument_id]
    answers = {
        item: max(o.value for o in instrument.options_for(item))
        for item in instrument.scored_item_ids
        if item != missing_item
    }
    result = score(instrument, answers)
    assert result.total is None
    assert result.band is None
    assert result.percentage is None
    assert not result.complete
    assert not result.prorated
    assert not set(result.flags) & TOTAL_BASED_FLAGS
    assert "depression_screen" not in result.flags  # a gap is neither a 0 nor a low total


@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_no_answers_at_all_is_incomplete_with_no_total_and_no_flags(instrument_id):
    result = score(CATALOGUE[instrument_id], {})
    assert (result.total, result.band, result.complete, result.flags) == (None, None, False, ())


# instrument, answers, flags that still stand without a total
INCOMPLETE_ITEM_FLAGS = [
    ("phq9", "-00000003", {"self_harm_risk"}),
    ("phq9", "33333333-", set()),
    ("who5", "0----", {"depression_screen"}),
    ("who5", "5555-", set()),
    ("gad7", "333333-", set()),
    ("auditc", "44-", set()),
]


@pytest.mark.parametrize(
    ("instrument_id", "values", "flags"),
    INCOMPLETE_ITEM_FLAGS,
    ids=[f"{row[0]}-{row[1]}" for row in INCOMPLETE_ITEM_FLAGS],
)
def test_incomplete_answers_raise_only_flags_their_own_items_justify(instrument_id, values, flags):
    instrument = CATALOGUE[instrument_id]
    result = score(instrument, answers_from(instrument, values))
    assert result.total is None
    assert set(result.flags) == flags


# -- invalid answers ------------------------------------------------------------------

# instrument, answers
INVALID = [
    ("phq9", {"interest": 4}),
    ("phq9", {"interest": -1}),
    ("phq9", {"difficulty": 4}),
    ("phq9", {"item10": 0}),
    ("phq2", {"sleep": 0}),
    ("gad2", {"relaxing": 1}),
    ("gad7", {"nervous": 3, "afraid": 7}),
    ("auditc", {"frequency": 5}),
    ("who5", {"cheerful": 6}),
    ("who5", {"Cheerful": 5}),
]


@pytest.mark.parametrize(
    ("instrument_id", "answers"), INVALID, ids=[f"{i}-{a}" for i, a in INVALID]
)
def test_unknown_items_and_values_not_offered_raise_invalid_answer(instrument_id, answers):
    with pytest.raises(InvalidAnswer):
        score(CATALOGUE[instrument_id], answers)


def test_invalid_answer_is_a_value_error_naming_the_item():
    with pytest.raises(ValueError, match="interest"):
        score(CATALOGUE["phq9"], {"interest": 9})


# -- prorating (declared by a file; none of the six shipped instruments has it) --------

PRORATED_FILE = """\
id: sixitem
version: "1"
title: Six item test scale
short_title: SIX
licence: test only
source: test only
stem: In the last week
option_sets:
  freq:
    options:
      - {value: 0, label: Never}
      - {value: 1, label: Sometimes}
      - {value: 2, label: Often}
      - {value: 3, label: Always}
items:
  - {id: q1, text: One, options: freq}
  - {id: q2, text: Two, options: freq}
  - {id: q3, text: Three, options: freq}
  - {id: q4, text: Four, options: freq}
  - {id: q5, text: Five, options: freq}
  - {id: q6, text: Six, options: freq}
scoring:
  method: sum
  prorating:
    max_missing: 2
    source: Test scale manual, section 3 (mean of answered items times six)
bands:
  - {id: low, label: Low, min: 0, max: 8}
  - {id: high, label: High, min: 9, max: 18}
flags:
  - {id: high_score, severity: routine, when: {band_in: [high]}}
"""


@pytest.fixture
def prorated(tmp_path: Path) -> Instrument:
    path = tmp_path / "sixitem.yaml"
    path.write_text(textwrap.dedent(PRORATED_FILE))
    return load_file(path)


# answers, total, band, prorated, complete
PRORATING = [
    ("123012", 9, "high", False, True),
    ("11111-", 6, "low", True, False),  # 5 x 6/5 = 6
    ("22111-", 8, "low", True, False),  # 7 x 6/5 = 8.4 -> 8
    ("22211-", 10, "high", True, False),  # 8 x 6/5 = 9.6 -> 10
    ("1110--", 5, "low", True, False),  # 3 x 6/4 = 4.5 -> 5: half rounds up
    ("1121--", 8, "low", True, False),  # 5 x 6/4 = 7.5 -> 8
    ("-3-333", 18, "high", True, False),
    ("111---", None, None, False, False),  # 3 missing: more than max_missing 2
    ("------", None, None, False, False),
]


@pytest.mark.parametrize(("values", "total", "band", "is_prorated", "complete"), PRORATING)
def test_prorating_takes_the_mean_of_answered_items_within_the_declared_limit(
    prorated, values, total, band, is_prorated, complete
):
    result = score(prorated, answers_from(prorated, values))
    assert result.total == total
    assert result.band == band
    assert result.prorated is is_prorated
    assert result.complete is complete


def test_a_prorated_total_is_banded_and_flagged_like_any_other(prorated):
    result = score(prorated, answers_from(prorated, "22211-"))
    assert result.flags == ("high_score",)


def test_a_prorating_rule_must_cite_its_source(tmp_path):
    path = tmp_path / "nosource.yaml"
    path.write_text(PRORATED_FILE.replace("    source: Test scale manual", "    # no source"))
    with pytest.raises(InstrumentFileError, match=r"prorating\.source"):
        load_file(path)


@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_no_shipped_instrument_prorates(instrument_id):
    assert CATALOGUE[instrument_id].scoring.prorating is None
