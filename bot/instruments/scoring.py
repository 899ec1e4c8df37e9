"""Scoring: the published sum, bands and flags, and never a missing answer as zero.

An incomplete set of answers has no total unless the instrument's file names a
published prorating rule (none of the six shipped instruments does: see
docs/scoring.md), in which case the total is the mean of the answered scored
items times the number of scored items, rounded half up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bot.instruments.rules import Facts
from bot.instruments.schema import Instrument


class InvalidAnswer(ValueError):
    """An answer names an unknown item or a value the item does not offer."""


@dataclass(frozen=True)
class Score:
    total: int | None
    band: str | None
    percentage: int | None
    prorated: bool
    complete: bool
    flags: tuple[str, ...]


def check_answers(instrument: Instrument, answers: Mapping[str, int]) -> None:
    """Raise InvalidAnswer unless every answer is an offered value of a known item."""
    for item_id, value in answers.items():
        if item_id not in instrument.item_ids:
            raise InvalidAnswer(f"{instrument.id} has no item {item_id!r}")
        allowed = [o.value for o in instrument.options_for(item_id)]
        if value not in allowed:
            raise InvalidAnswer(f"{instrument.id} item {item_id!r} takes {allowed}, not {value!r}")


def score(instrument: Instrument, answers: Mapping[str, int]) -> Score:
    """Total, band, percentage and flags for a set of answers (complete or not)."""
    check_answers(instrument, answers)
    scored = instrument.scored_item_ids
    answered = [answers[i] for i in scored if i in answers]
    missing = len(scored) - len(answered)
    total: int | None = None
    prorated = False
    if missing == 0:
        total = sum(answered)
    elif (
        instrument.scoring.prorating
        and answered
        and missing <= instrument.scoring.prorating.max_missing
    ):
        exact = Decimal(sum(answered)) * len(scored) / len(answered)
        total = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        prorated = True
    band = instrument.band_for(total).id if total is not None else None
    percentage = (
        total * instrument.scoring.percentage_multiplier
        if total is not None and instrument.scoring.percentage_multiplier
        else None
    )
    facts = Facts(answers=answers, scored_items=scored, total=total, band=band)
    flags = tuple(flag.id for flag in instrument.flags if flag.when.evaluate(facts))
    return Score(
        total=total,
        band=band,
        percentage=percentage,
        prorated=prorated,
        complete=missing == 0,
        flags=flags,
    )


def immediate_flags(instrument: Instrument, answers: Mapping[str, int]) -> list[str]:
    """Flags that must be raised as soon as an answer makes them true."""
    facts = Facts(answers=answers, scored_items=instrument.scored_item_ids)
    return [f.id for f in instrument.flags if f.immediate and f.when.evaluate(facts)]


def applicable(instrument: Instrument, item_id: str, answers: Mapping[str, int]) -> bool:
    """Whether an item is asked, given the answers so far (branching)."""
    item = instrument.item(item_id)
    if item.ask_when is None:
        return True
    facts = Facts(answers=answers, scored_items=instrument.scored_item_ids)
    return item.ask_when.evaluate(facts)
