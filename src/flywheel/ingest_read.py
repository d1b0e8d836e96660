"""Bulk readers for ingest: an export's file into one Arrow table, with each row's line.

``flywheel.exports.read_rows`` defines a row: where it is, what it holds, what is wrong with it.
These readers give the same rows for everything pyarrow can read in bulk, and hand every other
row to that row reader, so a malformed row keeps its exact line and reason:

- JSONL (``ingest_jsonl``): a line that looks like one object goes to ``pyarrow.json``; any
  other line (blank, a list, two objects on one line, ...) is read by the row reader. pyarrow
  stops at the first row it cannot take (bad JSON, a type other than the one the mapping
  needs); that row goes to the row reader and pyarrow resumes after it.
- CSV (``ingest_csv``): a scan of the quote characters finds every record and its last physical
  line (what ``csv.reader.line_num`` reports); pyarrow parses the records and names the ones
  whose field count is not the header's, which go to the row reader.
- Parquet: the table as it is; a row is its index plus one.

A file they cannot vouch for as a whole (not UTF-8, a byte-order mark, a NUL byte, a bare
carriage return, a stray quote inside a CSV field) is read by the row reader alone: slower, never
different. ``tests/test_ingest.py`` checks the whole stage against the row-at-a-time ingest on
random exports in every format and layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel import exports, ingest_csv, ingest_jsonl
from flywheel.ingest_frame import Frame, ParquetRows

__all__ = ["Frame", "read"]


def read(export: exports.Export, jsonl_columns: dict[str, pa.DataType] | None) -> Frame:
    """The export's rows; ``jsonl_columns`` are the JSONL columns (and types) the mapping reads.

    ``None`` means the mapping cannot say which types it needs (a column mapped twice with
    different types): the row reader reads the file.
    """
    fmt = export.manifest["format"]
    if fmt == "parquet":
        return _parquet(export.file)
    data = export.file.read_bytes()
    if fmt == "jsonl":
        if jsonl_columns is None:
            return Frame.rows_only(export)
        return ingest_jsonl.read(export, data, jsonl_columns)
    return ingest_csv.read(export, data)


def _parquet(path: Path) -> Frame:
    table = pq.read_table(path)
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return Frame(table, lines, [], ParquetRows(path, table))
