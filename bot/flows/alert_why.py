"""Why an alert was raised, in words a clinician reads in a second.

Pure: the alert's flag and reason, the instrument's file, the answer or the
patient's own words and the scores in; a sentence out, as segments, some of
them marked (the words that matched a risk phrase), so the page can wrap those
in ``<mark>`` without trusting any text as HTML. Examples:

- ``PHQ-9 Q9 (Thoughts that you would be better off dead...) answered 'Several days' (1)``
- ``Texted: "Some days I want to end it all"`` with "end it all" marked
- ``PHQ-9 total 21, severe (previous 12)``

Lives beside the flows because the risk phrases are theirs (``bot.flows.risk``);
``bot.instruments.wording`` words the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.flows.risk import risk_spans
from bot.instruments.schema import Instrument
from bot.instruments.wording import answer_phrase, band_label, question_number

Segment = tuple[str, bool]
"""A piece of the sentence, and whether it is marked (matched words)."""


@dataclass(frozen=True)
class Why:
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(text for text, _marked in self.segments)

    def marked(self, before: str, after: str) -> str:
        """The sentence with each marked segment between ``before`` and ``after``."""
        return "".join(f"{before}{t}{after}" if m else t for t, m in self.segments)


def _plain(text: str) -> Why:
    return Why(((text, False),))


def highlighted(words: str) -> tuple[Segment, ...]:
    """The patient's words, the risk phrases in them marked."""
    segments: list[Segment] = []
    at = 0
    for start, end in risk_spans(words):
        if start > at:
            segments.append((words[at:start], False))
        segments.append((words[start:end], True))
        at = end
    if at < len(words):
        segments.append((words[at:], False))
    return tuple(segments)


def alert_why(
    *,
    flag: str,
    reason: str,
    instrument: Instrument | None = None,
    item: str | None = None,
    value: int | None = None,
    patient_words: str | None = None,
    total: int | None = None,
    band: str | None = None,
    previous_total: int | None = None,
) -> Why:
    """Why the alert was raised: the answer, the patient's words, or the score."""
    known_item = instrument is not None and item is not None and item in instrument.item_ids
    if reason == "risk_phrase" and patient_words:
        return Why((("Texted: \u201c", False), *highlighted(patient_words), ("\u201d", False)))
    if reason == "item_answer" and known_item and value is not None:
        assert instrument is not None and item is not None
        return _plain(answer_phrase(instrument, item, value, short=True))
    if reason in ("item_answer", "unclear_answer") and known_item:
        assert instrument is not None and item is not None
        number = f"{instrument.short_title} Q{question_number(instrument, item)}"
        text = instrument.item(item).text
        text = text[:57].rstrip() + "..." if len(text) > 60 else text
        if patient_words:
            return Why(
                (
                    (f"{number} ({text}) answered \u201c", False),
                    *highlighted(patient_words),
                    ("\u201d, not a clear answer", False),
                )
            )
        return _plain(f"{number} ({text}): no clear answer")
    if reason == "left_unanswered" and known_item:
        assert instrument is not None and item is not None
        number = f"{instrument.short_title} Q{question_number(instrument, item)}"
        return _plain(f"{number} left unanswered when the questionnaire expired")
    if reason == "score" and instrument is not None and total is not None:
        label = band_label(instrument, band)
        text = f"{instrument.short_title} total {total}"
        if label:
            text += f", {label.lower()}"
        text += f" (previous {previous_total})" if previous_total is not None else " (no previous)"
        return _plain(text)
    if flag == "callback_requested":
        return _plain("The patient asked for a call back")
    if patient_words:
        return Why((("Texted: \u201c", False), *highlighted(patient_words), ("\u201d", False)))
    return _plain(flag.replace("_", " ").capitalize())
