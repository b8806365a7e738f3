"""Phone numbers: one normaliser (foundation.phones) for subscribers, SMS senders and reports."""

from __future__ import annotations

import pytest

from foundation.phones import PhoneError, normalize_phone
from publisher.subscribers import SubscriberError, normalize_address


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",  # a mainland mobile without its country code: the city's region
        "138 0013 8000",
        "138-0013-8000",
        "(138) 0013 8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "0086 13800138000",  # the international prefix dialled from China
        "  13800138000\n",
    ],
)
def test_mainland_numbers_however_written_are_one_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+8613800138000"


def test_foreign_numbers_keep_their_country() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("0044 20 7946 0958") == "+442079460958"
    assert normalize_phone("+1 202 555 0123") == "+12025550123"
    assert normalize_phone("2025550123", "US") == "+12025550123"  # another default region


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "not a phone number"),
        ("not-a-number", "not a phone number"),
        ("+1", "not a phone number"),
        ("555", "not a possible phone number"),
        ("+86138", "not a possible phone number"),
        ("12345", "not a valid phone number"),  # a short code, not a line that takes texts
        ("987654321", "not a valid phone number"),  # a Telegram chat id is no phone
    ],
)
def test_what_is_not_a_phone_number(raw: str, says: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(raw)
    assert str(caught.value).startswith(says)
    assert isinstance(caught.value, ValueError)


def test_subscriber_addresses_use_the_same_normaliser() -> None:
    assert normalize_address("sms", "138 0013 8000") == "+8613800138000"
    assert normalize_address("telegram", " 777 ") == "777"
    with pytest.raises(SubscriberError, match="^not a phone number"):  # what the import report says
        normalize_address("sms", "not-a-number")
    with pytest.raises(SubscriberError, match="^not a valid phone number"):
        normalize_address("sms", "12345")
