"""Personal data scrubbing: typed placeholders replace emails, phone numbers, cards, IBANs, IPs.

Placeholders keep the sentence readable for annotators ("my email is [EMAIL]") and keep what kind
of data was there, which reviewers need to judge a policy violation, without keeping the data.

``scrub`` is the definition, one string at a time. ``scrub_array`` gives exactly the same text
and kinds for a whole Arrow column: vectorized RE2 tests (``_CANDIDATE``) that match every string
in which a rule could change anything find the candidate rows, and only those go through the
rule's Python callback (the Luhn, mod-97, digit-count and date checks); email needs no callback
and is replaced by RE2 itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_PHONE = re.compile(
    r"(?<![\w#-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?(?:\d{2,5}(?:[ .-]\d{2,6}){1,3}|\d{10,13})(?![\w-])"
)
_IP = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")


# A digit doubled, minus 9 when that makes two digits.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn(digits: str) -> bool:
    # Every second digit from the right is doubled (int() reads any Unicode digit, as \d does).
    kept = sum(map(int, digits[-1::-2]))
    doubled = sum(map(_DOUBLED.__getitem__, map(int, digits[-2::-2])))
    return (kept + doubled) % 10 == 0


_NON_DIGIT = re.compile(r"\D")


def _card(match: re.Match[str]) -> str | None:
    digits = _NON_DIGIT.sub("", match.group())
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
    if _DATE.search(text) or not 9 <= len(_NON_DIGIT.sub("", text)) <= 15:
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


def _apply(kind: str, text: str) -> str:
    pattern, replace = _RULES[kind]

    def sub(m: re.Match[str]) -> str:
        out = replace(m)
        return m.group() if out is None else out

    return pattern.sub(sub, text)


def scrub(text: str, kinds: Iterable[str] = KINDS) -> tuple[str, list[str]]:
    """Return ``text`` with personal data replaced, and the kinds found (in rule order)."""
    found: list[str] = []
    wanted = set(kinds)
    for kind in _RULES:
        if kind not in wanted:
            continue
        new = _apply(kind, text)
        if new != text:
            found.append(kind)
            text = new
    return text, found


# RE2 tests, one per rule, that match every string in which the rule's Python pattern has a
# match its callback accepts (a superset, not exact: RE2 has no lookarounds and no callbacks).
# Python's \d is any Unicode decimal digit and \w any Unicode word character, so wherever a rule
# says \d the test accepts any non-ASCII character too, and the \b and lookaround anchors are
# dropped. What each test still demands is what every accepted match contains:
# - email: the pattern itself (ASCII classes only: RE2 and Python agree);
# - card: 13 digits with at most one space or hyphen between neighbours;
# - iban: two capitals, two digits and two groups of four;
# - ip: four dot-separated groups of one to three digits;
# - phone: 9 digits (``_phone`` rejects fewer) joined only by the characters the pattern allows.
_D = r"[0-9\x{80}-\x{10FFFF}]"
_CANDIDATE = {
    "email": _EMAIL.pattern,
    "card": rf"{_D}(?:[ -]?{_D}){{12}}",
    "iban": rf"[A-Z]{{2}}{_D}{{2}}(?: ?[A-Z0-9]{{4}}){{2}}",
    "ip": rf"{_D}{{1,3}}\.{_D}{{1,3}}\.{_D}{{1,3}}\.{_D}{{1,3}}",
    "phone": rf"{_D}(?:[ ().+-]*{_D}){{8}}",
}
# One pass of all of them finds the rows any rule could change; most rows stop there.
_ANY = "|".join(f"(?:{p})" for p in _CANDIDATE.values())

# Card, IBAN and phone matches are made of a few characters only (digits and separators;
# capitals, digits and spaces), so each lies inside one maximal run of those characters, and
# only a run holding what every accepted match holds can matter: 13 digits for a card, 9 for a
# phone, two capitals, two digits and two groups of four for an IBAN. These RE2 patterns match
# exactly such runs, whole (leftmost start, greedy end), in ASCII text, where RE2's [0-9] is
# Python's \d. In a string with one such run, the rule's Python pattern need only search the
# run (``_in_runs``), not the whole string.
_RUN = {
    "card": r"[ -]*(?:[0-9][ -]*){13}[0-9 -]*",
    "iban": r"[A-Z0-9 ]*[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2}[A-Z0-9 ]*",
    "phone": r"[ ().+-]*(?:[0-9][ ().+-]*){9}[0-9 ().+-]*",
}


def _in_runs(kind: str, texts: list[str], spans: list[tuple[int, int]]) -> list[str]:
    """``_apply(kind, t)`` for strings whose accepted matches all lie in one run, ``t[a:a+n]``.

    A match and its lookbehind, lookahead and ``\b`` see the run and one character each side,
    nothing more. So each run goes with those two characters into one string, runs separated
    by NUL (which, like the ends of a string, is no word character, no ``#`` and no ``-``), and
    the rule's pattern runs once over all of them.
    """
    pattern, replace = _RULES[kind]

    def sub(m: re.Match[str]) -> str:
        out = replace(m)
        return m.group() if out is None else out

    windows = []
    for text, (at, length) in zip(texts, spans, strict=True):
        windows.append(text[max(at - 1, 0) : at + length + 1])
    joined = "\x00".join(windows)
    if joined.count("\x00") != len(windows) - 1:
        return [_apply(kind, t) for t in texts]  # a NUL in the text itself: no shortcut
    done = pattern.sub(sub, joined).split("\x00")
    out = []
    for text, (at, _), old, new in zip(texts, spans, windows, done, strict=True):
        lo = max(at - 1, 0)
        out.append(text if new == old else text[:lo] + new + text[lo + len(old) :])
    return out


def _python(kind: str, texts: pa.Array, plain: np.ndarray) -> pa.Array:
    """The rule applied to every string of ``texts`` in Python, run by run where possible.

    ``plain`` marks the strings that are plain ASCII.
    """
    out: list[str] = texts.to_pylist()
    rest = np.flatnonzero(~plain)
    if kind in _RUN and plain.any():
        ascii_rows = np.flatnonzero(plain)
        sub = texts.filter(pa.array(plain))
        runs = np.asarray(pc.count_substring_regex(sub, _RUN[kind]))
        one = np.flatnonzero(runs == 1)
        spans = pc.extract_regex_span(sub.take(pa.array(one)), f"(?P<run>{_RUN[kind]})")
        where = np.asarray(pc.list_flatten(pc.struct_field(spans, "run"))).reshape(-1, 2)
        picked = ascii_rows[one].tolist()
        spans = [(at, length) for at, length in where.tolist()]
        for i, text in zip(picked, _in_runs(kind, [out[i] for i in picked], spans), strict=True):
            out[i] = text
        rest = np.concatenate((rest, ascii_rows[runs > 1]))
    elif kind not in _RUN:
        rest = np.arange(len(out))
    for i in rest.tolist():
        out[i] = _apply(kind, out[i])
    return pa.array(out, pa.string())


def scrub_array(
    texts: pa.Array, kinds: Iterable[str] = KINDS, repeats: bool = False
) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """``scrub`` over a string column: the scrubbed column and, per kind wanted, the rows it hit.

    For every non-null ``t`` this is exactly ``scrub(t, kinds)``: the text, and ``kind in found``
    is ``hits[kind][i]``. Nulls stay null. ``repeats`` says that texts repeat a lot (a long
    layout repeats them for every annotator): each distinct text is then scrubbed once.
    """
    wanted = [k for k in KINDS if k in set(kinds)]
    if isinstance(texts, pa.ChunkedArray):
        # combine_chunks copies even a lone chunk.
        texts = texts.chunk(0) if texts.num_chunks == 1 else texts.combine_chunks()
    texts = texts.cast(pa.string())
    if repeats:
        encoded = pc.dictionary_encode(texts)
        distinct, found = scrub_array(encoded.dictionary, wanted)
        # A null row points one past the distinct texts, where no kind was found.
        index = np.asarray(encoded.indices.fill_null(len(distinct)))
        hits = {k: np.append(h, False)[index] for k, h in found.items()}
        return distinct.take(encoded.indices), hits
    n = len(texts)
    hits = {kind: np.zeros(n, dtype=bool) for kind in wanted}
    rows = np.flatnonzero(np.asarray(pc.match_substring_regex(texts, _ANY).fill_null(False)))
    if len(rows) == 0 or not wanted:
        return texts, hits
    # From here on only the candidate rows, and each distinct text once: scrubbing is a pure
    # function of the text, and texts repeat (a long layout repeats them for every annotator).
    encoded = pc.dictionary_encode(texts.take(pa.array(rows)))
    distinct, index = encoded.dictionary, np.asarray(encoded.indices)
    scrubbed, found = _scrub_candidates(distinct, wanted)
    for kind, hit in found.items():
        hits[kind][rows] = hit[index]
    mask = pa.array(_scatter(rows, n))
    return pc.replace_with_mask(texts, mask, scrubbed.take(encoded.indices)), hits


def _scrub_candidates(sub: pa.Array, wanted: list[str]) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """Scrub the candidate texts ``sub`` kind by kind: the texts, and per kind the hits."""
    hits: dict[str, np.ndarray] = {}
    plain = np.asarray(pc.equal(pc.utf8_length(sub), pc.binary_length(sub)))
    for kind in wanted:
        hits[kind] = np.zeros(len(sub), dtype=bool)
        test = np.asarray(pc.match_substring_regex(sub, _CANDIDATE[kind]), dtype=bool)
        if not test.any():
            continue
        before = sub.filter(pa.array(test))
        if kind == "email":
            after = pc.replace_substring_regex(before, _EMAIL.pattern, "[EMAIL]")
        else:
            after = _python(kind, before, plain[test])
        changed = np.asarray(pc.not_equal(before, after), dtype=bool)
        if changed.any():
            hits[kind][np.flatnonzero(test)[changed]] = True
            sub = pc.replace_with_mask(sub, pa.array(hits[kind]), after.filter(pa.array(changed)))
    return sub, hits


def _scatter(rows: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask
