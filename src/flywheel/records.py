"""The record: its Arrow schema (mirrors ``schema/record.schema.json``) and table helpers.

Every stage reads and writes whole tables of records with exactly this schema, so a file written
by any stage validates against the same JSON Schema and a later stage never guesses a column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.ingest_bytes import Bytes

ANNOTATION = pa.struct(
    [
        ("annotator", pa.string()),
        ("label", pa.string()),
        ("guideline_version", pa.string()),
        ("note", pa.string()),
    ]
)
REVIEW = pa.struct(
    [
        ("reviewer", pa.string()),
        ("label", pa.string()),
        ("decided_at", pa.string()),
        ("guideline_version", pa.string()),
        ("note", pa.string()),
    ]
)

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("export_id", pa.string(), nullable=False),
        pa.field("round", pa.int32(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        ("exported_at", pa.string()),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("response", pa.string(), nullable=False),
        ("reference", pa.string()),
        ("model_label", pa.string()),
        ("model_confidence", pa.float64()),
        pa.field("annotations", pa.list_(ANNOTATION), nullable=False),
        ("label", pa.string()),
        pa.field("label_status", pa.string(), nullable=False),
        ("label_guideline_version", pa.string()),
        pa.field("reviewed", pa.bool_(), nullable=False),
        ("review", REVIEW),
        pa.field("error_category", pa.string(), nullable=False),
        ("category_source", pa.string()),
        ("pii", pa.list_(pa.string())),
        pa.field("content_hash", pa.string(), nullable=False),
        ("cluster_id", pa.string()),
        ("duplicate_of", pa.string()),
        ("queue_reasons", pa.list_(pa.string())),
        ("split", pa.string()),
        ("fate", pa.string()),
        ("fate_detail", pa.string()),
        pa.field("origin", pa.string(), nullable=False),
    ]
)

# The order every stage sorts by: it makes outputs independent of the order exports are read in.
SORT_KEYS = [("round", "ascending"), ("export_id", "ascending"), ("id", "ascending")]

FATES = ("quarantined", "duplicate", "queued", "train", "eval", "excluded")


def from_rows(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a record table from dicts; missing optional fields become null."""
    return pa.Table.from_pylist([dict(r) for r in rows], schema=SCHEMA)


def empty() -> pa.Table:
    return SCHEMA.empty_table()


def conform(table: pa.Table, sort: bool = True) -> pa.Table:
    """Cast ``table`` to the record schema in its column order, sorted canonically.

    Stages after ingest keep row order, so they pass ``sort=False`` and skip a full sort.
    """
    table = table.select(SCHEMA.names).cast(SCHEMA)
    return table.take(pc.sort_indices(table, sort_keys=SORT_KEYS)) if sort else table


def replace(table: pa.Table, **columns: Any) -> pa.Table:
    """``table`` with the named columns replaced (arrays, chunked arrays, lists or numpy arrays)."""
    for name, values in columns.items():
        table = with_column(table, name, values)
    return table


def with_column(
    table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray | list[Any]
) -> pa.Table:
    """Replace column ``name`` keeping its schema type (added, typed as in SCHEMA, if absent)."""
    index = table.schema.get_field_index(name)
    field = table.schema.field(index) if index >= 0 else SCHEMA.field(name)
    array = (
        values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, field.type)
    )
    if index < 0:
        return table.append_column(field, array)
    return table.set_column(index, field, array)


def schema_of(names: Iterable[str]) -> pa.Schema:
    """The record schema's fields ``names``, in that order."""
    return pa.schema([SCHEMA.field(n) for n in names])


def bools(mask: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """A boolean column as a numpy bool array, null counting as False."""
    return np.asarray(pc.fill_null(mask, False), dtype=bool)


def positions(
    values: pa.Array | pa.ChunkedArray, among: pa.Array | pa.ChunkedArray
) -> npt.NDArray[np.int64]:
    """For each of ``values``, the position of its first occurrence in ``among`` (-1: none), as
    ``pc.index_in(values, value_set=among)`` (a null finds a null), but with the hash table
    built on ``values``: a round's few values are hashed instead of a million ids or keys
    (0.2-0.3 s), and ``among`` is only probed."""
    distinct = pc.unique(values)
    where = pc.index_in(among, value_set=distinct)
    found = np.flatnonzero(bools(pc.is_valid(where)))
    which = np.asarray(pc.drop_null(where).to_numpy(zero_copy_only=False), dtype=np.int64)
    first = np.full(len(distinct), -1, dtype=np.int64)
    first[which[::-1]] = found[::-1]  # the last assignment wins: the first occurrence
    of = pc.index_in(values, value_set=distinct).to_numpy(zero_copy_only=False)
    return first[np.asarray(of, dtype=np.int64)]


def interleave(
    mask: npt.NDArray[np.bool_], hits: pa.Array | pa.Table, misses: pa.Array | pa.Table
) -> Any:
    """Rows in ``mask``'s order: where it is True the next of ``hits``, elsewhere the next of
    ``misses`` (two arrays, or two tables of the same columns). What a lookup that found some
    values in a cache and read the others returns."""
    found = int(mask.sum())
    where = np.empty(len(mask), dtype=np.int64)
    where[mask] = np.arange(found)
    where[~mask] = found + np.arange(len(mask) - found)
    if isinstance(hits, pa.Table):
        return pa.concat_tables([hits, misses.cast(hits.schema)]).take(pa.array(where))
    return pa.concat_arrays([hits, misses.cast(hits.type)]).take(pa.array(where))


def one_array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array: its only chunk as it is (``combine_chunks`` copies even one,
    half a gigabyte of memory-mapped signatures at a million keys)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def typed(table: pa.Table) -> pa.Table:
    """The record columns ``table`` has, in schema order and type: a whole record table or the
    few columns a stage read (``flywheel.store``)."""
    names = [n for n in SCHEMA.names if n in table.column_names]
    return table.select(names).cast(schema_of(names))


def counts(column: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How often each non-null value occurs, sorted by value (for metrics)."""
    found = pc.value_counts(pc.drop_null(column)).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(found, key=lambda c: c["values"])}


def strings_digest(values: pa.Array | pa.ChunkedArray) -> str:
    """sha256 of the strings' lengths and UTF-8 bytes, in order (no Python string per value):
    what tells two id columns apart without comparing them value by value."""
    view = Bytes(values)
    h = hashlib.sha256(view.length.tobytes())
    h.update(view.data.data)
    return h.hexdigest()
