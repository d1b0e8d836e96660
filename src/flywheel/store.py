"""The round's records on disk: written once by ingest, then only the columns each stage decides.

Ingest writes the records, one Parquet file per export, under ``data/interim/ingest/``
(``r<round>-<export_id>.records.parquet``: file names sort as ``records.SORT_KEYS``, so the
partitions read in name order are the canonical record order). Every later stage writes a
*patch*: ``id`` and the columns it decides, in the same row order (``label``: the label columns;
``bucket``: the category; ``dedup``: clusters and duplicate fates; ``queue``; ``split``). A stage
reads the columns it needs, each from the newest layer that has it (``load``). A patch is one
Parquet file, or a folder with one file per partition, named after it (``patch_path``): the
stages that decide each partition on its own keep theirs so, and recompute only the partitions
whose inputs changed (``flywheel.parts``).

Why: the texts are most of a record's bytes and no stage after ingest changes them, so rewriting
them in every stage cost about 5 s a stage at a million records and made a small new round as
slow as a full rebuild. Patches are a few megabytes; an unchanged export's partition is not
rewritten at all (``flywheel.ingest_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel import records
from flywheel.errors import InputError
from flywheel.io import footer, read_parquet, read_schema, require_output, write_parquet

PARTITION_SUFFIX = ".records.parquet"
IDS_KEY = b"flywheel.ids"  # a patch's metadata: the digest of the ids it was written for
# A partition's metadata: the fingerprint of the export it was mapped from (flywheel.ingest_cache).
FINGERPRINT_KEY = b"flywheel.ingest.fingerprint"


def partition_name(round_: int, export_id: str) -> str:
    return f"r{round_:04d}-{export_id}{PARTITION_SUFFIX}"


def partitions(folder: Path) -> list[Path]:
    """The record partitions of ``folder`` in canonical order."""
    return sorted(folder.glob("*" + PARTITION_SUFFIX))


def patch_path(folder: Path, partition: Path) -> Path:
    """The file of a patch folder that patches ``partition``."""
    return folder / (partition.name[: -len(PARTITION_SUFFIX)] + ".parquet")


def partition_layers(layers: Sequence[Path], partition: Path) -> list[Path]:
    """The layers of one partition: its records file and its file in each patch folder."""
    return [partition, *(patch_path(layer, partition) for layer in layers[1:])]


def layer_columns(path: Path, records_layer: bool = False) -> list[str]:
    """The columns a layer holds (the records layer's partition folder holds every record
    column; a patch folder, those of its files)."""
    if path.is_dir():
        if records_layer:
            return list(records.SCHEMA.names)
        first = next(iter(sorted(path.glob("*.parquet"))), None)
        return [] if first is None else list(read_schema(first).names)
    return list(read_schema(require_output(path)).names)


def read_layer(path: Path, columns: Sequence[str]) -> pa.Table:
    """``columns`` of one layer: a partition folder (concatenated in order) or one Parquet file."""
    if path.is_dir():
        return _concat([pq.read_table(p, columns=list(columns)) for p in partitions(path)], columns)
    return read_parquet(path, columns)


def _concat(tables: list[pa.Table], columns: Sequence[str]) -> pa.Table:
    if not tables:
        return records.schema_of(columns).empty_table()
    return pa.concat_tables(tables)  # chunked: combining copied every column once more


def _read_patch_folder(
    folder: Path, files: Sequence[Path], digests: Sequence[str], columns: Sequence[str]
) -> pa.Table:
    """``columns`` of a patch folder, the file of each partition in ``files``, each checked to
    be written for the ids whose digest is in ``digests``."""
    pieces = []
    for partition, digest in zip(files, digests, strict=True):
        path = patch_path(folder, partition)
        meta = (read_schema(path).metadata or {}) if path.exists() else {}
        if meta.get(IDS_KEY) != digest.encode():
            state = "was written for other records than" if meta else "is missing, beside"
            raise InputError(f"{path} {state} {partition}; rebuild it with dvc repro.")
        pieces.append(pq.read_table(path, columns=list(columns)))
    return _concat(pieces, columns)


def owners(layers: Sequence[Path], wanted: Sequence[str]) -> dict[str, int]:
    """For each column, the index of the last layer that has it."""
    held = [layer_columns(p, records_layer=i == 0) for i, p in enumerate(layers)]
    owner: dict[str, int] = {}
    for name in wanted:
        found = [i for i, cols in enumerate(held) if name in cols]
        if not found:
            raise InputError(f"No layer of {', '.join(map(str, layers))} has column '{name}'.")
        owner[name] = found[-1]
    return owner


def load(
    layers: Sequence[Path],
    columns: Sequence[str] | None = None,
    only: Sequence[Path] | None = None,
) -> pa.Table:
    """The records with ``columns`` (default: all, in schema order), each column from the last
    of ``layers`` that has it; ``layers[0]`` is the records (a partition folder or a full record
    table), the rest patches in the same row order. A patch whose ids differ from the records'
    is refused: it is stale (written for other records), and ``dvc repro`` rebuilds it.
    ``only``: the records of these partitions alone (every layer a folder)."""
    wanted = list(columns) if columns is not None else list(records.SCHEMA.names)
    files = partitions(layers[0]) if layers[0].is_dir() else None
    if only is not None:
        if files is None or not all(layer.is_dir() for layer in layers):
            raise ValueError("load(only=...) needs every layer to be a partition folder.")
        files = list(only)
    if files == []:
        return records.schema_of(wanted).empty_table()
    owner = owners(layers, wanted)
    used = sorted(set(owner.values()) | {0})
    tables: dict[int, pa.Table] = {}
    first = ["id", *[c for c in wanted if owner[c] == 0 and c != "id"]]
    folders = [i for i in used[1:] if layers[i].is_dir()]
    part_digests: list[str] = []
    if files is not None and (folders or only is not None):  # checked partition by partition
        pieces = [pq.read_table(p, columns=first) for p in files]
        part_digests = [records.strings_digest(p.column("id")) for p in pieces]
        tables[0] = _concat(pieces, first)
    else:
        tables[0] = read_layer(layers[0], first)
    ids = tables[0].column("id")
    digest = records.strings_digest(ids) if len(used) > len(folders) + 1 else ""
    for i in used[1:]:
        take = [c for c in wanted if owner[c] == i and c != "id"]
        if i in folders:
            if files is None:
                raise InputError(f"{layers[i]} patches partitions; {layers[0]} holds none.")
            tables[i] = _read_patch_folder(layers[i], files, part_digests, take)
            continue
        meta = read_schema(layers[i]).metadata or {}
        if meta.get(IDS_KEY) == digest.encode():  # written for these records: no id to compare
            tables[i] = read_layer(layers[i], take)
            if tables[i].num_rows == len(ids):
                continue
        tables[i] = read_layer(layers[i], ["id", *take])
        other = tables[i].column("id")
        if len(other) != len(ids) or pc.all(pc.equal(other, ids)).as_py() not in (True, None):
            raise InputError(
                f"{layers[i]} was written for other records than {layers[0]} "
                f"({len(other):,} rows vs {len(ids):,}); rebuild it with dvc repro."
            )
    columns_ = {name: tables[0 if name == "id" else owner[name]].column(name) for name in wanted}
    return pa.table(columns_).cast(records.schema_of(wanted))


def take(layers: Sequence[Path], columns: Sequence[str], rows: npt.NDArray[np.int64]) -> pa.Table:
    """``load(layers, columns).take(rows)`` without holding every record's ``columns``: each
    partition of ``layers[0]`` that holds one of ``rows`` is read on its own (for a few
    thousand rows of the texts, this skips concatenating a gigabyte)."""
    wanted = list(columns)
    owner = owners(layers, wanted)
    narrow = [c for c in wanted if owner[c] > 0]
    out = load(layers, narrow).take(pa.array(rows)) if narrow else None
    own = [c for c in wanted if owner[c] == 0]
    if not layers[0].is_dir() or not own:
        whole = load(layers, own).take(pa.array(rows)) if own else None
        return _assemble(wanted, out, whole)
    pieces = []
    where = np.empty(len(rows), dtype=np.int64)  # each wanted row's place among the pieces
    done = 0
    files = partitions(layers[0])
    for part, (offset, n) in zip(files, spans(files), strict=True):
        mine = np.flatnonzero((rows >= offset) & (rows < offset + n))
        if len(mine):
            pieces.append(_read_rows(part, own, rows[mine] - offset))
            where[mine] = done + np.arange(len(mine))
            done += len(mine)
    joined = pa.concat_tables(pieces) if pieces else records.schema_of(own).empty_table()
    if not np.array_equal(where, np.arange(len(rows))):  # rows out of order: put them back
        joined = joined.take(pa.array(where))
    return _assemble(wanted, out, joined.cast(records.schema_of(own)))


def _read_rows(path: Path, columns: list[str], rows: npt.NDArray[np.int64]) -> pa.Table:
    """``columns`` of ``rows`` of one Parquet file, reading only the row groups that hold them
    (ingest writes ``ingest_cache.ROW_GROUP`` rows a group: one record's texts cost a group,
    not the file)."""
    f = pq.ParquetFile(path)
    sizes = np.array([f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)])
    starts = np.concatenate(([0], np.cumsum(sizes)))
    group = np.searchsorted(starts, rows, side="right") - 1
    needed = np.unique(group)
    if len(needed) == len(sizes):
        return f.read(columns=columns).take(pa.array(rows))
    at = np.zeros(len(sizes), dtype=np.int64)  # each needed group's first row in what is read
    at[needed] = np.concatenate(([0], np.cumsum(sizes[needed])[:-1]))
    table = f.read_row_groups(needed.tolist(), columns=columns)
    return table.take(pa.array(at[group] + rows - starts[group]))


def spans(files: Sequence[Path]) -> list[tuple[int, int]]:
    """Each Parquet file's first row among all of them, and its row count (from the footers)."""
    sizes = [footer(f).num_rows for f in files]
    starts = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))[:-1].tolist()
    return list(zip(starts, sizes, strict=True))


def _assemble(wanted: list[str], *tables: pa.Table | None) -> pa.Table:
    have = {name: t.column(name) for t in tables if t is not None for name in t.column_names}
    return pa.table({name: have[name] for name in wanted}).cast(records.schema_of(wanted))


def patch(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``id`` and ``columns`` of ``table``, typed as in the record schema."""
    names = ["id", *[c for c in columns if c != "id"]]
    return table.select(names).cast(records.schema_of(names))


def write_patch(
    path: Path, table: pa.Table, columns: Sequence[str], metadata: dict[bytes, bytes] | None = None
) -> None:
    """The patch, with a digest of its ids in the file's metadata (and ``metadata``): ``load``
    then knows which records it was written for without reading and comparing a million ids."""
    out = patch(table, columns)
    digest = records.strings_digest(out["id"]).encode()
    write_parquet(path, out, metadata={IDS_KEY: digest, **(metadata or {})})
