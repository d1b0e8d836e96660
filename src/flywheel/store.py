"""The round's records on disk: written once by ingest, then only the columns each stage decides.

Ingest writes the records, one Parquet file per export, under ``data/interim/ingest/``
(``r<round>-<export_id>.records.parquet``: file names sort as ``records.SORT_KEYS``, so the
partitions read in name order are the canonical record order). Every later stage writes a
*patch*: ``id`` and the columns it decides, in the same row order (``label``: the label columns;
``bucket``: the category; ``dedup``: clusters and duplicate fates; ``queue``; ``split``). A stage
reads the columns it needs, each from the newest layer that has it (``load``).

Why: the texts are most of a record's bytes and no stage after ingest changes them, so rewriting
them in every stage cost about 5 s a stage at a million records and made a small new round as
slow as a full rebuild. Patches are a few megabytes; an unchanged export's partition is not
rewritten at all (``flywheel.ingest_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import records
from flywheel.errors import InputError
from flywheel.io import read_parquet, require_output, write_parquet

PARTITION_SUFFIX = ".records.parquet"


def partition_name(round_: int, export_id: str) -> str:
    return f"r{round_:04d}-{export_id}{PARTITION_SUFFIX}"


def partitions(folder: Path) -> list[Path]:
    """The record partitions of ``folder`` in canonical order."""
    return sorted(folder.glob("*" + PARTITION_SUFFIX))


def layer_columns(path: Path) -> list[str]:
    """The columns a layer holds (a partition folder holds every record column)."""
    if path.is_dir():
        return list(records.SCHEMA.names)
    return list(pq.read_schema(require_output(path)).names)


def read_layer(path: Path, columns: Sequence[str]) -> pa.Table:
    """``columns`` of one layer: a partition folder (concatenated in order) or one Parquet file."""
    if path.is_dir():
        parts = [pq.read_table(p, columns=list(columns)) for p in partitions(path)]
        if not parts:
            return records.SCHEMA.empty_table().select(list(columns))
        return pa.concat_tables(parts).combine_chunks()
    return read_parquet(path, columns)


def load(layers: Sequence[Path], columns: Sequence[str] | None = None) -> pa.Table:
    """The records with ``columns`` (default: all, in schema order), each column from the last
    of ``layers`` that has it; ``layers[0]`` is the records (a partition folder or a full record
    table), the rest patches in the same row order. A patch whose ids differ from the records'
    is refused: it is stale (written for other records), and ``dvc repro`` rebuilds it."""
    wanted = list(columns) if columns is not None else list(records.SCHEMA.names)
    owner: dict[str, int] = {}
    held = [layer_columns(p) for p in layers]
    for name in wanted:
        found = [i for i, cols in enumerate(held) if name in cols]
        if not found:
            raise InputError(f"No layer of {', '.join(map(str, layers))} has column '{name}'.")
        owner[name] = found[-1]
    used = sorted(set(owner.values()) | {0})
    tables: dict[int, pa.Table] = {}
    for i in used:
        take = [c for c in wanted if owner[c] == i]
        tables[i] = read_layer(layers[i], ["id", *[c for c in take if c != "id"]])
    ids = tables[0].column("id")
    for i in used[1:]:
        other = tables[i].column("id")
        if len(other) != len(ids) or pc.all(pc.equal(other, ids)).as_py() not in (True, None):
            raise InputError(
                f"{layers[i]} was written for other records than {layers[0]} "
                f"({len(other):,} rows vs {len(ids):,}); rebuild it with dvc repro."
            )
    columns_ = {name: tables[owner[name]].column(name) for name in wanted}
    return pa.table(columns_).cast(records.schema_of(wanted))


def patch(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``id`` and ``columns`` of ``table``, typed as in the record schema."""
    names = ["id", *[c for c in columns if c != "id"]]
    return table.select(names).cast(records.schema_of(names))


def write_patch(path: Path, table: pa.Table, columns: Sequence[str]) -> None:
    write_parquet(path, patch(table, columns))
