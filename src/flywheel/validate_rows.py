"""``schema/record.schema.json`` checked a whole column at a time, for the records ingest makes.

``schemas.errors("record", record)`` validates one dict; at a million rows that is most of
ingest's time. ``valid`` gives the same verdict (valid or not) for every row of an Arrow table
holding the fields ingest produces (``FIELDS``, typed as in ``records.SCHEMA``), with vectorized
checks of the same constraints. The one Unicode-dependent rule, the id pattern's ``\\S``, is
decided by RE2 where the id is plain ASCII and by Python's ``re`` (what jsonschema uses)
otherwise. jsonschema stays the oracle: ``tests/test_ingest.py`` checks that both agree on random
records, and ingest still asks it for the reasons of every row this module rejects.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIELDS = (
    "id",
    "source",
    "export_id",
    "round",
    "reason",
    "exported_at",
    "prompt",
    "response",
    "reference",
    "model_label",
    "model_confidence",
    "annotations",
    "label_status",
    "reviewed",
    "error_category",
    "pii",
    "content_hash",
    "origin",
)


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("flywheel").joinpath("schema", "record.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def prop(name: str) -> dict[str, Any]:
    """The schema's definition of record field ``name``."""
    prop: dict[str, Any] = _schema()["properties"][name]
    return prop


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow column as numpy, null counting as False."""
    return np.asarray(pc.fill_null(mask, False), dtype=bool)


def _min_length(column: pa.Array, minimum: int) -> np.ndarray:
    """A non-null string of at least ``minimum`` characters (code points, as jsonschema counts)."""
    if minimum <= 1:
        # At least one character is at least one byte: no need to count characters.
        return _np(pc.greater_equal(pc.binary_length(column), minimum))
    return _np(pc.greater_equal(pc.utf8_length(column), minimum))


def _enum(column: pa.Array, name: str) -> np.ndarray:
    allowed = [v for v in prop(name)["enum"] if v is not None]
    ok = _np(pc.is_in(column, value_set=pa.array(allowed, pa.string())))
    if None in prop(name)["enum"]:
        ok |= _np(column.is_null())
    return ok


def _pattern(column: pa.Array, name: str, ascii_pattern: str) -> np.ndarray:
    """``re.search(pattern, value)`` per row (jsonschema's ``pattern``); nulls fail.

    ``ascii_pattern`` is an RE2 pattern that implies the schema's; rows it does not match are
    decided by Python's ``re`` itself.
    """
    ok = _np(pc.match_substring_regex(column, ascii_pattern))
    rest = np.flatnonzero(~ok & _np(column.is_valid()))
    if len(rest):
        pattern = re.compile(prop(name)["pattern"])
        values = column.take(pa.array(rest)).to_pylist()
        ok[rest] = [pattern.search(v) is not None for v in values]
    return ok


def _number_range(column: pa.Array, name: str) -> np.ndarray:
    """``type: number|null`` with ``minimum``/``maximum``: NaN passes, as in jsonschema."""
    spec = prop(name)
    values = np.asarray(pc.fill_null(column, 0.0), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad: np.ndarray = (values < spec["minimum"]) | (values > spec["maximum"])
    return ~bad


def _annotations(column: pa.Array) -> np.ndarray:
    """A list of {annotator, label (non-empty strings), guideline_version, note}."""
    n = len(column)
    ok = _np(column.is_valid())
    items = pc.list_flatten(column)
    if len(items) == 0:
        return ok
    parents = np.asarray(pc.list_parent_indices(column))
    item = _np(items.is_valid())
    item &= _min_length(pc.struct_field(items, "annotator"), 1)
    item &= _min_length(pc.struct_field(items, "label"), 1)
    bad = np.bincount(parents[~item], minlength=n) > 0
    return ok & ~bad


def _string_list(column: pa.Array) -> np.ndarray:
    """``type: array|null`` of strings."""
    n = len(column)
    items = pc.list_flatten(column)
    if len(items) == 0:
        return np.ones(n, dtype=bool)
    parents = np.asarray(pc.list_parent_indices(column))
    bad = np.bincount(parents[~_np(items.is_valid())], minlength=n) > 0
    return ~bad


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def valid(table: pa.Table) -> np.ndarray:
    """Whether each row, as a dict of ``FIELDS``, validates against the record schema."""
    missing = [f for f in FIELDS if f not in table.column_names]
    if missing:
        raise ValueError(f"valid() needs the columns {', '.join(missing)}.")
    col = {f: _single(table.column(f)) for f in FIELDS}
    ok = np.ones(table.num_rows, dtype=bool)
    if table.num_rows == 0:
        return ok
    # Every required field is there; these are the ones whose type admits no null.
    for name in ("round", "reviewed", "origin"):
        ok &= _np(col[name].is_valid())
    ok &= _pattern(col["id"], "id", r"\A[a-z0-9][a-z0-9_-]*/[!-~]+\n?\z")
    ok &= _pattern(col["content_hash"], "content_hash", r"\A[0-9a-f]{32}\n?\z")
    for name in ("source", "export_id", "prompt", "response", "error_category"):
        ok &= _min_length(col[name], prop(name)["minLength"])
    ok &= _np(pc.greater_equal(col["round"], prop("round")["minimum"]))
    ok &= _enum(col["reason"], "reason")
    ok &= _enum(col["label_status"], "label_status")
    ok &= _number_range(col["model_confidence"], "model_confidence")
    ok &= _annotations(col["annotations"])
    ok &= _string_list(col["pii"])
    # exported_at, reference and model_label are string|null: any value of their type passes.
    return ok
