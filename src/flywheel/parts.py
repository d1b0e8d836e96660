"""Stage outputs kept one file per ingest partition, written only where something changed.

Every stage patch, and the train and eval sets, are folders holding one file per ingest
partition, named after it (``r0001-<export>.parquet``, ``store.patch_path``). Each file carries a
*key* in its metadata, and a stage writes a file only when its key changed:

- ``refresh``: for the stages that decide each record from its own row (``label``, ``bucket``,
  ``queue``), the key hashes everything the partition's file is computed from: the partition's
  identity (ingest's fingerprint of the export), the stage's params, the guidelines, the stage's
  code, and the partition's further inputs (its review decisions; the keys of its files in the
  layers before, ``upstream``). Only partitions whose key changed are computed; each file also
  carries its share of the stage's metrics (``add``).
- ``write_patches``: for the stages that decide all records together (``dedup``, ``split``), the
  key is a hash of the file's rows (``table_digest``): they compute everything, then write only
  the files whose rows changed, so the stages after them see the other partitions unchanged.
- ``write_records``: the train and eval sets, whole records, keyed by the partition's identity,
  the mask and a hash of the chosen rows; an index of the inputs each file was written from
  lets a partition whose inputs are unchanged go unread.

A new round computes its new partitions and writes the few other files whose rows changed; the
folders hold the same bytes as a build from nothing (tests/test_parts.py).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel import records, store
from flywheel.io import read_schema, sha256_file, write_parquet, write_text

KEY = b"flywheel.part.key"
COUNTS = b"flywheel.part.counts"
AHEAD = 2  # partitions being read while one is written (write_records)
Counts = dict[str, Any]  # metric name -> int, or -> {value: int}


def code_hash(modules: Sequence[str]) -> str:
    """A hash of the source of ``flywheel.<module>`` for each of ``modules``."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(f"flywheel.{name}")
        origin = spec.origin if spec is not None else None
        h.update(name.encode() + b"\0" + (Path(origin).read_bytes() if origin else b""))
    return h.hexdigest()


def key(*inputs: Any) -> str:
    """A hash of ``inputs`` (anything JSON can write, dataclasses by their ``str``)."""
    text = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def stage_key(modules: Sequence[str], params: dict[str, Any], guidelines: Any) -> str:
    """What every partition's key of a stage shares: its code (``modules``), its params and
    the guidelines (a dataclass)."""
    return key(code_hash(modules), params, dataclasses.asdict(guidelines))


def identity(partition: Path) -> str:
    """What an ingest partition's content is a function of: ingest's fingerprint of its export
    (``flywheel.ingest_cache``), else (exports settled together carry none) its bytes' hash."""
    meta = read_schema(partition).metadata or {}
    found = meta.get(store.FINGERPRINT_KEY)
    return found.decode() if found else "sha256:" + sha256_file(partition)


def upstream(layers: Sequence[Path], partition: Path) -> list[str]:
    """What the patch layers after the records hold for ``partition``: for a patch folder, the
    key of its file; for a one-file patch, the file's hash (it covers every partition)."""
    out = []
    for layer in layers[1:]:
        if layer.is_dir():
            found = stored(store.patch_path(layer, partition))
            out.append(found[0] if found else "missing")
        else:
            out.append(sha256_file(layer))
    return out


def table_digest(table: pa.Table) -> str:
    """A hash of ``table``'s contents: its Arrow IPC stream, after ``take`` has copied its rows
    into fresh buffers (a slice's stream can carry bytes outside the slice, and chunking
    differs with how the table was read)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.take(pa.array(np.arange(table.num_rows))))
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def mask_digest(mask: npt.NDArray[np.bool_]) -> str:
    return hashlib.sha256(np.packbits(mask).tobytes() + str(len(mask)).encode()).hexdigest()


def stored(path: Path) -> tuple[str, Counts] | None:
    """The key and counts a partition's file was written with (None: no usable file)."""
    try:
        meta = read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):  # missing, or torn by another tool: recompute it
        return None
    if KEY not in meta:
        return None
    counts: Counts = json.loads(meta.get(COUNTS, b"{}"))
    return meta[KEY].decode(), counts


def add(counts: Sequence[Counts]) -> Counts:
    """The sum of per-partition counts: numbers add, mappings add key by key (sorted)."""
    total: Counts = {}
    for c in counts:
        for name, value in c.items():
            if isinstance(value, dict):
                into = total.setdefault(name, {})
                for k, n in value.items():
                    into[k] = into.get(k, 0) + n
            else:
                total[name] = total.get(name, 0) + value
    return {k: dict(sorted(v.items())) if isinstance(v, dict) else v for k, v in total.items()}


Compute = Callable[[int], tuple[pa.Table, Counts]]  # partition index -> (patch rows, counts)


def refresh(
    folder: Path,
    partitions: Sequence[Path],
    keys: Sequence[str],
    columns: Sequence[str],
    compute: Compute,
) -> tuple[list[Counts], int]:
    """Bring ``folder`` up to date: for partition ``i``, the file named after it holds
    ``compute(i)`` (its ``columns``) computed for ``keys[i]``. Files of other names are
    removed. Returns every partition's counts, and how many partitions were computed."""
    keep_only(folder, partitions)
    counts: list[Counts | None] = []
    for partition, part_key in zip(partitions, keys, strict=True):
        found_before = stored(store.patch_path(folder, partition))
        fresh = found_before is not None and found_before[0] == part_key
        counts.append(found_before[1] if fresh and found_before is not None else None)
    todo = [i for i, c in enumerate(counts) if c is None]

    def one(i: int) -> Counts:
        table, found = compute(i)
        meta = {KEY: keys[i].encode(), COUNTS: json.dumps(found, sort_keys=True).encode()}
        store.write_patch(store.patch_path(folder, partitions[i]), table, columns, meta)
        return found

    # Two partitions at a time: reading, deciding and writing are mostly Arrow and numpy
    # work, which releases the GIL (2 cores here).
    with ThreadPoolExecutor(2) as pool:
        for i, found in zip(todo, pool.map(one, todo), strict=True):
            counts[i] = found
    return [c for c in counts if c is not None], len(todo)


def keep_only(folder: Path, partitions: Sequence[Path]) -> None:
    """Create ``folder``, or remove its files of partitions not in ``partitions``."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {store.patch_path(folder, p).name for p in partitions}
    for path in folder.iterdir():
        if path.name not in wanted and path.is_file():
            path.unlink()


def write_patches(
    folder: Path,
    partitions: Sequence[Path],
    table: pa.Table,
    columns: Sequence[str],
    others: Sequence[Path] = (),
) -> list[str]:
    """The patch of a stage that decides all records together (``dedup``, ``split``), as a
    folder of one file per partition: ``table``'s rows of each partition in turn. A file whose
    rows are unchanged is not written again (its key is a hash of them), and keeps its key, so
    the stages after it see that partition unchanged. Returns each partition's key.
    ``others``: partitions whose files stay as they are (the folder's files of partitions in
    neither list are removed)."""
    keep_only(folder, [*others, *partitions])
    patch = store.patch(table, columns)
    keys = []
    for partition, (offset, n) in zip(partitions, store.spans(partitions), strict=True):
        rows = patch.slice(offset, n)
        path = store.patch_path(folder, partition)
        part_key = table_digest(rows)
        found = stored(path)
        if found is None or found[0] != part_key:
            store.write_patch(path, rows, columns, {KEY: part_key.encode()})
        keys.append(part_key)
    return keys


def narrow_columns(layers: Sequence[Path], columns: Sequence[str]) -> list[str]:
    """The record columns ``write_records`` reads from the patch layers (not in ``columns``)."""
    owner = store.owners(layers, [n for n in records.SCHEMA.names if n not in columns])
    return [n for n in owner if owner[n] > 0]


def write_records(
    layers: Sequence[Path],
    columns: dict[str, pa.Array | pa.ChunkedArray],
    targets: dict[Path, npt.NDArray[np.bool_]],
    own_keys: Sequence[str],
    index: Path,
) -> int:
    """Whole records, ``columns`` replacing theirs, into each target folder: one file per
    partition (``patch_path``) holding the rows its mask selects, in record order. Returns how
    many files were written. ``own_keys``: the key of each partition's patch of ``columns``
    (``write_patches``).

    A file is written only when its rows changed: its key is a hash of the partition's identity
    and its chosen rows but the texts (which the identity fixes). Hashing those rows needs the
    patch layers' columns, most of a build's reading at a million records, so ``index`` (a
    small JSON file) remembers for each file the key of its *inputs* too: the code that
    assembles it, the partition's identity, the keys of its files in the patch layers, its
    ``own_keys`` entry and the mask. A partition whose inputs are unchanged is not read at all;
    one whose inputs changed is read and hashed, and written only if its rows changed. One
    partition at a time, each read once for every target that needs it; two threads read and
    select the next partitions while this one writes (Arrow releases the GIL), at most
    ``AHEAD`` in flight.
    """
    names = list(records.SCHEMA.names)
    patched = [c for c in narrow_columns(layers, list(columns)) if c != "id"]
    own = [n for n in names if n not in columns and n not in patched]
    files = store.partitions(layers[0])
    spans = store.spans(files)
    for folder in targets:
        keep_only(folder, files)
    code = code_hash(("parts", "records", "store"))  # how a file is assembled
    try:
        known: dict[str, list[str]] = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    seen: dict[str, list[str]] = {}

    def plan(i: int) -> tuple[dict[Path, str], pa.Table | None]:
        """The target files of partition ``i`` to write, with their keys (and the partition's
        narrow columns, when they were read to decide)."""
        offset, n = spans[i]
        part_id = identity(files[i])
        common = key(code, part_id, upstream(layers, files[i]), own_keys[i])
        inputs = {
            path: key(common, mask_digest(mask[offset : offset + n]))
            for path, mask in ((store.patch_path(f, files[i]), m) for f, m in targets.items())
        }
        stale = {}  # path -> (its inputs' key, its stored key)
        for path, inputs_key in inputs.items():
            found = stored(path)
            entry = known.get(path.as_posix())
            if found is None or entry != [inputs_key, found[0]]:
                stale[path] = (inputs_key, None if found is None else found[0])
            else:
                seen[path.as_posix()] = entry
        if not stale:
            return {}, None
        narrow = store.load(store.partition_layers(layers, files[i]), ["id", *patched])
        parted = pa.table(
            {
                **{c: narrow.column(c) for c in narrow.column_names},
                **{c: v.slice(offset, n) for c, v in columns.items()},
            }
        )
        out = {}
        for folder, mask in targets.items():
            path = store.patch_path(folder, files[i])
            if path not in stale:
                continue
            chosen = mask[offset : offset + n]
            rows = table_digest(parted.filter(pa.array(chosen)))
            file_key = key(part_id, rows, mask_digest(chosen))
            inputs_key, stored_key = stale[path]
            seen[path.as_posix()] = [inputs_key, file_key]
            if stored_key != file_key:
                out[path] = file_key
        return out, parted

    def select(
        i: int, paths: dict[Path, str], parted: pa.Table
    ) -> dict[Path, tuple[pa.Table, str]]:
        offset, n = spans[i]
        base = pq.read_table(files[i], columns=own)
        pieces = {c: base.column(c) for c in own}
        pieces.update({c: parted.column(c) for c in parted.column_names})
        table = pa.Table.from_arrays([pieces[c] for c in names], schema=records.SCHEMA)
        out = {}
        for folder, mask in targets.items():
            path = store.patch_path(folder, files[i])
            if path in paths:
                out[path] = (table.filter(pa.array(mask[offset : offset + n])), paths[path])
        return out

    written = 0
    with ThreadPoolExecutor(2) as pool:
        plans = list(pool.map(plan, range(len(files))))
        pending: collections.deque[Future[dict[Path, tuple[pa.Table, str]]]] = collections.deque()
        needed = [i for i, (paths, _) in enumerate(plans) if paths]
        for j in range(len(needed) + AHEAD):
            if j < len(needed):
                paths, parted = plans[needed[j]]
                assert parted is not None  # read whenever a file is to be written
                pending.append(pool.submit(select, needed[j], paths, parted))
            if len(pending) > AHEAD or (j >= len(needed) and pending):
                for path, (table, file_key) in pending.popleft().result().items():
                    write_parquet(path, table, metadata={KEY: file_key.encode()})
                    written += 1
    index.parent.mkdir(parents=True, exist_ok=True)
    write_text(index, json.dumps(dict(sorted(seen.items())), indent=1) + "\n")
    return written
