"""The JSONL bulk reader (see ``ingest_read``): lines pyarrow can take, in chunks on two threads.

A line goes to ``pyarrow.json`` when it opens with ``{`` and closes with ``}``, its first key is
in double quotes, and no ``}`` is followed by a ``{`` (two objects on one line, which pyarrow
would read as two rows and Python rejects). pyarrow parses with the mapping's column types and
stops at the first row it refuses (bad JSON, another type), naming it: that line goes to the row
reader and pyarrow resumes after it.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

from flywheel import exports
from flywheel.ingest_frame import FileRows, Frame, join, jsonl_row, line_spans, trustworthy

# JSONL lines per task of the two parsing threads, and per pyarrow call: large enough that a
# call's fixed cost vanishes, small enough that a refused line costs little.
_CHUNK_LINES = 4096
_WINDOW_MIN, _WINDOW_MAX = 16, 4096
_ROW_IN_ERROR = re.compile(r"in row (\d+)\s*$")


def _last_non_blank(b: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of each line's last byte that is not a space or tab (its start - 1 if none)."""
    pos = ends - 1
    while True:
        inside = pos >= starts
        blank = np.zeros(len(pos), dtype=bool)
        blank[inside] = (b[pos[inside]] == 32) | (b[pos[inside]] == 9)
        if not blank.any():
            return pos
        pos[blank] -= 1


def _lines_holding(data: bytes, needle: bytes, starts: np.ndarray) -> np.ndarray:
    """The lines ``needle`` occurs in."""
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return np.searchsorted(starts, np.array(found, dtype=np.int64), side="right") - 1


def _two_objects(b: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Lines where a ``{`` follows a ``}`` with only spaces or tabs between: maybe two objects.

    pyarrow reads ``{..} {..}`` as two rows where Python rejects the line ("Extra data"). A
    ``}``/``{`` pair inside a string only sends its line to the row reader.
    """
    opens = np.flatnonzero(b == 123)
    prev = opens[opens > 0] - 1
    while True:
        blank = ((b[prev] == 32) | (b[prev] == 9)) & (prev > 0)
        if not blank.any():
            break
        prev[blank] -= 1
    hit = prev[b[prev] == 125]
    return np.unique(np.searchsorted(starts, hit, side="right") - 1)


def read(export: exports.Export, data: bytes, columns: dict[str, pa.DataType]) -> Frame:
    if not trustworthy(data):
        return Frame.rows_only(export)
    folded = b"\r" in data
    if folded:
        data = data.replace(b"\r\n", b"\n")  # what text mode's universal newlines do
    b = np.frombuffer(data, dtype=np.uint8)
    starts, ends = line_spans(b)
    # A line pyarrow reads holds exactly one object: it opens with '{' and closes with '}' (an
    # object cannot run on into the next line, which opens with '{', without a parse error),
    # and no '}' is followed by a '{' (two objects on one line).
    bulk = np.zeros(len(starts), dtype=bool)
    nonempty = ends > starts
    bulk[nonempty] = b[starts[nonempty]] == 123
    bulk &= b[np.maximum(_last_non_blank(b, starts, ends), 0)] == 125
    bulk[_two_objects(b, starts)] = False
    # Lines pyarrow would refuse anyway, found cheaply so that it need not stop at them: a key
    # not in double quotes ({'id': ...}), and the usual type slip, a number written as a string.
    second = np.minimum(starts + 1, max(len(b) - 1, 0))
    bulk &= np.isin(b[second], np.frombuffer(b'"} \t', np.uint8))
    for name, kind in columns.items():
        if pa.types.is_floating(kind):
            # As json.dumps writes it; other spacing only costs pyarrow a stop.
            needle = json.dumps(name).encode("utf-8") + b': "'
            bulk[_lines_holding(data, needle, starts)] = False
    picked = np.flatnonzero(bulk)
    spans = np.stack((starts[picked], np.minimum(ends[picked] + 1, len(b))), axis=1)
    tables, parsed = _parse_jsonl(data, spans, pa.schema(list(columns.items())))
    refused = np.ones(len(picked), dtype=bool)
    refused[parsed] = False
    slow = []
    for i in np.sort(np.concatenate((np.flatnonzero(~bulk), picked[refused]))).tolist():
        row = jsonl_row(i + 1, data[starts[i] : ends[i]].decode("utf-8"))
        if row is not None:
            slow.append(row)
    rows = picked[parsed]
    where = np.stack((starts[rows], ends[rows]), axis=1)
    # Folded CRLF moved the offsets off the file's: then the bytes are folded again if asked.
    found = FileRows(export.file, data, where, rows + 1, folded=folded)
    return Frame(_concat(tables, columns), rows + 1, slow, found)


def _concat(tables: list[pa.Table], columns: dict[str, pa.DataType]) -> pa.Table:
    if not tables:
        return pa.schema(list(columns.items())).empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _parse_jsonl(
    data: bytes, spans: np.ndarray, schema: pa.Schema
) -> tuple[list[pa.Table], np.ndarray]:
    """Parse the lines ``spans`` on two threads: the tables, and which lines their rows are.

    The rows come in pieces, not necessarily in line order.
    """
    chunks = [
        np.arange(a, min(a + _CHUNK_LINES, len(spans))) for a in range(0, len(spans), _CHUNK_LINES)
    ]
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda idx: _parse_lines(data, spans, idx, parse), chunks))
    pieces = [p for found in results for p in found]
    if not pieces:
        return [], np.zeros(0, np.int64)
    return [t for _, t in pieces], np.concatenate([i for i, _ in pieces])


def _parse_lines(
    data: bytes, spans: np.ndarray, idx: np.ndarray, parse: pa_json.ParseOptions
) -> list[tuple[np.ndarray, pa.Table]]:
    """Parse lines ``idx``: the (lines, table) pieces pyarrow took; the other lines are refused.

    pyarrow stops at the first row it refuses and names it: that line is set aside and parsing
    resumes after it. A call costs time in proportion to the bytes it is given even when it
    stops early, so lines go in windows that shrink after a refusal and grow after a success;
    the lines a refused call had read past are parsed again together at the end.
    """
    if len(idx) == 0:
        return []
    sub = spans[idx]
    offsets = np.concatenate(([0], np.cumsum(sub[:, 1] - sub[:, 0])))
    stream = join(data, sub)
    found: list[tuple[np.ndarray, pa.Table]] = []
    again = np.zeros(len(idx), dtype=bool)
    at, window = 0, _WINDOW_MAX
    while at < len(idx):
        end = min(at + window, len(idx))
        table, row = _try_parse(stream, offsets, at, end, parse)
        if table is not None and table.num_rows == end - at:
            found.append((idx[at:end], table))
            at, window = end, min(window * 2, _WINDOW_MAX)
        elif table is None and 0 <= row < end - at:
            again[at : at + row] = True
            at, window = at + row + 1, max(2 * row, _WINDOW_MIN)
        elif end - at == 1:
            at = end  # a line pyarrow reads wrongly (more rows than lines) or will not name
        else:
            half = (end - at) // 2
            found += _parse_lines(data, spans, idx[at : at + half], parse)
            found += _parse_lines(data, spans, idx[at + half : end], parse)
            at = end
    return found + _parse_lines(data, spans, idx[again], parse)


def _try_parse(
    stream: pa.Buffer, offsets: np.ndarray, a: int, e: int, parse: pa_json.ParseOptions
) -> tuple[pa.Table | None, int]:
    """Lines ``a:e`` of the stream as one block (so that an error's row counts from ``a``)."""
    lo, hi = int(offsets[a]), int(offsets[e])
    read = pa_json.ReadOptions(use_threads=False, block_size=max(hi - lo + 1, 1 << 16))
    try:
        return pa_json.read_json(pa.BufferReader(stream.slice(lo, hi - lo)), read, parse), -1
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        match = _ROW_IN_ERROR.search(str(exc))
        return None, int(match.group(1)) if match else -1
