"""The CSV bulk reader (see ``ingest_read``): one pyarrow parse, checked against a quote scan.

A scan of the quote characters finds every record and its last physical line (what
``csv.reader.line_num`` reports) without parsing; pyarrow parses the rest of the file after the
header in one go, skipping the rows whose field count is not the header's and naming them, and
those go to the row reader.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from flywheel import exports
from flywheel.ingest_frame import FileRows, Frame, csv_fields, csv_row, trustworthy

# Pieces a file's records are parsed in (two threads).
_PIECES = 4
# csv.field_size_limit()'s default: a longer field makes the row reader raise, so such a file is
# left to it.
_CSV_FIELD_LIMIT = 131072


def _quotes_are_fields(b: np.ndarray, q: np.ndarray) -> bool:
    """Every quote opens a field, closes one, or doubles one inside it.

    Then a character is inside a quoted field exactly when an odd number of quotes precede it,
    which is how ``csv.reader`` (and pyarrow) read it; a quote in the middle of an unquoted
    field, which ``csv.reader`` keeps as text, breaks that and sends the file to the row reader.
    """
    if len(q) % 2:
        return False
    opens, closes = q[0::2], q[1::2]
    before = b[np.maximum(opens - 1, 0)]
    ok_open = (opens == 0) | (before == 44) | (before == 10) | (before == 13) | (before == 34)
    after = b[np.minimum(closes + 1, len(b) - 1)]
    ok_close = (
        (closes == len(b) - 1) | (after == 44) | (after == 10) | (after == 13) | (after == 34)
    )
    return bool(ok_open.all() and ok_close.all())


def _parse(
    piece: pa.Buffer, names: list[str], first: int
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Parse records ``first, first + 1, ...``; the rows refused, by record index and text."""
    refused: list[tuple[int, str]] = []

    def refuse(row: pa_csv.InvalidRow) -> str:
        # pyarrow numbers rows from 1, counting refused ones and skipping empty lines.
        refused.append((-1 if row.number is None else first + int(row.number) - 1, row.text))
        return "skip"

    table = pa_csv.read_csv(
        pa.BufferReader(piece),
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 22),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=refuse),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, refused


def read(export: exports.Export, data: bytes) -> Frame:
    if not data:
        return Frame(pa.table({}), np.zeros(0, np.int64))
    if not trustworthy(data):
        return Frame.rows_only(export)
    b = np.frombuffer(data, dtype=np.uint8)
    q = np.flatnonzero(b == 34)
    if not _quotes_are_fields(b, q):
        return Frame.rows_only(export)
    nl = np.flatnonzero(b == 10)
    outside = (np.searchsorted(q, nl) & 1) == 0
    term = nl[outside]
    starts = np.concatenate(([0], term + 1)).astype(np.int64)
    ends = np.concatenate((term, [len(b)])).astype(np.int64)
    lines = np.concatenate((np.flatnonzero(outside) + 1, [len(nl) + 1])).astype(np.int64)
    if starts[-1] == len(b):
        starts, ends, lines = starts[:-1], ends[:-1], lines[:-1]
    if (ends - starts).max(initial=0) > _CSV_FIELD_LIMIT:
        return Frame.rows_only(export)
    content_end = ends.copy()
    crlf = (ends > starts) & (b[np.maximum(ends - 1, 0)] == 13)
    content_end[crlf] -= 1

    def record(i: int) -> list[str]:
        return csv_fields(data[starts[i] : ends[i] + 1].decode("utf-8"))

    header = record(0)
    if not header:
        return Frame.rows_only(export)
    # Every non-empty record after the header. pyarrow skips empty lines (csv.reader gives []
    # for them, which ingest skips too) and hands each row whose field count is not the
    # header's to the handler, with its number among the rows and its text.
    recs = np.arange(1, len(starts))
    recs = recs[content_end[recs] > starts[recs]]
    names = [f"f{i}" for i in range(len(header))]
    # The records in a few pieces, each parsed on one thread (only then does pyarrow number the
    # rows it refuses), two at a time.
    bounds = np.linspace(0, len(recs), _PIECES + 1).astype(np.int64)
    spans = [(int(a), int(z)) for a, z in pairwise(bounds.tolist()) if z > a]
    edges = np.append(starts[recs], len(data)) if len(recs) else np.zeros(1, np.int64)

    def parse(span: tuple[int, int]) -> tuple[pa.Table, list[tuple[int, str]]]:
        first, stop = span
        piece = pa.py_buffer(memoryview(data)[int(edges[first]) : int(edges[stop])])
        return _parse(piece, names, first)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            parsed = list(pool.map(parse, spans))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return Frame.rows_only(export)
    refused = [r for _, found in parsed for r in found]
    tables = [t for t, _ in parsed]
    table = (
        pa.concat_tables(tables)
        if tables
        else pa.schema([(n, pa.string()) for n in names]).empty_table()
    )
    at = np.array([i for i, _ in refused], dtype=np.int64)
    for i, text in refused:
        # The row pyarrow names must be the record found by the scan, to the byte.
        r = int(recs[i]) if 0 <= i < len(recs) else -1
        if r < 0 or data[starts[r] : content_end[r]] != text.encode("utf-8"):
            return Frame.rows_only(export)
    bulk_mask = np.ones(len(recs), dtype=bool)
    bulk_mask[at] = False
    bulk = recs[bulk_mask]
    if table.num_rows != len(bulk):
        return Frame.rows_only(export)
    slow = []
    for i in recs[~bulk_mask].tolist():
        row = csv_row(int(lines[i]), record(i), header)
        if row is not None:
            slow.append(row)
    # dict(zip(header, fields)) keeps a repeated column name's last value.
    last = {name: i for i, name in enumerate(header)}
    table = pa.table({name: table.column(i) for name, i in last.items()})

    where = np.stack((starts[bulk], ends[bulk] + 1), axis=1)
    return Frame(table, lines[bulk], slow, FileRows(export.file, data, where, lines[bulk], header))
