"""The words a patient can text at any point, matched on the whole message."""

from __future__ import annotations

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


# STOP's words are the carrier-standard opt-out keywords Twilio also honours.
WORDS: dict[str, Command] = {
    **dict.fromkeys(["stop", "stopall", "unsubscribe", "cancel", "end", "quit"], Command.STOP),
    # plain-English opt-outs: someone who writes these wants us to stop
    **dict.fromkeys(
        ["please stop", "stop please", "stop texting me", "stop messaging me"], Command.STOP
    ),
    **dict.fromkeys(["start", "unstop"], Command.START),
    # "help me" may come from someone in distress: HELP's answer has the crisis numbers
    **dict.fromkeys(["help", "info", "help me", "help please", "please help"], Command.HELP),
    **dict.fromkeys(["back", "undo"], Command.BACK),
    **dict.fromkeys(["repeat"], Command.REPEAT),
    **dict.fromkeys(["later", "pause"], Command.LATER),
    **dict.fromkeys(["call", "call me"], Command.CALL),
}

_EDGE_NOISE = re.compile(r"^[\W_]+|[\W_]+$")
_SPACES = re.compile(r"\s+")


def command_in(text: str) -> Command | None:
    """The command a whole message is, in any case, ignoring spaces and punctuation round it."""
    text = text.strip()
    if len(text) > 40:
        return None
    word = _SPACES.sub(" ", _EDGE_NOISE.sub("", text.casefold()))
    return WORDS.get(word)
