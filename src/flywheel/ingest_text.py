"""The text exact duplicates are judged on, and its hash: per string, and over Arrow columns.

``normalize`` and ``content_hash`` are the definitions (other stages and stored data rely on
them, byte for byte). ``normalized`` and ``content_hashes`` compute the same over whole columns:
for a plain-ASCII string NFKC changes nothing and ``casefold`` is ASCII lowercasing, so pyarrow
lowercases every string at once; where whitespace is more than single spaces between words,
pyarrow splits and joins plain-ASCII strings, and Python's ``normalize`` takes the rest.
"""

from __future__ import annotations

import hashlib
import unicodedata
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.ingest_bytes import Bytes, in_range


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the text exact duplicates are judged on."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_hash(prompt: str, response: str) -> str:
    joined = normalize(prompt) + "\x1f" + normalize(response)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=16).hexdigest()


def normalized(texts: pa.Array) -> pa.Array:
    """``normalize`` of every string of the column; nulls stay null."""
    view = Bytes(texts)
    texts, data = view.texts, view.data
    if len(texts) == 0:
        return texts
    plain = np.asarray(pc.equal(pc.utf8_length(texts), pc.binary_length(texts)).fill_null(True))
    # Where whitespace is anything but single spaces between words it must be collapsed:
    # bytes 0x09-0x1f hold every other ASCII character str.split() splits on.
    odd = in_range(data, 0x09, 0x1F)
    space = data == 0x20
    odd[1:] |= space[1:] & space[:-1]
    uneven = view.rows_of(np.flatnonzero(odd))
    uneven |= (view.first() == 0x20) | (view.last() == 0x20)
    lowered = pc.ascii_lower(texts)
    # Plain ASCII without the separators 0x1c-0x1f, which pyarrow does not split on: pyarrow's
    # ASCII whitespace split and a join do it. The rest: Python's normalize.
    seps = view.rows_of(np.flatnonzero(in_range(data, 0x1C, 0x1F))) if uneven.any() else uneven
    python = view.valid & (~plain | (uneven & seps))
    split = view.valid & plain & uneven & ~seps
    if split.any():
        mask = pa.array(split)
        joined = pc.binary_join(
            pc.ascii_split_whitespace(pc.ascii_trim_whitespace(lowered.filter(mask))), " "
        )
        lowered = pc.replace_with_mask(lowered, mask, joined)
    if python.any():
        mask = pa.array(python)
        values = [normalize(t) for t in texts.filter(mask).to_pylist()]
        lowered = pc.replace_with_mask(lowered, mask, pa.array(values, pa.string()))
    return lowered


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def content_hashes(prompts: pa.Array, responses: pa.Array) -> pa.Array:
    """``content_hash`` of every (prompt, response) pair; null where either is null."""
    joined = pc.binary_join_element_wise(normalized(prompts), normalized(responses), "\x1f")
    view = Bytes(joined)
    data = memoryview(view.data.data) if len(view.data) else memoryview(b"")
    blake2b = hashlib.blake2b
    bounds = view.offsets.tolist()
    digests = b"".join([blake2b(data[a:b], digest_size=16).digest() for a, b in pairwise(bounds)])
    # hexdigest() per row, built as one buffer: two hex digits per byte.
    raw = np.frombuffer(digests, np.uint8)
    hexed = np.empty(2 * len(raw), np.uint8)
    hexed[0::2], hexed[1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    n = len(joined)
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * 32).tobytes())
    hashes = pa.StringArray.from_buffers(n, offsets, pa.py_buffer(hexed.tobytes()))
    return pc.if_else(view.valid, hashes, pa.nulls(n, pa.string()))
