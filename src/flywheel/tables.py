"""Read any table a person hands to ``flywheel agree`` or ``flywheel queue``: JSONL, CSV, Parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet

from flywheel.errors import InputError

KINDS = {".jsonl": "JSONL", ".ndjson": "JSONL", ".json": "JSONL", ".csv": "CSV", ".tsv": "CSV"}
KINDS |= {".parquet": "Parquet", ".pq": "Parquet"}


def read_table(path: Path, *, csv_as_text: bool = True) -> pa.Table:
    """The file as an Arrow table.

    With ``csv_as_text`` (the default) CSV columns are read as text so that labels stay as
    written ("01" is not 1); an empty cell is null either way.
    """
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path} is not a JSONL, CSV or Parquet file: its extension {path.suffix!r} is none of "
            ".jsonl, .csv, .tsv or .parquet. Rename or convert the file."
        )
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file. Check the path.")
    try:
        if kind == "JSONL":
            return pa_json.read_json(path)
        if kind == "Parquet":
            return pa_parquet.read_table(path)
        parse = pa_csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        names = pa_csv.open_csv(path, parse_options=parse).schema.names
        convert = pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names} if csv_as_text else None,
            strings_can_be_null=True,
            null_values=[""],
        )
        return pa_csv.read_csv(path, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        detail = str(exc).strip().rstrip(".")
        raise InputError(
            f"{path} cannot be read as {kind}: {detail}. Fix or convert the file."
        ) from exc


def require_columns(table: pa.Table, path: Path, columns: dict[str, str]) -> None:
    """``columns`` maps a column name to the option that names it, for the message."""
    for column, option in columns.items():
        if column not in table.column_names:
            raise InputError(
                f"{path} has no column {column!r}; columns are: {', '.join(table.column_names)}; "
                f"pass {option} COL."
            )


def label_columns(table: pa.Table) -> list[str]:
    """Wide annotation columns: ``label_<annotator>``."""
    return [c for c in table.column_names if c.startswith("label_") and len(c) > len("label_")]
