"""Per-row facts about an Arrow string column, computed on its bytes with numpy.

pyarrow's regex kernels cost about a microsecond per row whatever the pattern; the questions
ingest asks of every row (is the first character printable? how many digits? does any byte fall
in this class?) cost a few numpy passes over the column's bytes instead. All answers are about
UTF-8 bytes: a byte >= 0x80 is part of a non-ASCII character, so "ASCII class" questions are
exact and anything non-ASCII is left to the caller to treat conservatively.
"""

from __future__ import annotations

import hashlib
from itertools import pairwise

import numpy as np
import pyarrow as pa


def single(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one array: ``combine_chunks`` copies even a lone chunk, this does not."""
    if not isinstance(values, pa.ChunkedArray):
        return values
    if values.num_chunks == 1:
        return values.chunk(0)
    return values.combine_chunks()


class Bytes:
    """A string column's offsets and bytes as numpy views (no copy)."""

    def __init__(self, texts: pa.Array) -> None:
        texts = single(texts)
        if not pa.types.is_string(texts.type):
            texts = texts.cast(pa.string())
        self.texts: pa.StringArray = texts
        n = len(texts)
        raw = np.frombuffer(texts.buffers()[1], np.int32, n + 1, 4 * texts.offset)
        lo, hi = int(raw[0]), int(raw[-1])
        self.offsets = raw.astype(np.int64) - lo
        data = texts.buffers()[2]
        self.data = (
            np.frombuffer(data, np.uint8, hi - lo, lo)
            if data is not None and hi > lo
            else np.zeros(0, np.uint8)
        )
        self.starts, self.ends = self.offsets[:-1], self.offsets[1:]
        self.length = self.ends - self.starts
        self.valid = np.asarray(texts.is_valid(), dtype=bool)

    def blake2b(self, digest_size: int) -> bytes:
        """Each row's BLAKE2b digest of its bytes, concatenated (``digest_size`` bytes a row):
        one hashlib call per row on slices of the column's buffer, no Python string."""
        data = memoryview(self.data.data) if len(self.data) else memoryview(b"")
        bounds = self.offsets.tolist()
        blake2b = hashlib.blake2b
        return b"".join(
            [blake2b(data[a:b], digest_size=digest_size).digest() for a, b in pairwise(bounds)]
        )

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Per row, how many of its bytes ``mask`` (one bool per byte of ``data``) marks."""
        out = np.zeros(len(self.starts), dtype=np.int64)
        filled = self.length > 0
        if filled.any():
            # reduceat sums from each start to the next: empty rows are skipped, not summed.
            out[filled] = np.add.reduceat(mask.view(np.uint8), self.starts[filled], dtype=np.uint32)
        return out

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        """Which rows hold at least one of the byte ``positions``."""
        out = np.zeros(len(self.starts), dtype=bool)
        if len(positions):
            out[np.searchsorted(self.starts, positions, side="right") - 1] = True
        out &= self.length > 0
        return out


def in_range(data: np.ndarray, low: int, high: int) -> np.ndarray:
    """Bytes in ``low..high`` (uint8 arithmetic wraps, so one comparison does)."""
    return (data - np.uint8(low)) <= np.uint8(high - low)


def printable(data: np.ndarray) -> np.ndarray:
    """Bytes ``!`` to ``~``: visible ASCII, whitespace by no definition."""
    return in_range(data, 0x21, 0x7E)
