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

``meta`` says what the state was built from: the stage's code, params and guidelines
(``settings``), and every partition's name, identity and upstream keys, with the key of the
dedup file written for it. ``flywheel.dedup_round`` uses the state only when all of these still
hold for the earlier partitions; otherwise the stage computes everything, as from nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flywheel import parts, store
from flywheel.io import atomic_open

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_META = b"flywheel.dedup.state"
KEYS_FILE, CLUSTERS_FILE = "keys.arrow", "clusters.arrow"
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

    def cluster_table(self) -> pa.Table:
        return pa.table(
            {
                "rep_row": self.rep_row,
                "rep_id": self.rep_id,
                "rep_key": self.rep_key,
                "size": self.size,
                "label": self.label,
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
    """Both files, each with ``meta`` and a digest of it: ``load`` refuses a pair that an
    interrupted save left from two builds."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state.meta, sort_keys=True)
    stamp = {_META: text.encode(), b"digest": hashlib.sha256(text.encode()).hexdigest().encode()}
    for name, table in ((CLUSTERS_FILE, state.cluster_table()), (KEYS_FILE, state.key_table())):
        table = table.replace_schema_metadata(stamp)
        with atomic_open(folder / name, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
            writer.write_table(table)


def load(folder: Path) -> State | None:
    """The state in ``folder``, or None when there is none or it is unreadable or torn."""
    try:
        keys, clusters = (_read(folder / name) for name in (KEYS_FILE, CLUSTERS_FILE))
    except (OSError, pa.ArrowInvalid):
        return None
    meta_k, meta_c = keys.schema.metadata or {}, clusters.schema.metadata or {}
    if _META not in meta_k or meta_k.get(b"digest") != meta_c.get(b"digest"):
        return None
    return State(
        keys=_one(keys, "key"),
        cluster=_one(keys, "cluster").to_numpy(),
        attached=_one(keys, "attached").to_numpy(zero_copy_only=False),
        first_row=_one(keys, "first_row").to_numpy(),
        kept_id=_one(keys, "kept_id"),
        rep_row=_one(clusters, "rep_row").to_numpy(),
        rep_id=_one(clusters, "rep_id"),
        rep_key=_one(clusters, "rep_key").to_numpy(),
        size=_one(clusters, "size").to_numpy(),
        label=_one(clusters, "label"),
        conflicted=_one(clusters, "conflicted").to_numpy(zero_copy_only=False),
        meta=json.loads(meta_k[_META]),
    )


def _read(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _one(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
