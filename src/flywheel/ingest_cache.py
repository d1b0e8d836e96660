"""Ingest's output, one export at a time, and when an export's earlier output still holds.

Each export's share of ingest's output lives beside the others in ``data/interim/ingest/``:

- ``r<round>-<export_id>.records.parquet``: its records (``records.SCHEMA``, by id), with the
  export's *fingerprint* in the file's metadata;
- ``….rows.parquet``: its rows' ledger entries (``ROWS_SCHEMA``, by line);
- ``….quarantine.jsonl``: its quarantined rows (by line);
- ``….ids.npy``: a 64-bit hash of each of its records' ids, sorted (``ids_repeat``).

The fingerprint is a hash of everything the export's output depends on: the raw file's bytes,
its manifest, the path it is read from, ``params.yaml: ingest``, the guidelines' labels and
version, and the source of the modules that do the work. A rebuild maps only the exports whose
fingerprint changed (a new round: its new exports), and the stage's outputs are the same bytes
as a build from nothing (``tests/test_ingest.py``). The records file is written last, so an
interrupted write leaves no records file with a current fingerprint beside stale rows.

An export's output depends on the others only when they share a record id (the first delivery
wins); ingest then settles all exports together and writes their parts with no fingerprint,
so that the next build settles them together again. Whether any id repeats is asked of every
build, new exports or not: the ids' hashes answer it without reading a million ids (0.5 s a
round at a million records), and only a repeated hash sends the build to the ids themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import exports, file_hashes, parts, records
from flywheel.guidelines import Guidelines
from flywheel.ingest_bytes import Bytes
from flywheel.ingest_ledger import ROWS_SCHEMA, THREADS
from flywheel.io import atomic_open, footer, read_schema, write_jsonl, write_parquet
from flywheel.store import FINGERPRINT_KEY, PARTITION_SUFFIX, partition_name

ROWS_SUFFIX = ".rows.parquet"
QUARANTINE_SUFFIX = ".quarantine.jsonl"
IDS_SUFFIX = ".ids.npy"
# Rows per row group of the records files: a few records' texts (queue.jsonl's head, say) are
# then read from a group of them, 6 ms, not from the whole partition, 0.1 s (measured on the
# 172,000-record partition of the 1M benchmark: the file grows 6%, reading it all gets faster).
ROW_GROUP = 8192
# The modules whose code decides what an export becomes: a change to any refreshes every export.
MODULES = (
    "exports",
    "ingest",
    "ingest_annotations",
    "ingest_bytes",
    "ingest_cache",
    "ingest_csv",
    "ingest_frame",
    "ingest_jsonl",
    "ingest_ledger",
    "ingest_map",
    "ingest_read",
    "ingest_text",
    "kernels",
    "records",
    "scrub",
    "shingles",
    "validate_rows",
)


@dataclass
class Part:
    """One export's share of ingest's output."""

    export: exports.Export
    records: pa.Table
    rows: pa.Table
    quarantine: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return part_name(self.export)


def part_name(export: exports.Export) -> str:
    return partition_name(int(export.manifest["round"]), export.export_id)


def fingerprints(
    found: Sequence[exports.Export], guidelines: Guidelines, params: dict[str, Any]
) -> list[str]:
    """The fingerprint of each export (its file's hash remembered by its stat, else hashed in
    threads: ``flywheel.file_hashes``)."""
    common = {
        "code": parts.code_hash(MODULES),
        "params": {k: v for k, v in params.items() if k != "raw_dir"},
        "labels": list(guidelines.label_names),
        "guidelines_version": guidelines.version,
    }
    files = file_hashes.sha256_files([e.file for e in found], THREADS)
    out = []
    for export, file_hash in zip(found, files, strict=True):
        key = {
            **common,
            "file": file_hash,
            "path": export.file.as_posix(),
            "manifest": export.manifest,
        }
        out.append(
            hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        )
    return out


def stored_fingerprint(folder: Path, name: str) -> str | None:
    path = folder / name
    if not path.exists() or not (folder / _sibling(name, ROWS_SUFFIX)).exists():
        return None
    if not (folder / _sibling(name, QUARANTINE_SUFFIX)).exists():
        return None
    try:
        meta = read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    value = meta.get(FINGERPRINT_KEY)
    return value.decode() if value else None


def _sibling(name: str, suffix: str) -> str:
    return name[: -len(PARTITION_SUFFIX)] + suffix


def write(folder: Path, part: Part, fingerprint: str) -> None:
    """The export's files, the records last: they carry the fingerprint, and the part's share
    of the stage's metrics (``counts``)."""
    write_parquet(folder / _sibling(part.name, ROWS_SUFFIX), part.rows.cast(ROWS_SCHEMA))
    write_jsonl(folder / _sibling(part.name, QUARANTINE_SUFFIX), part.quarantine)
    with atomic_open(folder / _sibling(part.name, IDS_SUFFIX), "wb") as f:
        np.save(f, id_hashes(part.records.column("id")))
    found = counts(part.records, part.rows, len(part.quarantine))
    meta = {parts.COUNTS: json.dumps(found, sort_keys=True).encode()}
    if fingerprint:
        meta[FINGERPRINT_KEY] = fingerprint.encode()
    write_parquet(folder / part.name, records.conform(part.records, sort=False), meta, ROW_GROUP)


def counts(table: pa.Table, rows: pa.Table, quarantined: int) -> parts.Counts:
    """A part's share of ingest's metrics, from its records (``round`` and ``pii`` suffice),
    its ledger rows (``fate``) and how many rows it quarantined."""
    pii = table.column("pii")
    return {
        "rows_read": rows.num_rows,
        "records": table.num_rows,
        "quarantined": quarantined,
        "superseded_annotations": int(pc.sum(pc.equal(rows["fate"], "excluded")).as_py() or 0),
        "exports": int(rows.num_rows > 0),
        "pii_records": int(pc.sum(pc.greater(pc.list_value_length(pii), 0)).as_py() or 0),
        "pii_kinds": records.counts(pc.list_flatten(pii)),
        "records_per_round": {str(k): n for k, n in records.counts(table["round"]).items()},
    }


def stored_counts(folder: Path, name: str) -> parts.Counts:
    """A part's ``counts``, from its records file's metadata, else from its files."""
    meta = read_schema(folder / name).metadata or {}
    if parts.COUNTS in meta:
        found: parts.Counts = json.loads(meta[parts.COUNTS])
        return found
    quarantined = len(read_quarantine(folder, name))
    table = pq.read_table(folder / name, columns=["round", "pii"])
    return counts(table, read_rows(folder, name, ["fate"]), quarantined)


def read_ids(folder: Path, name: str) -> pa.Array:
    return pq.read_table(folder / name, columns=["id"]).column("id").combine_chunks()


def id_hashes(ids: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint64]:
    """The first 8 bytes of each id's BLAKE2b, as sorted unsigned integers."""
    digests = Bytes(pc.fill_null(ids, "")).blake2b(8) if len(ids) else b""
    return np.sort(np.frombuffer(digests, dtype="<u8"))


def _stored_id_hashes(folder: Path, name: str) -> npt.NDArray[np.uint64]:
    """A part's id hashes from beside it, else (missing, torn, or not its length) from its ids."""
    path = folder / _sibling(name, IDS_SUFFIX)
    try:
        found = np.load(path, allow_pickle=False)
        if found.dtype == np.dtype("<u8") and len(found) == footer(folder / name).num_rows:
            return np.asarray(found, dtype=np.uint64)
    except (OSError, ValueError, EOFError):
        pass
    return id_hashes(read_ids(folder, name))


def ids_repeat(folder: Path, names: Sequence[str]) -> bool:
    """Whether two records of the parts ``names`` share an id. Hashes decide when they all
    differ; equal hashes (a shared id, or one chance in 2**64 / n**2) ask the ids."""
    found = [_stored_id_hashes(folder, n) for n in names]
    hashes = np.sort(np.concatenate(found)) if found else np.zeros(0, np.uint64)
    if not (hashes[1:] == hashes[:-1]).any():
        return False
    every = pa.chunked_array([read_ids(folder, n) for n in names], pa.string())
    return bool(pc.count_distinct(every).as_py() < len(every))


def read_rows(folder: Path, name: str, columns: Sequence[str] | None = None) -> pa.Table:
    path = folder / _sibling(name, ROWS_SUFFIX)
    return pq.read_table(path, columns=None if columns is None else list(columns))


def in_ledger_order(found: Sequence[exports.Export]) -> list[exports.Export]:
    """Exports in the order the ledger and the quarantine list them: by their files' paths."""
    return sorted(found, key=lambda e: e.file.as_posix())


def ledger_rows(
    folder: Path, found: Sequence[exports.Export], columns: Sequence[str] | None = None
) -> pa.Table:
    """The row ledger: every export's ledger rows, exports in the order of their files' paths.
    Kept per export beside its records; a whole-ledger copy cost every build a 1.3M-row write
    at a million records."""
    tables = [read_rows(folder, part_name(e), columns) for e in in_ledger_order(found)]
    empty = ROWS_SCHEMA if columns is None else pa.schema([ROWS_SCHEMA.field(c) for c in columns])
    return pa.concat_tables(tables) if tables else empty.empty_table()


def read_quarantine(folder: Path, name: str) -> list[dict[str, Any]]:
    text = (folder / _sibling(name, QUARANTINE_SUFFIX)).read_bytes()
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def remove_others(folder: Path, keep: set[str]) -> None:
    """Delete the files of exports no longer in ``data/raw`` (and leftovers of old layouts)."""
    for path in folder.iterdir():
        stem = None
        for suffix in (PARTITION_SUFFIX, ROWS_SUFFIX, QUARANTINE_SUFFIX, IDS_SUFFIX):
            if path.name.endswith(suffix):
                stem = path.name[: -len(suffix)] + PARTITION_SUFFIX
        if stem not in keep and path.is_file():
            path.unlink()
