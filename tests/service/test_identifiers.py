"""Patient identifiers: which phone numbers we may text, and which NHS numbers are real.

Every phone number here is an Ofcom drama number (07700 900xxx mobiles, 01632
960xxx and 020 7946 0xxx landlines, and the other reserved ranges), a NANP
555-01xx fictional number, or ARCEP's range reserved for fiction: none reaches
a real phone.
"""

from __future__ import annotations

import pytest

from bot.identifiers import InvalidIdentifier, normalise_nhs_number, normalise_uk_mobile

# -- UK mobiles ------------------------------------------------------------------

FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))

ACCEPTED_MOBILES = [
    # written as a patient or a receptionist might    E.164
    ("07700 900123", "+447700900123"),
    ("07700900123", "+447700900123"),
    ("07700-900-123", "+447700900123"),
    ("(07700) 900123", "+447700900123"),
    ("+44 7700 900123", "+447700900123"),
    ("+44 (0)7700 900123", "+447700900123"),
    ("+4407700900123", "+447700900123"),
    ("0044 7700 900123", "+447700900123"),
    ("447700900123", "+447700900123"),
    ("  +447700900123 ", "+447700900123"),
    ("tel:+447700900123", "+447700900123"),
    ("07700 900123".translate(FULL_WIDTH), "+447700900123"),  # from some phone keyboards
    # the whole drama range, first to last
    ("07700 900000", "+447700900000"),
    ("07700 900999", "+447700900999"),
]

REFUSED_NUMBERS = [
    # what                          raw                     the message says
    ("drama landline", "01632 960123", "not a valid UK mobile"),
    ("drama landline, E.164", "+441632960123", "not a valid UK mobile"),
    ("London landline", "020 7946 0123", "not a mobile"),
    ("Leeds landline", "0113 496 0123", "not a mobile"),
    ("freephone", "0808 157 0123", "not a mobile"),
    ("premium rate", "0909 879 0123", "not a mobile"),
    ("non-geographic 03", "03069 990123", "not a mobile"),
    ("US number", "+1 202 555 0123", "not a valid UK mobile"),
    ("French mobile", "+33 6 39 98 00 00", "not a valid UK mobile"),
    ("too short", "07700 9001", "not a valid UK mobile"),
    ("far too short", "0770", "not a valid UK mobile"),
    ("too long", "07700 9001234", "not a valid UK mobile"),
    ("mobile prefix outside the drama range, unallocated", "07700 901000", "not a valid"),
    ("words", "garbage", "not a phone number"),
    ("a stray symbol", "07700900123#", "not a phone number"),
    ("an extension", "07700 900123 ext. 5", "without an extension"),
    ("an extension, short form", "07700 900123 x5", "without an extension"),
    ("empty", "", "required"),
    ("blank", "   ", "required"),
]


@pytest.mark.parametrize(("raw", "e164"), ACCEPTED_MOBILES)
def test_uk_mobiles_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalise_uk_mobile(raw) == e164


@pytest.mark.parametrize(
    ("raw", "message"),
    [(raw, message) for _what, raw, message in REFUSED_NUMBERS],
    ids=[what for what, _raw, _message in REFUSED_NUMBERS],
)
def test_numbers_that_are_not_uk_mobiles_are_refused(raw: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        normalise_uk_mobile(raw)


def test_a_phone_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="must be text"):
        normalise_uk_mobile(7700900123)  # type: ignore[arg-type]


# -- NHS numbers ------------------------------------------------------------------

VALID_NHS_NUMBERS = [
    ("9434765919", "9434765919"),
    ("9434765870", "9434765870"),  # check digit 0 (11 - 0 becomes 0)
    ("943 476 5919", "9434765919"),  # as printed on letters
    ("943-476-5919", "9434765919"),
    (" 9434765919 ", "9434765919"),
]

INVALID_NHS_NUMBERS = [
    # what                                      raw               the message says
    ("wrong check digit", "9434765918", "check digit"),
    ("two digits swapped", "4934765919", "check digit"),
    ("check digit would be 10", "9434765960", "check digit"),
    ("nine digits", "943476591", "10 digits"),
    ("eleven digits", "94347659190", "10 digits"),
    ("a letter", "943476591X", "10 digits"),
    ("words", "not a number", "10 digits"),
    ("empty", "", "10 digits"),
    ("non-ASCII digits", "٩٤٣٤٧٦٥٩١٩", "10 digits"),
    ("a decimal point", "943476591.9", "10 digits"),
]


@pytest.mark.parametrize(("raw", "digits"), VALID_NHS_NUMBERS)
def test_valid_nhs_numbers_are_kept_as_ten_digits(raw: str, digits: str) -> None:
    assert normalise_nhs_number(raw) == digits


@pytest.mark.parametrize(
    ("raw", "message"),
    [(raw, message) for _what, raw, message in INVALID_NHS_NUMBERS],
    ids=[what for what, _raw, _message in INVALID_NHS_NUMBERS],
)
def test_invalid_nhs_numbers_are_refused(raw: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        normalise_nhs_number(raw)
