from __future__ import annotations

import pytest

from flywheel.scrub import scrub


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("mail jane.doe@example.co.uk now", "mail [EMAIL] now", ["email"]),
        ("call +1 415-555-0132 or (020) 7946 0958", "call [PHONE] or [PHONE]", ["phone"]),
        ("reach me on 07700 900915.", "reach me on [PHONE].", ["phone"]),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok", ["card"]),
        ("pay to DE89 3704 0044 0532 0130 00 please", "pay to [IBAN] please", ["iban"]),
        ("from 192.168.1.20 today", "from [IP] today", ["ip"]),
    ],
)
def test_personal_data_is_replaced_by_its_kind(text: str, expected: str, kinds: list[str]) -> None:
    assert scrub(text) == (expected, kinds)


@pytest.mark.parametrize(
    "text",
    [
        "Order #A1234-567 shipped on 2026-09-03 10:30 for 183.49.",
        "Tracking TT5161941615 says in transit.",
        "Card ending 4111 1111 1111 1112 is not a Luhn number.",
        "Reference 12345678, ticket 2026-11-27.",
        "Not an IBAN: GB12 ABCD EFGH IJKL.",
    ],
)
def test_look_alikes_are_kept(text: str) -> None:
    assert scrub(text) == (text, [])


def test_only_requested_kinds() -> None:
    assert scrub("a@b.io 4111 1111 1111 1111", ["card"]) == ("a@b.io [CARD]", ["card"])
