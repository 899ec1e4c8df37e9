"""The "copy to record" text and the words behind flags, as exact strings.

A GP record keeps this text for years: the code must be the confirmed one in
the instrument's file, a missing answer must read as missing, and the change
must say what it means by the published definition.
"""

from __future__ import annotations

from datetime import date

from bot.instruments import builtin_catalogue
from bot.instruments.change import Scored, classify
from bot.instruments.record_summary import Previous, record_text
from bot.instruments.wording import flag_reason

CATALOGUE = builtin_catalogue()
PHQ9 = CATALOGUE["phq9"]
ITEM9 = "Thoughts that you would be better off dead or of hurting yourself in some way"


def _phq9(values: list[int]) -> dict[str, int]:
    return dict(zip(PHQ9.scored_item_ids, values, strict=True))


def test_a_phq9_result_with_a_reliable_recovery_reads_as_the_record_takes_it():
    answers = _phq9([1, 1, 1, 1, 1, 1, 1, 1, 1])
    text = record_text(
        PHQ9,
        on=date(2026, 11, 12),
        total=9,
        band="mild",
        answers=answers,
        prorated=False,
        previous=Previous(15, date(2026, 10, 1)),
        change=classify(PHQ9, Scored(15), Scored(9)),
    )
    assert text == "\n".join(
        [
            "SNOMED CT 720433000 |Patient Health Questionnaire Nine Item score| = 9",
            "Date: 12 Nov 2026",
            "Score: 9 (0-27)",
            "Band: Mild",
            f"Q9 ({ITEM9}): Several days (1)",
            "Change since 15 on 1 Oct 2026: Reliable improvement, reliable recovery "
            "(-6 points; a change of 6 or more is reliable; reliable recovery)",
            "Patient-reported by SMS, Patient Health Questionnaire (PHQ-9) v1.0",
        ]
    )


def test_a_first_result_is_the_baseline():
    text = record_text(
        PHQ9,
        on=date(2026, 10, 1),
        total=0,
        band="none_minimal",
        answers=_phq9([0] * 9),
        prorated=False,
        previous=None,
        change=None,
    )
    assert "Change: first score (baseline)" in text.splitlines()
    assert f"Q9 ({ITEM9}): Not at all (0)" in text.splitlines()


def test_an_incomplete_result_is_not_scored_and_its_missing_risk_answer_says_missing():
    answers = _phq9([2, 2, 2, 2, 2, 2, 2, 2, 0])
    del answers["self_harm"]
    text = record_text(
        PHQ9,
        on=date(2026, 10, 1),
        total=None,
        band=None,
        answers=answers,
        prorated=False,
        previous=Previous(15, date(2026, 9, 1)),
        change=None,
    )
    assert text.splitlines() == [
        "PHQ-9: not scored (1 of 9 questions unanswered; a missing answer is not counted as 0)",
        "Date: 1 Oct 2026",
        f"Q9 ({ITEM9}): missing (not answered)",
        "Change: not assessed (this result has no total)",
        "Patient-reported by SMS, Patient Health Questionnaire (PHQ-9) v1.0",
    ]


def test_who5_has_no_confirmed_code_so_none_is_written_and_the_percentage_is_given():
    who5 = CATALOGUE["who5"]
    text = record_text(
        who5,
        on=date(2026, 11, 12),
        total=13,
        band="adequate_wellbeing",
        answers=dict.fromkeys(who5.scored_item_ids, 3) | {who5.scored_item_ids[0]: 1},
        prorated=False,
        previous=Previous(10, date(2026, 10, 1)),
        change=classify(who5, Scored(10), Scored(13)),
    )
    lines = text.splitlines()
    assert lines[0] == "WHO-5 score = 13 (no confirmed SNOMED CT code for this score)"
    assert "SNOMED" not in "".join(lines[1:])
    assert lines[2] == "Score: 13 (0-25), 52%"
    assert lines[4] == (
        "Change since 10 on 1 Oct 2026: Reliable improvement "
        "(+12 percentage points; a change of 10 or more is reliable)"
    )


def test_an_instrument_without_a_published_threshold_gives_the_difference_only():
    phq2 = CATALOGUE["phq2"]
    text = record_text(
        phq2,
        on=date(2026, 11, 12),
        total=1,
        band="negative",
        answers={"interest": 1, "mood": 0},
        prorated=False,
        previous=Previous(5, date(2026, 10, 1)),
        change=None,
    )
    assert text.splitlines()[0] == (
        "SNOMED CT 836541000000100 |Patient health questionnaire 2 score| = 1"
    )
    assert text.splitlines()[-2] == (
        "Change since 5 on 1 Oct 2026: -4 points (no published threshold for a reliable "
        "change in the PHQ-2)"
    )


def test_a_flag_reason_names_the_answer_that_raised_it():
    answers = _phq9([3, 3, 3, 3, 3, 2, 2, 2, 2])
    assert flag_reason(PHQ9, "self_harm_risk", answers, 23, "severe") == (
        "PHQ-9 Q9 (Thoughts that you would be better off dead or of hurting...) "
        "answered 'More than half the days' (2)"
    )
    assert flag_reason(PHQ9, "severe_score", answers, 23, "severe") == "PHQ-9 total 23, severe"


def test_a_who5_screen_reason_names_only_the_parts_that_hold():
    who5 = CATALOGUE["who5"]
    answers = dict.fromkeys(who5.scored_item_ids, 4) | {who5.scored_item_ids[1]: 1}
    reason = flag_reason(who5, "depression_screen", answers, 17, "adequate_wellbeing")
    assert "is below 13" not in reason
    assert reason.startswith("WHO-5 Q2 (")
    assert reason.endswith("answered 'Some of the time' (1)")
