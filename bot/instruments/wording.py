"""Results in words, for a clinician: question numbers, answers as options, flag reasons.

Pure: an instrument's file and a result's answers in, sentences out. A flag's
reason names the answers or the total that made its rule true ("PHQ-9 Q9
(Thoughts that you would be better off dead...) answered 'Several days' (1)"),
so a clinician never has to look up what a flag id means.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.instruments import rules as r
from bot.instruments.rules import Facts
from bot.instruments.schema import Instrument


def question_number(instrument: Instrument, item_id: str) -> int:
    """The item's place on the printed form (1-based)."""
    return instrument.item_ids.index(item_id) + 1


def option_words(instrument: Instrument, item_id: str, value: int) -> str | None:
    return next((o.label for o in instrument.options_for(item_id) if o.value == value), None)


def answer_phrase(instrument: Instrument, item_id: str, value: int, *, short: bool = False) -> str:
    """ "PHQ-9 Q9 (Thoughts that you would...) answered 'Several days' (1)"."""
    text = instrument.item(item_id).text
    if short and len(text) > 60:
        text = text[:57].rstrip() + "..."
    return (
        f"{instrument.short_title} Q{question_number(instrument, item_id)} ({text}) answered "
        f"'{option_words(instrument, item_id, value)}' ({value})"
    )


def flag_reason(
    instrument: Instrument,
    flag_id: str,
    answers: Mapping[str, int],
    total: int | None,
    band: str | None,
) -> str:
    """Why the flag was raised, in words, from the parts of its rule that hold."""
    flag = next((f for f in instrument.flags if f.id == flag_id), None)
    if flag is None:
        return "raised by the questionnaire (its rule is not in this version's file)"
    facts = Facts(answers=answers, scored_items=instrument.scored_item_ids, total=total, band=band)
    parts = _reasons(instrument, flag.when, facts)
    return "; ".join(parts) if parts else "raised by the questionnaire's rule"


def _band_label(instrument: Instrument, band: str | None) -> str:
    return next((b.label for b in instrument.bands if b.id == band), band or "no band")


def _reasons(instrument: Instrument, rule: object, facts: Facts) -> list[str]:
    answers = facts.answers
    if isinstance(rule, r.AnyOf):
        return [
            p for sub in rule.any if sub.evaluate(facts) for p in _reasons(instrument, sub, facts)
        ]
    if isinstance(rule, r.AllOf):
        return [p for sub in rule.all for p in _reasons(instrument, sub, facts)]
    if isinstance(rule, r.ItemAbove):
        item = rule.item_above.item
        if item in answers:
            return [answer_phrase(instrument, item, answers[item], short=True)]
        return [f"{instrument.short_title} Q{question_number(instrument, item)} not answered"]
    if isinstance(rule, r.AnyScoredItemAbove | r.AnyScoredItemAtMost):
        if isinstance(rule, r.AnyScoredItemAbove):
            limit, above = rule.any_scored_item_above, True
        else:
            limit, above = rule.any_scored_item_at_most, False
        hits = [
            i
            for i in instrument.scored_item_ids
            if i in answers and (answers[i] > limit if above else answers[i] <= limit)
        ]
        return [answer_phrase(instrument, i, answers[i], short=True) for i in hits]
    if isinstance(rule, r.TotalBelow):
        return [f"{instrument.short_title} total {facts.total} is below {rule.total_below}"]
    if isinstance(rule, r.TotalAtLeast):
        return [f"{instrument.short_title} total {facts.total} is {rule.total_at_least} or more"]
    if isinstance(rule, r.BandIn):
        return [
            f"{instrument.short_title} total {facts.total}, "
            f"{_band_label(instrument, facts.band).lower()}"
        ]
    return []


def band_label(instrument: Instrument, band: str | None) -> str | None:
    return None if band is None else _band_label(instrument, band)
