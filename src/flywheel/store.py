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

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import records
from flywheel.errors import InputError
from flywheel.io import ROW_GROUP, parquet_writer, read_parquet, require_output, write_parquet

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


def _owners(layers: Sequence[Path], wanted: Sequence[str]) -> dict[str, int]:
    """For each column, the index of the last layer that has it."""
    held = [layer_columns(p) for p in layers]
    owner: dict[str, int] = {}
    for name in wanted:
        found = [i for i, cols in enumerate(held) if name in cols]
        if not found:
            raise InputError(f"No layer of {', '.join(map(str, layers))} has column '{name}'.")
        owner[name] = found[-1]
    return owner


def load(layers: Sequence[Path], columns: Sequence[str] | None = None) -> pa.Table:
    """The records with ``columns`` (default: all, in schema order), each column from the last
    of ``layers`` that has it; ``layers[0]`` is the records (a partition folder or a full record
    table), the rest patches in the same row order. A patch whose ids differ from the records'
    is refused: it is stale (written for other records), and ``dvc repro`` rebuilds it."""
    wanted = list(columns) if columns is not None else list(records.SCHEMA.names)
    owner = _owners(layers, wanted)
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


def take(layers: Sequence[Path], columns: Sequence[str], rows: npt.NDArray[np.int64]) -> pa.Table:
    """``load(layers, columns).take(rows)`` without holding every record's ``columns``: each
    partition of ``layers[0]`` that holds one of ``rows`` is read on its own (for a few
    thousand rows of the texts, this skips concatenating a gigabyte)."""
    wanted = list(columns)
    owner = _owners(layers, wanted)
    narrow = [c for c in wanted if owner[c] > 0]
    out = load(layers, narrow).take(pa.array(rows)) if narrow else None
    own = [c for c in wanted if owner[c] == 0]
    if not layers[0].is_dir() or not own:
        whole = load(layers, own).take(pa.array(rows)) if own else None
        return _assemble(wanted, out, whole)
    pieces, offset = [], 0
    where = np.empty(len(rows), dtype=np.int64)  # each wanted row's place among the pieces
    done = 0
    for part in partitions(layers[0]):
        n = pq.read_metadata(part).num_rows
        mine = np.flatnonzero((rows >= offset) & (rows < offset + n))
        if len(mine):
            table = pq.read_table(part, columns=own)
            pieces.append(table.take(pa.array(rows[mine] - offset)))
            where[mine] = done + np.arange(len(mine))
            done += len(mine)
        offset += n
    joined = pa.concat_tables(pieces) if pieces else records.schema_of(own).empty_table()
    return _assemble(wanted, out, joined.take(pa.array(where)).cast(records.schema_of(own)))


def _assemble(wanted: list[str], *tables: pa.Table | None) -> pa.Table:
    have = {name: t.column(name) for t in tables if t is not None for name in t.column_names}
    return pa.table({name: have[name] for name in wanted}).cast(records.schema_of(wanted))


def patch(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``id`` and ``columns`` of ``table``, typed as in the record schema."""
    names = ["id", *[c for c in columns if c != "id"]]
    return table.select(names).cast(records.schema_of(names))


def write_patch(path: Path, table: pa.Table, columns: Sequence[str]) -> None:
    write_parquet(path, patch(table, columns))


def write_records(
    layers: Sequence[Path],
    columns: dict[str, pa.Array | pa.ChunkedArray],
    targets: dict[Path, npt.NDArray[np.bool_]],
) -> None:
    """Whole records, ``columns`` replacing theirs, into each target file: the rows its mask
    selects, in record order.

    One partition of ``layers[0]`` at a time, each read once for every target: the texts are
    most of the bytes, and holding them all at once, then copying them into one table, cost
    more than the reading itself at a million records.
    """
    names = list(records.SCHEMA.names)
    owner = _owners(layers, [n for n in names if n not in columns])
    narrow = load(layers, [n for n in owner if owner[n] > 0])
    own = ["id", *[n for n in owner if owner[n] == 0 and n != "id"]]
    sources = [partitions(layers[0])] if layers[0].is_dir() else [[layers[0]]]
    with contextlib.ExitStack() as stack:
        writers = {
            path: stack.enter_context(parquet_writer(path, records.SCHEMA)) for path in targets
        }
        offset = 0
        for part in sources[0]:
            base = pq.read_table(part, columns=own)
            n = base.num_rows
            pieces = {**{c: base.column(c) for c in own}}
            pieces.update({c: narrow.column(c).slice(offset, n) for c in narrow.column_names})
            pieces.update({c: v.slice(offset, n) for c, v in columns.items()})
            table = pa.Table.from_arrays([pieces[c] for c in names], schema=records.SCHEMA)
            for path, mask in targets.items():
                chosen = mask[offset : offset + n]
                if chosen.any():
                    writers[path].write_table(table.filter(pa.array(chosen)), ROW_GROUP)
            offset += n
