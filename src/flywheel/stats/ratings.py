"""The input model of the agreement statistics: a dense item x annotator matrix of label codes.

Everything downstream works on integer codes, never on strings, so the statistics are a handful of
``bincount`` and matrix products. Items whose rows of codes are identical carry the same
information, so :class:`Patterns` folds them into one row with a multiplicity; every statistic is
a weighted sum over patterns, and the bootstrap resamples pattern counts instead of items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

MISSING = -1
"""The code of a missing rating in :attr:`Ratings.codes`."""

IntArray: TypeAlias = npt.NDArray[np.int64]
FloatArray: TypeAlias = npt.NDArray[np.float64]
StrColumn: TypeAlias = Sequence[str | None] | pa.Array | pa.ChunkedArray | npt.NDArray[Any]

# Above this many possible code rows the rows are folded with np.unique instead of a lookup table.
_LOOKUP_LIMIT = 1 << 22


def _numeric(label: str) -> float | None:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def default_label_order(labels: Iterable[str]) -> tuple[str, ...]:
    """Numeric labels (``"-3"``, ``"1"``) sort as numbers, anything else sorts as text."""
    unique = set(labels)
    values = {label: _numeric(label) for label in unique}
    if unique and all(v is not None for v in values.values()):
        return tuple(sorted(unique, key=lambda s: (values[s], s)))
    return tuple(sorted(unique))


def _as_strings(column: StrColumn, what: str) -> pa.Array:
    """One column as a pyarrow string array (numbers become their text, None stays null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not isinstance(column, pa.Array):
        values = list(column.tolist() if isinstance(column, np.ndarray) else column)
        try:
            column = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # mixed types such as [1, "x"]: every value as its text
            column = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        try:
            column = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"The {what} must be strings or numbers, not {column.type}.") from exc
    return column.cast(pa.string())


def _encode(column: pa.Array) -> tuple[IntArray, list[str | None]]:
    """Dictionary-encode: codes in first-appearance order (-1 for null) and the distinct values."""
    encoded = column.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    # to_numpy().tolist() is several times faster than to_pylist() on a million strings
    return codes, encoded.dictionary.to_numpy(zero_copy_only=False).tolist()


@dataclass(frozen=True, eq=False)
class Ratings:
    """Who gave which label to which item.

    ``codes`` has shape (n_items, n_annotators), dtype int32; ``codes[i, j]`` is the index into
    ``labels`` of annotator j's label for item i, or -1 when j did not rate i. The order of
    ``labels`` is the order of the levels for ordinal statistics and weighted kappa. ``repeats``
    counts ratings dropped because the same annotator rated the same item again (the last one
    counts); ``repeat_conflicts`` counts the dropped ratings that differ from the kept one.
    """

    codes: npt.NDArray[np.int32]
    labels: tuple[str, ...]
    annotators: tuple[str, ...]
    items: tuple[str, ...]
    repeats: int = 0
    repeat_conflicts: int = 0

    def __post_init__(self) -> None:
        codes = np.array(self.codes, dtype=np.int32, order="C", copy=True)
        if codes.ndim != 2:
            raise ValueError(f"codes must be a 2-D (items x annotators) array, not {codes.ndim}-D.")
        n_items, n_annotators = codes.shape
        if len(self.items) != n_items or len(self.annotators) != n_annotators:
            raise ValueError(
                f"codes has shape {codes.shape} but there are {len(self.items)} items and "
                f"{len(self.annotators)} annotators; give one name per row and per column."
            )
        for what, names in (("label", self.labels), ("annotator", self.annotators)):
            if len(set(names)) != len(names):
                raise ValueError(f"The {what} names must be unique: {list(names)!r}.")
        if len(set(self.items)) != n_items:
            raise ValueError(
                "The item ids must be unique; merge repeated items before building Ratings."
            )
        if codes.size and (codes.min() < MISSING or codes.max() >= len(self.labels)):
            raise ValueError(
                f"codes must lie in -1..{len(self.labels) - 1}: -1 is missing, "
                "anything else an index into labels."
            )
        codes.flags.writeable = False
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "annotators", tuple(self.annotators))
        object.__setattr__(self, "items", tuple(self.items))

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_codes(
        cls,
        codes: npt.ArrayLike,
        labels: Sequence[str],
        annotators: Sequence[str] | None = None,
        items: Sequence[str] | None = None,
    ) -> Ratings:
        """Wrap an existing (n_items, n_annotators) code matrix; names default to 0, 1, ..."""
        array = np.asarray(codes)
        if array.ndim != 2:
            raise ValueError(f"codes must be a 2-D (items x annotators) array, not {array.ndim}-D.")
        n_items, n_annotators = array.shape
        return cls(
            codes=array,
            labels=tuple(labels),
            annotators=tuple(annotators)
            if annotators is not None
            else tuple(map(str, range(n_annotators))),
            items=tuple(items) if items is not None else tuple(map(str, range(n_items))),
        )

    @classmethod
    def from_long(
        cls,
        items: StrColumn,
        annotators: StrColumn,
        labels: StrColumn,
        label_order: Sequence[str] | None = None,
        *,
        annotator_order: Sequence[str] | None = None,
    ) -> Ratings:
        """One rating per row: three equally long columns (sequences, numpy or pyarrow arrays).

        Items keep their first-appearance order; annotators are sorted by name unless
        ``annotator_order`` is given. A null or empty label is no rating. When an annotator rated
        an item more than once the last row counts, and ``repeats`` says how many rows were dropped.
        """
        item_col = _as_strings(items, "item ids")
        ann_col = _as_strings(annotators, "annotator names")
        label_col = _as_strings(labels, "labels")
        if not len(item_col) == len(ann_col) == len(label_col):
            raise ValueError(
                f"items, annotators and labels must be equally long, not {len(item_col)}, "
                f"{len(ann_col)} and {len(label_col)}."
            )
        for what, col in (("item id", item_col), ("annotator", ann_col)):
            if col.null_count:
                row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise ValueError(f"Row {row} has no {what}; every rating needs one.")

        item_idx, item_names = _encode(item_col)
        ann_idx, ann_names = _encode(ann_col)
        ann_names_s = [str(n) for n in ann_names]
        if annotator_order is None:
            final_ann = sorted(ann_names_s)
        else:
            final_ann = list(annotator_order)
            missing = sorted(set(ann_names_s) - set(final_ann))
            if missing:
                raise ValueError(
                    f"Annotators {missing!r} are not in annotator_order {final_ann!r}."
                )
        ann_pos = {name: i for i, name in enumerate(final_ann)}
        ann_codes = np.array([ann_pos[n] for n in ann_names_s], dtype=np.int64)[ann_idx]
        return cls._assemble(item_idx, item_names, ann_codes, final_ann, label_col, label_order)

    @classmethod
    def from_wide(
        cls,
        items: StrColumn,
        columns: Mapping[str, StrColumn],
        label_order: Sequence[str] | None = None,
    ) -> Ratings:
        """One row per item, one label column per annotator (None or "" = not rated).

        Annotators keep the mapping's order. A repeated item id is the same item rated again, so
        the later row's label counts, as in :meth:`from_long`.
        """
        item_col = _as_strings(items, "item ids")
        if item_col.null_count:
            row = int(np.flatnonzero(item_col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"Row {row} has no item id; every item needs one.")
        names = list(columns)
        if not names:
            raise ValueError("from_wide needs at least one annotator column.")
        n = len(item_col)
        cols = [_as_strings(columns[name], f"labels of annotator {name!r}") for name in names]
        for name, col in zip(names, cols, strict=True):
            if len(col) != n:
                raise ValueError(
                    f"Annotator {name!r} has {len(col)} labels for {n} items; give one per item."
                )
        item_idx, item_names = _encode(item_col)
        # row-major interleaving (item 0: every annotator, item 1: ...) keeps "later row wins"
        m = len(names)
        order = np.arange(n * m, dtype=np.int64).reshape(m, n).T.ravel()
        labels = pa.concat_arrays(cols).take(pa.array(order))
        ann_codes = np.tile(np.arange(m, dtype=np.int64), n)
        return cls._assemble(
            np.repeat(item_idx, m), item_names, ann_codes, names, labels, label_order
        )

    @classmethod
    def _assemble(
        cls,
        item_idx: IntArray,
        item_names: Sequence[str | None],
        ann_codes: IntArray,
        annotators: Sequence[str],
        label_col: pa.Array,
        label_order: Sequence[str] | None,
    ) -> Ratings:
        """Shared tail of the constructors: one entry per rating row, already integer-coded."""
        label_idx, label_names = _encode(label_col)
        used = [name for name in label_names if name]
        if label_order is None:
            order = default_label_order(used)
        else:
            order = tuple(label_order)
            if len(set(order)) != len(order):
                raise ValueError(f"label_order repeats a label: {list(order)!r}.")
            unknown = sorted(set(used) - set(order))
            if unknown:
                raise ValueError(
                    f"Labels {unknown!r} are not in label_order {list(order)!r}; "
                    "add them or fix the data."
                )
        position = {name: i for i, name in enumerate(order)}
        # dictionary index -> final label code; "" is a missing rating, like null
        remap = np.array(
            [position[n] if n else MISSING for n in label_names] + [MISSING], dtype=np.int64
        )
        label_codes = remap[label_idx]  # label_idx == -1 (null) picks the trailing MISSING

        n_items, n_ann = len(item_names), len(annotators)
        rated = label_codes >= 0
        cell = (item_idx * n_ann + ann_codes)[rated]
        value = label_codes[rated]
        # np.maximum.at is unbuffered, so each cell keeps the index of its last row: the last counts
        last = np.full(n_items * n_ann, -1, dtype=np.int64)
        np.maximum.at(last, cell, np.arange(cell.size, dtype=np.int64))
        kept = last >= 0
        flat = np.full(n_items * n_ann, MISSING, dtype=np.int32)
        flat[kept] = value[last[kept]]
        dropped = last[cell] != np.arange(cell.size)
        conflicts = int(np.count_nonzero(value[dropped] != flat[cell[dropped]]))
        return cls(
            codes=flat.reshape(n_items, n_ann),
            labels=order,
            annotators=tuple(annotators),
            items=cast(tuple[str, ...], tuple(item_names)),  # callers reject null ids
            repeats=int(np.count_nonzero(dropped)),
            repeat_conflicts=conflicts,
        )

    # -- derived views ------------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_annotators(self) -> int:
        return int(self.codes.shape[1])

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @cached_property
    def values(self) -> FloatArray:
        """Shape (n_labels,): the labels as numbers for interval/ratio metrics.

        Numeric labels are their own value; otherwise a label's value is its position in
        ``labels`` (0, 1, 2, ...), i.e. the levels are taken as equally spaced.
        """
        numbers = [_numeric(label) for label in self.labels]
        if all(v is not None for v in numbers):
            return np.array(numbers, dtype=np.float64)
        return np.arange(len(self.labels), dtype=np.float64)

    @cached_property
    def patterns(self) -> Patterns:
        return Patterns.of(self.codes, len(self.labels))


@dataclass(frozen=True, eq=False)
class Patterns:
    """The distinct rows of a code matrix with their multiplicities.

    ``rows`` (P, n_annotators) int64 codes, ``freq`` (P,) int64 how many items have that row,
    ``inverse`` (n_items,) int64 the pattern of each item, ``counts`` (P, n_labels) int64 ratings
    per label in the row, ``raters`` (P,) int64 ratings in the row.
    """

    rows: IntArray
    freq: IntArray
    inverse: IntArray
    counts: IntArray = field(repr=False)
    raters: IntArray = field(repr=False)

    @classmethod
    def of(cls, codes: npt.NDArray[np.integer[Any]], n_labels: int) -> Patterns:
        n_items, n_ann = codes.shape
        base = n_labels + 1
        if n_ann * math.log2(base) < 62:
            # encode each row as one base-(k+1) integer; code+1 keeps "missing" at digit 0
            key = np.zeros(n_items, dtype=np.int64)
            for j in range(n_ann):
                key *= base
                key += codes[:, j].astype(np.int64) + 1
            space = base**n_ann
            if space <= max(_LOOKUP_LIMIT, 4 * n_items):
                # a lookup table beats sorting when the key space is small
                freq_all = np.bincount(key, minlength=space)
                present = np.flatnonzero(freq_all)
                lookup = np.zeros(space, dtype=np.int64)
                lookup[present] = np.arange(present.size)
                inverse = lookup[key]
                freq = freq_all[present]
            else:
                present, inverse, freq = np.unique(key, return_inverse=True, return_counts=True)
            digits = (present[:, None] // base ** np.arange(n_ann - 1, -1, -1)) % base
            rows = digits.astype(np.int64) - 1
        else:
            rows, inverse, freq = np.unique(
                codes.astype(np.int64), axis=0, return_inverse=True, return_counts=True
            )
        rows = rows.reshape(len(freq), n_ann)
        inverse = np.asarray(inverse, dtype=np.int64).reshape(-1)
        counts = label_counts(rows, n_labels)
        return cls(rows, np.asarray(freq, dtype=np.int64), inverse, counts, counts.sum(axis=1))


def label_counts(codes: npt.NDArray[np.integer[Any]], n_labels: int) -> IntArray:
    """Shape (n_rows, n_labels): how many ratings of each label each row of ``codes`` holds."""
    n_rows = codes.shape[0]
    rated = codes >= 0
    flat = (np.arange(n_rows, dtype=np.int64)[:, None] * n_labels + codes)[rated]
    return np.bincount(flat, minlength=n_rows * n_labels).reshape(n_rows, n_labels).astype(np.int64)
