"""Stage ``queue``: the records that wait on a human, each with why, most urgent first.

Reasons: ``disagreement`` (disputed), ``unlabeled``, ``low_confidence`` (model confidence below
``queue.confidence_threshold`` and not yet reviewed), ``guideline_changed`` (the final label was
decided under an older guideline version whose rule for that label has since changed),
``high_risk`` (no final label and a detector put it in a high-risk category), ``uncategorized``,
``conflicting_duplicates`` (set by dedup). A queued record is held out of the splits until a
reviewer decides it. Order: the earliest of its reasons in ``queue.priority``, then model
confidence ascending (unknown confidence last), then id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import parts, records, store
from flywheel.guidelines import UNCATEGORIZED, Guidelines
from flywheel.io import read_schema, write_json, write_jsonl, write_parquet

ALL_REASONS = (
    "guideline_changed",
    "disagreement",
    "conflicting_duplicates",
    "high_risk",
    "low_confidence",
    "uncategorized",
    "unlabeled",
)


def reasons_for(row: dict[str, Any], guidelines: Guidelines | None, threshold: float) -> list[str]:
    """Why ``row`` needs a human, in ALL_REASONS order (empty: it does not)."""
    found = set(row.get("queue_reasons") or ())
    status = row.get("label_status")
    if status == "disputed":
        found.add("disagreement")
    if status == "unlabeled":
        found.add("unlabeled")
    conf = row.get("model_confidence")
    if conf is not None and conf < threshold and not row.get("reviewed"):
        found.add("low_confidence")
    if guidelines is not None:
        label = row.get("label")
        if label is not None and label in guidelines.changed_since(
            row.get("label_guideline_version")
        ):
            found.add("guideline_changed")
        if label is None and guidelines.risk_of(row["error_category"]) == "high":
            found.add("high_risk")
        if row.get("error_category") == UNCATEGORIZED:
            found.add("uncategorized")
    return [r for r in ALL_REASONS if r in found]


def order_key(
    reasons: list[str], confidence: float | None, rid: str, priority: list[str]
) -> tuple[Any, ...]:
    rank = min((priority.index(r) if r in priority else len(priority)) for r in reasons)
    return (rank, math.inf if confidence is None else confidence, rid)


Bools = np.ndarray[Any, np.dtype[np.bool_]]
Ints = np.ndarray[Any, np.dtype[np.int64]]


def _is_in(values: pa.ChunkedArray | pa.Array, allowed: list[str]) -> Bools:
    found = pc.is_in(values, value_set=pa.array(allowed, pa.string()))
    return records.bools(found)


def reason_masks(table: pa.Table, guidelines: Guidelines, threshold: float) -> dict[str, Bools]:
    """Each reason of ``reasons_for`` as a boolean column over the whole table."""
    status = table.column("label_status")
    conf = table.column("model_confidence").to_numpy(zero_copy_only=False).astype(float)
    reviewed = np.asarray(table.column("reviewed").to_numpy(zero_copy_only=False), dtype=bool)
    labelled = np.asarray(
        table.column("label").is_valid().to_numpy(zero_copy_only=False), dtype=bool
    )
    keys = pc.binary_join_element_wise(
        pc.fill_null(table.column("label"), ""),
        pc.fill_null(table.column("label_guideline_version"), ""),
        "\x1f",
    )
    pairs = {k for k in pc.unique(keys).to_pylist() if k and not k.startswith("\x1f")}
    changed = [
        k
        for k in pairs
        if k.split("\x1f")[0] in guidelines.changed_since(k.split("\x1f")[1] or None)
    ]
    high = [
        c
        for c in pc.unique(table.column("error_category")).to_pylist()
        if guidelines.risk_of(c) == "high"
    ]
    carried = records.one_array(table.column("queue_reasons"))
    conflicting = np.zeros(table.num_rows, dtype=bool)
    named = pc.equal(pc.list_flatten(carried), "conflicting_duplicates")
    conflicting[pc.list_parent_indices(carried).filter(named).to_numpy()] = True
    return {
        "guideline_changed": _is_in(keys, changed) & labelled,
        "disagreement": _is_in(status, ["disputed"]),
        "conflicting_duplicates": conflicting,
        "high_risk": ~labelled & _is_in(table.column("error_category"), high),
        "low_confidence": ~np.isnan(conf) & (conf < threshold) & ~reviewed,
        "uncategorized": _is_in(table.column("error_category"), [UNCATEGORIZED]),
        "unlabeled": _is_in(status, ["unlabeled"]),
    }


ENTRY_FIELDS = (
    "id",
    "model_confidence",
    "model_label",
    "annotations",
    "label",
    "error_category",
    "source",
    "round",
    "prompt",
    "response",
)
# The whole queue, in order, without the texts: data/queue.parquet.
QUEUE_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("id", pa.string()),
        ("reason", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("model_confidence", pa.float64()),
        ("label", pa.string()),
        ("error_category", pa.string()),
        ("source", pa.string()),
        ("round", pa.int32()),
    ]
)
COLUMNS = ("queue_reasons", "fate", "fate_detail")
# Queue order; unknown confidence sorts last among records of the same priority.
SORT_KEYS = [
    ("rank", "ascending", "at_end"),
    ("confidence", "ascending", "at_end"),
    ("id", "ascending", "at_end"),
]


def build(
    table: pa.Table, guidelines: Guidelines, threshold: float, priority: list[str]
) -> tuple[pa.Table, pa.Table, Ints, Ints]:
    """Mark queued records (fate ``queued``); return the records, the ordered queue
    (``QUEUE_SCHEMA``), the row of ``table`` each queue entry is, and each entry's priority
    (the earliest of its reasons in ``priority``)."""
    masks = reason_masks(table, guidelines, threshold)
    matrix = np.stack([masks[r] for r in ALL_REASONS], axis=1)
    matrix &= ~_is_in(table.column("fate"), ["duplicate"])[:, None]
    queued = np.flatnonzero(matrix.any(axis=1))
    rank = np.array([priority.index(r) if r in priority else len(priority) for r in ALL_REASONS])
    first = np.where(matrix[queued], rank[None, :], len(priority) + 1).min(axis=1)
    keys = pa.table(
        {
            "rank": pa.array(first),
            "confidence": table.column("model_confidence").take(pa.array(queued)),
            "id": table.column("id").take(pa.array(queued)),
        }
    )
    order = pc.sort_indices(keys, sort_keys=SORT_KEYS).to_numpy()
    # Each queued record's reasons as a list array, built from the reason matrix in bulk.
    hits = matrix[queued]
    names = pa.array(ALL_REASONS, pa.string())
    col_of = np.nonzero(hits)[1]  # row-major: each record's reasons in ALL_REASONS order
    offsets = np.concatenate(([0], np.cumsum(hits.sum(axis=1)))).astype(np.int32)
    reasons = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(col_of)))
    all_index = np.full(table.num_rows, -1, dtype=np.int64)
    all_index[queued] = np.arange(len(queued))
    every = reasons.take(pa.array(all_index, mask=all_index < 0))  # null where not queued
    is_queued = pa.array(all_index >= 0)
    out = records.replace(
        table,
        queue_reasons=every,
        fate=pc.if_else(is_queued, "queued", records.one_array(table.column("fate"))),
        fate_detail=pc.if_else(
            is_queued, pc.binary_join(every, ", "), records.one_array(table.column("fate_detail"))
        ),
    )
    rows = queued[order]
    ordered = reasons.take(pa.array(order))
    queue = pa.table(
        {
            "position": pa.array(np.arange(1, len(rows) + 1, dtype=np.int64)),
            "id": table.column("id").take(pa.array(rows)),
            "reason": pc.list_element(ordered, 0) if len(rows) else pa.array([], pa.string()),
            "reasons": ordered,
            **{
                c: table.column(c).take(pa.array(rows))
                for c in ("model_confidence", "label", "error_category", "source", "round")
            },
        }
    ).cast(QUEUE_SCHEMA)
    return records.typed(out), queue, rows, first[order]


def entries(queue: pa.Table, texts: pa.Table) -> list[dict[str, Any]]:
    """Queue entries for reviewers: ``queue`` rows with ``texts`` (ENTRY_FIELDS, row-aligned)."""
    out = []
    meta = queue.select(["position", "reason", "reasons"]).to_pylist()
    for head, row in zip(meta, texts.select(list(ENTRY_FIELDS)).to_pylist(), strict=True):
        row["annotations"] = [
            {"annotator": a["annotator"], "label": a["label"]} for a in row["annotations"]
        ]
        out.append({**head, **row})
    return out


def apply(
    table: pa.Table, guidelines: Guidelines, threshold: float, priority: list[str]
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Mark queued records (fate ``queued``) and return every ordered queue entry."""
    out, queue, rows, _ = build(table, guidelines, threshold, priority)
    return out, entries(queue, table.take(pa.array(rows)))


@dataclass(frozen=True)
class Outputs:
    records: Path = Path("data/interim/queue")  # one patch file per partition (flywheel.parts)
    entries: Path = Path("data/cache/queue")  # each partition's queued records, with their rank
    queue: Path = Path("data/queue.parquet")
    export: Path = Path("data/queue.jsonl")
    metrics: Path = Path("metrics/queue.json")


READS = (
    "id",
    "label_status",
    "model_confidence",
    "reviewed",
    "label",
    "label_guideline_version",
    "error_category",
    "queue_reasons",
    "fate",
    "fate_detail",
    "source",
    "round",
)
CODE = ("queue", "records")  # the modules whose code decides a partition's queue entries
# A partition's queued records: the queue's columns but its position, with their priority rank.
ENTRIES_SCHEMA = pa.schema(
    [*(f for f in QUEUE_SCHEMA if f.name != "position"), ("rank", pa.int64())]
)
# What data/queue.jsonl adds to a queue entry: kept beside a partition's first
# ``queue.export_limit`` entries (null beyond them), since the queue's first entries are among
# them. Reading them for the head took the texts of every partition holding one (1 s at 1M).
HEAD_FIELDS = tuple(f for f in ENTRY_FIELDS if f not in ENTRIES_SCHEMA.names)
CACHE_SCHEMA = pa.schema(
    [*ENTRIES_SCHEMA, *(f.with_nullable(True) for f in records.schema_of(HEAD_FIELDS))]
)


def run(
    layers: Sequence[Path],
    guidelines: Guidelines,
    params: dict[str, Any],
    outputs: Outputs = Outputs(),
) -> dict[str, Any]:
    """The queue: every entry in ``data/queue.parquet``; the first ``queue.export_limit``, with
    their texts and annotations, in ``data/queue.jsonl`` for reviewers.

    Whether a record waits on a human depends on its own row only, so each partition is decided
    on its own and only when its inputs changed (``flywheel.parts``): its patch and its queued
    records (``Outputs.entries``) are kept; the queue is their merge, in queue order."""
    threshold, priority = float(params["confidence_threshold"]), list(params["priority"])
    files = store.partitions(layers[0])
    common = parts.stage_key(CODE, params, guidelines)
    keys = [parts.key(common, parts.identity(f), parts.upstream(layers, f)) for f in files]
    entry_paths = [store.patch_path(outputs.entries, f) for f in files]

    limit = params.get("export_limit")

    def compute(i: int) -> tuple[pa.Table, parts.Counts]:
        one = store.partition_layers(layers, files[i])
        table, queue, rows, ranks = build(
            store.load(one, list(READS)), guidelines, threshold, priority
        )
        found = queue.drop_columns(["position"]).append_column("rank", pa.array(ranks, pa.int64()))
        head = np.asarray(rows if limit is None else rows[: int(limit)], dtype=np.int64)
        texts_key = _texts_key(one, files[i])
        texts = _head_texts_of(entry_paths[i], texts_key, one, head, found.column("id"))
        for name in HEAD_FIELDS:
            pad = pa.nulls(len(rows) - len(head), texts.schema.field(name).type)
            found = found.append_column(
                name, pa.concat_arrays([records.one_array(texts[name]), pad])
            )
        meta = {parts.KEY: keys[i].encode(), TEXTS_KEY: texts_key.encode()}
        write_parquet(entry_paths[i], found.cast(CACHE_SCHEMA), {**meta, HEAD: b"%d" % len(head)})
        return table, {}

    parts.refresh(outputs.records, files, keys, COLUMNS, compute)
    parts.keep_only(outputs.entries, files)
    pieces = []
    for i, path in enumerate(entry_paths):
        found = parts.stored(path)
        if found is None or found[0] != keys[i]:  # the patch was kept, its entries were not
            compute(i)
        piece = pq.read_table(path, columns=ENTRIES_SCHEMA.names)
        at = pa.array(np.arange(piece.num_rows, dtype=np.int64))
        pieces.append(
            piece.append_column("part", pa.array(np.full(piece.num_rows, i))).append_column(
                "at", at
            )
        )
    entries_ = (
        pa.concat_tables(pieces)
        if pieces
        else ENTRIES_SCHEMA.empty_table()
        .append_column("part", pa.array([], pa.int64()))
        .append_column("at", pa.array([], pa.int64()))
    )
    order = pc.sort_indices(
        entries_.rename_columns(
            ["confidence" if c == "model_confidence" else c for c in entries_.column_names]
        ),
        sort_keys=SORT_KEYS,
    )
    ordered = entries_.take(order)
    queue = (
        ordered.drop_columns(["rank", "part", "at"])
        .add_column(0, "position", pa.array(np.arange(1, ordered.num_rows + 1, dtype=np.int64)))
        .cast(QUEUE_SCHEMA)
    )
    n_head = queue.num_rows if limit is None else min(int(limit), queue.num_rows)
    texts = _head_texts(
        entry_paths,
        queue.slice(0, n_head),
        ordered.column("part").to_numpy()[:n_head],
        ordered.column("at").to_numpy()[:n_head],
    )
    flat = pc.list_flatten(queue.column("reasons"))
    metrics = {
        "queued": queue.num_rows,
        "exported": n_head,
        "by_reason": records.counts(flat),
        "by_first_reason": records.counts(queue.column("reason")),
        "by_category": records.counts(queue.column("error_category")),
    }
    write_parquet(outputs.queue, queue)
    write_jsonl(outputs.export, entries(queue.slice(0, n_head), texts))
    write_json(outputs.metrics, metrics)
    return metrics


TEXTS_KEY = b"flywheel.queue.texts"  # what a partition's head texts are a function of
HEAD = b"flywheel.queue.head"  # how many leading entries carry them


def _texts_key(layers: Sequence[Path], partition: Path) -> str:
    """What the ``HEAD_FIELDS`` of a partition's records are a function of: its identity, and
    the keys of its files in the patch layers that hold any of them (none, today)."""
    owner = store.owners(layers, HEAD_FIELDS)
    return parts.key(
        parts.identity(partition), parts.upstream(layers[: max(owner.values()) + 1], partition)
    )


def _head_texts_of(
    path: Path, texts_key: str, layers: Sequence[Path], rows: Ints, ids: pa.ChunkedArray
) -> pa.Table:
    """``HEAD_FIELDS`` of the records at ``rows`` (ids ``ids[: len(rows)]``): those the
    partition's previous entries file holds, written for the same ``texts_key``, from it; the
    others read. A round that queues one more record of a partition (an earlier representative
    found conflicting) then reads its texts from one row group, not the partition's."""
    schema = records.schema_of(HEAD_FIELDS)
    known = schema.empty_table().append_column("id", pa.array([], pa.string()))
    try:
        meta = read_schema(path).metadata or {}
        if meta.get(TEXTS_KEY) == texts_key.encode():
            kept = pq.read_table(path, columns=["id", *HEAD_FIELDS]).slice(0, int(meta[HEAD]))
            known = kept.select([*HEAD_FIELDS, "id"]).cast(known.schema)
    except (OSError, KeyError, ValueError, pa.ArrowInvalid):
        pass  # none, or unreadable: every text is read
    at = records.positions(ids.slice(0, len(rows)), known.column("id"))
    have = at >= 0
    read = store.take(layers, HEAD_FIELDS, rows[~have]) if not have.all() else schema.empty_table()
    kept = known.select(HEAD_FIELDS).take(pa.array(at[have])).cast(schema)
    result: pa.Table = records.interleave(have, kept, read)
    return result


def _head_texts(paths: Sequence[Path], head: pa.Table, part: Ints, at: Ints) -> pa.Table:
    """``ENTRY_FIELDS`` of the queue's first entries (``head``): the queue's own columns, and
    ``HEAD_FIELDS`` from the cached entries of the partitions holding them (entry ``at`` of
    partition ``part``)."""
    columns: dict[str, list[pa.Array]] = {name: [] for name in HEAD_FIELDS}
    where = np.empty(len(part), dtype=np.int64)
    done = 0
    for i in np.unique(part).tolist():
        mine = np.flatnonzero(part == i)
        cached = pq.read_table(paths[i], columns=list(HEAD_FIELDS)).take(pa.array(at[mine]))
        for name in HEAD_FIELDS:
            columns[name].append(records.one_array(cached[name]))
        where[mine] = done + np.arange(len(mine))
        done += len(mine)
    back = pa.array(where, pa.int64())  # head entry j is entry where[j] of the concatenation
    found = {
        name: (pa.concat_arrays(v) if v else pa.array([], CACHE_SCHEMA.field(name).type)).take(back)
        for name, v in columns.items()
    }
    return pa.table({name: found[name] if name in found else head[name] for name in ENTRY_FIELDS})
