"""Rows read in bulk onto records, a column at a time: the fast path of ``ingest._record``.

For each row this either builds exactly the record ``ingest._record`` would, or leaves the row to
``_record`` ("slow"). A row is left whenever one of its values is outside what the vectorized
code reproduces exactly: a missing or blank required field, text that is blank by a definition
wider than ASCII's, a confidence that is not a plain decimal (or a number) in (0, 1], a label
not in the guidelines, a field over ``max_chars``, a record the vectorized schema check rejects.
So every quarantine reason still comes from ``_record``, word for word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import ingest_annotations, records, validate_rows
from flywheel.guidelines import UNCATEGORIZED
from flywheel.ingest_bytes import single
from flywheel.ingest_text import content_hashes
from flywheel.scrub import KINDS, scrub_array

# What the mapping yields per row, before ids are checked across rows and exports. For a long
# layout ``annotations`` is the row's one annotation; otherwise the record's final list.
CANDIDATE = pa.schema(
    [
        ("line", pa.int64()),
        ("src", pa.int64()),  # the row in the bulk table, or -1 - i for the i-th row-path record
        ("id", pa.string()),
        ("reason", pa.string()),
        ("prompt", pa.string()),
        ("response", pa.string()),
        ("reference", pa.string()),
        ("model_label", pa.string()),
        ("model_confidence", pa.float64()),
        ("annotations", pa.list_(records.ANNOTATION)),
        ("pii", pa.list_(pa.string())),
        ("content_hash", pa.string()),
    ]
)
REASONS = tuple(validate_rows.prop("reason")["enum"])
_PRINTABLE = "[!-~]"  # a character no definition of whitespace includes
_BLANK = r"\A[\t\n\x0b\x0c\r ]*\z"  # blank by ASCII's definition, so by Python's too
_TOKEN = r"\A[!-~]+\z"  # str.strip() leaves it alone and the id pattern's \S+ accepts it
_DECIMAL = r"\A[0-9]+(?:\.[0-9]+)?\z"  # float() and Arrow's cast read it to the same double


@dataclass(frozen=True)
class Spec:
    """What the mapping needs from an export and the run's settings."""

    manifest: dict[str, Any]
    labels: frozenset[str]
    scrub_kinds: tuple[str, ...]
    max_chars: int
    path: str

    @property
    def layout(self) -> str:
        return str(self.manifest["annotations"]["layout"])


def jsonl_columns(manifest: dict[str, Any]) -> dict[str, pa.DataType] | None:
    """The JSONL columns the mapping reads, typed; ``None`` if a column needs two types."""
    fields, spec = manifest["fields"], manifest["annotations"]
    wanted: list[tuple[str, pa.DataType]] = [
        (col, pa.float64() if name == "model_confidence" else pa.string())
        for name, col in fields.items()
    ]
    if spec["layout"] == "wide":
        wanted += [(col, pa.string()) for col in spec["columns"]]
    elif spec["layout"] == "long":
        # A long layout without note or guideline_version columns reads column "" for them.
        names = ("item", "annotator", "label", "guideline_version", "note")
        wanted += [(spec.get(name, ""), pa.string()) for name in names]
    elif spec["layout"] == "list":
        wanted.append((spec["column"], pa.list_(ingest_annotations.LIST_ITEM)))
    out: dict[str, pa.DataType] = {}
    for col, kind in wanted:
        if out.setdefault(col, kind) != kind:
            return None
    return out


class Rows:
    """The bulk table's columns, and the rows found so far that must go to the row path."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows
        self.slow = np.zeros(self.n, dtype=bool)

    def column(self, name: str | None) -> pa.Array | None:
        if name is None or name not in self.table.column_names:
            return None
        return single(self.table.column(name))

    def text(self, name: str | None) -> pa.Array | None:
        """Column ``name`` as strings; rows holding another type go to the row path."""
        col = self.column(name)
        if col is None:
            return None
        kind = col.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
            col = col.cast(kind)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return col.cast(pa.string())
        if not pa.types.is_null(kind):
            self.slow |= records.bools(
                col.is_valid()
            )  # str(value) of a number, list, ...: the row path
        return pa.nulls(self.n, pa.string())

    def required(self, name: str | None) -> pa.Array:
        """A required text field: non-blank rows map here."""
        col = self.text(name)
        if col is None:
            self.slow[:] = True
            return pa.nulls(self.n, pa.string())
        self.slow |= ~records.bools(pc.match_substring_regex(col, _PRINTABLE))
        return col

    def optional(self, name: str | None, pattern: str = _PRINTABLE) -> pa.Array:
        """An optional text field: blank is null, a value matching ``pattern`` is kept as is."""
        col = self.text(name)
        if col is None:
            return pa.nulls(self.n, pa.string())
        blank = records.bools(col.is_null()) | records.bools(pc.match_substring_regex(col, _BLANK))
        self.slow |= ~(blank | records.bools(pc.match_substring_regex(col, pattern)))
        return pc.if_else(pa.array(blank), pa.nulls(self.n, pa.string()), col)

    def confidence(self, name: str | None) -> pa.Array:
        col = self.column(name)
        if col is None or pa.types.is_null(col.type):
            return pa.nulls(self.n, pa.float64())
        kind = col.type
        if pa.types.is_dictionary(kind):
            col = col.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            col = col.cast(pa.string())
            blank = records.bools(col.is_null()) | records.bools(
                pc.match_substring_regex(col, _BLANK)
            )
            plain = records.bools(pc.match_substring_regex(col, _DECIMAL))
            value = pc.if_else(pa.array(plain), col, pa.nulls(self.n, pa.string()))
            value = value.cast(pa.float64())
            # A plain decimal has no sign: 0 is 0.0 both ways, only values over 1 go.
            self.slow |= ~(blank | (plain & records.bools(pc.less_equal(value, 1.0))))
            return value
        if pa.types.is_floating(kind) or pa.types.is_integer(kind):
            value = col.cast(pa.float64())
            # Zero goes to the row path: JSON's -0 is 0.0 to Python and -0.0 to pyarrow.
            inside = records.bools(pc.and_(pc.greater(value, 0.0), pc.less_equal(value, 1.0)))
            self.slow |= records.bools(value.is_valid()) & ~inside
            return value
        self.slow |= records.bools(
            col.is_valid()
        )  # a bool, a list, ...: str() of it, on the row path
        return pa.nulls(self.n, pa.float64())


def map_rows(spec: Spec, table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Candidates (``CANDIDATE``), one per row of ``table``, and which rows the row path takes.

    ``lines`` holds the line of each row of ``table``. A row the row path takes keeps a row in
    the candidates, which holds nothing of use. ``content_hash`` is filled in only where the
    id is made from it; ``ingest_ledger`` hashes the other records once it knows which rows
    make records (a long layout's later rows do not).
    """
    rows = Rows(table)
    n, manifest, fields = rows.n, spec.manifest, spec.manifest["fields"]
    texts: dict[str, pa.Array] = {}
    hits: list[dict[str, np.ndarray]] = []
    for name in ("prompt", "response", "reference"):
        col = (
            rows.required(fields[name]) if name != "reference" else rows.optional(fields.get(name))
        )
        rows.slow |= _over(col, spec.max_chars)
        texts[name], found = scrub_array(col, spec.scrub_kinds, repeats=spec.layout == "long")
        hits.append(found)
    if spec.layout == "long":
        native = rows.required(manifest["annotations"]["item"])
        rows.slow |= ~records.bools(pc.match_substring_regex(native, _TOKEN))
    else:
        native = rows.optional(fields.get("native_id"), _TOKEN)
    chash = _hashes(
        texts["prompt"], texts["response"], records.bools(native.is_null()) & ~rows.slow
    )
    hashed = pc.binary_join_element_wise("h-", pc.utf8_slice_codeunits(chash, 0, 16), "")
    ids = pc.binary_join_element_wise(manifest["source"], pc.coalesce(native, hashed), "/")
    reason = rows.optional(fields.get("reason"))
    rows.slow |= ~records.bools(pc.or_(reason.is_null(), pc.is_in(reason, pa.array(REASONS))))
    columns = {
        "line": pa.array(lines, pa.int64()),
        "src": pa.array(np.arange(n, dtype=np.int64)),
        "id": ids,
        "reason": pc.coalesce(reason, manifest["reason"]),
        **texts,
        "model_label": rows.optional(fields.get("model_label")),
        "model_confidence": rows.confidence(fields.get("model_confidence")),
        "annotations": ingest_annotations.build(spec, rows),
        "pii": _pii(hits, [k for k in KINDS if k in spec.scrub_kinds], n),
        "content_hash": chash,
    }
    table = pa.table(columns, schema=CANDIDATE)
    rows.slow |= ~validate_rows.valid(_as_records(spec, table))
    return table, rows.slow


def _over(texts: pa.Array, most: int) -> np.ndarray:
    """Strings longer than ``most`` characters (a string has at least as many bytes)."""
    over = records.bools(pc.greater(pc.binary_length(texts), most))
    if over.any():
        over[over] = records.bools(pc.greater(pc.utf8_length(texts.filter(pa.array(over))), most))
    return over


def _hashes(prompts: pa.Array, responses: pa.Array, wanted: np.ndarray) -> pa.Array:
    """``content_hash`` for the ``wanted`` rows, null elsewhere."""
    out = pa.nulls(len(wanted), pa.string())
    rows = np.flatnonzero(wanted)
    if len(rows) == 0:
        return out
    take = pa.array(rows)
    found = content_hashes(prompts.take(take), responses.take(take))
    return pc.replace_with_mask(out, pa.array(wanted), found)


def _as_records(spec: Spec, table: pa.Table) -> pa.Table:
    """The candidates with the fields every record of the export shares, for validation.

    A content hash not computed yet stands in as a valid one: it is a blake2b hex digest.
    """
    n, manifest = table.num_rows, spec.manifest
    table = table.set_column(
        table.schema.get_field_index("content_hash"),
        "content_hash",
        pc.coalesce(table.column("content_hash"), "0" * 32),
    )
    const = {
        "source": manifest["source"],
        "export_id": manifest["export_id"],
        "exported_at": str(manifest["exported_at"]),
        "label_status": "unlabeled",
        "error_category": UNCATEGORIZED,
        "origin": spec.path,
    }
    extra = {name: pa.repeat(pa.scalar(v, pa.string()), n) for name, v in const.items()}
    extra["round"] = pa.repeat(pa.scalar(manifest["round"], pa.int32()), n)
    extra["reviewed"] = pa.repeat(pa.scalar(False), n)
    for name, col in extra.items():
        table = table.append_column(name, col)
    return table


def _pii(hits: list[dict[str, np.ndarray]], kinds: list[str], n: int) -> pa.Array:
    """Per row, the kinds scrubbed from prompt, then response, then reference, each once."""
    if not kinds:
        return pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string())
        )
    first = np.full((n, len(kinds)), len(hits), dtype=np.int64)
    for c, found in reversed(list(enumerate(hits))):
        for j, kind in enumerate(kinds):
            first[found[kind], j] = c
    present = first < len(hits)
    order = np.argsort(first * len(kinds) + np.arange(len(kinds)), axis=1, kind="stable")
    picked = np.take_along_axis(present, order, axis=1)
    kind_of = np.take_along_axis(np.broadcast_to(np.arange(len(kinds)), first.shape), order, axis=1)
    offsets = np.concatenate(([0], np.cumsum(picked.sum(axis=1)))).astype(np.int32)
    values = pa.array(kinds, pa.string()).take(pa.array(kind_of[picked]))
    return pa.ListArray.from_arrays(pa.array(offsets), values)
