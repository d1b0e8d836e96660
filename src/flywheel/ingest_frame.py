"""What ingest's bulk readers hand over: ``Frame``, and the byte-level helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from flywheel import exports
from flywheel.exports import RawRow


def _no_bulk_rows(i: int) -> RawRow | None:
    raise IndexError(f"no row {i} was read in bulk")


class FileBytes:
    """A file's bytes, held while the export is mapped and read again from disk after."""

    def __init__(self, path: Path, data: bytes, keep: bool = False) -> None:
        self.path, self.keep = path, keep
        self.data: bytes | None = data

    def span(self, start: int, end: int) -> bytes:
        if self.data is not None:
            return self.data[start:end]
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(end - start)

    def release(self) -> None:
        if not self.keep:
            self.data = None


@dataclass
class Frame:
    """An export's rows: those read in bulk (``table``) and those left to the row reader."""

    table: pa.Table
    lines: np.ndarray  # int64, the line of each row of ``table``
    slow: list[RawRow] = field(default_factory=list)
    # The row reader's view of table row i; None for a row it skips (a CSV row of blank fields).
    raw_row: Callable[[int], RawRow | None] = _no_bulk_rows
    source: FileBytes | None = None

    def release(self) -> None:
        """Drop the file's bytes (``raw_row`` reads what it needs from disk from now on)."""
        if self.source is not None:
            self.source.release()

    @staticmethod
    def rows_only(export: exports.Export) -> Frame:
        """Every row from the row reader: for files the bulk readers cannot vouch for."""
        return Frame(pa.table({}), np.zeros(0, np.int64), list(exports.read_rows(export)))


def trustworthy(data: bytes) -> bool:
    """Bytes pyarrow and Python's text-mode reading see alike (valid UTF-8, CRLF at most)."""
    if data.startswith(b"\xef\xbb\xbf") or b"\x00" in data:
        return False
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return False
    try:
        # Validation without a decoded copy: a one-element string array over the bytes.
        offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def line_spans(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, before the newline) of every line, as text-mode reading sees."""
    nl = np.flatnonzero(b == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(b)]))
    if starts[-1] == len(b):  # a final newline ends the last line, it starts none
        starts, ends = starts[:-1], ends[:-1]
    return starts.astype(np.int64), ends.astype(np.int64)


def join(data: bytes, spans: np.ndarray) -> pa.Buffer:
    """The bytes of ``spans`` end to end (zero-copy when they are one run of the file)."""
    if len(spans) == 0:
        return pa.py_buffer(b"")
    view = memoryview(data)
    breaks = np.flatnonzero(spans[1:, 0] != spans[:-1, 1]) + 1
    firsts = np.concatenate(([0], breaks)).tolist()
    lasts = (np.concatenate((breaks, [len(spans)])) - 1).tolist()
    if len(firsts) == 1:
        return pa.py_buffer(view[int(spans[0, 0]) : int(spans[-1, 1])])
    return pa.py_buffer(
        b"".join(view[spans[a, 0] : spans[z, 1]] for a, z in zip(firsts, lasts, strict=True))
    )
