"""The words a patient can text at any point, matched on the whole message.

Opting out is honoured however it is put: Twilio's default opt-out keywords
(STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE), "STOP ALL",
and plain requests ("stop texting me", "unsubscribe me", "please stop
messaging me", "no more texts"). But only a whole message that is a request to
stop: a sentence that merely contains "stop" ("I can't stop worrying", "I
stopped my tablets") is not one. So opt-out requests are a closed list of
phrases (built below from their parts), matched on the whole message once
politeness ("please", "thanks", "now") is set aside; never a search inside a
sentence. Opting back in stays explicit: START or UNSTOP, nothing else.
The table of what must and must not opt out is in tests/test_opt_out.py.
"""

from __future__ import annotations

import itertools
import re
from enum import StrEnum


class Command(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    BACK = "back"
    REPEAT = "repeat"
    LATER = "later"
    CALL = "call"


# Twilio's default opt-out keywords (which Twilio itself also honours, blocking
# further texts to the number) and opt-in keywords. Twilio treats YES as an
# opt-in too; we never do: "yes" is an answer.
CARRIER_OPT_OUT = ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke")
CARRIER_OPT_IN = ("start", "unstop")

WORDS: dict[str, Command] = {
    **dict.fromkeys([*CARRIER_OPT_OUT, "stop all"], Command.STOP),
    # plain-English opt-outs: someone who writes these wants us to stop
    **dict.fromkeys(
        ["please stop", "stop please", "stop texting me", "stop messaging me"], Command.STOP
    ),
    **dict.fromkeys(CARRIER_OPT_IN, Command.START),
    # "help me" may come from someone in distress: HELP's answer has the crisis numbers
    **dict.fromkeys(["help", "info", "help me", "help please", "please help"], Command.HELP),
    **dict.fromkeys(["back", "undo"], Command.BACK),
    **dict.fromkeys(["repeat"], Command.REPEAT),
    **dict.fromkeys(["later", "pause"], Command.LATER),
    **dict.fromkeys(["call", "call me"], Command.CALL),
}

# -- opt-out requests in the patient's own words -------------------------------------

_VERBS = ("texting", "txting", "messaging", "msging", "sending", "contacting", "bothering")
_VERBS_TO = ("text", "txt", "message", "msg", "contact")
_THINGS = (
    "texts",
    "txts",
    "messages",
    "msgs",
    "text messages",
    "questionnaires",
    "surveys",
    "reminders",
)
_WHICH = ("", "these ", "the ", "your ", "any more ", "anymore ", "more ")
_LISTS = ("list", "your list", "the list", "this list", "the system", "your system", "texts")


def _opt_out_phrases() -> frozenset[str]:
    things = [f"{which}{thing}" for which, thing in itertools.product(_WHICH, _THINGS)]
    phrases = {
        *CARRIER_OPT_OUT,
        "stop all",
        "stop it",
        "stop this",
        "stop these",
        "stop them",
        "stop that",
        "stop all this",
        "opt out",
        "opt me out",
        "unsubscribe me",
        "i quit",
        "remove me",
        "remove my number",
        "delete my number",
        "take me off",
        "leave me alone",
        "cancel this",
        "cancel these",
        "cancel it",
        "cancel all",
    }
    for verb in _VERBS:
        phrases |= {f"stop {verb}", f"stop {verb} me"}
    for thing in things:
        phrases |= {
            f"stop {thing}",
            f"stop all {thing}",
            f"stop sending {thing}",
            f"stop sending me {thing}",
            f"no more {thing}",
            f"cancel {thing}",
            f"unsubscribe me from {thing}",
            f"i dont want {thing}",
            f"i do not want {thing}",
            f"i dont want to get {thing}",
            f"i dont want to receive {thing}",
            f"i dont want any {thing}",
        }
    for verb in _VERBS_TO:
        phrases |= {f"dont {verb} me", f"do not {verb} me", f"never {verb} me"}
    for where in _LISTS:
        phrases |= {
            f"take me off {where}",
            f"remove me from {where}",
            f"take my number off {where}",
        }
    for lead in ("i want to", "i would like to", "id like to", "i wish to", "let me"):
        phrases |= {f"{lead} opt out", f"{lead} unsubscribe", f"{lead} stop these texts"}
    return frozenset(phrases)


OPT_OUT_PHRASES = _opt_out_phrases()

# Politeness and emphasis around a request that do not change it.
_LEADING = ("please", "pls", "plz", "can you", "could you", "can u", "would you", "kindly")
_LEADING += ("just", "ok", "okay", "i said", "i already said", "for the last time", "oh")
_TRAILING = ("please", "pls", "plz", "thanks", "thank you", "thx", "ta", "now", "right now")
_TRAILING += ("asap", "immediately", "again", "anymore", "any more", "x", "already", "for me")
_TRAILING += ("thank you very much", "ok", "okay", "now please", "from now on", "for good")


def _words(text: str) -> str:
    text = re.sub(r"(?<=\w)['\u2019\u2018`](?=\w)", "", text.casefold())
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _without_politeness(words: str) -> str:
    tokens = words.split()
    changed = True
    while changed:
        changed = False
        for phrase in sorted(_LEADING, key=len, reverse=True):
            part = phrase.split()
            if len(tokens) > len(part) and tokens[: len(part)] == part:
                tokens, changed = tokens[len(part) :], True
        for phrase in sorted(_TRAILING, key=len, reverse=True):
            part = phrase.split()
            if len(tokens) > len(part) and tokens[-len(part) :] == part:
                tokens, changed = tokens[: -len(part)], True
    return " ".join(tokens)


def is_opt_out_request(text: str) -> bool:
    """True when the whole message asks us to stop texting, in any of the ways people put it."""
    words = _words(text)
    if not words or len(words) > 80:
        return False
    if set(words.split()) == {"stop"}:  # "STOP STOP STOP"
        return True
    return _without_politeness(words) in OPT_OUT_PHRASES


_EDGE_NOISE = re.compile(r"^[\W_]+|[\W_]+$")
_SPACES = re.compile(r"\s+")


def command_in(text: str) -> Command | None:
    """The command a whole message is, in any case, ignoring spaces and punctuation round it."""
    text = text.strip()
    if len(text) > 80:
        return None
    word = _SPACES.sub(" ", _EDGE_NOISE.sub("", text.casefold()))
    command = WORDS.get(word)
    if command is None and is_opt_out_request(text):
        return Command.STOP
    return command
