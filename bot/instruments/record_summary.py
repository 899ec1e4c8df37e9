"""The "copy to record" text for one result, in the form GP systems take.

One line per fact a GP record keeps: the SNOMED CT concept and term of the
score with its value (only the codes confirmed in the instrument's file,
never another), the date, the band, the risk question's answer where the
instrument has one, and the change since the previous score with what it
means (``bot/instruments/change.py``). Pure: it is tested as exact text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from bot.instruments.change import Change
from bot.instruments.schema import Instrument
from bot.instruments.wording import band_label, option_words, question_number


@dataclass(frozen=True)
class Previous:
    total: int
    on: date


def _day(on: date) -> str:
    return f"{on.day} {on:%b %Y}"


def record_text(
    instrument: Instrument,
    *,
    on: date,
    total: int | None,
    band: str | None,
    answers: Mapping[str, int],
    prorated: bool,
    previous: Previous | None,
    change: Change | None,
) -> str:
    """The block a clinician pastes into the GP record."""
    low, high = instrument.total_range
    name = instrument.short_title
    codes = instrument.codes
    lines = []
    if total is None:
        missing = sum(1 for i in instrument.scored_item_ids if i not in answers)
        lines.append(
            f"{name}: not scored ({missing} of {len(instrument.scored_item_ids)} questions "
            "unanswered; a missing answer is not counted as 0)"
        )
    elif codes.snomed_total:
        lines.append(f"SNOMED CT {codes.snomed_total} |{codes.snomed_total_display}| = {total}")
    else:
        lines.append(f"{name} score = {total} (no confirmed SNOMED CT code for this score)")
    lines.append(f"Date: {_day(on)}")
    if total is not None:
        score = f"Score: {total} ({low}-{high})"
        if instrument.scoring.percentage_multiplier:
            score += f", {total * instrument.scoring.percentage_multiplier}%"
        if prorated:
            score += ", prorated from the answered questions"
        lines.append(score)
        lines.append(f"Band: {band_label(instrument, band)}")
    for item in instrument.items:
        if not item.safety_critical:
            continue
        label = f"Q{question_number(instrument, item.id)} ({item.text})"
        if item.id in answers:
            value = answers[item.id]
            lines.append(f"{label}: {option_words(instrument, item.id, value)} ({value})")
        else:
            lines.append(f"{label}: missing (not answered)")
    if total is None:
        lines.append("Change: not assessed (this result has no total)")
    elif previous is None:
        lines.append("Change: first score (baseline)")
    elif change is None:
        lines.append(
            f"Change since {previous.total} on {_day(previous.on)}: "
            f"{total - previous.total:+d} points (no published threshold for a reliable "
            f"change in the {name})"
        )
    else:
        lines.append(
            f"Change since {previous.total} on {_day(previous.on)}: {change.label} "
            f"({change.explanation})"
        )
    lines.append(f"Patient-reported by SMS, {instrument.title} v{instrument.version}")
    return "\n".join(lines)
