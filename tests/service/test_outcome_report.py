"""The practice outcomes report, figure by figure, on SQLite and PostgreSQL.

Two practices are built with known histories (tests/service/outcome_history.py):
one with invitations and alerts, one with scores. Each figure is checked
against a table worked out by hand; the date range and protocol narrow it;
a third practice's rows never count; nothing in it identifies a patient.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.instruments.loader import BUILTIN_DIR
from bot.services.enrolment import create_practice
from bot.services.outcome_report import OutcomeReport, outcome_report, period_bounds
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Practice
from tests.service import outcome_history
from tests.service.conftest import Clock
from tests.service.edited_instruments import edit_instrument_file
from tests.service.outcome_history import ANX, DEP

Q1 = {"start": date(2026, 1, 1), "end": date(2026, 3, 31)}


def make_practice(runtime: Runtime, clock: Clock, name: str, number: str) -> Practice:
    with transaction(runtime.engine) as session:
        return create_practice(session, name=name, sms_number=number, now=clock.now)


@pytest.fixture
def practices(runtime: Runtime, clock: Clock) -> dict[str, Any]:
    """Reach/safety practice, outcomes practice, and a busy other practice with both."""
    reach = make_practice(runtime, clock, "Reach Surgery", "+447700900901")
    scores = make_practice(runtime, clock, "Scores Surgery", "+447700900902")
    other = make_practice(runtime, clock, "Elsewhere Surgery", "+447700900903")
    with transaction(runtime.engine) as session:
        histories = {
            "reach": outcome_history.reach_and_safety(session, reach, 200),
            "scores": outcome_history.outcomes(session, scores, 300),
            "other_reach": outcome_history.reach_and_safety(session, other, 400),
            "other_scores": outcomes_again(session, other),
        }
    return {"reach": reach, "scores": scores, "other": other, "histories": histories}


def outcomes_again(session, practice):
    return outcome_history.outcomes(session, practice, 500)


def figures(report: OutcomeReport, section: str, group: str) -> dict[str, Any]:
    found = {m: v for s, g, m, v in report.figures() if s == section and g == group}
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()}


# -- reach ------------------------------------------------------------------------------

REACH_ALL = {
    "due": 8,
    "sent": 6,
    "not_sent_in_time": 1,
    "answered": 4,
    "completed": 3,
    "expired": 2,
    "opted_out": 1,
    "needed_reminder": 3,
    "response_rate": round(4 / 6, 4),
    "completion_rate": 0.5,
    "median_minutes_to_complete": 40.0,
}
REACH_DEPRESSION = {
    "due": 6,
    "sent": 4,
    "not_sent_in_time": 1,
    "answered": 3,
    "completed": 2,
    "expired": 2,
    "opted_out": 0,
    "needed_reminder": 3,
    "response_rate": 0.75,
    "completion_rate": 0.5,
    "median_minutes_to_complete": 730.0,  # (20 + 1440) / 2
}


def test_reach_counts_each_invitation_due_in_the_period_once(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(runtime, practices["reach"].id, **Q1)
    assert figures(report, "reach", "all") == REACH_ALL


def test_reach_for_one_protocol_counts_only_its_invitations(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(runtime, practices["reach"].id, **Q1, protocol=DEP)
    assert figures(report, "reach", "all") == REACH_DEPRESSION


def test_reach_for_a_date_range_includes_both_end_days(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(
        runtime, practices["reach"].id, start=date(2026, 1, 5), end=date(2026, 1, 6)
    )
    assert figures(report, "reach", "all") == {
        "due": 2,
        "sent": 2,
        "not_sent_in_time": 0,
        "answered": 2,
        "completed": 2,
        "expired": 0,
        "opted_out": 0,
        "needed_reminder": 1,
        "response_rate": 1.0,
        "completion_rate": 1.0,
        "median_minutes_to_complete": 730.0,
    }


def test_an_empty_period_has_no_rates_rather_than_zero_rates(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(
        runtime, practices["reach"].id, start=date(2027, 1, 1), end=date(2027, 1, 31)
    )
    reach = figures(report, "reach", "all")
    assert reach["sent"] == 0
    assert reach["response_rate"] is None and reach["completion_rate"] is None
    assert reach["median_minutes_to_complete"] is None
    assert figures(report, "safety", "all")["within_hour_share"] is None


# -- safety -----------------------------------------------------------------------------

SAFETY = {
    # raised, acknowledged, within an hour, share, median minutes, escalations,
    # escalated alerts, reached nobody
    "urgent": (4, 2, 1, 0.25, 75.0, 3, 2, 1),
    "routine": (1, 1, 1, 1.0, 50.0, 0, 0, 0),
    "information": (1, 0, 0, 0.0, None, 0, 0, 0),
    "all": (6, 3, 2, round(2 / 6, 4), 50.0, 3, 2, 1),
}
SAFETY_NAMES = (
    "raised",
    "acknowledged",
    "acknowledged_within_hour",
    "within_hour_share",
    "median_minutes_to_acknowledge",
    "escalations",
    "escalated_alerts",
    "reached_nobody",
)


def safety_table(report: OutcomeReport) -> dict[str, tuple[Any, ...]]:
    return {
        s.severity: tuple(figures(report, "safety", s.severity)[n] for n in SAFETY_NAMES)
        for s in report.safety
    }


def test_safety_figures_by_severity(runtime: Runtime, practices: dict[str, Any]) -> None:
    report = outcome_report(runtime, practices["reach"].id, **Q1)
    assert safety_table(report) == SAFETY


def test_safety_for_one_protocol_and_a_shorter_range(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(runtime, practices["reach"].id, **Q1, protocol=DEP)
    assert safety_table(report)["all"] == (3, 2, 1, round(1 / 3, 4), 75.0, 2, 1, 0)
    january = outcome_report(
        runtime, practices["reach"].id, start=date(2026, 1, 1), end=date(2026, 1, 31)
    )
    assert safety_table(january)["all"] == (2, 2, 1, 0.5, 75.0, 2, 1, 0)


def test_reached_nobody_is_the_alert_reach_definition(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    from bot.services import alert_reach

    with transaction(runtime.engine, read_only=True) as session:
        # every unreached alert of the practice falls in the period, except December's
        expected = alert_reach.unreached_count(session, practices["reach"].id) - 1
    report = outcome_report(runtime, practices["reach"].id, **Q1)
    assert figures(report, "safety", "all")["reached_nobody"] == expected == 1


# -- outcomes ---------------------------------------------------------------------------

OUTCOME_NAMES = (
    "baselines",
    "paired",
    "incomplete_only",
    "no_follow_up",
    "improved",
    "no_change",
    "deteriorated",
    "at_caseness",
    "recovered",
)
OUTCOMES = {
    # baselines, paired, incomplete only, no follow-up, improved, no change,
    # deteriorated, at caseness, recovered
    "phq9 6 weeks": (8, 6, 0, 2, 3, 2, 1, 5, 2),
    "phq9 12 weeks": (8, 3, 1, 4, 1, 1, 1, 3, 2),
    "gad7 6 weeks": (1, 1, 0, 0, 1, 0, 0, 1, 1),
    "gad7 12 weeks": (1, 0, 0, 1, 0, 0, 0, 0, 0),
    "who5 6 weeks": (1, 1, 0, 0, 0, 1, 0, None, None),
    "who5 12 weeks": (1, 1, 0, 0, 1, 0, 0, None, None),
}


def outcome_table(report: OutcomeReport) -> dict[str, tuple[Any, ...]]:
    table = {}
    for row in report.outcomes:
        found = figures(report, "outcomes", f"{row.instrument} {row.window}")
        table[f"{row.instrument} {row.window}"] = tuple(found.get(n) for n in OUTCOME_NAMES)
    return table


def test_outcomes_classify_each_patient_once_per_window(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(runtime, practices["scores"].id, **Q1)
    assert outcome_table(report) == OUTCOMES
    six = figures(report, "outcomes", "phq9 6 weeks")
    assert six["improved_share"] == 0.5
    assert six["recovered_share"] == 0.4  # 2 of the 5 who were a case at baseline
    assert "at_caseness" not in figures(report, "outcomes", "who5 6 weeks")


def test_incomplete_scores_are_excluded_and_counted_never_zero(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    report = outcome_report(runtime, practices["scores"].id, **Q1)
    # P6's incomplete first attempt is not a baseline of 0 (which would make 11 a
    # reliable deterioration); P3's incomplete 12-week result is counted as excluded
    assert report.incomplete_results == {"phq9": 1}
    assert figures(report, "outcomes", "phq9")["incomplete_results_excluded"] == 1
    twelve = next(r for r in report.outcomes if (r.instrument, r.window) == ("phq9", "12 weeks"))
    assert twelve.incomplete_only == 1 and twelve.excluded == 5


def test_outcomes_for_one_protocol_and_a_shorter_range(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    depression = outcome_report(runtime, practices["scores"].id, **Q1, protocol=DEP)
    table = outcome_table(depression)
    assert table["phq9 6 weeks"] == (7, 5, 0, 2, 3, 1, 1, 4, 2)
    assert table["gad7 6 weeks"] == (0, 0, 0, 0, 0, 0, 0, 0, 0)
    anxiety = outcome_table(outcome_report(runtime, practices["scores"].id, **Q1, protocol=ANX))
    assert anxiety["phq9 6 weeks"] == (1, 1, 0, 0, 0, 1, 0, 1, 0)
    assert anxiety["gad7 6 weeks"] == OUTCOMES["gad7 6 weeks"]
    january = outcome_table(
        outcome_report(
            runtime, practices["scores"].id, start=date(2026, 1, 1), end=date(2026, 1, 31)
        )
    )
    assert january["phq9 6 weeks"] == (5, 4, 0, 1, 2, 1, 1, 3, 2)


def test_another_practices_rows_are_never_counted(
    runtime: Runtime, practices: dict[str, Any]
) -> None:
    """The other practice has both histories; each practice's figures stay exactly as alone."""
    reach = outcome_report(runtime, practices["reach"].id, **Q1)
    assert all(row[3] == 0 for row in outcome_table(reach).values() if row[0] is not None)
    assert outcome_table(reach)["phq9 6 weeks"][0] == 0
    scores = outcome_report(runtime, practices["scores"].id, **Q1)
    assert figures(scores, "safety", "all")["raised"] == 0
    assert figures(scores, "reach", "all")["opted_out"] == 0
    other = outcome_report(runtime, practices["other"].id, **Q1)
    assert figures(other, "safety", "all")["raised"] == SAFETY["all"][0]
    assert outcome_table(other)["phq9 6 weeks"] == OUTCOMES["phq9 6 weeks"]


def test_the_report_names_no_patient(runtime: Runtime, practices: dict[str, Any]) -> None:
    text = " ".join(
        repr(outcome_report(runtime, practices[name].id, **Q1)) for name in ("reach", "scores")
    )
    for history in practices["histories"].values():
        for person in history.patients:
            assert person.name not in text
            assert person.phone not in text and person.phone[1:] not in text
            assert person.id not in text
            if person.nhs_number:
                assert person.nhs_number not in text


def test_the_period_is_in_the_practices_time_zone() -> None:
    # 1 July is in British Summer Time: local midnight is 23:00 UTC the day before
    first, after = period_bounds("Europe/London", date(2026, 7, 1), date(2026, 7, 31))
    assert first.isoformat() == "2026-06-30T23:00:00+00:00"
    assert after.isoformat() == "2026-07-31T23:00:00+00:00"


# -- the thresholds are the instrument files' ---------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "old", "new", "changed"),
    [
        # P4's 14 -> 10 (4 better) and 14 -> 9 (5 better) become reliable improvements
        (
            "phq9",
            "reliable_change: 6",
            "reliable_change: 4",
            {
                "phq9 6 weeks": (8, 6, 0, 2, 4, 1, 1, 5, 2),
                "phq9 12 weeks": (8, 3, 1, 4, 2, 0, 1, 3, 2),
            },
        ),
        # P8's 10 is no longer a case; P4's and P7's 10 at 6 weeks become recoveries
        (
            "phq9",
            "caseness_min: 10",
            "caseness_min: 11",
            {"phq9 6 weeks": (8, 6, 0, 2, 3, 2, 1, 4, 4)},
        ),
        # P2's WHO-5 40% -> 48% (+8 percentage points) becomes a reliable improvement
        (
            "who5",
            "reliable_change: 10",
            "reliable_change: 8",
            {"who5 6 weeks": (1, 1, 0, 0, 1, 0, 0, None, None)},
        ),
    ],
)
def test_a_threshold_changed_in_the_instrument_file_changes_the_report(
    runtime: Runtime,
    practices: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    instrument: str,
    old: str,
    new: str,
    changed: dict[str, tuple[Any, ...]],
) -> None:
    """The report classifies by bot.instruments.change with the file's ``change:`` alone."""
    assert outcome_table(outcome_report(runtime, practices["scores"].id, **Q1)) == OUTCOMES
    edit_instrument_file(runtime, monkeypatch, tmp_path, instrument, old, new)
    edited = outcome_table(outcome_report(runtime, practices["scores"].id, **Q1))
    assert edited == {**OUTCOMES, **changed}


def test_an_instrument_without_change_thresholds_has_no_outcomes(
    runtime: Runtime,
    practices: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    text = (BUILTIN_DIR / "gad7.yaml").read_text(encoding="utf-8")
    block = re.search(r"\nchange:\n(  .*\n)+", text)
    assert block is not None
    edit_instrument_file(runtime, monkeypatch, tmp_path, "gad7", block.group(0), "\n")
    report = outcome_report(runtime, practices["scores"].id, **Q1)
    assert {r.instrument for r in report.outcomes} == {"phq9", "who5"}
