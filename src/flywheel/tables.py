"""Read any table a person hands to ``flywheel agree`` or ``flywheel queue``: JSONL, CSV, Parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from flywheel.errors import InputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def read_table(path: Path) -> pa.Table:
    """The whole file as an Arrow table; InputError names the file and what to do."""
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path.")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown format '{path.suffix}'; use one of {', '.join(sorted(FORMATS))}."
        )
    try:
        if fmt == "jsonl":
            return pajson.read_json(path)
        if fmt == "csv":
            return pacsv.read_csv(path)
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} cannot be read as {fmt}: {exc}. Fix the file or its extension.") from None


def require_columns(table: pa.Table, path: Path, columns: dict[str, str]) -> None:
    """``columns`` maps a column name to the option that names it, for the message."""
    for column, option in columns.items():
        if column not in table.column_names:
            raise InputError(
                f"{path} has no column '{column}'; columns are: {', '.join(table.column_names)}. "
                f"Pass {option} COLUMN."
            )


def label_columns(table: pa.Table) -> list[str]:
    """Wide annotation columns: ``label_<annotator>``."""
    return [c for c in table.column_names if c.startswith("label_")]
