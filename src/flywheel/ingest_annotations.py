"""Annotations of rows read in bulk, a column at a time, per layout (part of ``ingest_map``).

The same annotations ``ingest._annotations`` makes of one row, for every row that can be mapped
in bulk; a row with a label not in the guidelines, an item that is not an {annotator, label}
object, or a value of another type goes to the row path (``Rows.slow``). What comes back per row
is what a record keeps: for ``wide`` and ``list``, each annotator's last annotation, sorted by
annotator; for ``long``, the row's one annotation (``ingest_ledger`` gathers an item's rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import records
from flywheel.scrub import scrub_array

if TYPE_CHECKING:
    from flywheel.ingest_map import Rows, Spec

# A list item as pyarrow.json is told to read it: other keys are ignored, as _record ignores them.
LIST_ITEM = pa.struct([(f.name, pa.string()) for f in records.ANNOTATION])


def build(spec: Spec, rows: Rows) -> pa.Array:
    """The annotations column (list of ``records.ANNOTATION``) for the manifest's layout."""
    layout, manifest = spec.layout, spec.manifest
    annotations = manifest["annotations"]
    version = manifest.get("guideline_version")
    labels = pa.array(sorted(spec.labels), pa.string())
    n = rows.n
    if layout == "wide":
        return _wide(spec, rows, labels)
    if layout == "long":
        annotator = rows.required(annotations["annotator"])
        label = rows.text(annotations["label"])
        label = label if label is not None else pa.nulls(n, pa.string())
        rows.slow |= ~records.bools(pc.is_in(label, labels))
        items = pa.StructArray.from_arrays(
            [
                annotator,
                label,
                _version(rows.text(annotations.get("guideline_version", "")), version, n),
                _note(rows.text(annotations.get("note", "")), spec, n),
            ],
            fields=list(records.ANNOTATION),
        )
        return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), items)
    if layout == "list":
        return _listed(spec, rows, labels, version)
    return _empty_lists(n)


def _empty_lists(n: int) -> pa.Array:
    return pa.ListArray.from_arrays(
        pa.array(np.zeros(n + 1, np.int32)), pa.array([], records.ANNOTATION)
    )


def _version(col: pa.Array | None, default: str | None, n: int) -> pa.Array:
    """A row's guideline version, the manifest's where the row gives none (null or "")."""
    fallback = pa.repeat(pa.scalar(default, pa.string()), n)
    if col is None:
        return fallback
    none = records.bools(col.is_null()) | records.bools(pc.equal(col, ""))
    return pc.if_else(pa.array(none), fallback, col)


def _note(col: pa.Array | None, spec: Spec, n: int) -> pa.Array:
    """A note, scrubbed; null or "" is no note."""
    if col is None:
        return pa.nulls(n, pa.string())
    none = records.bools(col.is_null()) | records.bools(pc.equal(col, ""))
    scrubbed, _ = scrub_array(col, spec.scrub_kinds)
    return pc.if_else(pa.array(none), pa.nulls(n, pa.string()), scrubbed)


def _wide(spec: Spec, rows: Rows, labels: pa.Array) -> pa.Array:
    """One label column per annotator; a record keeps, per annotator, its last label given."""
    n = rows.n
    by_annotator: dict[str, tuple[np.ndarray, pa.Array]] = {}
    for col_name, annotator in spec.manifest["annotations"]["columns"].items():
        col = rows.text(col_name)
        if col is None:
            continue
        given = records.bools(col.is_valid()) & ~records.bools(pc.equal(col, ""))
        rows.slow |= given & ~records.bools(pc.is_in(col, labels))
        name = str(annotator)
        if name in by_annotator:
            had, value = by_annotator[name]
            col = pc.if_else(pa.array(given), col, value)
            given = given | had
        by_annotator[name] = (given, col)
    names = sorted(by_annotator)
    if not names:
        return _empty_lists(n)
    given = np.stack([by_annotator[a][0] for a in names], axis=1)
    stacked = pa.concat_arrays([by_annotator[a][1] for a in names])
    take = (np.arange(len(names))[None, :] * n + np.arange(n)[:, None])[given]
    which = np.broadcast_to(np.arange(len(names)), given.shape)[given]
    version = spec.manifest.get("guideline_version")
    items = pa.StructArray.from_arrays(
        [
            pa.array(names, pa.string()).take(pa.array(which)),
            stacked.take(pa.array(take)),
            pa.repeat(pa.scalar(version, pa.string()), len(take)),
            pa.nulls(len(take), pa.string()),
        ],
        fields=list(records.ANNOTATION),
    )
    offsets = np.concatenate(([0], np.cumsum(given.sum(axis=1)))).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items)


def _listed(spec: Spec, rows: Rows, labels: pa.Array, version: str | None) -> pa.Array:
    """A list column of {annotator, label, guideline_version?, note?} per row."""
    n = rows.n
    col = rows.column(spec.manifest["annotations"]["column"])
    empty = _empty_lists(n)
    if col is None or pa.types.is_null(col.type):
        return empty
    kind = col.type
    if pa.types.is_large_list(kind):
        col, kind = col.cast(pa.list_(kind.value_type)), pa.list_(kind.value_type)
    item_type = kind.value_type if pa.types.is_list(kind) else None
    names = (
        {item_type.field(i).name: item_type.field(i).type for i in range(item_type.num_fields)}
        if item_type is not None and pa.types.is_struct(item_type)
        else {}
    )
    # Other keys of an item are ignored, as ``_record`` ignores them.
    usable = "annotator" in names and all(
        pa.types.is_string(t) or pa.types.is_null(t)
        for name, t in names.items()
        if name in LIST_ITEM.names
    )
    items = pc.list_flatten(col) if usable else None
    if items is None:
        rows.slow |= records.bools(
            col.is_valid()
        )  # a JSON string to load, or items of another shape
        return empty
    parents = np.asarray(pc.list_parent_indices(col))
    m = len(items)

    def field(name: str) -> pa.Array:
        if name not in names or pa.types.is_null(names[name]):
            return pa.nulls(m, pa.string())
        return pc.struct_field(items, name)

    annotator, label = field("annotator"), field("label")
    # A null item, or an annotator missing or null (str(None) would be "None"): the row path.
    bad = ~records.bools(items.is_valid()) | ~records.bools(annotator.is_valid())
    bad |= ~records.bools(pc.is_in(label, labels))
    rows.slow[parents[bad]] = True
    built = pa.StructArray.from_arrays(
        [
            annotator,
            label,
            _version(field("guideline_version"), version, m),
            _note(field("note"), spec, m),
        ],
        fields=list(records.ANNOTATION),
    )
    # Per record: the last item of each annotator, by annotator.
    position = np.arange(m, dtype=np.int64)
    order = pc.sort_indices(
        pa.table({"p": parents, "a": annotator, "k": -position}),
        sort_keys=[("p", "ascending"), ("a", "ascending"), ("k", "ascending")],
    )
    order_np = np.asarray(order)
    sorted_p = parents[order_np]
    sorted_a = annotator.take(order)
    same = np.zeros(m, dtype=bool)
    if m > 1:
        same[1:] = (sorted_p[1:] == sorted_p[:-1]) & records.bools(
            pc.equal(sorted_a.slice(1), sorted_a.slice(0, m - 1))
        )
    kept = order_np[~same]
    counts = np.bincount(parents[kept], minlength=n)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), built.take(pa.array(kept)))
