"""Phone numbers: one normaliser for every number the service keeps, sends to or counts.

A subscriber's number, an SMS sender and a citizen report's contact number are all kept as E.164
("+8613800138000"), parsed and checked against the numbering plans with phonenumbers; a number
without its country code is read as one of the city's own (mainland China).
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "CN"  # the city's numbering plan, for numbers given without a country code


class PhoneError(ValueError):
    """Not a phone number (the text says which, for logs and the import report)."""


def normalize_phone(raw: str, default_region: str = DEFAULT_REGION) -> str:
    """E.164 ("+8613800138000" from "138 0013 8000", "+86 138-0013-8000" or "0086..."), or PhoneError."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {raw[:40]!r}") from exc
    if not phonenumbers.is_possible_number(number):
        raise PhoneError(f"not a possible phone number: {raw[:40]!r}")
    if not phonenumbers.is_valid_number(number):  # the right length, but no line has it ("12345")
        raise PhoneError(f"not a valid phone number: {raw[:40]!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
