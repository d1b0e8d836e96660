"""What the dedup stage keeps of a build, so that the next round decides only its own records.

Clusters are built round by round (``flywheel.dedup``): a later round never changes an earlier
round's clusters, representatives or kept records. All a new round needs of the earlier ones is
their keys and clusters, kept here in ``data/cache/dedup/`` (two Arrow IPC files, memory-mapped
on read):

- per key, in first-delivery order: the key, its cluster, whether it joined an earlier round's
  cluster, its first record's row, and the id its near-duplicate pairs name (its first kept
  record, else its first record);
- per cluster, in founding order: the representative's row, id and key, the number of records,
  the smallest label among them and whether they carry two or more.

What an earlier key or a cluster's representative is never changes, so those are kept in
append-only segments (``keys-*.arrow``, ``reps-*.arrow``): a round writes its new keys and
clusters only, and DVC stores a few megabytes a round instead of the whole state (150 MB at a
million keys). Sizes, labels and conflicts do change; they are rewritten in ``clusters.arrow``,
which also lists the segments, so a save interrupted before it leaves the previous state whole.

``meta`` says what the state was built from: the stage's code, params and guidelines
(``settings``), and every partition's name, identity and upstream keys, with the key of the
dedup file written for it. ``flywheel.dedup_round`` uses the state only when all of these still
hold for the earlier partitions; otherwise the stage computes everything, as from nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import parts, records, store
from flywheel.io import read_arrow, write_arrow

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_META = b"flywheel.dedup.state"
_SEGMENTS = b"flywheel.dedup.segments"
CLUSTERS_FILE = "clusters.arrow"
MAX_SEGMENTS = 16  # more segments of a kind than this are merged into one on the next save
Segments = dict[str, list[list[Any]]]  # kind -> [[file name, rows], ...], in order
# The modules whose code decides the stage's outputs: a state built by other code is not used.
CODE = (
    "dedup",
    "dedup_round",
    "dedup_state",
    "dedup_pairs",
    "dedup_sign",
    "minhash",
    "minhash_params",
    "lsh",
    "jaccard",
    "shingles",
    "kernels",
)


@dataclass
class State:
    keys: pa.Array  # dedup keys, first-delivery order
    cluster: Ints  # each key's cluster ordinal
    attached: Bools  # the key joined an earlier round's cluster
    first_row: Ints  # each key's first record, as a row among all records
    kept_id: pa.Array  # the id a key's pairs name: its first kept record's, else its first's
    rep_row: Ints  # each cluster's representative, as a row
    rep_id: pa.Array
    rep_key: Ints  # the representative's key ordinal
    size: Ints  # records per cluster
    label: pa.Array  # the smallest label among the cluster's records (null: none labelled)
    conflicted: Bools  # the cluster's records carry two or more labels
    meta: dict[str, Any] = field(default_factory=dict)
    segments: Segments = field(default_factory=dict)  # on disk already (``load``), a prefix

    def key_table(self) -> pa.Table:
        return pa.table(
            {
                "key": self.keys,
                "cluster": self.cluster,
                "attached": self.attached,
                "first_row": self.first_row,
                "kept_id": self.kept_id,
            }
        )

    def rep_table(self) -> pa.Table:
        return pa.table({"rep_row": self.rep_row, "rep_id": self.rep_id, "rep_key": self.rep_key})

    def cluster_table(self) -> pa.Table:
        return pa.table(
            {
                "size": self.size,
                "label": pc.dictionary_encode(self.label),
                "conflicted": self.conflicted,
            }
        )


def cluster_labels(
    cluster: Ints, labels: pa.ChunkedArray | pa.Array, n: int
) -> tuple[pa.Array, Bools]:
    """Per cluster ``0..n-1``: the smallest label of its records (null: none labelled) and
    whether they carry two or more. Labels are a handful of names: their codes, ranked in
    name order, make this a sort of integers (an Arrow group-by on the strings took 0.6 s
    at a million records)."""
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    encoded = pc.dictionary_encode(labels)
    names = encoded.dictionary.to_pylist()
    by_name = sorted(range(len(names)), key=lambda i: names[i])
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_name] = np.arange(len(names))
    valid = np.asarray(pc.is_valid(labels).to_numpy(zero_copy_only=False), dtype=bool)
    codes = encoded.indices.to_numpy(zero_copy_only=False)[valid].astype(np.int64)
    width = max(len(names), 1)
    pairs = np.unique(cluster[valid] * width + rank[codes])  # each (cluster, label) once
    owner, label_rank = pairs // width, pairs % width
    first = np.r_[True, owner[1:] != owner[:-1]] if len(pairs) else np.zeros(0, dtype=bool)
    smallest = np.full(n, -1, dtype=np.int64)
    smallest[owner[first]] = label_rank[first]  # pairs are sorted: the first is the smallest
    conflicted = np.bincount(owner, minlength=n) > 1
    ordered = pa.array([names[i] for i in by_name], pa.string())
    return ordered.take(pa.array(smallest, mask=smallest < 0)), conflicted


def partition_inputs(layers: Sequence[Path], records: Path, partition: Path) -> list[str]:
    """What a partition's dedup file was computed from, with that file's key: the partition's
    identity, the keys of its files in the patch layers, and the key of its dedup file."""
    found = parts.stored(store.patch_path(records, partition))
    return [
        partition.name,
        parts.identity(partition),
        *parts.upstream(layers, partition),
        found[0] if found else "missing",
    ]


def save(folder: Path, state: State) -> None:
    """Write ``state``: its keys and representatives beyond the segments it was loaded with
    as new segments (or all of them in one, past ``MAX_SEGMENTS``), then ``clusters.arrow``
    naming the segments, then remove segments no longer named."""
    folder.mkdir(parents=True, exist_ok=True)
    listed: Segments = {}
    for kind, table in (("keys", state.key_table()), ("reps", state.rep_table())):
        have = [list(s) for s in state.segments.get(kind, [])]
        if len(have) >= MAX_SEGMENTS:
            have = []
        done = sum(int(rows) for _, rows in have)
        if done < table.num_rows or not have:
            number = 1 + max((int(name[len(kind) + 1 : -6]) for name, _ in have), default=-1)
            name = f"{kind}-{number:06d}.arrow"
            _write(folder / name, table.slice(done), {})
            have.append([name, table.num_rows - done])
        listed[kind] = have
    text = json.dumps(state.meta, sort_keys=True)
    _write(
        folder / CLUSTERS_FILE,
        state.cluster_table(),
        {_META: text.encode(), _SEGMENTS: json.dumps(listed).encode()},
    )
    named = {name for segments in listed.values() for name, _ in segments}
    for path in folder.glob("*.arrow"):
        if path.name != CLUSTERS_FILE and path.name not in named:
            path.unlink()


def _write(path: Path, table: pa.Table, metadata: dict[bytes, bytes]) -> None:
    write_arrow(path, table.replace_schema_metadata(metadata))


def load(folder: Path) -> State | None:
    """The state in ``folder``, or None when there is none or it is unreadable or torn."""
    try:
        clusters = read_arrow(folder / CLUSTERS_FILE)
        meta = clusters.schema.metadata or {}
        listed: Segments = json.loads(meta[_SEGMENTS])
        keys, reps = (_segments(folder, listed[kind]) for kind in ("keys", "reps"))
        state_meta = json.loads(meta[_META])
    except (OSError, pa.ArrowInvalid, KeyError, ValueError, TypeError):
        return None
    if reps.num_rows != clusters.num_rows:
        return None
    return State(
        keys=_one(keys, "key"),
        cluster=_one(keys, "cluster").to_numpy(),
        attached=_one(keys, "attached").to_numpy(zero_copy_only=False),
        first_row=_one(keys, "first_row").to_numpy(),
        kept_id=_one(keys, "kept_id"),
        rep_row=_one(reps, "rep_row").to_numpy(),
        rep_id=_one(reps, "rep_id"),
        rep_key=_one(reps, "rep_key").to_numpy(),
        size=_one(clusters, "size").to_numpy(),
        label=_one(clusters, "label").cast(pa.string()),
        conflicted=_one(clusters, "conflicted").to_numpy(zero_copy_only=False),
        meta=state_meta,
        segments=listed,
    )


def _segments(folder: Path, listed: list[list[Any]]) -> pa.Table:
    """The segments named, in order, each checked to hold the rows it is listed with."""
    tables = []
    for name, rows in listed:
        table = read_arrow(folder / str(name))
        if table.num_rows != int(rows):
            raise ValueError(f"{name} holds {table.num_rows} rows, not {rows}")
        tables.append(table)
    if not tables:
        raise ValueError("no segments")
    return pa.concat_tables(tables)


def _one(table: pa.Table, name: str) -> pa.Array:
    return records.one_array(table.column(name))
