from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flywheel.scrub import KINDS, scrub, scrub_array


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


# --- scrub_array: the vectorized scrub, checked against scrub() itself ------------------------


def _luhn_complete(digits: str) -> str:
    """``digits`` plus the check digit that makes it a valid card number."""
    total = 0
    for i, ch in enumerate(reversed(digits + "0")):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


# Pieces that make the rules fire, nearly fire, or get in each other's way.
PIECES = st.one_of(
    st.sampled_from(
        [
            " ",
            "  ",
            "\n",
            "-",
            ".",
            "(",
            ")",
            "+",
            "#",
            "_",
            "@",
            "/",
            ":",
            "a",
            "Z",
            "é",
            "\x00",
            "\u2019",
            "٣",
            "５",  # noqa: RUF001 (full-width digits are digits to \d)
            "１２",  # noqa: RUF001
            "x@y.co",
            "jane.doe@example.co.uk",
            "a@b",
            "+44 20 7946 0958",
            "(020) 7946 0958",
            "07700 900915",
            "415-555-0132",
            "555 0147",
            "2026-09-03",
            "03/09/2026",
            "10:30",
            "192.168.1.20",
            "256.1.1.1",
            "1.2.3.4.5",
            "DE89 3704 0044 0532 0130 00",
            "GB12 ABCD EFGH IJKL",
            "GB82WEST12345698765432",
            "4111 1111 1111 1111",
            "4111-1111-1111-1112",
            "TT5161941615",
            "#A1234-567",
            "$45.00",
        ]
    ),
    st.text(alphabet="0123456789 -.()+", min_size=1, max_size=24),
    st.builds(_luhn_complete, st.text(alphabet="0123456789", min_size=12, max_size=18)),
    st.text(max_size=6),
)
TEXTS = st.lists(PIECES, max_size=12).map("".join)


@pytest.mark.parametrize("repeats", [False, True])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.one_of(st.none(), TEXTS), max_size=20), kinds=st.sets(st.sampled_from(KINDS))
)
@example(texts=["a@b.io 4111 1111 1111 1111", "call 415-555-0132 now", None], kinds=set(KINDS))
@example(
    texts=["(020) 7946 0958 x 07700 900915.", "4111 1111 1111 1111 4111 1111 1111 1111"],
    kinds=set(KINDS),
)
def test_scrub_array_is_scrub_on_every_row(
    texts: list[str | None], kinds: set[str], repeats: bool
) -> None:
    # Repeat the texts so that the array holds duplicates (scrubbed once, spread to all).
    column = pa.array(texts + texts, pa.string())
    scrubbed, hits = scrub_array(column, kinds, repeats)
    assert set(hits) == kinds
    for i, text in enumerate(texts + texts):
        if text is None:
            assert scrubbed[i].as_py() is None
            assert not any(h[i] for h in hits.values())
            continue
        expected, found = scrub(text, kinds)
        assert scrubbed[i].as_py() == expected
        assert [k for k in KINDS if k in kinds and hits[k][i]] == found


def test_scrub_array_of_nothing() -> None:
    scrubbed, hits = scrub_array(pa.array([], pa.string()))
    assert len(scrubbed) == 0 and all(len(h) == 0 for h in hits.values())
