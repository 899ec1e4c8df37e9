"""The GSM 03.38 alphabet, so every text we send costs what we think it costs.

Any character outside it forces the whole SMS into UCS-2 (70 characters a
segment instead of 160), and some handsets show it as a box. Instrument files
and every engine message are checked against it.
"""

from __future__ import annotations

import math

BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = set("^{}\\[~]|€\f")

SINGLE_SEGMENT = 160
MULTI_SEGMENT = 153
MAX_SEGMENTS = 2
MAX_SEPTETS = MULTI_SEGMENT * MAX_SEGMENTS  # 306


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension table."""
    return all(ch in BASIC or ch in EXTENSION for ch in text)


def non_gsm7_characters(text: str) -> list[str]:
    """The characters that would force UCS-2, in order of appearance, once each."""
    seen: list[str] = []
    for ch in text:
        if ch not in BASIC and ch not in EXTENSION and ch not in seen:
            seen.append(ch)
    return seen


def septets(text: str) -> int:
    """Length in GSM-7 septets: extension characters take two."""
    return sum(2 if ch in EXTENSION else 1 for ch in text)


def segments(text: str) -> int:
    """How many SMS segments a GSM-7 text takes."""
    length = septets(text)
    if length <= SINGLE_SEGMENT:
        return 1
    return math.ceil(length / MULTI_SEGMENT)
