"""Reliable change and recovery, at their edges, against the published definitions.

NHS Talking Therapies (Manual; NHS Digital's guide to IAPT data): reliable
improvement is a fall of 6+ on the PHQ-9 or 4+ on the GAD-7 (a rise as large
is reliable deterioration); caseness is PHQ-9 10+ or GAD-7 8+; recovery is
from caseness at the first score to below it at the last; reliable recovery
is recovery with reliable improvement. WHO-5 (Topp et al. 2015): a change of
10 points on the percentage scale (raw x 4). Sources in docs/scoring.md.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from bot.instruments import InstrumentFileError, builtin_catalogue, load_file
from bot.instruments.change import Scored, classify
from bot.instruments.loader import BUILTIN_DIR

CATALOGUE = builtin_catalogue()

# instrument, baseline, latest, direction, recovery
TABLE = [
    # PHQ-9: reliable change is 6 points
    ("phq9", 15, 10, "no_reliable_change", "not_recovered"),  # -5: not reliable
    ("phq9", 15, 9, "reliable_improvement", "reliable_recovery"),  # -6: reliable, 9 < 10
    ("phq9", 16, 10, "reliable_improvement", "not_recovered"),  # 10 is still a case
    ("phq9", 10, 9, "no_reliable_change", "recovery"),  # 10 -> 9: recovery, not reliable
    ("phq9", 9, 3, "reliable_improvement", "not_a_case"),  # 9 is not a case at baseline
    ("phq9", 14, 9, "no_reliable_change", "recovery"),
    ("phq9", 4, 9, "no_reliable_change", "not_a_case"),  # +5
    ("phq9", 4, 10, "reliable_deterioration", "not_a_case"),  # +6
    ("phq9", 20, 26, "reliable_deterioration", "not_recovered"),
    ("phq9", 12, 12, "no_reliable_change", "not_recovered"),
    ("phq9", 27, 0, "reliable_improvement", "reliable_recovery"),
    # GAD-7: reliable change is 4 points, caseness 8+
    ("gad7", 11, 8, "no_reliable_change", "not_recovered"),  # -3, 8 is a case
    ("gad7", 11, 7, "reliable_improvement", "reliable_recovery"),  # -4, 7 < 8
    ("gad7", 8, 7, "no_reliable_change", "recovery"),
    ("gad7", 7, 3, "reliable_improvement", "not_a_case"),
    ("gad7", 5, 8, "no_reliable_change", "not_a_case"),  # +3
    ("gad7", 5, 9, "reliable_deterioration", "not_a_case"),  # +4
    # WHO-5: 10 percentage points; raw x 4, higher is better, no caseness
    ("who5", 10, 12, "no_reliable_change", None),  # +2 raw = 8%
    ("who5", 10, 13, "reliable_improvement", None),  # +3 raw = 12%
    ("who5", 13, 11, "no_reliable_change", None),  # -8%
    ("who5", 13, 10, "reliable_deterioration", None),  # -12%
]


@pytest.mark.parametrize(("instrument", "baseline", "latest", "direction", "recovery"), TABLE)
def test_change_is_classified_as_the_published_definitions_say(
    instrument, baseline, latest, direction, recovery
):
    change = classify(CATALOGUE[instrument], Scored(baseline), Scored(latest))
    assert change is not None
    assert (change.direction, change.recovery) == (direction, recovery)


def test_who5_change_is_measured_in_percentage_points():
    change = classify(CATALOGUE["who5"], Scored(10), Scored(13))
    assert change is not None
    assert (change.difference, change.scale, change.threshold) == (12, "percentage", 10)
    assert change.explanation.startswith("+12 percentage points")


@pytest.mark.parametrize(
    ("earlier", "later"), [(None, 5), (15, None), (None, None)], ids=["baseline", "latest", "both"]
)
def test_no_change_is_claimed_when_a_score_is_missing(earlier, later):
    assert classify(CATALOGUE["phq9"], Scored(earlier), Scored(later)) is None


@pytest.mark.parametrize("instrument", ["phq2", "gad2", "auditc"])
def test_instruments_without_a_published_rule_are_never_classified(instrument):
    assert CATALOGUE[instrument].change is None
    assert classify(CATALOGUE[instrument], Scored(6), Scored(0)) is None


def test_a_change_resting_on_a_prorated_score_says_so():
    change = classify(CATALOGUE["phq9"], Scored(18, prorated=True), Scored(8))
    assert change is not None and change.prorated
    assert change.explanation.endswith("rests on a prorated score")


def test_labels_read_as_the_definitions():
    phq9 = CATALOGUE["phq9"]
    assert classify(phq9, Scored(15), Scored(9)).label == (
        "Reliable improvement, reliable recovery"
    )
    assert classify(phq9, Scored(10), Scored(9)).label == "No reliable change, recovery"
    assert classify(phq9, Scored(4), Scored(10)).label == "Reliable deterioration"
    assert classify(phq9, Scored(15), Scored(9)).explanation == (
        "-6 points; a change of 6 or more is reliable; reliable recovery"
    )


@pytest.mark.parametrize(
    ("instrument", "reliable_change", "caseness_min"),
    [("phq9", 6, 10), ("gad7", 4, 8), ("who5", 10, None)],
)
def test_thresholds_are_data_with_a_source_and_a_date(instrument, reliable_change, caseness_min):
    rules = CATALOGUE[instrument].change
    assert (rules.reliable_change, rules.caseness_min) == (reliable_change, caseness_min)
    assert rules.source.strip() and rules.checked


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        (
            {"reliable_change": 6, "caseness_min": 40, "source": "x", "checked": "2026-12-02"},
            "caseness_min",
        ),
        ({"reliable_change": 60, "source": "x", "checked": "2026-12-02"}, "exceeds the range"),
        ({"reliable_change": 6, "checked": "2026-12-02"}, "source"),
        (
            {"reliable_change": 6, "scale": "percentage", "source": "x", "checked": "2026-12-02"},
            "percentage",
        ),
    ],
)
def test_a_file_with_bad_change_rules_is_refused(tmp_path, change, fault):
    data = yaml.safe_load((BUILTIN_DIR / "phq9.yaml").read_text())
    data = copy.deepcopy(data)
    data["id"] = "phq9_local"
    data["change"] = change
    path = tmp_path / "phq9_local.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InstrumentFileError, match=fault):
        load_file(path)
