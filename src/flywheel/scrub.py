"""Personal data scrubbing: typed placeholders replace emails, phone numbers, cards, IBANs, IPs.

Placeholders keep the sentence readable for annotators ("my email is [EMAIL]") and keep what kind
of data was there, which reviewers need to judge a policy violation, without keeping the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_PHONE = re.compile(
    r"(?<![\w#-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?(?:\d{2,5}(?:[ .-]\d{2,6}){1,3}|\d{10,13})(?![\w-])"
)
_IP = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str | None:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn(digits) else None


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./-]\d{2}[./-]\d{4}")


def _iban(match: re.Match[str]) -> str | None:
    # The ISO 13616 check (mod 97 == 1) tells an IBAN from a tracking or reference number.
    compact = match.group().replace(" ", "")
    rotated = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rotated)
    return "[IBAN]" if int(number) % 97 == 1 else None


def _phone(match: re.Match[str]) -> str | None:
    # 9 to 15 digits (E.164's maximum) and no date inside: shorter runs are order numbers,
    # amounts and times; longer ones are card-like numbers that failed the Luhn check.
    text = match.group()
    if _DATE.search(text) or not 9 <= len(re.sub(r"\D", "", text)) <= 15:
        return None
    return "[PHONE]"


def _const(text: str) -> Callable[[re.Match[str]], str | None]:
    return lambda _m: text


# Order matters: a card number would otherwise be read as a phone number.
_RULES: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]] = {
    "email": (_EMAIL, _const("[EMAIL]")),
    "card": (_CARD, _card),
    "iban": (_IBAN, _iban),
    "ip": (_IP, _const("[IP]")),
    "phone": (_PHONE, _phone),
}
KINDS = tuple(_RULES)


def scrub(text: str, kinds: Iterable[str] = KINDS) -> tuple[str, list[str]]:
    """Return ``text`` with personal data replaced, and the kinds found (in rule order)."""
    found: list[str] = []
    wanted = set(kinds)
    for kind, (pattern, replace) in _RULES.items():
        if kind not in wanted:
            continue

        def sub(m: re.Match[str], replace: Callable[[re.Match[str]], str | None] = replace) -> str:
            out = replace(m)
            return m.group() if out is None else out

        new = pattern.sub(sub, text)
        if new != text:
            found.append(kind)
            text = new
    return text, found
