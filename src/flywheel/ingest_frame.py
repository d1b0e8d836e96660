"""What ingest's bulk readers hand over: ``Frame``, and the byte-level helpers they share."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel import exports
from flywheel.exports import RawRow


def jsonl_row(number: int, text: str) -> RawRow | None:
    """``exports._read_jsonl`` for one line (``None``: a blank line, which is no row)."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return RawRow(
            number, None, text, f"line is not valid JSON ({exc.msg} at column {exc.colno})"
        )
    if not isinstance(value, dict):
        return RawRow(number, None, text, f"line is a JSON {type(value).__name__}, not an object")
    return RawRow(number, value, text)


def csv_fields(text: str) -> list[str]:
    """The fields of one CSV record (its text, terminator included)."""
    return next(csv.reader(io.StringIO(text, newline="")), [])


def csv_row(number: int, fields: list[str], header: list[str]) -> RawRow | None:
    """``exports._read_csv`` for one record (``None``: a blank record, which is no row)."""
    raw = ",".join(fields)
    if not any(x.strip() for x in fields):
        return None
    if len(fields) != len(header):
        return RawRow(
            number, None, raw, f"row has {len(fields)} fields but the header has {len(header)}"
        )
    return RawRow(number, dict(zip(header, fields, strict=True)), raw)


class BulkRows:
    """The row reader's view of each row read in bulk, on demand (few are ever asked for).

    Picklable without the file's bytes, so that a worker process can hand it back.
    """

    def row(self, i: int) -> RawRow | None:
        """Row ``i`` of the bulk table as the row reader reads it (None: a row it skips)."""
        raise IndexError(f"no row {i} was read in bulk")

    def release(self) -> None:
        """Drop what is held in memory to answer quickly (the file is read again if asked)."""


class FileRows(BulkRows):
    """JSONL lines or CSV records: each bulk row's bytes, from memory or from the file."""

    def __init__(
        self,
        path: Path,
        data: bytes,
        spans: np.ndarray,
        lines: np.ndarray,
        header: list[str] | None = None,
        folded: bool = False,
    ) -> None:
        # spans: (n, 2) byte offsets of each row; lines: its line; header: CSV's (else JSONL);
        # folded: the offsets are into the file with CRLF folded to LF, not into the file.
        self.path, self.spans, self.lines = path, spans, lines
        self.header, self.folded = header, folded
        self.data: bytes | None = data

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "data": None}

    def release(self) -> None:
        self.data = None

    def _bytes(self, start: int, end: int) -> bytes:
        if self.data is not None:
            return self.data[start:end]
        if self.folded:
            return self.path.read_bytes().replace(b"\r\n", b"\n")[start:end]
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(end - start)

    def row(self, i: int) -> RawRow | None:
        start, end = (int(x) for x in self.spans[i])
        text = self._bytes(start, end).decode("utf-8")
        if self.header is None:
            return jsonl_row(int(self.lines[i]), text)
        return csv_row(int(self.lines[i]), csv_fields(text), self.header)


class ParquetRows(BulkRows):
    """Rows of a Parquet file, as ``to_pylist`` gives them."""

    def __init__(self, path: Path, table: pa.Table | None) -> None:
        self.path, self.table = path, table

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "table": None}

    def release(self) -> None:
        self.table = None

    def row(self, i: int) -> RawRow | None:
        if self.table is None:
            self.table = pq.read_table(self.path)
        value = self.table.slice(i, 1).to_pylist()[0]
        return RawRow(i + 1, value, json.dumps(value, default=str, sort_keys=True))


@dataclass
class Frame:
    """An export's rows: those read in bulk (``table``) and those left to the row reader."""

    table: pa.Table
    lines: np.ndarray  # int64, the line of each row of ``table``
    slow: list[RawRow] = field(default_factory=list)
    bulk: BulkRows = field(default_factory=BulkRows)

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
