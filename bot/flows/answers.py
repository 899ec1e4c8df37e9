"""Reading a patient's reply as one of an item's options, or as nothing.

Generous with form, strict with meaning: "2", " 2.", "2!", "two", "Several
days", "several" and a near-miss spelling are all accepted when they point at
one option only; anything that could mean two options, or none, is refused and
the patient is asked again. A wrong guess would corrupt a clinical score, so
when in doubt we ask.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from bot.instruments.schema import Option, OptionSet

MAX_ANSWER_LENGTH = 80  # longer texts are never a single option
PREFIX_MIN = 3
FUZZY_CUTOFF = 0.85

# A reply with one of these words means something other than the option it
# resembles ("not nearly every day"), so it is never matched loosely.
NEGATIONS = frozenset({"not", "no", "never", "dont", "don", "isnt", "hardly", "barely", "nor"})
_NEGATIVE_NUMBER = re.compile(r"(?:^|\s)[-\u2212]\s*\d")

NUMBER_WORDS = {
    "zero": 0,
    "nought": 0,
    "nil": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
LETTERS = "abcdefghij"


def normalise(text: str) -> str:
    """Lower case, digits as ASCII, punctuation and emoji as spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("+", " plus ")
    kept = [ch if ch.isalnum() else " " for ch in text]
    return " ".join("".join(kept).split())


def _as_number(token: str) -> int | None:
    if token.isdigit() and len(token) <= 3:
        return int(token)
    return NUMBER_WORDS.get(token)


def _phrases(option_set: OptionSet) -> dict[str, int]:
    phrases: dict[str, int] = {}
    for option in option_set.options:
        for words in (option.label, *option.synonyms):
            phrases[normalise(words)] = option.value
    return phrases


def _by_key(option_set: OptionSet, token: str) -> Option | None:
    if option_set.keys == "numbers":
        number = _as_number(token)
        return next((o for o in option_set.options if o.value == number), None)
    if len(token) == 1 and token in LETTERS:
        index = LETTERS.index(token)
        return option_set.options[index] if index < len(option_set.options) else None
    return None


def _by_number_range(option_set: OptionSet, token: str) -> Option | None:
    number = _as_number(token)
    if number is None:
        return None
    return next(
        (
            o
            for o in option_set.options
            if o.number_range and o.number_range[0] <= number <= o.number_range[1]
        ),
        None,
    )


def _only(values: set[int]) -> int | None:
    return next(iter(values)) if len(values) == 1 else None


def read_answer(text: str, option_set: OptionSet) -> int | None:
    """The value of the one option a reply chooses, or None when it chooses none or several."""
    if len(text) > MAX_ANSWER_LENGTH or _NEGATIVE_NUMBER.search(text):
        return None
    reply = normalise(text)
    if not reply:
        return None
    tokens = reply.split()
    phrases = _phrases(option_set)

    if len(tokens) == 1:
        option = _by_key(option_set, tokens[0]) or _by_number_range(option_set, tokens[0])
        if option is not None:
            return option.value
    if reply in phrases:
        return phrases[reply]

    # "2 more than half the days", "b) 3 to 4": a key then the same option's words.
    first = _by_key(option_set, tokens[0])
    rest = " ".join(tokens[1:])
    if first is not None and rest and phrases.get(rest) == first.value:
        return first.value

    # A number that did not settle it above ("2 several days", "2 or 3") leaves
    # the reply ambiguous: never guess past it.
    if any(_as_number(token) is not None for token in tokens):
        return None

    negated = set(tokens) & NEGATIONS

    def loose(phrase: str) -> bool:
        return not (negated - set(phrase.split()))

    # "several", "more than half": the start of one option's words only.
    if len(reply) >= PREFIX_MIN:
        starts = {
            value
            for phrase, value in phrases.items()
            if phrase.startswith(reply + " ") and loose(phrase)
        }
        if starts:
            return _only(starts)

    # "sevral days": a near miss of one option's words, and of no other.
    close = difflib.get_close_matches(reply, list(phrases), n=3, cutoff=FUZZY_CUTOFF)
    return _only({phrases[c] for c in close if loose(c)})


def answer_hint(option_set: OptionSet) -> str:
    """How to answer, e.g. 'a number from 0 to 3' or 'a letter from A to E'."""
    keys = [option_set.key_of(o) for o in option_set.options]
    kind = "number" if option_set.keys == "numbers" else "letter"
    ordered = sorted(keys, key=lambda k: (len(k), k))
    return f"a {kind} from {ordered[0]} to {ordered[-1]}"
