"""What a change between two scores means: reliable change and recovery.

The definitions are those of NHS Talking Therapies (reliable improvement,
reliable deterioration, recovery, reliable recovery), and for WHO-5 a change
of 10 percentage points; the thresholds are data in each instrument's file
(``change:``), with their sources (docs/scoring.md). An instrument without
them is never classified.

Only totals are compared. A result with no total (a questionnaire left
incomplete, which no shipped instrument prorates) is never classified: a
missing answer is not a zero and an unknown score has no change. A prorated
total is the instrument's own published rule for standing in for the total
(none of the shipped instruments declares one), so it is compared, and the
change says that it rests on a prorated score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.instruments.schema import Instrument

Direction = Literal["reliable_improvement", "reliable_deterioration", "no_reliable_change"]
Recovery = Literal["reliable_recovery", "recovery", "not_recovered", "not_a_case"]

DIRECTION_LABELS: dict[str, str] = {
    "reliable_improvement": "Reliable improvement",
    "reliable_deterioration": "Reliable deterioration",
    "no_reliable_change": "No reliable change",
}
RECOVERY_LABELS: dict[str, str] = {
    "reliable_recovery": "reliable recovery",
    "recovery": "recovery",
    "not_recovered": "not recovered (still at caseness)",
    "not_a_case": "recovery does not apply (below caseness at the start)",
}


@dataclass(frozen=True)
class Scored:
    """One result's score, as stored: ``total`` is None when it could not be scored."""

    total: int | None
    prorated: bool = False


@dataclass(frozen=True)
class Change:
    """From an earlier score to a later one on the same instrument."""

    direction: Direction
    recovery: Recovery | None
    """None where the instrument has no caseness (WHO-5)."""
    difference: int
    """Later minus earlier, on ``scale`` (points of the total, or percentage points)."""
    scale: Literal["total", "percentage"]
    threshold: int
    prorated: bool
    """Either score was prorated."""

    @property
    def reliable(self) -> bool:
        return self.direction != "no_reliable_change"

    @property
    def label(self) -> str:
        """The headline: "Reliable improvement, reliable recovery"."""
        words = DIRECTION_LABELS[self.direction]
        if self.recovery in ("reliable_recovery", "recovery"):
            words += f", {RECOVERY_LABELS[self.recovery]}"
        return words

    @property
    def explanation(self) -> str:
        """The figures behind the label, for a clinician to check."""
        unit = "percentage points" if self.scale == "percentage" else "points"
        sign = "+" if self.difference > 0 else ""
        text = f"{sign}{self.difference} {unit}; a change of {self.threshold} or more is reliable"
        if self.recovery is not None:
            text += f"; {RECOVERY_LABELS[self.recovery]}"
        if self.prorated:
            text += "; rests on a prorated score"
        return text


def classify(instrument: Instrument, earlier: Scored, later: Scored) -> Change | None:
    """The change from ``earlier`` to ``later``; None when it cannot be said.

    None when the instrument has no change rules, or either score has no total.
    """
    rules = instrument.change
    if rules is None or earlier.total is None or later.total is None:
        return None
    multiplier = (
        (instrument.scoring.percentage_multiplier or 1) if rules.scale == "percentage" else 1
    )
    difference = (later.total - earlier.total) * multiplier
    better = difference if rules.higher_is_better else -difference
    direction: Direction
    if better >= rules.reliable_change:
        direction = "reliable_improvement"
    elif -better >= rules.reliable_change:
        direction = "reliable_deterioration"
    else:
        direction = "no_reliable_change"
    recovery: Recovery | None = None
    if rules.caseness_min is not None:
        if earlier.total < rules.caseness_min:
            recovery = "not_a_case"
        elif later.total >= rules.caseness_min:
            recovery = "not_recovered"
        elif direction == "reliable_improvement":
            recovery = "reliable_recovery"
        else:
            recovery = "recovery"
    return Change(
        direction=direction,
        recovery=recovery,
        difference=difference,
        scale=rules.scale,
        threshold=rules.reliable_change,
        prorated=earlier.prorated or later.prorated,
    )
