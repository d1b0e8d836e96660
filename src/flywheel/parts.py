"""Stage outputs kept one file per ingest partition, written only where something changed.

Every stage patch, and the train and eval sets, are folders holding one file per ingest
partition, named after it (``r0001-<export>.parquet``, ``store.patch_path``). Each file carries a
*key* in its metadata, and a stage writes a file only when its key changed:

- ``refresh``: for the stages that decide each record from its own row (``label``, ``bucket``,
  ``queue``, ``split``), the key hashes everything the partition's file is computed from: the partition's
  identity (ingest's fingerprint of the export), the stage's params, the guidelines, the stage's
  code, and the partition's further inputs (its review decisions; the keys of its files in the
  layers before, ``upstream``). Only partitions whose key changed are computed; each file also
  carries its share of the stage's metrics (``add``).
- ``write_patches``: for the stage that decides all records together (``dedup``), the key is a
  hash of the file's rows (``table_digest``): it computes everything, then writes only the files
  whose rows changed, so the stages after it see the other partitions unchanged.
- ``write_records``: the train and eval sets, whole records, keyed by the partition's split key.

A new round computes its new partitions and writes the few other files whose rows changed; the
folders hold the same bytes as a build from nothing (tests/test_parts.py).
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import store
from flywheel.io import sha256_file, write_parquet

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


def identity(partition: Path) -> str:
    """What an ingest partition's content is a function of: ingest's fingerprint of its export
    (``flywheel.ingest_cache``), else (exports settled together carry none) its bytes' hash."""
    meta = pq.read_schema(partition).metadata or {}
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


def stored(path: Path) -> tuple[str, Counts] | None:
    """The key and counts a partition's file was written with (None: no usable file)."""
    try:
        meta = pq.read_schema(path).metadata or {}
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
    counts: list[Counts] = []
    computed = 0
    for i, (partition, part_key) in enumerate(zip(partitions, keys, strict=True)):
        path = store.patch_path(folder, partition)
        found_before = stored(path)
        if found_before is not None and found_before[0] == part_key:
            counts.append(found_before[1])
            continue
        table, found = compute(i)
        meta = {KEY: part_key.encode(), COUNTS: json.dumps(found, sort_keys=True).encode()}
        store.write_patch(path, table, columns, meta)
        counts.append(found)
        computed += 1
    return counts, computed


def keep_only(folder: Path, partitions: Sequence[Path]) -> None:
    """Create ``folder``, or remove its files of partitions not in ``partitions``."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {store.patch_path(folder, p).name for p in partitions}
    for path in folder.iterdir():
        if path.name not in wanted and path.is_file():
            path.unlink()


def write_patches(
    folder: Path, partitions: Sequence[Path], table: pa.Table, columns: Sequence[str]
) -> int:
    """The patch of a stage that decides all records together (``dedup``, ``queue``'s order,
    ``split``), as a folder of one file per partition: ``table``'s rows of each partition in
    turn. A file whose rows are unchanged is not written again (its key is a hash of them), and
    keeps its key, so the stages after it see that partition unchanged. Returns how many files
    were written."""
    keep_only(folder, partitions)
    patch = store.patch(table, columns)
    written = 0
    for partition, (offset, n) in zip(partitions, store.spans(partitions), strict=True):
        rows = patch.slice(offset, n)
        path = store.patch_path(folder, partition)
        part_key = table_digest(rows)
        found = stored(path)
        if found is None or found[0] != part_key:
            store.write_patch(path, rows, columns, {KEY: part_key.encode()})
            written += 1
    return written


def write_records(layers: Sequence[Path], targets: dict[Path, str], keys: Sequence[str]) -> int:
    """Whole records into each target folder: one file per partition (``patch_path``) holding
    its records whose ``split`` is the target's value, in record order. ``layers``: the records
    and every patch through split's; ``keys``: each partition's split key, which covers
    everything its records hold. Returns how many files were written.

    A file whose key is unchanged is not written again, so a new round writes its new
    partitions and the few others whose records changed. One partition at a time, read once for
    both targets: the texts are most of the bytes, and holding them all at once cost more than
    the reading itself at a million records. Two threads read the next partitions while this
    one writes (Arrow releases the GIL), at most ``AHEAD`` in flight.
    """
    files = store.partitions(layers[0])
    for folder in targets:
        keep_only(folder, files)
    plans: list[dict[Path, tuple[str, str]]] = []
    for partition, part_key in zip(files, keys, strict=True):
        plan = {}
        for folder, value in targets.items():
            path = store.patch_path(folder, partition)
            file_key = key(part_key, value)
            found = stored(path)
            if found is None or found[0] != file_key:
                plan[path] = (value, file_key)
        plans.append(plan)

    def select(i: int) -> dict[Path, tuple[pa.Table, str]]:
        one = [files[i], *(store.patch_path(layer, files[i]) for layer in layers[1:])]
        table = store.load(one)
        split = table.column("split")
        return {
            path: (table.filter(pc.fill_null(pc.equal(split, value), False)), file_key)
            for path, (value, file_key) in plans[i].items()
        }

    written = 0
    needed = [i for i, plan in enumerate(plans) if plan]
    with ThreadPoolExecutor(2) as pool:
        pending: collections.deque[Future[dict[Path, tuple[pa.Table, str]]]] = collections.deque()
        for j in range(len(needed) + AHEAD):
            if j < len(needed):
                pending.append(pool.submit(select, needed[j]))
            if len(pending) > AHEAD or (j >= len(needed) and pending):
                for path, (table, file_key) in pending.popleft().result().items():
                    write_parquet(path, table, metadata={KEY: file_key.encode()})
                    written += 1
    return written
