"""Ids across rows and exports, long-layout items, and the ledger: ingest's second half.

Every export's mapped rows (``ingest_map.CANDIDATE``) are settled together, in the order the
row-at-a-time ingest read them (exports in folder order, rows in line order):

- the first row that delivers an id makes the record; a later row with that id is quarantined as
  already delivered, unless it is in the same long-layout export, where it adds its annotation
  to the item (or is quarantined when its prompt or response differs from the item's first row);
- in a long layout a repeat annotation by the same annotator supersedes the earlier row, whose
  ledger fate becomes ``excluded``;
- every row read gets one ledger row; records come out in ``records.SORT_KEYS`` order.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import records
from flywheel.guidelines import UNCATEGORIZED
from flywheel.ingest_bytes import single as _arr
from flywheel.ingest_frame import BulkRows
from flywheel.ingest_text import content_hashes

# Threads for the work done per export: pyarrow and numpy release the GIL, so one export's bulk
# work runs while another's Python (callbacks, hashing, the row path) does.
THREADS = 2

ROWS_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("record_id", pa.string()),
        ("fate", pa.string()),
        ("detail", pa.string()),
    ]
)


@dataclass
class RawText:
    """The raw text of a candidate, by its ``src``: bulk rows as read again, the others kept."""

    bulk: BulkRows
    kept: list[str]  # of the row path's records, candidate src -1 - i

    def __call__(self, src: int) -> str:
        if src < 0:
            return self.kept[-1 - src]
        row = self.bulk.row(src)
        return "" if row is None else row.raw


@dataclass
class Delivered:
    """One export after mapping: its candidate rows and the rows already quarantined."""

    path: str
    manifest: dict[str, Any]
    candidates: pa.Table  # ingest_map.CANDIDATE
    alive: np.ndarray  # per candidate: whether it counts (the others were handed to the row path)
    quarantined: list[dict[str, Any]]  # rows the row path quarantined: file, line, reason, raw
    raw: RawText

    @property
    def long(self) -> bool:
        return bool(self.manifest["annotations"]["layout"] == "long")


@dataclass
class Settled:
    records: pa.Table  # records.SCHEMA, sorted by records.SORT_KEYS
    rows: pa.Table  # ROWS_SCHEMA, by file and line
    quarantine: list[dict[str, Any]]  # by file and line


def _np(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    values = _arr(values)
    return np.asarray(values.fill_null(False) if pa.types.is_boolean(values.type) else values)


def hash_heads(candidates: pa.Table, alive: np.ndarray, long: bool) -> pa.Table:
    """``candidates`` with the content hash of every row that can make a record.

    In a long layout only the first live row of an item can (the later ones add annotations),
    so only those are hashed; elsewhere every live row (a repeated id is rare, and hashing it
    is harmless). ``settle`` hashes any record still without one. Done per export, while the
    exports are still mapped in parallel.
    """
    chash = _arr(candidates["content_hash"])
    missing = alive & np.asarray(chash.is_null())
    if not missing.any():
        return candidates
    heads = np.ones(len(alive), dtype=bool)
    if long:
        line = _np(candidates["line"])
        codes = _np(pc.dictionary_encode(_arr(candidates["id"])).indices.fill_null(0))
        order = np.flatnonzero(alive)
        order = order[np.argsort(line[order], kind="stable")]
        _, at = np.unique(codes[order], return_index=True)
        heads[:] = False
        heads[order[at]] = True
    wanted = heads & missing
    if not wanted.any():
        return candidates
    mask = pa.array(wanted)
    found = content_hashes(candidates["prompt"].filter(mask), candidates["response"].filter(mask))
    index = candidates.schema.get_field_index("content_hash")
    return candidates.set_column(
        index, candidates.schema.field(index), pc.replace_with_mask(chash, mask, found)
    )


def settle(exports: list[Delivered], scrub: Callable[[str], str]) -> Settled:
    """Settle ids, items and fates across ``exports`` (in reading order); ``scrub`` cleans raws.

    Each export's candidates are dropped once its records are built (``Delivered.candidates``
    is emptied), so that memory holds the candidates or the records, not both.
    """
    sizes = [d.candidates.num_rows for d in exports]
    base = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    n = int(base[-1])
    export = np.repeat(np.arange(len(exports)), sizes).astype(np.int64)
    alive = np.concatenate([d.alive for d in exports]) if exports else np.zeros(0, bool)
    line = np.concatenate([_np(d.candidates["line"]) for d in exports] or [np.zeros(0, np.int64)])
    src = np.concatenate([_np(d.candidates["src"]) for d in exports] or [np.zeros(0, np.int64)])
    ids = pa.chunked_array(
        [c for d in exports for c in d.candidates["id"].chunks], pa.string()
    ).combine_chunks()
    live = np.flatnonzero(alive)
    order = live[np.lexsort((line[live], export[live]))]
    paths = [d.path for d in exports]
    is_long = np.array([d.long for d in exports], dtype=bool)

    # The first row (in reading order) of each id.
    first = np.arange(n)
    encoded = pc.dictionary_encode(ids)
    codes = _np(encoded.indices.fill_null(0))
    if len(live) and np.bincount(codes[live]).max() > 1:
        uniq, at = np.unique(codes[order], return_index=True)
        first_of = np.zeros(len(encoded.dictionary), dtype=np.int64)
        first_of[uniq] = order[at]
        first[live] = first_of[codes[live]]
    del encoded
    repeat = (first != np.arange(n)) & alive
    member = repeat & (export[first] == export) & is_long[export]
    conflict = np.zeros(n, dtype=bool)
    for e in np.unique(export[member]).tolist():
        m = np.flatnonzero(member & (export == e))
        table = exports[e].candidates
        idx, fidx = pa.array(m - base[e]), pa.array(first[m] - base[e])
        differ = pc.or_(
            pc.not_equal(table["prompt"].take(idx), table["prompt"].take(fidx)),
            pc.not_equal(table["response"].take(idx), table["response"].take(fidx)),
        )
        conflict[m[_np(differ)]] = True
    duplicate = repeat & ~member
    accepted = alive & ~duplicate & ~conflict

    def origin(row: int) -> str:
        return f"{paths[export[row]]}:{line[row]}"

    earlier = [q for d in exports for q in d.quarantined]
    quarantine = list(earlier)
    detail: dict[int, str] = {}
    for row in np.flatnonzero(duplicate | conflict).tolist():
        rid, at_first = ids[row].as_py(), origin(int(first[row]))
        if duplicate[row]:
            reason = f"id '{rid}' was already delivered at {at_first}"
        else:
            reason = f"prompt or response differs from the item's first row at {at_first}"
        detail[row] = reason
        raw = exports[export[row]].raw(int(src[row]))
        quarantine.append(
            {
                "file": paths[export[row]],
                "line": int(line[row]),
                "reason": reason,
                "raw": scrub(raw),
            }
        )

    excluded = np.zeros(n, dtype=bool)
    lists: dict[int, tuple[np.ndarray, pa.Array]] = {}
    for e in np.flatnonzero(is_long).tolist():
        rows = np.flatnonzero(accepted[base[e] : base[e + 1]])
        if len(rows):
            lists[e] = _items(
                exports[e], rows, first[base[e] + rows] - base[e], line, base[e], excluded, detail
            )

    def build(e: int) -> pa.Table:
        heads = np.flatnonzero((alive & ~repeat)[base[e] : base[e + 1]])
        part = _records(exports[e], heads, lists.get(e))
        # The candidates or the records, not both: memory holds one copy of the texts.
        exports[e].candidates = exports[e].candidates.schema.empty_table()
        return part

    # Records come out in records.SORT_KEYS order: round and export_id are the export's. The
    # exports' records are taken in parallel (pyarrow's take releases the GIL).
    in_order = sorted(range(len(exports)), key=lambda e: _round_and_id(exports[e]))
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        parts = list(pool.map(build, in_order))
    out = pa.concat_tables(parts) if parts else records.empty()
    rows_table = _ledger(paths, ids, export, line, alive, accepted, excluded, detail, earlier)
    return Settled(out, rows_table, sorted(quarantine, key=lambda q: (q["file"], q["line"])))


def _round_and_id(d: Delivered) -> tuple[int, str]:
    return int(d.manifest["round"]), str(d.manifest["export_id"])


def _items(
    d: Delivered,
    rows: np.ndarray,
    first: np.ndarray,
    line: np.ndarray,
    offset: int,
    excluded: np.ndarray,
    detail: dict[int, str],
) -> tuple[np.ndarray, pa.Array]:
    """A long export's accepted ``rows`` (local, with their item's ``first`` row): the records'
    annotations, and the rows a later repeat by the same annotator supersedes.

    Returns the item rows and, aligned with them, each item's annotations: the last of each
    annotator's, sorted by annotator.
    """
    items = pc.list_flatten(_arr(d.candidates["annotations"]).take(pa.array(rows)))
    annotator = pc.struct_field(items, "annotator")
    enc = pc.dictionary_encode(annotator)
    names = enc.dictionary.to_pylist()
    rank_of = {a: i for i, a in enumerate(sorted(names))}
    rank = np.array([rank_of[a] for a in names], dtype=np.int64)[_np(enc.indices)]
    # Rows are in line order within the export: sort by item, annotator, then line.
    by_key = np.lexsort((line[offset + rows], rank, first))
    rows_k, first_k, rank_k = rows[by_key], first[by_key], rank[by_key]
    later = np.zeros(len(rows_k), dtype=bool)
    later[:-1] = (first_k[1:] == first_k[:-1]) & (rank_k[1:] == rank_k[:-1])
    for i in np.flatnonzero(later).tolist():
        row, nxt = offset + int(rows_k[i]), offset + int(rows_k[i + 1])
        excluded[row] = True
        who = annotator[int(by_key[i])].as_py()
        detail[row] = f"repeat annotation by {who} superseded by {d.path}:{line[nxt]}"
    keep = ~later
    heads = np.unique(first_k[keep])
    counts = np.bincount(np.searchsorted(heads, first_k[keep]), minlength=len(heads))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    return heads, pa.ListArray.from_arrays(pa.array(offsets), items.take(pa.array(by_key[keep])))


def _records(
    d: Delivered, heads: np.ndarray, long_lists: tuple[np.ndarray, pa.Array] | None
) -> pa.Table:
    """The export's records: its rows ``heads`` (each the first row of its id), by id."""
    table, manifest, m = d.candidates, d.manifest, len(heads)
    if m == 0:
        return records.empty()
    ids = _arr(table["id"].take(pa.array(heads)))
    order = np.asarray(pc.sort_indices(ids))
    heads = heads[order]
    take = pa.array(heads)

    def column(name: str) -> pa.Array:
        return _arr(table[name].take(take))

    annotations = column("annotations")
    if long_lists is not None:
        items, lists = long_lists
        where = np.searchsorted(items, heads)
        annotations = lists.take(pa.array(where))
    prompt, response, chash = column("prompt"), column("response"), column("content_hash")
    if chash.null_count:
        missing = chash.is_null()
        found = content_hashes(prompt.filter(missing), response.filter(missing))
        chash = pc.replace_with_mask(chash, missing, found)
    line = _np(table["line"].take(take))

    def const(value: Any, kind: pa.DataType) -> pa.Array:
        return pa.repeat(pa.scalar(value, kind), m)

    columns: dict[str, pa.Array] = {
        "id": ids.take(pa.array(order)),
        "source": const(manifest["source"], pa.string()),
        "export_id": const(manifest["export_id"], pa.string()),
        "round": const(manifest["round"], pa.int32()),
        "reason": column("reason"),
        "exported_at": const(str(manifest["exported_at"]), pa.string()),
        "prompt": prompt,
        "response": response,
        "reference": column("reference"),
        "model_label": column("model_label"),
        "model_confidence": column("model_confidence"),
        "annotations": annotations,
        "label_status": const("unlabeled", pa.string()),
        "reviewed": const(False, pa.bool_()),
        "error_category": const(UNCATEGORIZED, pa.string()),
        "pii": column("pii"),
        "content_hash": chash,
        "origin": pc.binary_join_element_wise(d.path, pc.cast(pa.array(line), pa.string()), ":"),
    }
    full = {
        f.name: columns[f.name] if f.name in columns else pa.nulls(m, f.type)
        for f in records.SCHEMA
    }
    return pa.table(full, schema=records.SCHEMA)


def _ledger(
    paths: list[str],
    ids: pa.Array,
    export: np.ndarray,
    line: np.ndarray,
    alive: np.ndarray,
    accepted: np.ndarray,
    excluded: np.ndarray,
    detail: dict[int, str],
    earlier: list[dict[str, Any]],
) -> pa.Table:
    """One row per row read: its record and fate, and why; by file, then line.

    ``earlier`` are the rows the row path quarantined, which are not among the candidates.
    """
    n, k = len(line), len(earlier)
    where = {p: i for i, p in enumerate(paths)}
    all_export = np.concatenate((export, [where[q["file"]] for q in earlier])).astype(np.int64)
    all_line = np.concatenate((line, [q["line"] for q in earlier])).astype(np.int64)
    fate = np.full(n + k, -1, dtype=np.int64)  # -1: none yet (later stages decide)
    fate[:n][~accepted] = 0
    fate[:n][excluded] = 1
    fate[n:] = 0
    texts = [*detail.values(), *(q["reason"] for q in earlier)]
    which = np.full(n + k, -1, dtype=np.int64)
    which[np.fromiter(detail.keys(), np.int64, len(detail))] = np.arange(len(detail))
    which[n:] = np.arange(len(detail), len(detail) + k)
    # The row index of each row's record id (-1: none), so that every column is built once,
    # already in order, by a single take.
    record = np.full(n + k, -1, dtype=np.int64)
    record[np.flatnonzero(accepted)] = np.flatnonzero(accepted)
    rank = np.empty(len(paths), dtype=np.int64)
    rank[sorted(range(len(paths)), key=lambda i: paths[i])] = np.arange(len(paths))
    chosen = np.flatnonzero(np.concatenate((alive, np.ones(k, dtype=bool))))
    order = chosen[np.lexsort((all_line[chosen], rank[all_export[chosen]]))]

    def pick(values: list[str] | pa.Array, index: np.ndarray) -> pa.Array:
        source = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        return source.take(pa.array(index[order], mask=index[order] < 0))

    return pa.table(
        {
            "file": pick(paths, all_export),
            "line": pa.array(all_line[order]),
            "record_id": pick(ids, record),
            "fate": pick(["quarantined", "excluded"], fate),
            "detail": pick(texts, which),
        },
        schema=ROWS_SCHEMA,
    )
