"""Spotting words of suicide or self-harm in anything a patient texts.

Deliberately sensitive: a false alarm costs a clinician a phone call, a miss
could cost a life. Phrases are matched on word boundaries so that everyday
words that merely contain them ("skill", "studied", "self harmony") do not
trigger; idioms that do ("killing myself laughing") are accepted as the price
of not missing the real thing. Negations ("I don't want to die") still match
on purpose: a clinician, not a regex, decides what a patient meant.
The table of what must and must not match is in tests/test_risk.py.
"""

from __future__ import annotations

import re
import unicodedata

SELF_HARM_RISK = "self_harm_risk"
"""The flag a risk phrase raises, anywhere, in any state."""

_PATTERNS = [
    r"(?:want|wanted|wanting|wanna|going|ready|deserve|deserved|wish)(?: to)? (?:die|be dead)",
    r"wish i (?:was|were) dead",
    r"(?:kill|killing|killed|hurt|hurting|harm|harming|cut|cutting|hang|hanging|drown|drowning)"
    r" my ?self",
    r"kill me",
    r"end(?:ing)? (?:it all|my life|my own life)",
    r"(?:take|taking) (?:my|my own) life",
    r"suicid\w*",
    r"self[ -]?harm(?:s|ed|ing|er|ers)?",
    r"better off dead",
    r"better off without me",
    r"no (?:reason|point) (?:to|in) (?:live|living|going on)",
    r"(?:don t|do not|dont) want to (?:live|be alive|be here any ?more|wake up|go on)",
    r"can ?(?:no|)t go on",
    r"overdos\w*",
]

_RISK = re.compile(r"\b(?:" + "|".join(_PATTERNS) + r")\b")


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("'", " ")
    return " ".join(re.sub(r"[^\w\s-]", " ", text).split())


def mentions_risk(text: str) -> bool:
    """True when a text contains a phrase of suicide or self-harm."""
    return bool(_RISK.search(_normalise(text)))


def risk_spans(text: str) -> list[tuple[int, int]]:
    """Where in ``text`` (as the patient wrote it) the risk phrases are: (start, end) pairs.

    The phrases are matched on the normalised text, as ``mentions_risk`` matches
    them; each normalised character remembers which original character it came
    from, so the spans cover the patient's own words, punctuation and capitals.
    """
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).casefold():
            piece = " " if piece in "\u2019'" or re.match(r"[^\w\s-]", piece) else piece
            piece = " " if piece.isspace() else piece
            chars.append(piece)
            origin.append(index)
    # squeeze runs of spaces (as _normalise's split/join does), keeping each kept char's origin
    squeezed: list[str] = []
    kept: list[int] = []
    for char, index in zip(chars, origin, strict=True):
        if char == " " and (not squeezed or squeezed[-1] == " "):
            continue
        squeezed.append(char)
        kept.append(index)
    normalised = "".join(squeezed)
    spans: list[tuple[int, int]] = []
    for match in _RISK.finditer(normalised):
        spans.append((kept[match.start()], kept[match.end() - 1] + 1))
    return spans
