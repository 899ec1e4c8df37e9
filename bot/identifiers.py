"""Patient identifiers: UK mobile numbers and NHS numbers, checked before they are stored."""

from __future__ import annotations

import phonenumbers

# Ofcom reserves 07700 900000 to 900999 for drama; they are never allocated to a
# real phone, which makes them the only safe numbers for tests and demos. The
# phonenumbers metadata calls them invalid, so they are allowed by name here.
DRAMA_MOBILE_PREFIX = "+447700900"


class InvalidIdentifier(ValueError):
    """A value that is not what its field needs, with a message fit for the caller."""


def normalise_uk_mobile(raw: str) -> str:
    """The E.164 form of a UK mobile number, or InvalidIdentifier.

    Landlines are refused: UK carriers read texts sent to landlines aloud as a
    voice call, which would speak a patient's questionnaire to whoever answers.
    """
    if not isinstance(raw, str):
        raise InvalidIdentifier("phone must be text, such as 07700 900123")
    if not raw.strip():
        raise InvalidIdentifier("phone is required")
    try:
        number = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("phone is not a phone number") from None
    if number.extension:
        # a mobile has no extension: one given means this is not the patient's own mobile
        raise InvalidIdentifier("phone must be a mobile number without an extension")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164.startswith(DRAMA_MOBILE_PREFIX) and len(e164) == 13:
        return e164
    if number.country_code != 44 or not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("phone is not a valid UK mobile number")
    if phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE:
        raise InvalidIdentifier("phone is not a mobile number (texts to landlines are read aloud)")
    return e164


def normalise_e164(raw: str) -> str | None:
    """Any number as E.164, or None when it cannot be parsed (for inbound ``From``)."""
    try:
        number = phonenumbers.parse(raw, "GB")
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_nhs_number(raw: str) -> str:
    """Ten digits passing the NHS number's modulus 11 check, or InvalidIdentifier."""
    digits = "".join(ch for ch in str(raw) if not ch.isspace() and ch != "-")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        raise InvalidIdentifier("nhs_number must be 10 digits")
    weighted = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - weighted % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(digits[9]):
        raise InvalidIdentifier("nhs_number fails its check digit")
    return digits
