"""Reading a patient's reply as one of an item's options, or as nothing.

Generous with form, strict with meaning. Accepted, when they point at one
option only: the option's key ("2", "two", "b)"), its words and the everyday
words of its scale ("several days", "sometimes", "now and then", "nope": see
``bot/instruments/vocabulary/``), the start of its words ("several"), a
near-miss spelling ("somtimes"), a unit count in its range ("3 units"), with
politeness, fillers, punctuation and emoji around them ("not at all thanks",
"um most days", "sometimes :)", "2 please"). Refused, so the patient is asked
again: anything that could mean two options ("2 or 3", "sometimes or often"),
anything negated that is not itself an option's words ("not every day", "not
often", "not all the time"), a number beside other words ("2 days"), and
anything that names no option. A wrong guess would change a clinical score
silently; a re-prompt costs one more text.
"""

from __future__ import annotations

import difflib
import re

from bot.instruments.schema import Option, OptionSet
from bot.instruments.vocabulary import normalise

MAX_ANSWER_LENGTH = 80  # longer texts are never a single option
PREFIX_MIN = 3
FUZZY_CUTOFF = 0.85  # the whole reply against an option's words
WORD_CUTOFF = 0.75  # each misspelt word against the word it stands for

# A reply with one of these words means something other than the option it
# resembles ("not nearly every day"), so it is matched exactly or not at all.
NEGATIONS = frozenset(
    {"not", "no", "never", "dont", "don", "isnt", "wasnt", "hardly", "barely", "nor", "cant"}
)
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
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
}
LETTERS = "abcdefghij"

# Words around an answer that do not change it: politeness, hedges, fillers.
# Never "no", "yes"-less negations or "maybe": those change what a reply means.
LEADING = tuple(
    sorted(
        {
            "um",
            "umm",
            "erm",
            "er",
            "uh",
            "hmm",
            "hmmm",
            "well",
            "oh",
            "ok",
            "okay",
            "so",
            "yes",
            "yeah",
            "yep",
            "yea",
            "hi",
            "hello",
            "just",
            "only",
            "like",
            "about",
            "around",
            "roughly",
            "approximately",
            "probably",
            "honestly",
            "i think",
            "i guess",
            "i suppose",
            "id say",
            "i would say",
            "i d say",
            "to be honest",
            "tbh",
            "its",
            "it is",
            "its a",
            "it is a",
            "id say a",
            "i would say a",
            "answer",
            "option",
            "number",
            "my answer is",
        },
        key=lambda p: (-len(p.split()), p),
    )
)
TRAILING = tuple(
    sorted(
        {
            "thanks",
            "thank you",
            "thankyou",
            "thanks very much",
            "thank you very much",
            "many thanks",
            "thx",
            "ty",
            "ta",
            "cheers",
            "please",
            "pls",
            "plz",
            "x",
            "xx",
            "xxx",
            "ok",
            "lol",
            "haha",
            "sorry",
            "i think",
            "i guess",
            "i suppose",
            "probably",
            "really",
            "tbh",
            "to be honest",
            "honestly",
            "basically",
            "i would say",
            "id say",
            "for me",
            "yes",
            "yeah",
            "yep",
            "pretty much",
            "sadly",
            "unfortunately",
            "thankfully",
            "thank god",
            "thank goodness",
            "to be fair",
            "tbf",
            "mate",
        },
        key=lambda p: (-len(p.split()), p),
    )
)
# Polite refusals that look like an answer once "thanks" is gone: "no thanks"
# may decline the questionnaire rather than mean "not at all", so ask again.
DECLINES = frozenset({"no thanks", "no thank you", "no ta", "nah thanks", "no thanks x"})


def _strip_words(reply: str) -> str:
    """The reply without leading and trailing politeness and fillers (never emptied)."""
    words = reply.split()
    changed = True
    while changed:
        changed = False
        for phrase in LEADING:
            size = len(phrase.split())
            if len(words) > size and words[:size] == phrase.split():
                words, changed = words[size:], True
                break
        for phrase in TRAILING:
            size = len(phrase.split())
            if len(words) > size and words[-size:] == phrase.split():
                words, changed = words[:-size], True
                break
    return " ".join(words)


def _as_number(token: str) -> int | None:
    if token.isdigit() and len(token) <= 3:
        return int(token)
    return NUMBER_WORDS.get(token)


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


def _without_number_suffix(option_set: OptionSet, reply: str) -> str:
    """ "3 units" -> "3", for scales that count something (AUDIT-C's units)."""
    for suffix in option_set.number_suffixes:
        head = reply.removesuffix(" " + suffix)
        if head != reply and len(head.split()) == 1 and _as_number(head) is not None:
            return head
    return reply


def read_answer(text: str, option_set: OptionSet) -> int | None:
    """The value of the one option a reply chooses, or None when it chooses none or several."""
    if len(text) > MAX_ANSWER_LENGTH or _NEGATIVE_NUMBER.search(text):
        return None
    whole = normalise(text)
    if not whole or whole in DECLINES:
        return None
    phrases = option_set.phrases()
    if whole in phrases:  # an option's own words, however they begin or end
        return phrases[whole]
    reply = _without_number_suffix(option_set, _strip_words(whole))
    if reply in DECLINES:
        return None
    tokens = reply.split()

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

    # A number that did not settle it above ("2 several days", "2 or 3", "2 days")
    # leaves the reply ambiguous: never guess past it.
    if any(_as_number(token) is not None for token in tokens):
        return None

    negated = set(tokens) & NEGATIONS

    def loose(phrase: str) -> bool:
        return not (negated - set(phrase.split()))

    # "several", "more than half": the start of one option's words only, and at
    # least half of them ("now" is not "now and then"). Never for a negated
    # reply: "not" is the start of "not at all" but means nothing on its own.
    if len(reply) >= PREFIX_MIN and not negated:
        starts = {
            value
            for phrase, value in phrases.items()
            if phrase.startswith(reply + " ") and 2 * len(tokens) >= len(phrase.split())
        }
        if starts:
            return _only(starts)

    # "sevral days", "somtimes": a near miss of one option's words, and of no other.
    known = _known_words(phrases)
    close = difflib.get_close_matches(reply, list(phrases), n=5, cutoff=FUZZY_CUTOFF)
    return _only({phrases[c] for c in close if loose(c) and _misspelt(tokens, c.split(), known)})


def _known_words(phrases: dict[str, int]) -> set[str]:
    return {word for phrase in phrases for word in phrase.split()} | set(NUMBER_WORDS) | NEGATIONS


def _singular(word: str) -> str:
    return word.removesuffix("s")


def _misspelt(said: list[str], meant: list[str], known: set[str]) -> bool:
    """True when ``said`` is ``meant`` with typos, word for word, not other words.

    "half the time" is not a typo of "all the time": "half" is a word the scale
    uses, so it was meant. "tim" and "evry" are not words of the scale.
    """
    if len(said) != len(meant):
        return False
    for word, target in zip(said, meant, strict=True):
        if word == target or _singular(word) == _singular(target):
            continue
        if word in known:
            return False
        if difflib.SequenceMatcher(None, word, target).ratio() < WORD_CUTOFF:
            return False
    return True


def answer_hint(option_set: OptionSet) -> str:
    """How to answer, e.g. 'a number from 0 to 3' or 'a letter from A to E'."""
    keys = [option_set.key_of(o) for o in option_set.options]
    kind = "number" if option_set.keys == "numbers" else "letter"
    ordered = sorted(keys, key=lambda k: (len(k), k))
    return f"a {kind} from {ordered[0]} to {ordered[-1]}"
